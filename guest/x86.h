/*
 * Thin wrappers around x86 instructions. The port I/O and rdtsc wrappers
 * are also used from ring 3, which runs with IOPL=3.
 */
#ifndef FERRY_GUEST_X86_H
#define FERRY_GUEST_X86_H

#include "common.h"

static inline void outb(u16 port, u8 v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	asm volatile("pause" ::: "memory");
}

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline unsigned cpl(void)
{
	u16 cs;

	asm volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

static inline u64 read_rflags(void)
{
	u64 v;

	asm volatile("pushfq; pop %0" : "=r"(v));
	return v;
}

/*
 * Port I/O is allowed when CPL <= IOPL. Ring 3 runs with IOPL=3, but
 * some hypervisors (PVM) do not honour IOPL for guest user mode; there
 * ring 3 must go through the kernel (see syscall.h).
 */
static inline bool io_allowed(void)
{
	return ((read_rflags() >> 12) & 3) >= cpl();
}

static inline u64 read_cr2(void)
{
	u64 v;

	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline void write_cr3(u64 v)
{
	asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline u64 read_cr3(void)
{
	u64 v;

	asm volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

#endif
