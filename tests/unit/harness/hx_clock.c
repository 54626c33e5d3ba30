// SPDX-License-Identifier: GPL-2.0-only
/*
 * The virtual clock behind common/clock.h's FERRY_VIRTUAL_CLOCK seam.
 * Time starts at 1000 s (0 means "none" in many of the engine's fields)
 * and moves only by hx_clock_advance(): the fake VM's costs, the engine's
 * sleeps (a sleep is time passing, not a wait), faults, and the opt-in
 * idle advance.  Real time only bounds how often a waiter looks again.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#include <time.h>

#include "common/clock.h"
#include "harness.h"

#define HX_CLOCK_BASE (1000 * HX_S)
#define HX_QUANTUM_NS (1 * HX_MS) /* a timed wait looks at the virtual clock this often */

static _Atomic uint64_t hx_now = HX_CLOCK_BASE;
static _Atomic unsigned hx_idle_ms;

/*
 * Idle advance: waiters with a virtual deadline say so here (at every look;
 * hx_clock_done() when a wait ends), and once the harness has been quiet
 * for the idle time (no byte moved, no wait begun) and no other thread of
 * the process is runnable, the clock moves to the earliest deadline still
 * ahead, never past it: the waiter that would wake first in a real run
 * wakes first here too.  A deadline left by a wait that ended without
 * saying so costs one more idle period at most.
 */
#define HX_WAITERS 64

static _Atomic uint64_t hx_waiter_at[HX_WAITERS];
static _Atomic unsigned hx_nwaiters;
static _Atomic uint64_t hx_activity; /* real time of the last byte moved */
static __thread int hx_slot = -1;
static __thread unsigned hx_slot_gen;
static _Atomic unsigned hx_gen;

void hx_clock_touch(void)
{
	atomic_store(&hx_activity, hx_real_ns());
}

uint64_t hx_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * HX_S + (uint64_t)ts.tv_nsec;
}

void hx_clock_reset(void)
{
	atomic_store(&hx_now, HX_CLOCK_BASE);
	atomic_store(&hx_idle_ms, 0);
	atomic_fetch_add(&hx_gen, 1);
	atomic_store(&hx_nwaiters, 0);
	for (unsigned i = 0; i < HX_WAITERS; i++)
		atomic_store(&hx_waiter_at[i], 0);
}

void hx_clock_advance(uint64_t ns)
{
	atomic_fetch_add(&hx_now, ns);
}

void hx_clock_idle_advance(unsigned real_ms)
{
	atomic_store(&hx_idle_ms, real_ms);
}

void hx_clock_reach(uint64_t at)
{
	uint64_t now = atomic_load(&hx_now);

	while (now < at && !atomic_compare_exchange_weak(&hx_now, &now, at))
		;
}

/* Every other thread of the process sleeps (blocked in a wait), none runnable. */
static bool hx_others_asleep(void)
{
	char path[300], buf[512];
	pid_t self = gettid();
	struct dirent *de;
	bool asleep = true;
	DIR *d = opendir("/proc/self/task");

	if (!d)
		return false;
	while (asleep && (de = readdir(d))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue; /* it ended */
		buf[n] = 0;
		const char *st = strrchr(buf, ')');
		asleep = !st || st[2] != 'R';
	}
	closedir(d);
	return asleep;
}

void hx_clock_done(void)
{
	if (hx_slot >= 0 && hx_slot_gen == atomic_load(&hx_gen))
		atomic_store(&hx_waiter_at[hx_slot], 0);
}

bool hx_clock_passed(uint64_t at_ns, uint64_t since_real_ns)
{
	unsigned idle = atomic_load(&hx_idle_ms);
	uint64_t real = hx_real_ns(), now = clock_now_ns(), target = UINT64_MAX;

	if (hx_slot < 0 || hx_slot_gen != atomic_load(&hx_gen)) {
		hx_slot = (int)(atomic_fetch_add(&hx_nwaiters, 1) % HX_WAITERS);
		hx_slot_gen = atomic_load(&hx_gen);
	}
	atomic_store(&hx_waiter_at[hx_slot], at_ns);
	if (now >= at_ns)
		return true;
	uint64_t quiet = atomic_load(&hx_activity);
	if (since_real_ns > quiet)
		quiet = since_real_ns;
	if (!idle || real - quiet < idle * HX_MS || !hx_others_asleep())
		return false;
	for (unsigned i = 0; i < HX_WAITERS; i++) {
		uint64_t at = atomic_load(&hx_waiter_at[i]);
		if (at > now && at < target)
			target = at;
	}
	hx_clock_reach(target);
	hx_clock_touch();
	return clock_now_ns() >= at_ns;
}

uint64_t clock_now_ns(void)
{
	return atomic_load(&hx_now);
}

void clock_sleep_ns(uint64_t ns)
{
	hx_clock_advance(ns);
}

/*
 * A timed wait until virtual @at_ns: it wakes within a quantum of real
 * time so that its caller looks at the virtual clock again.  The same
 * @at_ns asked again by the same thread is the same wait, which idle
 * advance may end.
 */
struct timespec clock_abstime(uint64_t at_ns)
{
	static __thread uint64_t wait_at, wait_since;
	uint64_t real = hx_real_ns();

	if (wait_at != at_ns) {
		wait_at = at_ns;
		wait_since = real;
	}
	if (!hx_clock_passed(at_ns, wait_since))
		real += HX_QUANTUM_NS;
	return (struct timespec){(time_t)(real / HX_S), (long)(real % HX_S)};
}
