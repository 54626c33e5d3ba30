/*
 * Interrupt entry points and the drop to ring 3. The hot ones (timer,
 * int 0x80) are a handful of instructions because PVM emulates every
 * kernel-mode instruction.
 */
#include "layout.h"

/* Exception stubs, 16 bytes apart: exc_stubs + 16 * vector. */
	.text
	.balign 16
	.globl exc_stubs
exc_stubs:
	.set	vec, 0
	.rept	32
	.balign 16
	.if	!(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
	pushq	$0			/* no CPU error code: fake one */
	.endif
	pushq	$vec
	jmp	exc_common
	.set	vec, vec + 1
	.endr

exc_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi		/* struct trap_frame * */
	and	$-16, %rsp
	call	trap_exception		/* does not return */
	ud2

/* LAPIC timer: only acknowledge; ring 3 reads the TSC itself. */
	.globl timer_isr
timer_isr:
	push	%rax
	mov	$(LAPIC_ADDR + 0xB0), %eax	/* EOI */
	movl	$0, (%rax)
	pop	%rax
	iretq

/*
 * System call from ring 3 (syscall.h). SYS_HALT (rax = 0) is the hot path
 * and stays in assembly; the rest go to syscall_dispatch(a0, a1, nr).
 * The CPU aligned the stack to 16 before pushing its 5-word frame, so
 * 9 more pushes leave it 16-byte aligned for the call.
 */
	.globl syscall_isr
syscall_isr:
	test	%rax, %rax
	jnz	1f
	sti
	hlt
	iretq
1:	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	mov	%rax, %rdx
	call	syscall_dispatch
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq

/* LAPIC spurious vector and the masked PIC's IRQ7/IRQ15: no EOI. */
	.globl spurious_isr
spurious_isr:
	iretq

/*
 * enter_user(fn, user_rsp, arg): iretq to fn(arg) in ring 3 with
 * IF=1 and IOPL=3 (port I/O allowed). Never returns.
 */
	.globl enter_user
enter_user:
	mov	$SEL_UDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	pushq	$SEL_UDATA
	pushq	%rsi
	pushq	$0x3202			/* IOPL=3 | IF | reserved bit 1 */
	pushq	$SEL_UCODE
	pushq	%rdi
	mov	%rdx, %rdi
	iretq
