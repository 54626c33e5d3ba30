// SPDX-License-Identifier: GPL-2.0-only
/*
 * The virtual clock behind common/clock.h's FERRY_VIRTUAL_CLOCK seam.
 * Time starts at 1000 s (0 means "none" in many of the engine's fields)
 * and moves only by hx_clock_advance(): the fake VM's costs, the engine's
 * sleeps (a sleep is time passing, not a wait), faults, and the opt-in
 * idle advance.  Real time only bounds how often a waiter looks again.
 */
#include <stdatomic.h>
#include <time.h>

#include "common/clock.h"
#include "harness.h"

#define HX_CLOCK_BASE (1000 * HX_S)
#define HX_QUANTUM_NS (1 * HX_MS) /* a timed wait looks at the virtual clock this often */

static _Atomic uint64_t hx_now = HX_CLOCK_BASE;
static _Atomic unsigned hx_idle_ms;

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
}

void hx_clock_advance(uint64_t ns)
{
	atomic_fetch_add(&hx_now, ns);
}

void hx_clock_idle_advance(unsigned real_ms)
{
	atomic_store(&hx_idle_ms, real_ms);
}

/* Move the clock to @at unless it is there already. */
static void hx_clock_reach(uint64_t at)
{
	uint64_t now = atomic_load(&hx_now);

	while (now < at && !atomic_compare_exchange_weak(&hx_now, &now, at))
		;
}

bool hx_clock_passed(uint64_t at_ns, uint64_t since_real_ns)
{
	unsigned idle = atomic_load(&hx_idle_ms);

	if (clock_now_ns() >= at_ns)
		return true;
	if (idle && hx_real_ns() - since_real_ns >= idle * HX_MS) {
		hx_clock_reach(at_ns);
		return true;
	}
	return false;
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
