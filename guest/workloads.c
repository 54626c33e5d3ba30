/*
 * The simple workloads.
 *   idle:  halt until the next interrupt; work = wakeups.
 *   spin:  count in a register, touch no memory; work = iterations.
 *   dirty: write one 8-byte word per page; work = pages written.  With
 *          sweeps=N, stop after N * slice pages and idle: memory written,
 *          then quiet (the case a migration benchmark wants).
 */
#include "task.h"

#define SPIN_CHUNK	(1u << 16) /* iterations between clock checks */
#define HOT_PERMILLE_16 58982	   /* 0.9 * 65536 */

__noreturn void run_idle(struct task *t)
{
	for (;;) {
		sys_halt();
		t->work++;
		task_poll(t);
	}
}

__noreturn void run_spin(struct task *t)
{
	for (;;) {
		/* The empty asm keeps the loop from being folded away. */
		for (u32 i = SPIN_CHUNK; i; i--)
			asm volatile("" : "+r"(i));
		t->work += SPIN_CHUNK;
		task_poll(t);
	}
}

/* random: uniform over the slice. hotcold: 90% to the first 10%. */
static inline u64 next_page(struct task *t, u64 *seq, u64 hot)
{
	u64 r;

	switch (guest.cfg.pattern) {
	case PAT_RANDOM:
		return rng_below(rng_next(t), t->npages);
	case PAT_HOTCOLD:
		r = rng_next(t);
		if ((r & 0xffff) < HOT_PERMILLE_16 || hot == t->npages)
			return rng_below(r, hot);
		return hot + rng_below(r, t->npages - hot);
	case PAT_SEQ:
	default:
		if (++*seq == t->npages)
			*seq = 0;
		return *seq;
	}
}

__noreturn void run_dirty(struct task *t)
{
	u64 seq = t->npages - 1, hot = MAX(t->npages / 10, 1);

	for (;;) {
		for (u64 i = 0; i < t->burst; i++) {
			u64 page = next_page(t, &seq, hot);

			*(volatile u64 *)(t->slice + page * PAGE_SIZE) = t->work + i;
		}
		t->work += t->burst;
		task_poll(t);
		task_pace(t, t->burst);
		if (guest.cfg.sweeps && t->work >= guest.cfg.sweeps * t->npages)
			run_idle(t);
	}
}
