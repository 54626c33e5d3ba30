/*
 * Per-CPU ring-3 state shared by all workloads: the slice, the clock
 * check, heartbeat and progress deadlines, and rate pacing. Workloads
 * call task_poll() every so often (cheap unless a deadline passed) and
 * task_pace() after each burst of pages.
 */
#ifndef FERRY_GUEST_TASK_H
#define FERRY_GUEST_TASK_H

#include "guest.h"
#include "syscall.h"
#include "x86.h"

#define BURST_MAX    64 /* pages between clock checks at rate=max */
#define BURST_MAX_HB 16 /* the same on the heartbeat CPU */

struct task {
	unsigned cpu;
	u8 *slice; /* first byte of this CPU's slice */
	u64 npages;
	u8 *high; /* verify: this CPU's share of the high working set */
	u64 nhigh;

	u64 last_tsc;		/* clock check: must never decrease */
	u64 next_event;		/* earliest of the two deadlines below */
	u64 hb_period, next_hb; /* TSC ticks; heartbeat on CPU 0 only */
	u64 progress_period, next_progress;

	u64 work;     /* cumulative units of work */
	u64 reported; /* work at the last progress line */

	u64 tick_tsc;	   /* LAPIC timer period in TSC ticks */
	u64 burst;	   /* pages per pacing step */
	u64 rate;	   /* pages/s, 0 = max */
	u64 deadline;	   /* TSC by which the paced work is due */
	u64 deadline_frac; /* fractional tick, in units of 1/rate */
	u64 max_lag;	   /* backlog beyond this is forgotten */

	u64 rng; /* xorshift64 state, never 0 */
};

void task_events(struct task *t, u64 now);
__noreturn void task_clock_fail(struct task *t, u64 now);
void task_wait_deadline(struct task *t);

/* Read the TSC, check it, and handle heartbeat/progress when due. */
static inline u64 task_poll(struct task *t)
{
	u64 now = rdtsc();

	if (unlikely(now < t->last_tsc))
		task_clock_fail(t, now);
	t->last_tsc = now;
	if (unlikely(now >= t->next_event))
		task_events(t, now);
	return now;
}

/* Account for `pages` just done; wait if we are ahead of the rate. */
static inline void task_pace(struct task *t, u64 pages)
{
	u64 ticks;

	if (!t->rate)
		return;
	ticks = pages * guest.tsc_khz * 1000;
	t->deadline += ticks / t->rate;
	t->deadline_frac += ticks % t->rate;
	if (t->deadline_frac >= t->rate) {
		t->deadline_frac -= t->rate;
		t->deadline++;
	}
	task_wait_deadline(t);
}

static inline u64 rng_next(struct task *t)
{
	u64 x = t->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return t->rng = x;
}

/* Map the top 32 random bits onto [0, n) without a division. */
static inline u64 rng_below(u64 r, u64 n)
{
	return ((r >> 32) * n) >> 32;
}

static inline u64 mix64(u64 x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}

/* workloads.c, verify.c */
__noreturn void run_idle(struct task *t);
__noreturn void run_spin(struct task *t);
__noreturn void run_dirty(struct task *t);
__noreturn void run_verify(struct task *t);

#endif
