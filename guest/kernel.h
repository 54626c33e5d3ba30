/*
 * Ring-0 interfaces. All of this runs emulated under PVM, so every
 * function here is written to execute as few instructions as possible.
 */
#ifndef FERRY_GUEST_KERNEL_H
#define FERRY_GUEST_KERNEL_H

#include "guest.h"

/* LAPIC registers (xAPIC MMIO offsets). */
#define LAPIC_ID	 0x020
#define LAPIC_TPR	 0x080
#define LAPIC_EOI	 0x0b0
#define LAPIC_SVR	 0x0f0
#define LAPIC_ICR_LO	 0x300
#define LAPIC_ICR_HI	 0x310
#define LAPIC_LVT_TIMER	 0x320
#define LAPIC_LVT_LINT0	 0x350
#define LAPIC_LVT_ERROR	 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR	 0x390
#define LAPIC_TIMER_DIV	 0x3e0

#define LVT_MASKED   (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define TIMER_DIV_16 0x3

static inline u32 lapic_read(u32 reg)
{
	return *(volatile u32 *)(u64)(LAPIC_ADDR + reg);
}

static inline void lapic_write(u32 reg, u32 v)
{
	*(volatile u32 *)(u64)(LAPIC_ADDR + reg) = v;
}

/* Boot-time state: which APIC ID runs as which CPU index. */
extern u8 cpu_apic_id[MAX_CPUS];
extern u32 cpu_started[MAX_CPUS]; /* set by each AP on arrival */
extern u32 cpus_online;		  /* APs done with ring-0 setup */
extern char kstacks[], ustacks[], extra_pds[];
extern char __image_start[], __ro_end[], pd_low[];
extern u64 pml4[512], pdpt[512];

static inline u64 kstack_top(unsigned cpu)
{
	return (u64)kstacks + (u64)(cpu + 1) * KSTACK_SIZE;
}

__noreturn void kfatal(const char *f, ...) __printf(1, 2);
unsigned this_cpu(void);

/* mm.c */
void multiboot_parse(u32 magic, u32 info);
void mm_init(void);
void workset_layout(void);

/* desc.c */
void desc_init(void);
void desc_load(unsigned cpu);

/* apic.c */
void pic_disable(void);
void lapic_init(void);
void lapic_timer_start(void);
void lapic_ipi(u8 apic_id, u32 icr);

/* time.c */
void time_calibrate(void);
void tsc_delay_us(u64 us);
extern u64 lapic_hz;

/* acpi.c: fills cpu_apic_id[] and guest.ncpus */
void acpi_find_cpus(void);

/* smp.c */
void smp_start(void);

/* Entered from assembly: boot.S, trampoline.S, entry.S. */
__noreturn void kmain(u32 magic, u32 mbi);
__noreturn void ap_main(unsigned cpu);
struct trap_frame;
__noreturn void trap_exception(struct trap_frame *f);
void syscall_dispatch(u64 a0, u64 a1, u64 nr);

/* entry.S */
__noreturn void enter_user(void (*fn)(u64), u64 rsp, u64 arg);

#endif
