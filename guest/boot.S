/*
 * Multiboot v1 header and the BSP's path from the loader's 32-bit
 * protected mode into 64-bit C. Page tables for the first 4 GiB are
 * prebuilt data (pagetable.S), so this runs only a few dozen
 * instructions: in PVM kernel mode every one of them is emulated.
 */
#include "exitcodes.h"
#include "layout.h"

#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003	/* page-align modules, want mem info */

#define CR0_PE		0x00000001
#define CR0_PG		0x80000000
#define CR4_PAE		0x00000020
#define MSR_EFER	0xC0000080
#define EFER_LME	0x00000100

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl _start
_start:
	cli
	cld
	/* kmain(magic, info): keep them out of cpuid's way */
	mov	%eax, %edi
	mov	%ebx, %esi

	/* Long mode present? Otherwise nothing sensible can be printed. */
	mov	$0x80000000, %eax
	cpuid
	cmp	$0x80000001, %eax
	jb	no_long_mode
	mov	$0x80000001, %eax
	cpuid
	bt	$29, %edx
	jnc	no_long_mode

	lgdt	gdt_ptr			/* low 32 bits of the base suffice */
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$(CR0_PG | CR0_PE), %eax
	mov	%eax, %cr0
	ljmp	$SEL_KCODE, $long_entry

no_long_mode:
	mov	$FERRY_EXIT_ERROR, %al
	out	%al, $DEBUG_EXIT_PORT
1:	hlt
	jmp	1b

	.code64
long_entry:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$(kstacks + KSTACK_SIZE), %rsp	/* CPU 0's kernel stack */

	/* One rep stosq clears .bss: a single emulated instruction. */
	mov	%edi, %r8d
	mov	%esi, %r9d
	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	shr	$3, %ecx
	xor	%eax, %eax
	rep stosq
	mov	%r8d, %edi
	mov	%r9d, %esi
	call	kmain
	ud2

/*
 * Stacks and spare page directories are never zeroed: they sit after
 * __bss_end in the same NOBITS output section, so loaders still reserve
 * (and normally clear) them, but the kernel does not spend time on it.
 */
	.section .stacks, "aw", @nobits
	.balign PAGE_SIZE
	.globl kstacks, ustacks, extra_pds
kstacks:
	.skip KSTACK_SIZE * MAX_CPUS
ustacks:
	.skip USTACK_SIZE * MAX_CPUS
extra_pds:
	.skip PAGE_SIZE * EXTRA_PDS
