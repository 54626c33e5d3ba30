/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared by the policy's unit tests (test_policy.c, test_policy_throttle.c):
 * units, and decision points built from defaults with fields overridden.
 */
#ifndef FERRY_TESTS_POLICY_TEST_H
#define FERRY_TESTS_POLICY_TEST_H

#include "migration/policy/policy.h"

/*
 * The tables below start from defaults and override fields, and leave the
 * trailing expectations (forced, not converging, prediction) out when they
 * are false / not checked: both intended.
 */
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define US  1000ull
#define MS  1000000ull
#define SEC 1000000000ull
#define MB  1000000ull
#define GB  1000000000ull
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define INF POLICY_NS_INF

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define PARAMS(...)                                                                             \
	{                                                                                       \
		.downtime_limit_ns = POLICY_DEFAULT_DOWNTIME_LIMIT_NS,                          \
		.margin_pct = POLICY_DEFAULT_MARGIN_PCT, .gain_pct = POLICY_DEFAULT_GAIN_PCT,   \
		.stall_passes = POLICY_DEFAULT_STALL_PASSES,                                    \
		.stall_pct = POLICY_DEFAULT_STALL_PCT, .max_passes = POLICY_DEFAULT_MAX_PASSES, \
		.max_attempts = POLICY_DEFAULT_MAX_ATTEMPTS,                                    \
		.postcopy_after_passes = POLICY_PASSES_OFF, __VA_ARGS__                         \
	}

#define INPUT(...)                                                                           \
	{                                                                                    \
		.passes = 2, .elapsed_ns = 10 * SEC, .bandwidth = GB, .dirty_rate = 10 * MB, \
		.remaining_bytes = 100 * MB, .state_bytes = 1 * MB, .rtt_ns = 200 * US,      \
		.resume_ns = 4800 * US, __VA_ARGS__                                          \
	}

/* Pass 1 recorded with @rem remaining, @n pass ends already without progress. */
#define STALLED(rem, n)                                                                  \
	{                                                                                \
		.recorded = 2, .passes = 1, .remaining = (rem), .prev_remaining = (rem), \
		.bandwidth = GB, .prev_bandwidth = GB, .anchor = (rem), .stalled = (n)   \
	}

/* Post-copy allowed by the operator and possible on the destination. */
#define PC_P  .postcopy = true
#define PC_IN .postcopy_available = true

/* Auto-converge on, QEMU's default levels. */
#define AC_P                                                                        \
	.auto_converge = true, .throttle_initial = POLICY_DEFAULT_THROTTLE_INITIAL, \
	.throttle_increment = POLICY_DEFAULT_THROTTLE_INCREMENT,                    \
	.throttle_max = POLICY_DEFAULT_THROTTLE_MAX

#endif
