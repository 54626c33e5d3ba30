// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of auto-converge's rules (src/migration/policy/policy_throttle.c):
 * one decision a row, then a migration's pass ends in sequence.  The
 * random properties and the simulated heavy writer are in test_policy.c.
 *
 * The base decision point is test_policy.c's (1 GB/s, fits while remaining
 * <= 264 MB); 500 MB remaining is over the limit.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "migration/policy/policy.h"

#include "policy_test.h"

/* Pass 1 recorded with @rem remaining, @n pass ends without progress, and more. */
#define STALLED_AT(rem, n, ...)                                                          \
	{                                                                                \
		.recorded = 2, .passes = 1, .remaining = (rem), .prev_remaining = (rem), \
		.bandwidth = GB, .prev_bandwidth = GB, .anchor = (rem), .stalled = (n),  \
		__VA_ARGS__                                                              \
	}

struct row {
	const char *name;
	struct policy_params p;
	struct policy_input in;
	struct policy_history h;
	enum policy_action action;
	enum policy_reason reason;
	uint32_t throttle; /* the level the decision asks for */
	bool no_effect;
};

#define CONT	   POLICY_CONTINUE
#define SWITCH	   POLICY_SWITCHOVER
#define POST	   POLICY_POSTCOPY
#define ABORT	   POLICY_ABORT
#define THROTTLING POLICY_R_THROTTLING
#define OVER	   .remaining_bytes = 500 * MB

