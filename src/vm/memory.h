/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest physical memory.
 *
 * One anonymous mapping backs all of guest RAM; it is split into KVM
 * memory slots around the PCI hole below 4 GiB, as a PC has it:
 *   [0, min(size, 3 GiB))            slot 0
 *   [4 GiB, 4 GiB + size - 3 GiB)    slot 1, only for guests over 3 GiB
 * The hole keeps the LAPIC (0xfee00000) and IOAPIC (0xfec00000) clear.
 *
 * The layout is fixed at creation and read-only afterwards, so any thread
 * may translate addresses without a lock.
 */
#ifndef FERRY_VM_MEMORY_H
#define FERRY_VM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define GMEM_PAGE_SIZE	 4096ull
#define GMEM_LOW_LIMIT	 0xC0000000ull /* RAM below 4 GiB ends at 3 GiB */
#define GMEM_HIGH_BASE	 0x100000000ull
#define GMEM_MAX_REGIONS 2

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint32_t slot;
};

struct gmem {
	uint64_t size; /* total RAM in bytes */
	uint8_t *base; /* start of the host mapping */
	unsigned nregions;
	struct gmem_region regions[GMEM_MAX_REGIONS];
};

/* Map @size bytes of RAM and register it with the VM.  Does not touch the pages. */
int gmem_init(struct gmem *m, int vm_fd, uint64_t size, struct ferr *err);
void gmem_destroy(struct gmem *m);

/*
 * Populate every page of RAM now (MADV_POPULATE_WRITE), without changing
 * contents, so that later first touches (a migration writing pages in)
 * do not fault.  Stops early when *@stop becomes true.  -EOPNOTSUPP on
 * kernels older than 5.14.
 */
int gmem_prealloc(struct gmem *m, const volatile bool *stop, struct ferr *err);

/* Host pointer for [gpa, gpa+len) if it lies inside one region, else NULL. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);

/* Highest guest-physical address + 1 (the end of the last region). */
uint64_t gmem_end(const struct gmem *m);

/* RAM below 4 GiB in bytes. */
uint64_t gmem_low_size(const struct gmem *m);

#endif
