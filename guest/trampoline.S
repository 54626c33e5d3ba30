/*
 * AP startup. smp.c copies tramp_start..tramp_end to TRAMPOLINE_ADDR
 * and sends SIPIs with that page as the vector. The code goes real mode
 * -> 32-bit protected mode -> long mode on the BSP's page tables, then
 * jumps to ap_entry64 in the kernel image, which finds the CPU's index
 * from its LAPIC ID. All APs may run this at once: nothing here writes
 * memory, and each AP picks its own stack by index.
 */
#include "layout.h"

#define TRAMP(sym)	(TRAMPOLINE_ADDR + ((sym) - tramp_start))
/* tramp_gdt: 0x08/0x10 match the kernel GDT, 0x18 is only needed here */
#define TRAMP_CODE32	0x18

	.section .rodata.trampoline, "a"
	.code16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	cld
	xor	%ax, %ax
	mov	%ax, %ds
	lgdtl	TRAMP(tramp_gdtr)
	mov	%cr0, %eax
	or	$0x1, %eax		/* PE */
	mov	%eax, %cr0
	ljmpl	$TRAMP_CODE32, $TRAMP(tramp32)

	.code32
tramp32:
	mov	$SEL_KDATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xC0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000000, %eax	/* PG */
	mov	%eax, %cr0
	ljmp	$SEL_KCODE, $ap_entry64

	.balign 8
tramp_gdt:
	.quad	0
	.quad	0x00AF9A000000FFFF	/* 0x08: 64-bit code = SEL_KCODE */
	.quad	0x00CF92000000FFFF	/* 0x10: data = SEL_KDATA */
	.quad	0x00CF9A000000FFFF	/* 0x18: 32-bit code */
tramp_gdtr:
	.word	tramp_gdtr - tramp_gdt - 1
	.long	TRAMP(tramp_gdt)
tramp_end:

	.text
	.code64
ap_entry64:
	lgdt	gdt_ptr
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	/* CS needs no reload: SEL_KCODE means the same in both GDTs. */
	/* index = position of our LAPIC ID in cpu_apic_id[] */
	mov	$(LAPIC_ADDR + 0x20), %eax
	mov	(%rax), %eax
	shr	$24, %eax
	mov	$1, %ecx
2:	cmpb	%al, cpu_apic_id(%rcx)
	je	3f
	inc	%ecx
	cmp	$MAX_CPUS, %ecx
	jb	2b
4:	cli				/* not ours to run: park */
	hlt
	jmp	4b
3:
	mov	%ecx, %edi
	lea	1(%rcx), %rax
	imul	$KSTACK_SIZE, %rax
	lea	kstacks(%rax), %rsp
	call	ap_main
	ud2
