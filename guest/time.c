/*
 * One-time calibration of the TSC and the LAPIC timer against the PIT.
 * PIT channel 2, gated on through port 0x61, counts down in mode 0; its
 * count is read back (latch command) at the start and after ~10 ms,
 * each read bracketed by two TSC reads. The LAPIC timer counts down
 * freely over the same window.
 *
 * The host can preempt a vCPU at any moment; that stretches a bracket,
 * so a sample is the narrowest of a few tries and the bracket widths
 * give the uncertainty of an attempt. An attempt is accepted below
 * CAL_MAX_ERROR, else retried, and the best of CAL_ATTEMPTS is kept.
 * Reading counts (KVM handles ports 0x40-0x43 in the kernel) rather
 * than polling OUT2 in port 0x61 (which QEMU computes in user space)
 * keeps every timestamp in one clock domain.
 *
 * If the PIT does not respond, the TSC frequency comes from CPUID
 * (hypervisor leaf 0x40000010, then leaf 0x15) and the LAPIC timer is
 * measured against the TSC.
 */
#include "kernel.h"
#include "x86.h"

#define PIT_HZ		1193182
#define CAL_PIT_TICKS	11932 /* 10.0002 ms */
#define CAL_US		10000
#define CAL_ATTEMPTS	5
#define CAL_TRIES	3    /* reads per sample */
#define CAL_STUCK_POLLS 1000 /* unchanged count: no PIT */
/*
 * Accept an attempt whose worst-case error is below 1%: under PVM a
 * count read takes ~15 us, so an undisturbed 10 ms window has a worst
 * case of ~0.3% (the midpoint estimate is far better, both brackets
 * have the same shape); a host preemption shows up as several percent.
 */
#define CAL_MAX_ERROR  100
#define PORT61_GATE2   0x01
#define PORT61_SPEAKER 0x02
#define TICK_MAX_US    10000

enum attempt { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_NO_PIT };

u64 lapic_hz;

struct cal {
	u64 tsc;	 /* TSC ticks ... */
	u64 pit;	 /* ... over this many PIT ticks */
	u64 uncertainty; /* sum of both bracket widths */
	u64 lapic;	 /* LAPIC timer ticks ... */
	u64 lapic_tsc;	 /* ... over this many TSC ticks */
};

struct pit_sample {
	u64 tsc; /* midpoint of the bracket */
	u64 width;
	u16 count;
};

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

static u16 pit2_count(void)
{
	u8 lo, hi;

	outb(0x43, 0x80); /* latch channel 2 */
	lo = inb(0x42);
	hi = inb(0x42);
	return (u16)(lo | hi << 8);
}

static void pit_sample(struct pit_sample *s)
{
	s->width = UINT64_MAX;
	for (int i = 0; i < CAL_TRIES; i++) {
		u64 a = rdtsc();
		u16 count = pit2_count();
		u64 b = rdtsc();

		if (b - a < s->width) {
			s->width = b - a;
			s->tsc = a + (b - a) / 2;
			s->count = count;
		}
	}
}

static enum attempt pit_attempt(u8 p61, struct cal *c)
{
	struct pit_sample a, b;
	u64 l0, l1, l2, l3, deadline;
	unsigned same = 0;
	u16 now, prev;

	outb(0x61, p61 | PORT61_GATE2);
	outb(0x43, 0xb0); /* ch2, lo/hi byte, mode 0, binary */
	outb(0x42, 0xff);
	outb(0x42, 0xff); /* 0xffff: ~55 ms until it wraps */
	l0 = rdtsc();
	lapic_count_start();
	l1 = rdtsc();
	pit_sample(&a);

	/* A missing PIT reads a constant 0xffff; a real one moves. */
	deadline = a.tsc + (1ULL << 33); /* >1 s at any clock */
	prev = a.count;
	do {
		now = pit2_count();
		if (now > a.count || rdtsc() > deadline)
			return ATTEMPT_RETRY; /* wrapped: we were away */
		same = now == prev ? same + 1 : 0;
		if (same == CAL_STUCK_POLLS)
			return ATTEMPT_NO_PIT;
		prev = now;
	} while (a.count - now < CAL_PIT_TICKS);

	pit_sample(&b);
	l2 = rdtsc();
	c->lapic = lapic_count_elapsed();
	l3 = rdtsc();
	if (b.count > a.count)
		return ATTEMPT_RETRY;

	c->tsc = b.tsc - a.tsc;
	c->pit = a.count - b.count;
	c->uncertainty = a.width + b.width;
	c->lapic_tsc = (l2 + l3) / 2 - (l0 + l1) / 2;
	return ATTEMPT_OK;
}

static bool pit_calibrate(u64 *tsc_hz)
{
	u8 p61 = inb(0x61) & ~(PORT61_GATE2 | PORT61_SPEAKER);
	struct cal best = {0}, c;
	enum attempt r = ATTEMPT_RETRY;

	for (int i = 0; i < CAL_ATTEMPTS; i++) {
		r = pit_attempt(p61, &c);
		if (r == ATTEMPT_NO_PIT)
			break;
		/* keep the smallest relative uncertainty */
		if (r == ATTEMPT_OK &&
		    (!best.tsc || c.uncertainty * best.tsc < best.uncertainty * c.tsc))
			best = c;
		if (best.tsc && best.uncertainty * CAL_MAX_ERROR < best.tsc)
			break;
	}
	outb(0x61, p61);
	if (!best.tsc)
		return false;

	*tsc_hz = best.tsc * PIT_HZ / best.pit;
	lapic_hz = best.lapic * *tsc_hz / best.lapic_tsc;
	return true;
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
		u64 t0;

		tsc_hz = cpuid_tsc_hz();
		if (!tsc_hz)
			kfatal("cannot calibrate the TSC: no PIT channel 2 "
			       "and no TSC frequency in CPUID");
		guest.tsc_khz = tsc_hz / 1000; /* for tsc_delay_us */
		t0 = rdtsc();
		lapic_count_start();
		tsc_delay_us(CAL_US);
		lapic_hz = lapic_count_elapsed() * tsc_hz / (rdtsc() - t0);
	}
	guest.tsc_khz = tsc_hz / 1000;
	if (!guest.tsc_khz || !lapic_hz)
		kfatal("TSC or LAPIC timer calibration failed");
	guest.tick_us = hb && hb < TICK_MAX_US ? hb : TICK_MAX_US;
}
