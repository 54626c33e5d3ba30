/*
 * Interrupt controllers: silence the legacy PIC and PIT channel 0 left
 * running by the firmware, set up each CPU's local APIC and its
 * periodic timer, and send IPIs.
 */
#include "kernel.h"
#include "x86.h"

#define ICR_BUSY (1u << 12)

void pic_disable(void)
{
	/* Remap first, so a spurious IRQ7/15 cannot look like #DF or #GP. */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, VEC_PIC_BASE);
	outb(0xa1, VEC_PIC_BASE + 8);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	/* PIT channel 0 to one-shot, no count: stops the BIOS's 18.2 Hz. */
	outb(0x43, 0x30);
}

void lapic_init(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED); /* no ExtINT from PIC */
	lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS); /* software enable */
}

/* Periodic tick of guest.tick_us, calibrated by time_calibrate(). */
void lapic_timer_start(void)
{
	u64 count = lapic_hz * guest.tick_us / 1000000;

	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, (u32)MIN(MAX(count, 1), 0xffffffffULL));
}

void lapic_ipi(u8 apic_id, u32 icr)
{
	lapic_write(LAPIC_ICR_HI, (u32)apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	while (lapic_read(LAPIC_ICR_LO) & ICR_BUSY)
		cpu_relax();
}
