/*
 * Ring-3 side common to all workloads: start-up handshake, the boot and
 * start lines, progress lines, heartbeat, clock check and pacing.
 */
#include "exitcodes.h"
#include "serial.h"
#include "task.h"

#define MAX_LAG_MS 100

static u64 us_to_tsc(u64 us)
{
	return us * guest.tsc_khz / 1000;
}

static u64 t_ms(u64 now)
{
	return now > guest.boot_tsc ? (now - guest.boot_tsc) / guest.tsc_khz : 0;
}

static void update_next_event(struct task *t)
{
	t->next_event = UINT64_MAX;
	if (t->hb_period)
		t->next_event = t->next_hb;
	if (t->progress_period)
		t->next_event = MIN(t->next_event, t->next_progress);
}

static void progress_line(struct task *t, u64 now)
{
	say("progress cpu=%u t_ms=%lu work=%lu total=%lu", t->cpu, t_ms(now), t->work - t->reported,
	    t->work);
	t->reported = t->work;
}

/*
 * Deadlines advance by whole periods so they do not drift; after a
 * stall longer than a period (a paused VM) they restart from now
 * instead of firing a burst of catch-up output.
 */
void task_events(struct task *t, u64 now)
{
	if (t->hb_period && now >= t->next_hb) {
		port_out(HEARTBEAT_PORT, 'h');
		t->next_hb += t->hb_period;
		if (t->next_hb <= now)
			t->next_hb = now + t->hb_period;
	}
	if (t->progress_period && now >= t->next_progress) {
		progress_line(t, now);
		t->next_progress += t->progress_period;
		if (t->next_progress <= now)
			t->next_progress = now + t->progress_period;
	}
	update_next_event(t);
}

__noreturn void task_clock_fail(struct task *t, u64 now)
{
	say_and_exit(FERRY_EXIT_CLOCK, "clock: FAIL cpu=%u backwards=%lu", t->cpu,
		     t->last_tsc - now);
}

/*
 * Sleep in the kernel while more than one timer tick remains (the tick
 * wakes us before the deadline), then spin the rest for accuracy.
 */
void task_wait_deadline(struct task *t)
{
	for (;;) {
		u64 now = task_poll(t);

		if (now >= t->deadline) {
			if (now - t->deadline > t->max_lag)
				t->deadline = now;
			return;
		}
		if (t->deadline - now > t->tick_tsc)
			sys_halt();
		else
			cpu_relax();
	}
}

static void task_init(struct task *t, unsigned cpu)
{
	const struct config *cfg = &guest.cfg;
	u64 seed = mix64(guest.seed + cpu + 1);
	/*
	 * Check the clock at least every ~1 ms of paced work, and often
	 * enough at full speed that a page costing ~10 us (first write
	 * under dirty logging) cannot delay the heartbeat much.
	 */
	u64 burst_max = cpu == 0 && cfg->heartbeat_us ? BURST_MAX_HB : BURST_MAX;

	*t = (struct task){
	    .cpu = cpu,
	    .slice = (u8 *)(guest.ws_base + cpu * guest.slice_bytes),
	    .npages = guest.slice_bytes / PAGE_SIZE,
	    .high = (u8 *)(4ULL * 1024 * 1024 * 1024 + cpu * guest.high_slice),
	    .nhigh = guest.high_slice / PAGE_SIZE,
	    .hb_period = cpu == 0 ? us_to_tsc(cfg->heartbeat_us) : 0,
	    .progress_period = us_to_tsc(cfg->progress_us),
	    .tick_tsc = us_to_tsc(guest.tick_us),
	    .rate = cfg->rate,
	    .burst = cfg->rate ? MIN(MAX(cfg->rate / 1000, 1), burst_max) : burst_max,
	    .max_lag = us_to_tsc(MAX_LAG_MS * 1000),
	    .rng = seed ? seed : 1,
	    .next_event = UINT64_MAX, /* until task_start() */
	};
}

static void task_start(struct task *t)
{
	u64 now = task_poll(t);

	t->next_hb = now + t->hb_period;
	t->next_progress = now + t->progress_period;
	t->deadline = now;
	update_next_event(t);
	if (t->progress_period)
		progress_line(t, now);
}

static void print_boot_and_start(void)
{
	const struct config *cfg = &guest.cfg;
	char rate[24] = "max", high[32] = "";

	if (cfg->rate)
		fmt(rate, sizeof(rate), "%lu", cfg->rate);
	if (guest.high_slice)
		fmt(high, sizeof(high), " high=%lu", guest.high_slice * guest.ncpus);
	say("ferry-guest: boot cpus=%u mem=%luM tsc_khz=%lu cmdline=\"%s\"%s", guest.ncpus,
	    (guest.mem_bytes + (1 << 19)) >> 20, guest.tsc_khz, guest.cmdline,
	    guest.no_madt ? " madt=none" : "");
	say("ferry-guest: start workload=%s cpus=%u wss=%lu rate=%s "
	    "pattern=%s heartbeat_us=%lu progress_ms=%lu%s",
	    workload_names[cfg->workload], guest.ncpus, guest.slice_bytes * guest.ncpus, rate,
	    pattern_names[cfg->pattern], cfg->heartbeat_us, cfg->progress_us / 1000, high);
}

__noreturn void user_main(u64 cpu)
{
	struct task t;

	/* APs get here before CPU 0 has laid out the working set. */
	if (cpu == 0) {
		print_boot_and_start();
		__atomic_store_n(&guest.go, 1, __ATOMIC_RELEASE);
	} else {
		while (!__atomic_load_n(&guest.go, __ATOMIC_ACQUIRE))
			cpu_relax();
	}
	task_init(&t, (unsigned)cpu);
	task_start(&t);

	switch (guest.cfg.workload) {
	case WL_SPIN:
		run_spin(&t);
	case WL_DIRTY:
		run_dirty(&t);
	case WL_VERIFY:
		run_verify(&t);
	case WL_IDLE:
	default:
		run_idle(&t);
	}
}