/* clang-format off */
static const struct row rows[] = {
	/* Starting. */
	{"not converging: the throttle starts at cpu-throttle-initial", PARAMS(AC_P),
	 INPUT(OVER), STALLED(500 * MB, 2), CONT, THROTTLING, 20},
	{"not converging, auto-converge off: reported only", PARAMS(), INPUT(OVER),
	 STALLED(500 * MB, 2), CONT, POLICY_R_NOT_CONVERGING, 0},
	{"over the limit but still shrinking: no throttle yet", PARAMS(AC_P), INPUT(OVER),
	 STALLED(500 * MB, 1), CONT, POLICY_R_LIMIT_NOT_MET, 0},
	{"not converging, post-copy usable: post-copy, not the throttle", PARAMS(AC_P, PC_P),
	 INPUT(OVER, PC_IN), STALLED(500 * MB, 2), POST, POLICY_R_NOT_CONVERGING, 0},
	{"post-copy allowed, the destination cannot: throttle", PARAMS(AC_P, PC_P), INPUT(OVER),
	 STALLED(500 * MB, 2), CONT, THROTTLING, 20},
	{"cpu-throttle-initial above max-cpu-throttle starts at the max",
	 PARAMS(AC_P, .throttle_initial = 80, .throttle_max = 50), INPUT(OVER),
	 STALLED(500 * MB, 2), CONT, THROTTLING, 50},
	{"fixed costs alone over the limit: no throttle helps", PARAMS(AC_P),
	 INPUT(OVER, .state_bytes = 400 * MB), STALLED(500 * MB, 2), CONT,
	 POLICY_R_LIMIT_UNREACHABLE, 0},

	/* Raising and holding. */
	{"throttled, a pass without progress: + cpu-throttle-increment", PARAMS(AC_P),
	 INPUT(OVER, .throttle_pct = 20), STALLED(500 * MB, 0), CONT, THROTTLING, 30},
	{"throttled, 12% progress: it helps, held", PARAMS(AC_P),
	 INPUT(.remaining_bytes = 440 * MB, .throttle_pct = 20), STALLED(500 * MB, 2), CONT,
	 POLICY_R_LIMIT_NOT_MET, 20},
	{"the increment stops at max-cpu-throttle", PARAMS(AC_P, .throttle_max = 50),
	 INPUT(OVER, .throttle_pct = 45), STALLED(500 * MB, 0), CONT, THROTTLING, 50},
	{"at the max, one pass without progress: held", PARAMS(AC_P),
	 INPUT(OVER, .throttle_pct = 99), STALLED(500 * MB, 0), CONT, POLICY_R_LIMIT_NOT_MET,
	 99},
	{"throttled and within the limit: switch over, level kept till the end", PARAMS(AC_P),
	 INPUT(.remaining_bytes = 2 * MB, .throttle_pct = 40), {}, SWITCH, POLICY_R_CONVERGED,
	 40},
	{"mid-pass: held", PARAMS(AC_P), INPUT(OVER, .mid_pass = true, .throttle_pct = 30),
	 STALLED(500 * MB, 2), CONT, POLICY_R_PASS_IN_PROGRESS, 30},
	{"guest recovering from a rollback: held", PARAMS(AC_P),
	 INPUT(OVER, .throttle_pct = 20, .failed_attempts = 1, .last_attempt_ns = 270 * MS,
	       .since_attempt_ns = 269 * MS),
	 STALLED(500 * MB, 2), CONT, POLICY_R_GUEST_RECOVERING, 20},

	/* tailslow: no more than what should bring the dirty rate to half the bandwidth. */
	{"tailslow: 80% CPU x 500/550 = 72%: +8", PARAMS(AC_P, .throttle_tailslow = true),
	 INPUT(OVER, .throttle_pct = 20, .dirty_rate = 550 * MB), STALLED(500 * MB, 0), CONT,
	 THROTTLING, 28},
	{"tailslow, far from the target: the full increment",
	 PARAMS(AC_P, .throttle_tailslow = true),
	 INPUT(OVER, .throttle_pct = 20, .dirty_rate = 10 * GB), STALLED(500 * MB, 0), CONT,
	 THROTTLING, 30},
	{"tailslow, already below the target: +1", PARAMS(AC_P, .throttle_tailslow = true),
	 INPUT(OVER, .throttle_pct = 20, .dirty_rate = 400 * MB), STALLED(500 * MB, 0), CONT,
	 THROTTLING, 21},

	/* Applied only while it helps. */
	{"at the max, stall-passes passes without progress: lifted", PARAMS(AC_P),
	 INPUT(OVER, .throttle_pct = 99), STALLED_AT(500 * MB, 4, .thr_pass = 1,
	 .thr_stalled_at_max = 2), CONT, POLICY_R_THROTTLE_INEFFECTIVE, 0},
	{"lifted as ineffective: not applied again", PARAMS(AC_P), INPUT(OVER),
	 STALLED_AT(500 * MB, 4, .thr_off = true), CONT, POLICY_R_NOT_CONVERGING, 0},
	{"the raise did not cut the dirty rate: said so, raised again", PARAMS(AC_P),
	 INPUT(OVER, .throttle_pct = 20, .dirty_rate = 95 * MB),
	 STALLED_AT(500 * MB, 0, .thr_pass = 1, .thr_raised_at = 1, .thr_rate_before = 100 * MB),
	 CONT, THROTTLING, 30, true},
	{"the raise cut the dirty rate by 20%: not said", PARAMS(AC_P),
	 INPUT(OVER, .throttle_pct = 20, .dirty_rate = 80 * MB),
	 STALLED_AT(500 * MB, 0, .thr_pass = 1, .thr_raised_at = 1, .thr_rate_before = 100 * MB),
	 CONT, THROTTLING, 30, false},

	/* Lifted. */
	{"abort lifts it", PARAMS(AC_P, .timeout_ns = 10 * SEC), INPUT(OVER, .throttle_pct = 50),
	 STALLED(500 * MB, 2), ABORT, POLICY_R_TIMEOUT_ABORT, 0},
	{"auto-converge turned off during the migration: lifted", PARAMS(),
	 INPUT(OVER, .throttle_pct = 30), STALLED(500 * MB, 2), CONT, POLICY_R_NOT_CONVERGING, 0},
	{"cpu-throttle-initial 0: bad parameters", PARAMS(AC_P, .throttle_initial = 0),
	 INPUT(OVER), {}, ABORT, POLICY_R_BAD_PARAMS, 0},
	{"max-cpu-throttle 100: bad parameters", PARAMS(AC_P, .throttle_max = 100), INPUT(OVER),
	 {}, ABORT, POLICY_R_BAD_PARAMS, 0},
	{"auto-converge off: its levels are not checked", PARAMS(.throttle_max = 100), INPUT(),
	 {}, CONT, POLICY_R_STILL_GAINING, 0},
};
/* clang-format on */

static void test_throttle_rows(void **state __attribute__((unused)))
{
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];
		struct policy_history h = r->h;
		struct policy_decision d;

		policy_decide(&r->p, &r->in, &h, &d);
		if (d.action != r->action || d.reason != r->reason ||
		    d.throttle_pct != r->throttle || d.throttle_no_effect != r->no_effect)
			fail_msg("%s: got %s %s throttle %u%%%s, want %s %s throttle %u%%%s",
				 r->name, policy_action_name(d.action),
				 policy_reason_name(d.reason), d.throttle_pct,
				 d.throttle_no_effect ? " no-effect" : "",
				 policy_action_name(r->action), policy_reason_name(r->reason),
				 r->throttle, r->no_effect ? " no-effect" : "");
	}
	print_message("[          ] %zu throttle rows\n", ARRAY_SIZE(rows));
}

/*
 * A migration's pass ends, the engine applying each level: a guest whose
 * remaining set stays at 500 MB until the throttle reaches 40 %, then
 * shrinks by a quarter a pass until a switchover fits.
 */
