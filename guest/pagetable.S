/*
 * Boot page tables as initialised data: the loader copies them in, so
 * the emulated kernel never loops over 2048 entries. They identity-map
 * the first 4 GiB with 2 MiB pages, U=1 everywhere (ring-3 workloads
 * touch everything), A and D preset so no walker has to set them. The
 * LAPIC/IOAPIC window 0xFEC00000-0xFEFFFFFF is uncached (PCD|PWT).
 * mm.c switches GiB 0-2 to 1 GiB pages when the CPU has them and maps
 * RAM above 4 GiB.
 */
#include "layout.h"

#define PTE_TABLE	0x27	/* P | RW | US | A */
#define PTE_LARGE	0xe7	/* P | RW | US | A | D | PS */
#define PTE_UC		0x18	/* PWT | PCD */

	.section .data.pagetables, "aw"
	.balign PAGE_SIZE
	.globl pml4, pdpt, pd_low
pml4:
	.quad	pdpt + PTE_TABLE
	.fill	511, 8, 0
pdpt:
	.quad	pd_low + 0x0000 + PTE_TABLE
	.quad	pd_low + 0x1000 + PTE_TABLE
	.quad	pd_low + 0x2000 + PTE_TABLE
	.quad	pd_low + 0x3000 + PTE_TABLE
	.fill	508, 8, 0
pd_low:
	.set	addr, 0
	.rept	2048
	.if	(addr >= 0xFEC00000) && (addr < 0xFF000000)
	.quad	addr + PTE_LARGE + PTE_UC
	.else
	.quad	addr + PTE_LARGE
	.endif
	.set	addr, addr + 0x200000
	.endr
