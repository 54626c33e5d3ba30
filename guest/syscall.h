/*
 * The system-call interface of ring 3: "int $VEC_SYSCALL" (int 4, see
 * layout.h) with rax = number, rdi/rsi = arguments; every register is
 * preserved. SYS_HALT is needed everywhere because hlt is privileged.
 * The port I/O calls exist for hypervisors (PVM) where IOPL=3 does not
 * let ring 3 do port I/O itself.
 */
#ifndef FERRY_GUEST_SYSCALL_H
#define FERRY_GUEST_SYSCALL_H

#include "common.h"

#define SYS_HALT   0 /* sti; hlt: sleep until the next interrupt */
#define SYS_OUTB   1 /* outb(port = rdi, value = rsi) */
#define SYS_SERIAL 2 /* write rsi bytes at rdi to COM1 */

static inline void syscall2(u64 nr, u64 a0, u64 a1)
{
	asm volatile("int %3" : "+a"(nr) : "D"(a0), "S"(a1), "i"(VEC_SYSCALL) : "memory");
}

static inline void sys_halt(void)
{
	syscall2(SYS_HALT, 0, 0);
}

#endif
