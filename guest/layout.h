/*
 * Fixed physical memory layout and CPU-level constants of ferry-guest.
 * Included from both C and assembly, so plain integer literals only.
 * docs/guest.md describes the layout; keep the two in sync.
 */
#ifndef FERRY_GUEST_LAYOUT_H
#define FERRY_GUEST_LAYOUT_H

#define PAGE_SIZE 4096

/* Where the loader puts the kernel image (linker.ld uses the same). */
#define KERNEL_LOAD_ADDR 0x100000
/* AP real-mode trampoline; SIPI vector is this address >> 12. */
#define TRAMPOLINE_ADDR 0x8000
/* Start of the working-set area (32 MiB); the kernel must end below it. */
#define WS_BASE 0x2000000

#define MAX_CPUS    64
#define KSTACK_SIZE 8192
#define USTACK_SIZE 16384
/* Page directories for RAM above 4 GiB when 1 GiB pages are missing. */
#define EXTRA_PDS 60

#define LAPIC_ADDR 0xFEE00000

/* GDT selectors; user selectors carry RPL 3. */
#define SEL_KCODE	  0x08
#define SEL_KDATA	  0x10
#define SEL_UDATA	  0x1b
#define SEL_UCODE	  0x23
#define SEL_TSS0	  0x28 /* cpu n uses SEL_TSS0 + 16 * n */
#define GDT_FIXED_ENTRIES 5

/* Interrupt vectors. */
#define VEC_PIC_BASE 0x20 /* legacy PIC, remapped and masked */
#define VEC_TIMER    0x40
/*
 * System calls (syscall.h) use int 4: PVM turns "int 0x80" from user mode
 * into #UD and only lets int 3, int 4 and int 0x80 through at all. Vector
 * 4 is #OF, which the CPU cannot raise in 64-bit mode (no INTO), so it
 * is free. int 0x80 gets the same gate for hosts where it works.
 */
#define VEC_SYSCALL	0x04
#define VEC_SYSCALL_ALT 0x80
#define VEC_SPURIOUS	0xff

#endif
