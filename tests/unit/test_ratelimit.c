// SPDX-License-Identifier: GPL-2.0-only
/* The bandwidth cap: the average never exceeds the rate, bursts are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "migration/engine/ratelimit.h"

#define MS 1000000ull
#define S  1000000000ull

static void test_unlimited_never_waits(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 0, 1 << 20, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_consume(&rl, 1 << 30, (uint64_t)i), 0);
}

/* Send as fast as allowed for 10 s of simulated time: the average stays at the rate. */
static void test_average_holds_the_rate(void **state)
{
	static const uint64_t rates[] = {1 << 20, 20ull << 20, 300ull << 20, 5ull << 30};
	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct ratelimit rl;
		uint64_t now = 0, sent = 0, burst = 2 << 20;

		ratelimit_init(&rl, rates[r], burst, 0);
		while (now < 10 * S) {
			uint64_t wait = ratelimit_consume(&rl, 1 << 20, now);
			sent += 1 << 20;
			now += wait + 1000; /* sending itself takes 1 us */
		}
		/* at most the rate over the time, plus one burst */
		assert_true(sent <= rates[r] * 10 + burst + (1 << 20));
		/* and not much less: the cap is a cap, not a brake */
		assert_true(sent >= rates[r] * 10 * 95 / 100);
	}
}

static void test_idle_time_does_not_accumulate_beyond_burst(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 1 << 20, 1 << 20, 0);
	/* an hour idle, then 10 MiB at once: only one burst is free */
	assert_int_equal(ratelimit_consume(&rl, 1 << 20, 3600 * S), 0);
	uint64_t wait = ratelimit_consume(&rl, 9 << 20, 3600 * S);
	assert_true(wait >= 9 * S - MS && wait <= 9 * S + MS);
}

static void test_rate_change_applies(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 1 << 20, 1 << 20, 0);
	ratelimit_consume(&rl, 1 << 20, 0);
	ratelimit_set_rate(&rl, 0, 0); /* lifted */
	assert_int_equal(ratelimit_consume(&rl, 100 << 20, 1), 0);
	ratelimit_set_rate(&rl, 2 << 20, 1);
	uint64_t wait = ratelimit_consume(&rl, 4 << 20, 1);
	assert_true(wait >= S && wait <= 2 * S); /* 4 MiB at 2 MiB/s, less the burst */
}

static void test_huge_values_do_not_overflow(void **state)
{
	struct ratelimit rl;

	ratelimit_init(&rl, UINT64_MAX / 2, UINT64_MAX / 4, 0);
	assert_int_equal(ratelimit_consume(&rl, UINT64_MAX / 8, UINT64_MAX / 2), 0);
	ratelimit_init(&rl, 1, 1, 0);
	assert_true(ratelimit_consume(&rl, UINT64_MAX / 1000000000u, 0) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unlimited_never_waits),
	    cmocka_unit_test(test_average_holds_the_rate),
	    cmocka_unit_test(test_idle_time_does_not_accumulate_beyond_burst),
	    cmocka_unit_test(test_rate_change_applies),
	    cmocka_unit_test(test_huge_values_do_not_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
