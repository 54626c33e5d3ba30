/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef FERRY_COMMON_CLOCK_H
#define FERRY_COMMON_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

/*
 * The one clock ferry measures time with (CLOCK_MONOTONIC, in ns), the
 * engine's sleeps, and the CLOCK_MONOTONIC instant a timed condition wait
 * (a condvar set to CLOCK_MONOTONIC) should end at for a clock_now_ns()
 * instant.
 *
 * The seam: the engine harness (tests/unit/harness) builds the engine with
 * FERRY_VIRTUAL_CLOCK and supplies these three itself, so that time moves
 * only when a test moves it and the policy's figures, the deadlines and the
 * downtime are the same on every run.  Nothing else defines it: in ferry
 * they are the inline calls below, unchanged in cost.
 */
#ifndef FERRY_VIRTUAL_CLOCK
static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void clock_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline struct timespec clock_abstime(uint64_t at_ns)
{
	return (struct timespec){(time_t)(at_ns / 1000000000u), (long)(at_ns % 1000000000u)};
}
#else
uint64_t clock_now_ns(void);
void clock_sleep_ns(uint64_t ns);
struct timespec clock_abstime(uint64_t at_ns);
#endif

#endif
