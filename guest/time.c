// SPDX-License-Identifier: MIT
/*
 * One-time calibration of the TSC and the LAPIC timer against the PIT:
 * channel 2, gated through port 0x61, counts down ~10 ms in mode 0
 * while the TSC and a free-running LAPIC count are sampled at both ends.
 * If the PIT does not respond, fall back to the TSC frequency CPUID may
 * report (hypervisor leaf 0x40000010, then leaf 0x15).
 */
#include "kernel.h"
#include "x86.h"

#define PIT_HZ		1193182
#define CAL_PIT_TICKS	11932		/* 10.0002 ms */
#define CAL_US		10000
#define PORT61_GATE2	0x01
#define PORT61_SPEAKER	0x02
#define PORT61_OUT2	0x20
#define TICK_MAX_US	10000

u64 lapic_hz;

static void lapic_count_start(void)
{
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
}

static u64 lapic_count_elapsed(void)
{
	return 0xffffffffULL - lapic_read(LAPIC_TIMER_CUR);
}

/* Returns false if the PIT does not look present. */
static bool pit_calibrate(u64 *tsc_hz)
{
	u8 p61 = inb(0x61) & ~(PORT61_GATE2 | PORT61_SPEAKER);
	u64 t0, t1, lapic;

	outb(0x61, p61 | PORT61_GATE2);
	outb(0x43, 0xb0);		/* ch2, lo/hi byte, mode 0, binary */
	outb(0x42, CAL_PIT_TICKS & 0xff);
	outb(0x42, CAL_PIT_TICKS >> 8);	/* the count starts now */
	t0 = rdtsc();
	lapic_count_start();

	/* OUT2 must be low while counting; a missing port reads 0xff. */
	if (inb(0x61) & PORT61_OUT2)
		goto absent;
	while (!(inb(0x61) & PORT61_OUT2))
		if (rdtsc() - t0 > (1ULL << 33))	/* >1 s at any clock */
			goto absent;
	t1 = rdtsc();
	lapic = lapic_count_elapsed();
	outb(0x61, p61);

	*tsc_hz = (t1 - t0) * PIT_HZ / CAL_PIT_TICKS;
	lapic_hz = lapic * PIT_HZ / CAL_PIT_TICKS;
	return true;

absent:
	outb(0x61, p61);
	return false;
}

static u64 cpuid_tsc_hz(void)
{
	u32 a, b, c, d;

	cpuid(0x40000000, &a, &b, &c, &d);
	if (a >= 0x40000010 && a < 0x40010000) {
		cpuid(0x40000010, &a, &b, &c, &d);
		if (a)
			return (u64)a * 1000;
	}
	cpuid(0, &a, &b, &c, &d);
	if (a >= 0x15) {
		cpuid(0x15, &a, &b, &c, &d);
		if (a && b && c)
			return (u64)c * b / a;
	}
	return 0;
}

void tsc_delay_us(u64 us)
{
	u64 start = rdtsc(), ticks = us * guest.tsc_khz / 1000;

	while (rdtsc() - start < ticks)
		cpu_relax();
}

void time_calibrate(void)
{
	u64 tsc_hz, hb = guest.cfg.heartbeat_us;

	if (!pit_calibrate(&tsc_hz)) {
		tsc_hz = cpuid_tsc_hz();
		if (!tsc_hz)
			kfatal("cannot calibrate the TSC: no PIT channel 2 "
			       "and no TSC frequency in CPUID");
		guest.tsc_khz = tsc_hz / 1000;	/* for tsc_delay_us */
		lapic_count_start();
		tsc_delay_us(CAL_US);
		lapic_hz = lapic_count_elapsed() * 1000000 / CAL_US;
	}
	guest.tsc_khz = tsc_hz / 1000;
	if (!guest.tsc_khz || !lapic_hz)
		kfatal("TSC or LAPIC timer calibration failed");
	guest.tick_us = hb && hb < TICK_MAX_US ? hb : TICK_MAX_US;
}