static void test_throttle_sequence(void **state __attribute__((unused)))
{
	struct policy_params p = PARAMS(AC_P);
	struct policy_input in = INPUT(OVER, .passes = 0, .dirty_rate = 400 * MB);
	struct policy_history h;
	struct policy_decision d;
	static const struct {
		enum policy_reason reason;
		uint32_t throttle;
		bool no_effect;
	} want[] = {
	    {POLICY_R_LIMIT_NOT_MET, 0, false},	   /* pass 1: the anchor */
	    {POLICY_R_LIMIT_NOT_MET, 0, false},	   /* 2, 3: no progress */
	    {POLICY_R_LIMIT_NOT_MET, 0, false},	   /*  */
	    {POLICY_R_THROTTLING, 20, false},	   /* 4: not converging */
	    {POLICY_R_THROTTLING, 30, true},	   /* 5: 20 % did nothing */
	    {POLICY_R_THROTTLING, 40, true},	   /* 6: nor 30 % */
	    {POLICY_R_LIMIT_NOT_MET, 40, false},   /* 7: 375 MB, shrinking: held */
	    {POLICY_R_LIMIT_NOT_MET, 40, false},   /* 8: 281 MB */
	    {POLICY_R_NO_FURTHER_GAIN, 40, false}, /* 9: 210 MB fits; the engine lifts it */
	};
	char buf[512];

	policy_history_init(&h);
	for (unsigned i = 0; i < ARRAY_SIZE(want); i++) {
		in.passes = i + 1;
		if (in.throttle_pct >= 40) {
			in.remaining_bytes = in.remaining_bytes * 3 / 4;
			in.dirty_rate = in.dirty_rate * 3 / 4;
		}
		policy_decide(&p, &in, &h, &d);
		/* Asked twice at the same pass end: the same answer, no double count
		 * (switches counts every switch decision, by design). */
		struct policy_history h2 = h;
		struct policy_decision d2;
		policy_decide(&p, &in, &h2, &d2);
		h2.switches = h.switches;
		assert_memory_equal(&h, &h2, sizeof(h));
		assert_memory_equal(&d, &d2, sizeof(d));
		if (d.reason != want[i].reason || d.throttle_pct != want[i].throttle ||
		    d.throttle_no_effect != want[i].no_effect)
			fail_msg("pass %u: got %s %u%%%s, want %s %u%%%s", in.passes,
				 policy_reason_name(d.reason), d.throttle_pct,
				 d.throttle_no_effect ? " no-effect" : "",
				 policy_reason_name(want[i].reason), want[i].throttle,
				 want[i].no_effect ? " no-effect" : "");
		policy_describe(&p, &d, buf, sizeof(buf));
		if (d.throttle_pct != in.throttle_pct)
			assert_non_null(strstr(buf, "CPU throttle"));
		if (i == 4)
			assert_non_null(strstr(buf, ", CPU throttle 20% -> 30% (the last raise did "
						    "not reduce the dirty rate)"));
		in.throttle_pct = d.throttle_pct; /* the engine applies it */
	}
	assert_int_equal(d.action, POLICY_SWITCHOVER);
	assert_non_null(strstr(buf, ", CPU throttle 40%"));

	/* The lift reads as one. */
	in.throttle_pct = 40;
	d = (struct policy_decision){.prev_throttle_pct = 40, .throttle_pct = 0};
	policy_describe(&p, &d, buf, sizeof(buf));
	assert_non_null(strstr(buf, ", CPU throttle lifted (was 40%)"));
}

static void test_throttle_params(void **state __attribute__((unused)))
{
	struct policy_params p;
	struct ferr err = FERR_INIT;

	policy_params_default(&p);
	assert_false(p.auto_converge);
	assert_int_equal(p.throttle_initial, 20);
	assert_int_equal(p.throttle_increment, 10);
	assert_int_equal(p.throttle_max, 99);
	assert_false(p.throttle_tailslow);
	p.auto_converge = true;
	assert_int_equal(policy_params_check(&p, &err), 0);
	p.throttle_increment = 0;
	assert_int_equal(policy_params_check(&p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cpu-throttle-increment"));
	p.throttle_increment = 10;
	p.throttle_initial = 100;
	ferr_clear(&err);
	assert_int_equal(policy_params_check(&p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cpu-throttle-initial"));
	assert_string_equal(policy_reason_name(POLICY_R_THROTTLING), "throttling");
	assert_string_equal(policy_reason_name(POLICY_R_THROTTLE_INEFFECTIVE),
			    "throttle-ineffective");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_throttle_rows),
	    cmocka_unit_test(test_throttle_sequence),
	    cmocka_unit_test(test_throttle_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
