// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the migration policy (src/migration/policy/policy.c).
 *
 * Most figures use a 1 GB/s link, where one byte takes one nanosecond, so
 * that the expected predictions can be checked by eye.  The base decision
 * point: pass 2 done, 100 MB remaining, 1 MB of state, 200 us round trip,
 * 4.8 ms resume: fixed costs 6 ms, prediction 106 ms, margin 30 ms, and a
 * switchover fits while remaining <= 264 MB.
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

#include "common/err.h"
#include "migration/policy/policy.h"

#include "policy_test.h"

struct row {
	const char *name;
	struct policy_params p;
	struct policy_input in;
	struct policy_history h;
	enum policy_action action;
	enum policy_reason reason;
	bool forced;
	bool not_converging;
	uint64_t pred; /* expected predicted_ns; 0 = not checked */
};

#define CONT   POLICY_CONTINUE
#define SWITCH POLICY_SWITCHOVER
#define POST   POLICY_POSTCOPY
#define ABORT  POLICY_ABORT

/* One scenario a row; kept by hand, clang-format would put each field on a line. */
/* clang-format off */
static const struct row rows[] = {
	/* Rule 1: nothing before a measurement; the prediction decides. */
	{"first pass, nothing measured", PARAMS(),
	 INPUT(.passes = 0, .mid_pass = true, .bandwidth = 0, .dirty_rate = 0,
	       .remaining_bytes = 4 * GB, .pass_left_bytes = 3 * GB), {}, CONT, POLICY_R_FIRST_PASS,
	 false, false, INF},
	{"first pass, bandwidth so far, tiny guest: still no switchover", PARAMS(),
	 INPUT(.passes = 0, .mid_pass = true, .remaining_bytes = 1 * MB), {}, CONT,
	 POLICY_R_FIRST_PASS},
	{"called before the first pass", PARAMS(), INPUT(.passes = 0, .bandwidth = 0), {}, CONT,
	 POLICY_R_FIRST_PASS},
	{"zero bandwidth measured after a pass", PARAMS(), INPUT(.bandwidth = 0), {}, CONT,
	 POLICY_R_NO_BANDWIDTH, false, false, INF},
	{"nothing left: converged", PARAMS(), INPUT(.remaining_bytes = 0), {}, SWITCH,
	 POLICY_R_CONVERGED, false, false, 6 * MS},
	{"limit exactly met (270 + 30 = 300 ms): switch", PARAMS(),
	 INPUT(.remaining_bytes = 264 * MB, .dirty_rate = GB), {}, SWITCH, POLICY_R_NO_FURTHER_GAIN,
	 false, false, 270 * MS},
	{"1 ns over the limit: continue", PARAMS(),
	 INPUT(.remaining_bytes = 264 * MB + 1, .dirty_rate = GB), {}, CONT, POLICY_R_LIMIT_NOT_MET,
	 false, false, 270 * MS + 1},
	{"limit exactly met, margin 0", PARAMS(.margin_pct = 0),
	 INPUT(.remaining_bytes = 294200000, .dirty_rate = GB, .rtt_ns = 0), {}, SWITCH,
	 POLICY_R_NO_FURTHER_GAIN, false, false, 300 * MS},
	{"margin 0 but never below rtt/2 (the GO flight)", PARAMS(.margin_pct = 0),
	 INPUT(.remaining_bytes = 294 * MB, .dirty_rate = GB), {}, CONT, POLICY_R_LIMIT_NOT_MET,
	 false, false, 300 * MS},

	/* Rule 2: the smallest downtime reachable, within a pass budget. */
	{"limit met, another pass cuts 93%: continue", PARAMS(), INPUT(), {}, CONT,
	 POLICY_R_STILL_GAINING, false, false, 106 * MS},
	{"limit met, dirtying at 75% of bandwidth: no further gain", PARAMS(),
	 INPUT(.dirty_rate = 750 * MB), {}, SWITCH, POLICY_R_NO_FURTHER_GAIN},
	{"no fixed costs, rho 0.6875: gain 31.25% > 30%", PARAMS(),
	 INPUT(.dirty_rate = 687500000, .state_bytes = 0, .rtt_ns = 0, .resume_ns = 0), {}, CONT,
	 POLICY_R_STILL_GAINING},
	{"no fixed costs, rho 0.75: gain 25% <= 30%", PARAMS(),
	 INPUT(.dirty_rate = 750 * MB, .state_bytes = 0, .rtt_ns = 0, .resume_ns = 0), {}, SWITCH,
	 POLICY_R_NO_FURTHER_GAIN},
	{"RAM is 25% of the downtime: converged", PARAMS(), INPUT(.remaining_bytes = 2 * MB), {},
	 SWITCH, POLICY_R_CONVERGED, false, false, 8 * MS},
	{"observed shrink (100/110) overrides the optimistic model", PARAMS(), INPUT(),
	 {.recorded = 1, .passes = 1, .remaining = 110 * MB, .bandwidth = GB, .anchor = 110 * MB},
	 SWITCH, POLICY_R_NO_FURTHER_GAIN},
	{"pass budget spent while still gaining: switch", PARAMS(), INPUT(.passes = 30), {}, SWITCH,
	 POLICY_R_MAX_PASSES},
	{"pass budget spent, gain small anyway: converged", PARAMS(),
	 INPUT(.passes = 30, .remaining_bytes = 0), {}, SWITCH, POLICY_R_CONVERGED},
	{"pass budget spent, over the limit: not converging", PARAMS(),
	 INPUT(.passes = 30, .remaining_bytes = 500 * MB), {}, CONT, POLICY_R_NOT_CONVERGING, false,
	 true},
	{"pass budget spent, over the limit, post-copy", PARAMS(PC_P),
	 INPUT(.passes = 30, .remaining_bytes = 500 * MB, PC_IN), {}, POST, POLICY_R_NOT_CONVERGING,
	 false, true, 6 * MS},
	{"gain-pct 100: switch at the first fit", PARAMS(.gain_pct = 100), INPUT(), {}, SWITCH,
	 POLICY_R_CONVERGED},
	{"gain-pct 0: any gain is worth a pass", PARAMS(.gain_pct = 0),
	 INPUT(.dirty_rate = 990 * MB), {}, CONT, POLICY_R_STILL_GAINING},
	{"gain-pct 0, rho 1: no further gain", PARAMS(.gain_pct = 0), INPUT(.dirty_rate = GB), {},
	 SWITCH, POLICY_R_NO_FURTHER_GAIN},

	/* Rule 3: non-convergence. */
	{"3 passes without progress, no post-copy: continue, reported", PARAMS(),
	 INPUT(.remaining_bytes = 500 * MB), STALLED(500 * MB, 2), CONT, POLICY_R_NOT_CONVERGING,
	 false, true},
	{"3 passes without progress, post-copy", PARAMS(PC_P),
	 INPUT(.remaining_bytes = 500 * MB, PC_IN), STALLED(500 * MB, 2), POST,
	 POLICY_R_NOT_CONVERGING, false, true, 6 * MS},
	{"3 passes without progress, destination cannot post-copy", PARAMS(PC_P),
	 INPUT(.remaining_bytes = 500 * MB), STALLED(500 * MB, 2), CONT, POLICY_R_NOT_CONVERGING,
	 false, true},
	{"2 passes without progress are not enough", PARAMS(), INPUT(.remaining_bytes = 500 * MB),
	 STALLED(500 * MB, 1), CONT, POLICY_R_LIMIT_NOT_MET},
	{"a 12% decrease resets the count", PARAMS(), INPUT(.remaining_bytes = 440 * MB),
	 STALLED(500 * MB, 2), CONT, POLICY_R_LIMIT_NOT_MET},
	{"an 8% decrease is no progress", PARAMS(), INPUT(.remaining_bytes = 460 * MB),
	 STALLED(500 * MB, 2), CONT, POLICY_R_NOT_CONVERGING, false, true},
	{"growth is no progress", PARAMS(), INPUT(.remaining_bytes = 600 * MB),
	 STALLED(500 * MB, 2), CONT, POLICY_R_NOT_CONVERGING, false, true},
	{"stalled but within the limit: switch", PARAMS(), INPUT(.remaining_bytes = 200 * MB),
	 STALLED(200 * MB, 2), SWITCH, POLICY_R_NO_FURTHER_GAIN},
	{"stall-passes 1", PARAMS(.stall_passes = 1), INPUT(.remaining_bytes = 500 * MB),
	 STALLED(500 * MB, 0), CONT, POLICY_R_NOT_CONVERGING, false, true},

	/* Fixed costs alone over the limit. */
	{"state alone exceeds the limit, even for post-copy", PARAMS(PC_P),
	 INPUT(.remaining_bytes = 0, .state_bytes = 400 * MB, PC_IN), {}, CONT,
	 POLICY_R_LIMIT_UNREACHABLE},
	{"resume estimate exceeds the limit", PARAMS(), INPUT(.resume_ns = 280 * MS), {}, CONT,
	 POLICY_R_LIMIT_UNREACHABLE},
	{"200 ms round trip: margin becomes rtt/2", PARAMS(), INPUT(.rtt_ns = 200 * MS), {}, CONT,
	 POLICY_R_LIMIT_UNREACHABLE},
	{"stalled and unreachable: not called non-convergence", PARAMS(),
	 INPUT(.remaining_bytes = 500 * MB, .state_bytes = 400 * MB), STALLED(500 * MB, 2), CONT,
	 POLICY_R_LIMIT_UNREACHABLE},

	/* Rule 4: timeout. */
	{"timeout exactly reached, abort", PARAMS(.timeout_ns = 10 * SEC),
	 INPUT(.remaining_bytes = 500 * MB), {}, ABORT, POLICY_R_TIMEOUT_ABORT},
	{"1 ns before the timeout", PARAMS(.timeout_ns = 10 * SEC),
	 INPUT(.remaining_bytes = 500 * MB, .elapsed_ns = 10 * SEC - 1), {}, CONT,
	 POLICY_R_LIMIT_NOT_MET},
	{"timeout, force", PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_FORCE),
	 INPUT(.remaining_bytes = 500 * MB), {}, SWITCH, POLICY_R_TIMEOUT_FORCE, true, false,
	 506 * MS},
	{"timeout during the first pass, force",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_FORCE),
	 INPUT(.passes = 0, .mid_pass = true, .bandwidth = 0, .remaining_bytes = 4 * GB), {},
	 SWITCH, POLICY_R_TIMEOUT_FORCE, true, false, INF},
	{"timeout, post-copy",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P),
	 INPUT(.remaining_bytes = 500 * MB, PC_IN), {}, POST, POLICY_R_TIMEOUT_POSTCOPY, false,
	 false, 6 * MS},
	{"timeout, post-copy, destination cannot",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P),
	 INPUT(.remaining_bytes = 500 * MB), {}, ABORT, POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE},
	{"timeout, post-copy's own switch over the limit",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P),
	 INPUT(.state_bytes = 400 * MB, PC_IN), {}, ABORT, POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT},
	{"timeout in the first pass, post-copy with the bandwidth so far",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P),
	 INPUT(.passes = 0, .mid_pass = true, .remaining_bytes = 4 * GB, PC_IN), {}, POST,
	 POLICY_R_TIMEOUT_POSTCOPY},
	{"timeout in the first pass, post-copy, nothing measured",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P),
	 INPUT(.passes = 0, .mid_pass = true, .bandwidth = 0, PC_IN), {}, ABORT,
	 POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT},
	{"timed out but it fits: switch within the limit, not abort",
	 PARAMS(.timeout_ns = 10 * SEC), INPUT(), {}, SWITCH, POLICY_R_TIMEOUT_LIMIT_MET, false,
	 false, 106 * MS},
	{"timed out but it fits: not forced",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_FORCE), INPUT(), {}, SWITCH,
	 POLICY_R_TIMEOUT_LIMIT_MET},
	{"timed out, fits, post-copy set: plain switchover",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P), INPUT(PC_IN),
	 {}, SWITCH, POLICY_R_TIMEOUT_LIMIT_MET},
	{"timed out mid-pass and it fits", PARAMS(.timeout_ns = 10 * SEC), INPUT(.mid_pass = true),
	 {}, SWITCH, POLICY_R_TIMEOUT_LIMIT_MET},
	{"timed out, fits, attempts exhausted: abort", PARAMS(.timeout_ns = 10 * SEC),
	 INPUT(.failed_attempts = 3), {}, ABORT, POLICY_R_TIMEOUT_ABORT},
	{"timed out, force, attempts exhausted: forced",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_FORCE),
	 INPUT(.failed_attempts = 3), {}, SWITCH, POLICY_R_TIMEOUT_FORCE, true},
	{"timed out, post-copy, attempts exhausted",
	 PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P),
	 INPUT(.remaining_bytes = 500 * MB, .failed_attempts = 3, PC_IN), {}, ABORT,
	 POLICY_R_ATTEMPTS_EXHAUSTED},
	{"no timeout: elapsed does not matter", PARAMS(),
	 INPUT(.remaining_bytes = 500 * MB, .elapsed_ns = UINT64_MAX), {}, CONT,
	 POLICY_R_LIMIT_NOT_MET},
	{"timed out while not converging: reported with the abort", PARAMS(.timeout_ns = 10 * SEC),
	 INPUT(.remaining_bytes = 500 * MB), STALLED(500 * MB, 2), ABORT, POLICY_R_TIMEOUT_ABORT,
	 false, true},

	/* Rule 5: hybrid. */
	{"post-copy from the start (N=0): before any pass", PARAMS(PC_P, .postcopy_after_passes = 0),
	 INPUT(.passes = 0, .bandwidth = 0, PC_IN), {}, POST, POLICY_R_HYBRID_PASSES_DONE},
	{"N=0, destination cannot post-copy: the first pass", PARAMS(PC_P, .postcopy_after_passes = 0),
	 INPUT(.passes = 0, .bandwidth = 0), {}, CONT, POLICY_R_FIRST_PASS},
	{"hybrid N=1 done, over the limit: post-copy", PARAMS(PC_P, .postcopy_after_passes = 1),
	 INPUT(.passes = 1, .remaining_bytes = 500 * MB, PC_IN), {}, POST,
	 POLICY_R_HYBRID_PASSES_DONE, false, false, 6 * MS},
	{"hybrid N=1 done, fits: plain switchover beats post-copy",
	 PARAMS(PC_P, .postcopy_after_passes = 1), INPUT(.passes = 1, PC_IN), {}, SWITCH,
	 POLICY_R_HYBRID_LIMIT_MET, false, false, 106 * MS},
	{"hybrid N=2, pass 1", PARAMS(PC_P, .postcopy_after_passes = 2),
	 INPUT(.passes = 1, .remaining_bytes = 500 * MB, PC_IN), {}, CONT, POLICY_R_LIMIT_NOT_MET},
	{"hybrid N=2, converged at pass 1", PARAMS(PC_P, .postcopy_after_passes = 2),
	 INPUT(.passes = 1, .remaining_bytes = 0, PC_IN), {}, SWITCH, POLICY_R_CONVERGED},
	{"hybrid, destination cannot post-copy: pre-copy rules",
	 PARAMS(PC_P, .postcopy_after_passes = 1), INPUT(.passes = 1, .remaining_bytes = 500 * MB),
	 {}, CONT, POLICY_R_LIMIT_NOT_MET},
	{"hybrid, limit unreachable", PARAMS(PC_P, .postcopy_after_passes = 1),
	 INPUT(.passes = 1, .state_bytes = 400 * MB, PC_IN), {}, CONT, POLICY_R_LIMIT_UNREACHABLE},

	/* The operator's migrate-start-postcopy. */
	{"post-copy requested", PARAMS(PC_P),
	 INPUT(.remaining_bytes = 500 * MB, .postcopy_requested = true, PC_IN), {}, POST,
	 POLICY_R_POSTCOPY_REQUESTED},
	{"post-copy requested in the first pass, bandwidth so far", PARAMS(PC_P),
	 INPUT(.passes = 0, .mid_pass = true, .postcopy_requested = true, PC_IN), {}, POST,
	 POLICY_R_POSTCOPY_REQUESTED},
	{"post-copy requested before any measurement", PARAMS(PC_P),
	 INPUT(.passes = 0, .mid_pass = true, .bandwidth = 0, .postcopy_requested = true, PC_IN),
	 {}, CONT, POLICY_R_FIRST_PASS},
	{"post-copy requested but not allowed", PARAMS(),
	 INPUT(.remaining_bytes = 500 * MB, .postcopy_requested = true, PC_IN), {}, CONT,
	 POLICY_R_LIMIT_NOT_MET},
	{"post-copy requested, its switch cannot fit", PARAMS(PC_P),
	 INPUT(.state_bytes = 400 * MB, .postcopy_requested = true, PC_IN), {}, CONT,
	 POLICY_R_LIMIT_UNREACHABLE},

	/* Mid-pass calls. */
	{"mid-pass, it would fit: finish the pass", PARAMS(),
	 INPUT(.mid_pass = true, .remaining_bytes = 1 * MB), {}, CONT, POLICY_R_PASS_IN_PROGRESS},

	/* Rule 6: failed attempts. */
	{"attempts exhausted", PARAMS(), INPUT(.remaining_bytes = 0, .failed_attempts = 3), {},
	 ABORT, POLICY_R_ATTEMPTS_EXHAUSTED},
	{"guest recovering from a rollback", PARAMS(),
	 INPUT(.remaining_bytes = 0, .failed_attempts = 1, .last_attempt_ns = 270 * MS,
	       .since_attempt_ns = 269 * MS),
	 {}, CONT, POLICY_R_GUEST_RECOVERING},
	{"attempts left", PARAMS(), INPUT(.remaining_bytes = 0, .failed_attempts = 2),
	 {.attempts_seen = 2}, SWITCH, POLICY_R_CONVERGED},
	{"one attempt allowed, one failed", PARAMS(.max_attempts = 1), INPUT(.failed_attempts = 1),
	 {}, ABORT, POLICY_R_ATTEMPTS_EXHAUSTED},
	{"overrun of 180 ms learned: the formula's 106 ms no longer fits", PARAMS(),
	 INPUT(.failed_attempts = 1, .last_attempt_ns = 286 * MS),
	 {.switches = 1, .switch_predicted_ns = 106 * MS}, CONT, POLICY_R_LIMIT_NOT_MET, false,
	 false, 286 * MS},
	{"overrun learned, a smaller set fits", PARAMS(),
	 INPUT(.remaining_bytes = 50 * MB, .failed_attempts = 1, .last_attempt_ns = 286 * MS),
	 {.switches = 1, .switch_predicted_ns = 106 * MS}, SWITCH, POLICY_R_CONVERGED, false, false,
	 236 * MS},
	{"failed attempt not measured: assumed at its deadline", PARAMS(),
	 INPUT(.failed_attempts = 1), {.switches = 1, .switch_predicted_ns = 106 * MS}, CONT,
	 POLICY_R_STILL_GAINING, false, false, 270 * MS},

	/* Parameters the policy cannot interpret. */
	{"limit 0", PARAMS(.downtime_limit_ns = 0), INPUT(), {}, ABORT, POLICY_R_BAD_PARAMS},
	{"on-timeout post-copy without post-copy",
	 PARAMS(.timeout_ns = SEC, .on_timeout = POLICY_TIMEOUT_POSTCOPY), INPUT(), {}, ABORT,
	 POLICY_R_BAD_PARAMS},
	{"margin 100%", PARAMS(.margin_pct = 100), INPUT(), {}, ABORT, POLICY_R_BAD_PARAMS},
	{"hybrid without post-copy", PARAMS(.postcopy_after_passes = 1), INPUT(), {}, ABORT,
	 POLICY_R_BAD_PARAMS},

	/* Which bandwidth. */
	{"max-bandwidth caps a measurement above it", PARAMS(.max_bandwidth = GB),
	 INPUT(.bandwidth = 2 * GB, .dirty_rate = 2 * GB, .remaining_bytes = 280 * MB,
	       .state_bytes = 0, .rtt_ns = 0, .resume_ns = 0), {}, CONT, POLICY_R_LIMIT_NOT_MET,
	 false, false, 280 * MS},
	{"... and without the cap it fits", PARAMS(),
	 INPUT(.bandwidth = 2 * GB, .dirty_rate = 2 * GB, .remaining_bytes = 280 * MB,
	       .state_bytes = 0, .rtt_ns = 0, .resume_ns = 0), {}, SWITCH, POLICY_R_NO_FURTHER_GAIN,
	 false, false, 140 * MS},
	{"a spike above the previous pass is not trusted", PARAMS(),
	 INPUT(.bandwidth = 4 * GB, .dirty_rate = 4 * GB, .remaining_bytes = 280 * MB,
	       .state_bytes = 0, .rtt_ns = 0, .resume_ns = 0),
	 {.recorded = 1, .passes = 1, .remaining = 300 * MB, .bandwidth = GB, .anchor = 300 * MB},
	 CONT, POLICY_R_LIMIT_NOT_MET, false, false, 280 * MS},

	/* Extremes: no overflow, no division by zero. */
	{"2^64 bytes over 1 B/s", PARAMS(),
	 INPUT(.remaining_bytes = UINT64_MAX, .bandwidth = 1, .dirty_rate = 0, .state_bytes = 0,
	       .rtt_ns = 0, .resume_ns = 0), {}, CONT, POLICY_R_LIMIT_NOT_MET, false, false, INF},
	{"everything at its maximum", PARAMS(),
	 INPUT(.remaining_bytes = UINT64_MAX, .bandwidth = UINT64_MAX, .dirty_rate = UINT64_MAX,
	       .state_bytes = UINT64_MAX, .rtt_ns = UINT64_MAX, .resume_ns = UINT64_MAX,
	       .elapsed_ns = UINT64_MAX, .pass_left_bytes = UINT64_MAX), {}, CONT,
	 POLICY_R_LIMIT_UNREACHABLE, false, false, INF},
	{"2^64 bytes over 2^64 B/s is one second", PARAMS(),
	 INPUT(.remaining_bytes = UINT64_MAX, .bandwidth = UINT64_MAX, .state_bytes = 0,
	       .rtt_ns = 0, .resume_ns = 0), {}, CONT, POLICY_R_LIMIT_NOT_MET, false, false, SEC},
	{"dirty rate 2^64 B/s, fits: no further gain", PARAMS(), INPUT(.dirty_rate = UINT64_MAX),
	 {}, SWITCH, POLICY_R_NO_FURTHER_GAIN},
	{"pass 2^32-1", PARAMS(), INPUT(.passes = UINT32_MAX, .remaining_bytes = 0), {}, SWITCH,
	 POLICY_R_CONVERGED},
	{"largest limit, huge set", PARAMS(.downtime_limit_ns = 2000 * SEC),
	 INPUT(.remaining_bytes = 1000 * GB, .dirty_rate = GB), {}, SWITCH,
	 POLICY_R_NO_FURTHER_GAIN},
	{"1 ns limit: unreachable", PARAMS(.downtime_limit_ns = 1), INPUT(), {}, CONT,
	 POLICY_R_LIMIT_UNREACHABLE},
};
/* clang-format on */

static void check_row(const struct row *r)
{
	struct policy_history h = r->h;
	struct policy_decision d;

	policy_decide(&r->p, &r->in, &h, &d);
	if (d.action != r->action || d.reason != r->reason || d.forced != r->forced ||
	    d.not_converging != r->not_converging)
		fail_msg("%s: got %s %s%s%s, want %s %s%s%s", r->name, policy_action_name(d.action),
			 policy_reason_name(d.reason), d.forced ? " forced" : "",
			 d.not_converging ? " not-converging" : "", policy_action_name(r->action),
			 policy_reason_name(r->reason), r->forced ? " forced" : "",
			 r->not_converging ? " not-converging" : "");
	if (r->pred && d.predicted_ns != r->pred)
		fail_msg("%s: predicted %" PRIu64 " ns, want %" PRIu64, r->name, d.predicted_ns,
			 r->pred);
}

static void test_decision_table(void **state __attribute__((unused)))
{
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		check_row(&rows[i]);
	print_message("[          ] %zu decision rows\n", ARRAY_SIZE(rows));
}

static void test_predict_downtime(void **state __attribute__((unused)))
{
	static const struct {
		uint64_t rem, state, bw, rtt, resume, want;
	} cases[] = {
	    {0, 0, GB, 0, 0, 0},
	    {1, 0, GB, 0, 0, 1},
	    {1, 0, 3, 0, 0, 333333334}, /* rounded up */
	    {3, 0, 3, 0, 0, SEC},
	    {64 * MiB, 0, 1250 * MB, 0, 0, 53687092},
	    {100 * MB, 1 * MB, GB, 200 * US, 4800 * US, 106 * MS},
	    {GB, GB, GB, 5, 7, 2 * SEC + 12},
	    {0, 0, 0, 0, 0, INF}, /* no bandwidth */
	    {1, 1, 0, 1, 1, INF},
	    {UINT64_MAX, UINT64_MAX, 1, 0, 0, INF},
	    {UINT64_MAX, 0, UINT64_MAX, 0, 0, SEC},
	    {UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0, 2 * SEC},
	    {0, 0, 1, UINT64_MAX, 1, INF},
	    {0, 0, 1, UINT64_MAX - 1, 1, INF},
	    {0, 0, 1, UINT64_MAX - 2, 1, UINT64_MAX - 1},
	    {18446744073ull, 0, 1, 0, 0, 18446744073ull * SEC}, /* < 2^64 */
	    {18446744074ull, 0, 1, 0, 0, INF},			/* > 2^64 */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t got = policy_predict_downtime(cases[i].rem, cases[i].state, cases[i].bw,
						       cases[i].rtt, cases[i].resume);
		if (got != cases[i].want)
			fail_msg("case %zu: %" PRIu64 ", want %" PRIu64, i, got, cases[i].want);
	}
}

static void test_params(void **state __attribute__((unused)))
{
	static const struct {
		struct policy_params p;
		const char *msg; /* substring; NULL = valid */
	} cases[] = {
	    {PARAMS(), NULL},
	    {PARAMS(.downtime_limit_ns = 1), NULL},
	    {PARAMS(.downtime_limit_ns = 2000 * SEC), NULL},
	    {PARAMS(.downtime_limit_ns = 0), "downtime-limit"},
	    {PARAMS(.downtime_limit_ns = 2000 * SEC + 1), "downtime-limit"},
	    {PARAMS(.margin_pct = 99), NULL},
	    {PARAMS(.margin_pct = 100), "margin"},
	    {PARAMS(.gain_pct = 100), NULL},
	    {PARAMS(.gain_pct = 101), "gain"},
	    {PARAMS(.stall_pct = 100), "stall"},
	    {PARAMS(.stall_passes = 0), "stall-passes"},
	    {PARAMS(.max_passes = 0), "max-passes"},
	    {PARAMS(.max_attempts = 0), "max-attempts"},
	    {PARAMS(.on_timeout = (enum policy_on_timeout)3), "on-timeout"},
	    {PARAMS(.on_timeout = POLICY_TIMEOUT_POSTCOPY), "post-copy allowed"},
	    {PARAMS(.on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P), NULL},
	    {PARAMS(.postcopy_after_passes = 1), "post-copy allowed"},
	    {PARAMS(.postcopy_after_passes = 30, PC_P), NULL},
	    {PARAMS(.postcopy_after_passes = 31, PC_P), "exceeds max-passes"},
	};
	struct policy_params def;

	policy_params_default(&def);
	assert_int_equal(def.downtime_limit_ns, 300 * MS);
	assert_int_equal(def.max_bandwidth, 0);
	assert_int_equal(def.timeout_ns, 0);
	assert_int_equal(def.on_timeout, POLICY_TIMEOUT_ABORT);
	assert_false(def.postcopy);
	assert_int_equal(def.postcopy_after_passes, POLICY_PASSES_OFF);
	assert_int_equal(def.margin_pct, 10);
	assert_int_equal(def.gain_pct, 30);
	assert_int_equal(def.stall_passes, 3);
	assert_int_equal(def.stall_pct, 10);
	assert_int_equal(def.max_passes, 30);
	assert_int_equal(def.max_attempts, 3);
	assert_int_equal(policy_params_check(&def, NULL), 0);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ferr err = FERR_INIT;
		int rc = policy_params_check(&cases[i].p, &err);

		if (!cases[i].msg) {
			if (rc != 0)
				fail_msg("case %zu: unexpected error: %s", i, err.msg);
			continue;
		}
		if (rc != -EINVAL || err.code != -EINVAL || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: rc %d msg '%s', want -EINVAL and '%s'", i, rc, err.msg,
				 cases[i].msg);
	}
}

static bool name_ok(const char *s)
{
	if (!s || !*s || strcmp(s, "unknown") == 0)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
			return false;
	return true;
}

static void test_names(void **state __attribute__((unused)))
{
	for (int i = 0; i < POLICY_R_COUNT; i++) {
		const char *n = policy_reason_name((enum policy_reason)i);

		if (!name_ok(n))
			fail_msg("reason %d has name '%s'", i, n ? n : "(null)");
		for (int j = 0; j < i; j++)
			if (strcmp(n, policy_reason_name((enum policy_reason)j)) == 0)
				fail_msg("reasons %d and %d are both '%s'", j, i, n);
	}
	assert_string_equal(policy_reason_name(POLICY_R_CONVERGED), "converged");
	assert_string_equal(policy_reason_name(POLICY_R_NO_FURTHER_GAIN),
			    "limit-met-no-further-gain");
	assert_string_equal(policy_reason_name(POLICY_R_NOT_CONVERGING), "not-converging");
	assert_string_equal(policy_reason_name(POLICY_R_TIMEOUT_ABORT), "timeout-abort");
	assert_string_equal(policy_reason_name(POLICY_R_TIMEOUT_FORCE), "timeout-force");
	assert_string_equal(policy_reason_name(POLICY_R_TIMEOUT_POSTCOPY), "timeout-postcopy");
	assert_string_equal(policy_reason_name(POLICY_R_HYBRID_PASSES_DONE), "hybrid-passes-done");
	assert_string_equal(policy_reason_name(POLICY_R_COUNT), "unknown");
	assert_string_equal(policy_reason_name((enum policy_reason) - 1), "unknown");

	assert_string_equal(policy_action_name(POLICY_CONTINUE), "continue");
	assert_string_equal(policy_action_name(POLICY_SWITCHOVER), "switchover");
	assert_string_equal(policy_action_name(POLICY_POSTCOPY), "postcopy");
	assert_string_equal(policy_action_name(POLICY_ABORT), "abort");
	assert_string_equal(policy_action_name((enum policy_action)4), "unknown");

	/* Same names and values as migration/params.c's "on-timeout". */
	assert_string_equal(policy_on_timeout_name(POLICY_TIMEOUT_ABORT), "abort");
	assert_string_equal(policy_on_timeout_name(POLICY_TIMEOUT_POSTCOPY), "postcopy");
	assert_string_equal(policy_on_timeout_name(POLICY_TIMEOUT_FORCE), "force");
	assert_int_equal(POLICY_TIMEOUT_ABORT, 0);
	assert_int_equal(POLICY_TIMEOUT_POSTCOPY, 1);
	assert_int_equal(POLICY_TIMEOUT_FORCE, 2);
	assert_string_equal(policy_on_timeout_name((enum policy_on_timeout)3), "unknown");
}

/* History bookkeeping: one record per pass end, the anchor, learning. */
static void test_history(void **state __attribute__((unused)))
{
	struct policy_params p = PARAMS();
	struct policy_history h;
	struct policy_decision d;
	struct policy_input in = INPUT(.passes = 1, .remaining_bytes = 1000 * MB);
	static const struct {
		uint64_t rem;
		uint32_t stalled;
		uint64_t anchor;
	} seq[] = {
	    {1000 * MB, 0, 1000 * MB}, /* first record: the anchor */
	    {950 * MB, 1, 1000 * MB},  /* -5%: no progress */
	    {910 * MB, 2, 1000 * MB},  /* -9% from the anchor: still none */
	    {899 * MB, 0, 899 * MB},   /* -10.1%: progress, new anchor */
	    {900 * MB, 1, 899 * MB},
	    {2000 * MB, 2, 899 * MB},
	    {0, 0, 0},
	    {0, 1, 0}, /* nothing can fall below 0 */
	};

	policy_history_init(&h);
	for (size_t i = 0; i < ARRAY_SIZE(seq); i++) {
		in.passes = (uint32_t)i + 1;
		in.remaining_bytes = seq[i].rem;
		policy_decide(&p, &in, &h, &d);
		/* Again for the same pass end: recorded once. */
		policy_decide(&p, &in, &h, &d);
		if (h.passes != i + 1 || h.recorded != i + 1 || h.remaining != seq[i].rem ||
		    h.stalled != seq[i].stalled || h.anchor != seq[i].anchor)
			fail_msg("pass %zu: passes %u remaining %" PRIu64
				 " stalled %u anchor %" PRIu64,
				 i + 1, h.passes, h.remaining, h.stalled, h.anchor);
		if (i > 0 && h.prev_remaining != seq[i - 1].rem)
			fail_msg("pass %zu: prev_remaining %" PRIu64, i + 1, h.prev_remaining);
	}

	/* Mid-pass calls and stale pass numbers record no pass. */
	struct policy_history before = h;
	in.mid_pass = true;
	in.passes = 100;
	in.remaining_bytes = 5;
	policy_decide(&p, &in, &h, &d);
	assert_memory_equal(&before, &h, sizeof(h));
	in.mid_pass = false;
	in.passes = 3;
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(d.action, POLICY_SWITCHOVER); /* 5 bytes left fit */
	assert_int_equal(h.switches, before.switches + 1);
	h.switches = before.switches;
	h.switch_predicted_ns = before.switch_predicted_ns;
	assert_memory_equal(&before, &h, sizeof(h));

	/* Learning: the worst underestimate, each failure once. */
	policy_history_init(&h);
	in = (struct policy_input)INPUT(.remaining_bytes = 0);
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(d.action, POLICY_SWITCHOVER);
	assert_int_equal(h.switches, 1);
	assert_int_equal(h.switch_predicted_ns, 6 * MS);

	in.failed_attempts = 1;
	in.last_attempt_ns = 286 * MS; /* 280 ms over the prediction */
	in.passes = 3;
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(h.attempts_seen, 1);
	assert_int_equal(h.penalty_ns, 280 * MS);
	assert_int_equal(d.predicted_ns, 286 * MS);
	assert_int_equal(d.action, POLICY_CONTINUE);
	assert_int_equal(d.reason, POLICY_R_LIMIT_UNREACHABLE); /* 6 + 280 + 30 > 300 */

	/* The same failure reported again is not learned twice. */
	in.last_attempt_ns = 900 * MS;
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(h.penalty_ns, 280 * MS);

	/* A smaller error later does not lower the penalty. */
	h.switches = 2;
	h.switch_predicted_ns = 100 * MS;
	in.failed_attempts = 2;
	in.last_attempt_ns = 280 * MS;
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(h.attempts_seen, 2);
	assert_int_equal(h.penalty_ns, 280 * MS);

	/*
	 * But it fades: a destination that was slow once (issue 12: 400 ms
	 * for the first attempt, then quick) must not block every later
	 * attempt.  Half a second on nothing has changed; after one
	 * half-life the penalty is halved, after two it is a quarter, and the
	 * small remaining set fits again.
	 */
	in.elapsed_ns += 500 * MS;
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(d.reason, POLICY_R_LIMIT_UNREACHABLE);
	assert_int_equal(d.predicted_ns, 286 * MS);
	in.elapsed_ns += 500 * MS;
	assert_int_equal(policy_penalty_now(&h, in.elapsed_ns), 140 * MS);
	policy_decide(&p, &in, &h, &d);
	assert_int_equal(d.predicted_ns, 146 * MS);
	assert_int_equal(d.action, POLICY_SWITCHOVER);
	assert_int_equal(policy_penalty_now(&h, in.elapsed_ns + 60 * SEC), 0);
	/* A new failure on top of a faded penalty: the larger of the two. */
	in.failed_attempts = 3;
	in.last_attempt_ns = 150 * MS;
	uint64_t faded = policy_penalty_now(&h, in.elapsed_ns);
	policy_decide(&p, &in, &h, &d);
	assert_true(h.penalty_ns >= faded); /* the attempt lasted at least its deadline */
	assert_int_equal(h.penalty_at_ns, in.elapsed_ns);

	/* Forced switchovers are not promises: not recorded. */
	policy_history_init(&h);
	p = (struct policy_params)PARAMS(.timeout_ns = SEC, .on_timeout = POLICY_TIMEOUT_FORCE);
	in = (struct policy_input)INPUT(.remaining_bytes = 500 * MB);
	policy_decide(&p, &in, &h, &d);
	assert_true(d.forced);
	assert_int_equal(h.switches, 0);
}

static void test_estimate(void **state __attribute__((unused)))
{
	struct policy_params p = PARAMS();
	struct policy_history h = {0};
	struct policy_estimate e;
	/* No fixed costs: the budget is 270 MB at 1 GB/s. */
	struct policy_input in = INPUT(.remaining_bytes = 100 * MB, .state_bytes = 0, .rtt_ns = 0,
				       .resume_ns = 0, .dirty_rate = 500 * MB);

	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.downtime_ns, 100 * MS);
	assert_int_equal(e.pass_eta_ns, 100 * MS);
	assert_int_equal(e.converge_eta_ns, 0);
	assert_int_equal(e.converge_passes, 0);
	assert_int_equal(e.converge_downtime_ns, 100 * MS);

	in.remaining_bytes = 400 * MB; /* one pass of 400 ms leaves 200 MB */
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_eta_ns, 400 * MS);
	assert_int_equal(e.converge_passes, 1);
	assert_int_equal(e.converge_downtime_ns, 200 * MS);

	in.remaining_bytes = 1200 * MB; /* 1200, 600, 300 -> 150 */
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_eta_ns, 2100 * MS);
	assert_int_equal(e.converge_passes, 3);
	assert_int_equal(e.converge_downtime_ns, 150 * MS);

	p.max_passes = 4; /* at pass 2, two passes left: not enough */
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_eta_ns, INF);
	p.max_passes = 30;

	in.dirty_rate = GB; /* rho 1: never */
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_eta_ns, INF);
	assert_int_equal(e.downtime_ns, 1200 * MS);
	assert_int_equal(e.pass_eta_ns, 1200 * MS);

	/* Observed shrink is used too: 1200 after 1250 is rho 0.96. */
	in.dirty_rate = 0;
	h = (struct policy_history){.recorded = 2,
				    .passes = 2,
				    .remaining = 1200 * MB,
				    .prev_remaining = 1250 * MB,
				    .bandwidth = GB,
				    .prev_bandwidth = GB};
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_eta_ns, INF); /* needs 37 passes, 28 left */
	assert_int_equal(e.converge_passes, 0);
	p.max_passes = 100;
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_passes, 37); /* 1200 * 0.96^37 = 265 MB <= 270 MB */
	/* 1200 ms * (1 - 0.96^37) / 0.04 */
	assert_true(e.converge_eta_ns > 23370 * MS && e.converge_eta_ns < 23380 * MS);
	h = (struct policy_history){0};
	p.max_passes = 30;

	/* The walk is bounded even when the pass budget is not. */
	p.max_passes = UINT32_MAX;
	in = (struct policy_input)INPUT(.remaining_bytes = 1200 * MB, .state_bytes = 0, .rtt_ns = 0,
					.resume_ns = 0, .dirty_rate = 999990 * US);
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_eta_ns, INF); /* rho 0.99999: 150 000 passes */
	in.dirty_rate = 999 * MB;		  /* rho 0.999: 1 491 passes */
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.converge_passes, 1491);
	p.max_passes = 30;

	/* Mid-pass: the pass under way is finished first. */
	in = (struct policy_input)INPUT(.mid_pass = true, .remaining_bytes = 10 * MB,
					.pass_left_bytes = 8 * MB, .dirty_rate = 0,
					.state_bytes = 0, .rtt_ns = 0, .resume_ns = 0);
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.pass_eta_ns, 8 * MS);
	assert_int_equal(e.converge_eta_ns, 10 * MS);
	assert_int_equal(e.converge_passes, 1);
	assert_int_equal(e.converge_downtime_ns, 0);

	/* Nothing measured: nothing known. */
	in.bandwidth = 0;
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.downtime_ns, INF);
	assert_int_equal(e.pass_eta_ns, INF);
	assert_int_equal(e.converge_eta_ns, INF);

	/* Unreachable: downtime known, convergence not. */
	in = (struct policy_input)INPUT(.state_bytes = 400 * MB);
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.downtime_ns, 505 * MS);
	assert_int_equal(e.converge_eta_ns, INF);

	/* The learned penalty shows in the estimates. */
	in = (struct policy_input)INPUT();
	h.penalty_ns = 50 * MS;
	h.penalty_at_ns = in.elapsed_ns; /* just learned: not faded */
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.downtime_ns, 156 * MS);
	assert_int_equal(e.converge_downtime_ns, 156 * MS);

	/* Bad parameters: nothing known. */
	p.downtime_limit_ns = 0;
	policy_estimate(&p, &in, &h, &e);
	assert_int_equal(e.downtime_ns, INF);
}

static void test_describe(void **state __attribute__((unused)))
{
	struct policy_params p = PARAMS(.timeout_ns = 10 * SEC, .on_timeout = POLICY_TIMEOUT_FORCE);
	struct policy_input in = INPUT(.remaining_bytes = 500 * MB);
	struct policy_history h = STALLED(500 * MB, 2);
	struct policy_decision d;
	char buf[256], small[16];
	int n;

	policy_decide(&p, &in, &h, &d);
	n = policy_describe(&p, &d, buf, sizeof(buf));
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_string_equal(buf, "switchover timeout-force: predicted downtime 506.0 ms (limit "
				 "300.0 ms, margin 30.0 ms), bandwidth 953.7 MiB/s, dirty rate "
				 "9.5 MiB/s, not converging, FORCED: downtime not bounded by "
				 "the limit");

	n = policy_describe(&p, &d, small, sizeof(small));
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(strlen(small), sizeof(small) - 1);

	in = (struct policy_input)INPUT(.passes = 0, .bandwidth = 0);
	p.timeout_ns = 0;
	policy_decide(&p, &in, &h, &d);
	policy_describe(&p, &d, buf, sizeof(buf));
	assert_non_null(strstr(buf, "continue first-pass: predicted downtime unknown"));
}

/* ---- Properties over random inputs ---------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed, same sequence everywhere. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* Mostly plausible figures, with edges and extremes mixed in. */
static uint64_t rnd_figure(uint64_t typical)
{
	switch (rnd_below(10)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return UINT64_MAX - rnd_below(3);
	case 3:
		return rnd();
	default:
		return rnd_below(typical * 2 + 1);
	}
}

static void rnd_params(struct policy_params *p)
{
	policy_params_default(p);
	p->downtime_limit_ns = 1 + rnd_below(rnd_below(4) ? 2 * SEC : 2000 * SEC);
	p->margin_pct = (uint32_t)rnd_below(60);
	p->gain_pct = (uint32_t)rnd_below(101);
	p->stall_passes = 1 + (uint32_t)rnd_below(5);
	p->stall_pct = (uint32_t)rnd_below(50);
	p->max_passes = 1 + (uint32_t)rnd_below(40);
	p->max_attempts = 1 + (uint32_t)rnd_below(4);
	p->max_bandwidth = rnd_below(3) ? 0 : rnd_figure(GB);
	p->timeout_ns = rnd_below(2) ? 0 : rnd_figure(30 * SEC);
	p->postcopy = rnd_below(2);
	p->on_timeout = (enum policy_on_timeout)rnd_below(3);
	if (p->on_timeout == POLICY_TIMEOUT_POSTCOPY && !p->postcopy)
		p->on_timeout = POLICY_TIMEOUT_ABORT;
	if (p->postcopy && rnd_below(2))
		p->postcopy_after_passes = 1 + (uint32_t)rnd_below(p->max_passes);
	if (rnd_below(50) == 0)
		p->margin_pct = 100 + (uint32_t)rnd_below(10); /* invalid now and then */
	p->auto_converge = rnd_below(2);
	p->throttle_initial = (uint32_t)rnd_below(101);
	p->throttle_increment = (uint32_t)rnd_below(101);
	p->throttle_max = (uint32_t)rnd_below(101);
	p->throttle_tailslow = rnd_below(2);
}

static void rnd_input(struct policy_input *in)
{
	memset(in, 0, sizeof(*in));
	in->passes = rnd_below(8) ? (uint32_t)rnd_below(40) : (uint32_t)rnd();
	in->mid_pass = rnd_below(4) == 0;
	in->elapsed_ns = rnd_figure(30 * SEC);
	in->bandwidth = rnd_figure(GB);
	in->dirty_rate = rnd_figure(GB);
	in->remaining_bytes = rnd_figure(300 * MB);
	in->pass_left_bytes = rnd_figure(300 * MB);
	in->state_bytes = rnd_figure(MB);
	in->rtt_ns = rnd_figure(MS);
	in->resume_ns = rnd_figure(10 * MS);
	in->postcopy_available = rnd_below(2);
	in->postcopy_requested = rnd_below(4) == 0;
	in->failed_attempts = rnd_below(3) ? 0 : (uint32_t)rnd_below(5);
	in->last_attempt_ns = rnd_figure(300 * MS);
	in->throttle_pct = rnd_below(2) ? 0 : (uint32_t)rnd_below(100);
}

static void rnd_history(struct policy_history *h, const struct policy_input *in)
{
	policy_history_init(h);
	if (rnd_below(3) == 0)
		return;
	h->passes = in->passes ? (uint32_t)rnd_below((uint64_t)in->passes + 2) : 0;
	h->recorded = h->passes ? 1 + (uint32_t)rnd_below(h->passes) : 0;
	h->remaining = rnd_figure(300 * MB);
	h->prev_remaining = rnd_figure(300 * MB);
	h->bandwidth = rnd_figure(GB);
	h->prev_bandwidth = rnd_figure(GB);
	h->anchor = rnd_figure(300 * MB);
	h->stalled = (uint32_t)rnd_below(6);
	h->attempts_seen = (uint32_t)rnd_below((uint64_t)in->failed_attempts + 1);
	h->penalty_ns = rnd_below(2) ? 0 : rnd_figure(100 * MS);
	h->switches = (uint32_t)rnd_below(3);
	h->switch_predicted_ns = rnd_figure(300 * MS);
	h->thr_pass = (uint32_t)rnd_below((uint64_t)in->passes + 2);
	h->thr_raised_at = (uint32_t)rnd_below((uint64_t)in->passes + 2);
	h->thr_rate_before = rnd_figure(GB);
	h->thr_stalled_at_max = (uint32_t)rnd_below(6);
	h->thr_no_effect = rnd_below(2);
	h->thr_off = rnd_below(8) == 0;
}

/* The actions each reason may come with. */
static bool reason_allows(enum policy_reason r, enum policy_action a)
{
	switch (r) {
	case POLICY_R_NOT_CONVERGING:
		return a == POLICY_CONTINUE || a == POLICY_POSTCOPY;
	case POLICY_R_FIRST_PASS:
	case POLICY_R_NO_BANDWIDTH:
	case POLICY_R_PASS_IN_PROGRESS:
	case POLICY_R_LIMIT_NOT_MET:
	case POLICY_R_STILL_GAINING:
	case POLICY_R_LIMIT_UNREACHABLE:
	case POLICY_R_THROTTLING:
	case POLICY_R_THROTTLE_INEFFECTIVE:
		return a == POLICY_CONTINUE;
	case POLICY_R_CONVERGED:
	case POLICY_R_NO_FURTHER_GAIN:
	case POLICY_R_MAX_PASSES:
	case POLICY_R_HYBRID_LIMIT_MET:
	case POLICY_R_TIMEOUT_LIMIT_MET:
	case POLICY_R_TIMEOUT_FORCE:
		return a == POLICY_SWITCHOVER;
	case POLICY_R_POSTCOPY_REQUESTED:
	case POLICY_R_HYBRID_PASSES_DONE:
	case POLICY_R_TIMEOUT_POSTCOPY:
		return a == POLICY_POSTCOPY;
	case POLICY_R_TIMEOUT_ABORT:
	case POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE:
	case POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT:
	case POLICY_R_ATTEMPTS_EXHAUSTED:
	case POLICY_R_BAD_PARAMS:
		return a == POLICY_ABORT;
	default:
		return false;
	}
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

#define PROPERTY_RUNS 300000

static void test_properties(void **state __attribute__((unused)))
{
	unsigned counts[4] = {0}, forced = 0, raised = 0, lifted = 0;

	for (int i = 0; i < PROPERTY_RUNS; i++) {
		struct policy_params p;
		struct policy_input in;
		struct policy_history h0, h, h2;
		struct policy_decision d, d2;
		struct policy_estimate e;
		char buf[32];

		rnd_params(&p);
		rnd_input(&in);
		rnd_history(&h0, &in);
		h = h0;
		policy_decide(&p, &in, &h, &d);

		bool params_ok = policy_params_check(&p, NULL) == 0;
		bool timed_out = p.timeout_ns && in.elapsed_ns >= p.timeout_ns;
		bool guarded =
		    (d.action == POLICY_SWITCHOVER || d.action == POLICY_POSTCOPY) && !d.forced;

		counts[d.action]++;
		forced += d.forced;
		if (!reason_allows(d.reason, d.action))
			fail_msg("run %d: %s with reason %s", i, policy_action_name(d.action),
				 policy_reason_name(d.reason));

		/* The guarantee: an unforced switch is predicted to fit, with a measurement. */
		if (guarded) {
			if (d.predicted_ns == INF ||
			    sat_add(d.predicted_ns, d.margin_ns) > p.downtime_limit_ns ||
			    !d.bandwidth)
				fail_msg("run %d: %s predicted %" PRIu64 " + margin %" PRIu64
					 " > limit %" PRIu64,
					 i, policy_action_name(d.action), d.predicted_ns,
					 d.margin_ns, p.downtime_limit_ns);
			if (d.action == POLICY_SWITCHOVER && in.passes == 0)
				fail_msg("run %d: switchover before the first pass ended", i);
			if (d.margin_ns <
			    (uint64_t)((__uint128_t)p.downtime_limit_ns * p.margin_pct / 100))
				fail_msg("run %d: margin below the configured one", i);
		}
		if (d.action == POLICY_SWITCHOVER && !d.forced) {
			uint64_t want =
			    policy_predict_downtime(in.remaining_bytes, in.state_bytes, d.bandwidth,
						    in.rtt_ns, in.resume_ns);
			if (d.predicted_ns != sat_add(want, policy_penalty_now(&h, in.elapsed_ns)))
				fail_msg("run %d: prediction %" PRIu64 " is not the formula's", i,
					 d.predicted_ns);
		}
		/* Forcing only by the operator's timeout choice. */
		if (d.forced &&
		    (d.action != POLICY_SWITCHOVER || d.reason != POLICY_R_TIMEOUT_FORCE ||
		     !timed_out || p.on_timeout != POLICY_TIMEOUT_FORCE))
			fail_msg("run %d: forced without a forcing timeout", i);
		/* Post-copy only where allowed and possible. */
		if (d.action == POLICY_POSTCOPY && !(p.postcopy && in.postcopy_available))
			fail_msg("run %d: post-copy not allowed or not available", i);
		/* Abort only for the documented reasons, each with its cause. */
		if (d.action == POLICY_ABORT) {
			bool ok = false;

			switch (d.reason) {
			case POLICY_R_BAD_PARAMS:
				ok = !params_ok;
				break;
			case POLICY_R_TIMEOUT_ABORT:
				ok = timed_out && p.on_timeout == POLICY_TIMEOUT_ABORT;
				break;
			case POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE:
			case POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT:
				ok = timed_out && p.on_timeout == POLICY_TIMEOUT_POSTCOPY;
				break;
			case POLICY_R_ATTEMPTS_EXHAUSTED:
				ok = in.failed_attempts >= p.max_attempts;
				break;
			default:
				break;
			}
			if (!ok)
				fail_msg("run %d: abort %s without its cause", i,
					 policy_reason_name(d.reason));
		}
		if (!params_ok && d.reason != POLICY_R_BAD_PARAMS)
			fail_msg("run %d: bad parameters not refused", i);
		/* Non-convergence is never reported alongside a switchover that fits. */
		if (d.not_converging && guarded && d.action == POLICY_SWITCHOVER)
			fail_msg("run %d: not converging yet switching within the limit", i);
		/*
		 * The throttle: within 0..max, raised only as "throttling" at a
		 * pass end over the limit, never under post-copy's nose, lowered
		 * only to 0, and 0 whenever auto-converge is off or it aborts.
		 */
		if (d.throttle_pct > 99 || d.prev_throttle_pct != in.throttle_pct)
			fail_msg("run %d: throttle %u%% from %u%%", i, d.throttle_pct,
				 in.throttle_pct);
		if ((!params_ok || !p.auto_converge || d.action == POLICY_ABORT) && d.throttle_pct)
			fail_msg("run %d: throttle %u%% without auto-converge or on abort", i,
				 d.throttle_pct);
		if (d.throttle_pct > in.throttle_pct &&
		    (d.reason != POLICY_R_THROTTLING || in.mid_pass ||
		     d.throttle_pct > p.throttle_max || (p.postcopy && in.postcopy_available)))
			fail_msg("run %d: throttle raised %u%% -> %u%% (%s)", i, in.throttle_pct,
				 d.throttle_pct, policy_reason_name(d.reason));
		if (d.throttle_pct < in.throttle_pct && d.throttle_pct)
			fail_msg("run %d: throttle lowered to %u%%, not lifted", i, d.throttle_pct);
		raised += d.throttle_pct > in.throttle_pct;
		lifted += d.reason == POLICY_R_THROTTLE_INEFFECTIVE;
		if ((d.reason == POLICY_R_THROTTLING) != (d.throttle_pct > in.throttle_pct))
			fail_msg("run %d: reason throttling without a raise, or the reverse", i);
		if (d.reason == POLICY_R_THROTTLE_INEFFECTIVE &&
		    (d.throttle_pct || !in.throttle_pct))
			fail_msg("run %d: throttle-ineffective without lifting it", i);
		if (in.mid_pass && params_ok && p.auto_converge && d.action != POLICY_ABORT &&
		    d.throttle_pct != in.throttle_pct)
			fail_msg("run %d: the throttle changed mid-pass", i);
		/* Mid-pass calls never move the pass history. */
		if (in.mid_pass && (h.passes != h0.passes || h.remaining != h0.remaining ||
				    h.anchor != h0.anchor || h.stalled != h0.stalled))
			fail_msg("run %d: a mid-pass call changed the pass history", i);

		/* Pure: the same inputs give the same outputs. */
		h2 = h0;
		policy_decide(&p, &in, &h2, &d2);
		assert_memory_equal(&d, &d2, sizeof(d));
		assert_memory_equal(&h, &h2, sizeof(h));
		/* Idempotent: asking again at the same point changes nothing. */
		h2 = h;
		policy_decide(&p, &in, &h2, &d2);
		if (d2.action != d.action || d2.reason != d.reason || d2.forced != d.forced ||
		    d2.predicted_ns != d.predicted_ns)
			fail_msg("run %d: second call decided %s %s after %s %s", i,
				 policy_action_name(d2.action), policy_reason_name(d2.reason),
				 policy_action_name(d.action), policy_reason_name(d.reason));

		/* The estimate does not touch the history and agrees on the downtime. */
		h2 = h;
		policy_estimate(&p, &in, &h2, &e);
		assert_memory_equal(&h, &h2, sizeof(h));
		if (params_ok && d.action == POLICY_SWITCHOVER && !d.forced &&
		    e.downtime_ns != d.predicted_ns)
			fail_msg("run %d: estimate %" PRIu64 " != decision %" PRIu64, i,
				 e.downtime_ns, d.predicted_ns);
		policy_describe(&p, &d, buf, sizeof(buf));
	}
	/* The generator reaches every action. */
	for (int a = 0; a < 4; a++)
		assert_true(counts[a] > PROPERTY_RUNS / 100);
	assert_true(forced > 0);
	assert_true(raised > PROPERTY_RUNS / 1000 && lifted > 0);
	print_message("[          ] %d runs: continue %u, switchover %u (forced %u), postcopy %u, "
		      "abort %u; throttle raised %u, lifted as ineffective %u\n",
		      PROPERTY_RUNS, counts[0], counts[1], forced, counts[2], counts[3], raised,
		      lifted);
}

/* ---- A deterministic simulation ------------------------------------------------------ */

/*
 * A model VM: it dirties memory at dirty_rate until its writable working
 * set (wss) is all dirty; pages outside it stay clean once sent.  The
 * engine sends each pass at the link's bandwidth and asks the policy at
 * every pass end, and every second during a pass; each pass also costs a
 * dirty-log sync.  The destination's true load time may differ from its
 * estimate, and the link may be slower in the switchover window than the
 * measurement says.
 */
#define SIM_SYNC_S    0.001 /* per pass */
#define SIM_MAX_STEPS 1000000
struct sim_vm {
	uint64_t ram, wss, dirty_rate, bandwidth, state, rtt_ns;
	uint64_t resume_estimate_ns, resume_true_ns;
	uint64_t switch_bandwidth; /* in the window; 0 = bandwidth */
	bool no_postcopy;	   /* the destination cannot do post-copy */
	bool writes_not_cpu;	   /* a throttle does not slow its writes (device DMA) */
};

struct sim_result {
	enum policy_action action; /* the last decision */
	enum policy_reason reason;
	bool forced;
	bool saw_not_converging; /* reported at some point */
	uint32_t passes;
	uint32_t failed_attempts;
	uint64_t elapsed_ns;
	uint64_t downtime_ns;			/* pause to guest running on the destination */
	uint32_t throttle_peak, throttle_final; /* auto-converge's levels */
	uint32_t throttle_raises;
	bool saw_throttle_ineffective;
};

/* Written in @seconds under a CPU throttle of @thr %: the vCPUs run (100 - thr) %. */
static double sim_dirtied(const struct sim_vm *vm, uint32_t thr, double seconds)
{
	double d = (double)vm->dirty_rate * seconds;

	if (!vm->writes_not_cpu)
		d = d * (100 - thr) / 100;
	return d < (double)vm->wss ? d : (double)vm->wss;
}

/* The engine applies the level the decision asks for. */
static void sim_throttle(struct policy_input *in, const struct policy_decision *d,
			 struct sim_result *res)
{
	res->throttle_raises += d->throttle_pct > in->throttle_pct;
	res->saw_throttle_ineffective |= d->reason == POLICY_R_THROTTLE_INEFFECTIVE;
	in->throttle_pct = d->throttle_pct;
	if (d->throttle_pct > res->throttle_peak)
		res->throttle_peak = d->throttle_pct;
	res->throttle_final = d->throttle_pct;
}

static void simulate(const struct sim_vm *vm, const struct policy_params *p, struct sim_result *res)
{
	struct policy_history h;
	struct policy_input in = {
	    .state_bytes = vm->state,
	    .rtt_ns = vm->rtt_ns,
	    .resume_ns = vm->resume_estimate_ns,
	    .postcopy_available = !vm->no_postcopy,
	};
	struct policy_decision d;
	double now = 0, pass_bytes = (double)vm->ram, dirty_measured = 0;
	double bw = (double)vm->bandwidth;
	unsigned steps = 0;

	memset(res, 0, sizeof(*res));
	policy_history_init(&h);
	for (;;) {
		/* Send the pass, asking the policy every simulated second. */
		double start = now, left = pass_bytes, dirtied;

		if (++steps > SIM_MAX_STEPS)
			fail_msg("simulation does not end: %u passes, %.1f s", in.passes, now);

		while (left > 0) {
			double step = left / bw < 1.0 ? left / bw : 1.0;

			now += step;
			left -= step * bw;
			if (left <= 0)
				break;
			dirtied = sim_dirtied(vm, in.throttle_pct, now - start);
			in.mid_pass = true;
			in.elapsed_ns = (uint64_t)(now * 1e9);
			in.pass_left_bytes = (uint64_t)left;
			in.remaining_bytes = (uint64_t)(left + dirtied);
			/* The first pass reports the bandwidth so far; later ones the last. */
			in.bandwidth = vm->bandwidth;
			in.dirty_rate = (uint64_t)dirty_measured;
			policy_decide(p, &in, &h, &d);
			res->saw_not_converging |= d.not_converging;
			if (d.action != POLICY_CONTINUE)
				goto act;
		}
		now += SIM_SYNC_S;
		dirtied = sim_dirtied(vm, in.throttle_pct, now - start);
		dirty_measured = dirtied / (now - start);
		in.passes++;
		in.mid_pass = false;
		in.elapsed_ns = (uint64_t)(now * 1e9);
		in.bandwidth = vm->bandwidth;
		in.dirty_rate = (uint64_t)dirty_measured;
		in.remaining_bytes = (uint64_t)dirtied;
		in.pass_left_bytes = 0;
		policy_decide(p, &in, &h, &d);
		res->saw_not_converging |= d.not_converging;
		sim_throttle(&in, &d, res);
		pass_bytes = dirtied;
		if (d.action == POLICY_CONTINUE)
			continue;
	act:
		res->action = d.action;
		res->reason = d.reason;
		res->forced = d.forced;
		res->passes = in.passes;
		res->elapsed_ns = (uint64_t)(now * 1e9);
		if (d.action == POLICY_ABORT)
			return;

		/* The switchover window, as the engine would time it. */
		double wbw = (double)(vm->switch_bandwidth ? vm->switch_bandwidth : vm->bandwidth);
		double ram = d.action == POLICY_POSTCOPY ? 0 : (double)in.remaining_bytes;
		double ready = (ram + (double)vm->state) / wbw * 1e9 + (double)vm->rtt_ns +
			       (double)vm->resume_true_ns;
		double deadline = (double)(p->downtime_limit_ns - d.margin_ns);

		if (d.forced || ready <= deadline) {
			/* GO reaches the destination half a round trip later. */
			res->downtime_ns = (uint64_t)(ready + (double)vm->rtt_ns / 2);
			return;
		}
		/* READY too late: the source resumes the guest and tries again later. */
		in.failed_attempts++;
		in.last_attempt_ns = (uint64_t)ready;
		res->failed_attempts = in.failed_attempts;
		now += deadline / 1e9;
		pass_bytes = (double)in.remaining_bytes + sim_dirtied(vm, 0, deadline / 1e9);
		if (pass_bytes > (double)vm->wss && pass_bytes > (double)in.remaining_bytes)
			pass_bytes =
			    (double)(in.remaining_bytes > vm->wss ? in.remaining_bytes : vm->wss);
	}
}

/* 4 GiB guest on 10 GbE, 1 MiB state, 100 us round trip, 2 ms resume. */
#define SIM_VM(...)                                                                           \
	{                                                                                     \
		.ram = 4 * GiB, .bandwidth = 1250 * MB, .state = 1 * MiB, .rtt_ns = 100 * US, \
		.resume_estimate_ns = 2 * MS, .resume_true_ns = 2 * MS, __VA_ARGS__           \
	}

static void test_sim_light_writer(void **state __attribute__((unused)))
{
	struct sim_vm vm = SIM_VM(.dirty_rate = 20 * MB, .wss = 64 * MiB);
	struct policy_params p = PARAMS();
	struct sim_result r;

	simulate(&vm, &p, &r);
	print_message(
	    "[          ] light writer: %s %s after %u passes, %.1f s, downtime %.2f ms\n",
	    policy_action_name(r.action), policy_reason_name(r.reason), r.passes,
	    (double)r.elapsed_ns / 1e9, (double)r.downtime_ns / 1e6);
	assert_int_equal(r.action, POLICY_SWITCHOVER);
	assert_int_equal(r.reason, POLICY_R_CONVERGED);
	assert_false(r.forced);
	assert_false(r.saw_not_converging);
	assert_true(r.passes <= 4);
	assert_int_equal(r.failed_attempts, 0);
	assert_true(r.downtime_ns <= p.downtime_limit_ns);
	/* It went on past the first fit (about 57 ms after pass 1) for a smaller one. */
	assert_true(r.passes >= 2);
	assert_true(r.downtime_ns < 10 * MS);

	/* With gain-pct 100 it switches at the first fit: pass 1, larger downtime. */
	struct sim_result r1;
	p.gain_pct = 100;
	simulate(&vm, &p, &r1);
	assert_int_equal(r1.action, POLICY_SWITCHOVER);
	assert_int_equal(r1.passes, 1);
	assert_true(r1.downtime_ns > r.downtime_ns);
	assert_true(r1.downtime_ns <= p.downtime_limit_ns);
}

/* Dirties 2 GB/s over a 2 GiB working set, on a 1.25 GB/s link. */
#define HEAVY_VM SIM_VM(.dirty_rate = 2 * GB, .wss = 2 * GiB)

static void test_sim_heavy_writer_timeout_abort(void **state __attribute__((unused)))
{
	struct sim_vm vm = HEAVY_VM;
	struct policy_params p = PARAMS(.timeout_ns = 30 * SEC);
	struct sim_result r;

	simulate(&vm, &p, &r);
	print_message("[          ] heavy writer: %s %s after %u passes, %.1f s\n",
		      policy_action_name(r.action), policy_reason_name(r.reason), r.passes,
		      (double)r.elapsed_ns / 1e9);
	assert_true(r.saw_not_converging);
	assert_int_equal(r.action, POLICY_ABORT);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_ABORT);
	/* Within one check (a second, or a 1.7 s pass) of the timeout. */
	assert_true(r.elapsed_ns >= 30 * SEC && r.elapsed_ns < 32 * SEC);
}

static void test_sim_heavy_writer_timeout_force(void **state __attribute__((unused)))
{
	struct sim_vm vm = HEAVY_VM;
	struct policy_params p = PARAMS(.timeout_ns = 30 * SEC, .on_timeout = POLICY_TIMEOUT_FORCE);
	struct sim_result r;

	simulate(&vm, &p, &r);
	assert_true(r.saw_not_converging);
	assert_int_equal(r.action, POLICY_SWITCHOVER);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_FORCE);
	assert_true(r.forced);
	assert_true(r.downtime_ns > p.downtime_limit_ns); /* what "forced" warns about */
}

static void test_sim_heavy_writer_postcopy(void **state __attribute__((unused)))
{
	struct sim_vm vm = HEAVY_VM;
	struct policy_params p = PARAMS(.timeout_ns = 30 * SEC, PC_P);
	struct sim_result r;

	/* Post-copy allowed: taken as soon as non-convergence is established. */
	simulate(&vm, &p, &r);
	assert_int_equal(r.action, POLICY_POSTCOPY);
	assert_int_equal(r.reason, POLICY_R_NOT_CONVERGING);
	assert_int_equal(r.passes, 4); /* anchor at pass 1, 3 passes without progress */
	assert_true(r.elapsed_ns < 30 * SEC);
	assert_true(r.downtime_ns <= p.downtime_limit_ns);

	/* Hybrid, one pass then post-copy. */
	p.postcopy_after_passes = 1;
	simulate(&vm, &p, &r);
	assert_int_equal(r.action, POLICY_POSTCOPY);
	assert_int_equal(r.reason, POLICY_R_HYBRID_PASSES_DONE);
	assert_int_equal(r.passes, 1);

	/* Post-copy on timeout, but the destination cannot: pre-copy until then, abort. */
	vm.no_postcopy = true;
	p = (struct policy_params)PARAMS(.timeout_ns = 30 * SEC,
					 .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P);
	simulate(&vm, &p, &r);
	assert_true(r.saw_not_converging);
	assert_int_equal(r.action, POLICY_ABORT);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE);
	assert_true(r.elapsed_ns >= 30 * SEC);
}

/*
 * Auto-converge, post-copy not allowed: the heavy writer is slowed down
 * until pre-copy converges, within the limit and long before the timeout.
 * The same with writes a throttle cannot slow (device DMA): raised to its
 * max, found ineffective after stall_passes passes there, lifted; the
 * timeout then ends it as without auto-converge.
 */
static void test_sim_heavy_writer_auto_converge(void **state __attribute__((unused)))
{
	struct sim_vm vm = HEAVY_VM;
	struct policy_params p = PARAMS(.timeout_ns = 60 * SEC, AC_P);
	struct sim_result r;

	simulate(&vm, &p, &r);
	print_message("[          ] heavy writer, auto-converge: %s %s after %u passes, %.1f s, "
		      "downtime %.1f ms, throttle peak %u%% in %u raises, final %u%%\n",
		      policy_action_name(r.action), policy_reason_name(r.reason), r.passes,
		      (double)r.elapsed_ns / 1e9, (double)r.downtime_ns / 1e6, r.throttle_peak,
		      r.throttle_raises, r.throttle_final);
	assert_true(r.saw_not_converging);
	assert_int_equal(r.action, POLICY_SWITCHOVER);
	assert_false(r.forced);
	assert_true(r.downtime_ns <= p.downtime_limit_ns);
	assert_true(r.elapsed_ns < 30 * SEC);
	/* 2 GB/s against 1.25 GB/s: 20 % is not enough, 99 % is more than needed. */
	assert_true(r.throttle_peak > POLICY_DEFAULT_THROTTLE_INITIAL && r.throttle_peak < 99);
	assert_int_equal(r.throttle_final, r.throttle_peak); /* held until the switch */
	assert_false(r.saw_throttle_ineffective);

	/* A lower ceiling that cannot do it: lifted as ineffective, then the timeout. */
	p.throttle_max = 30;
	simulate(&vm, &p, &r);
	assert_int_equal(r.throttle_peak, 30);
	assert_true(r.saw_throttle_ineffective);
	assert_int_equal(r.throttle_final, 0);
	assert_int_equal(r.action, POLICY_ABORT);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_ABORT);

	/* Writes the throttle cannot slow: the same, at the default ceiling. */
	vm.writes_not_cpu = true;
	p.throttle_max = POLICY_DEFAULT_THROTTLE_MAX;
	simulate(&vm, &p, &r);
	assert_int_equal(r.throttle_peak, 99);
	assert_true(r.saw_throttle_ineffective);
	assert_int_equal(r.throttle_final, 0);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_ABORT);

	/* Post-copy allowed as well: it is taken, and nothing is throttled. */
	vm.writes_not_cpu = false;
	p = (struct policy_params)PARAMS(.timeout_ns = 60 * SEC, AC_P, PC_P);
	simulate(&vm, &p, &r);
	assert_int_equal(r.action, POLICY_POSTCOPY);
	assert_int_equal(r.throttle_peak, 0);
}

/* A 64 GiB guest over 1 Gbit/s: the timeout fires during the first pass. */
static void test_sim_timeout_in_first_pass(void **state __attribute__((unused)))
{
	struct sim_vm vm =
	    SIM_VM(.ram = 64 * GiB, .bandwidth = 125 * MB, .dirty_rate = 10 * MB, .wss = 256 * MiB);
	struct policy_params p = PARAMS(.timeout_ns = 60 * SEC);
	struct sim_result r;

	simulate(&vm, &p, &r);
	assert_int_equal(r.action, POLICY_ABORT);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_ABORT);
	assert_int_equal(r.passes, 0);
	assert_true(r.elapsed_ns >= 60 * SEC && r.elapsed_ns <= 61 * SEC);

	/* Post-copy on timeout starts there, with the bandwidth measured so far. */
	p = (struct policy_params)PARAMS(.timeout_ns = 60 * SEC,
					 .on_timeout = POLICY_TIMEOUT_POSTCOPY, PC_P);
	simulate(&vm, &p, &r);
	assert_int_equal(r.action, POLICY_POSTCOPY);
	assert_int_equal(r.reason, POLICY_R_TIMEOUT_POSTCOPY);
	assert_int_equal(r.passes, 0);
}

static void test_sim_overrun_learned(void **state __attribute__((unused)))
{
	/*
	 * The link carries only 1 GB/s in the window, not the 1.25 measured.
	 * Switching at the first fit (300 MB: 243 ms predicted) overruns; the
	 * policy adds the 60 ms error and the next attempt, after one more
	 * pass, is within the limit.
	 */
	struct sim_vm vm = SIM_VM(.dirty_rate = 500 * MB, .wss = 300 * MB, .switch_bandwidth = GB);
	struct policy_params p = PARAMS(.gain_pct = 100);
	struct sim_result r;

	simulate(&vm, &p, &r);
	print_message("[          ] overrun: %s %s after %u passes, %u failed, downtime %.1f ms\n",
		      policy_action_name(r.action), policy_reason_name(r.reason), r.passes,
		      r.failed_attempts, (double)r.downtime_ns / 1e6);
	assert_int_equal(r.failed_attempts, 1);
	assert_int_equal(r.action, POLICY_SWITCHOVER);
	assert_false(r.forced);
	assert_true(r.downtime_ns <= p.downtime_limit_ns);

	/*
	 * A destination whose load always takes 290 ms more than it says: the
	 * lesson fades, so it is tried again (a slowness might have been
	 * transient), fails each time, and the attempts run out.
	 */
	vm = (struct sim_vm)SIM_VM(.dirty_rate = 20 * MB, .wss = 64 * MiB,
				   .resume_true_ns = 292 * MS);
	p = (struct policy_params)PARAMS(.timeout_ns = 60 * SEC);
	simulate(&vm, &p, &r);
	assert_int_equal(r.failed_attempts, p.max_attempts);
	assert_int_equal(r.action, POLICY_ABORT);
	assert_int_equal(r.reason, POLICY_R_ATTEMPTS_EXHAUSTED);

	/* Errors that do not go away exhaust the attempts. */
	vm = (struct sim_vm)SIM_VM(.dirty_rate = 500 * MB, .wss = 300 * MB,
				   .switch_bandwidth = 500 * MB);
	p = (struct policy_params)PARAMS(.gain_pct = 100, .max_attempts = 1);
	simulate(&vm, &p, &r);
	assert_int_equal(r.failed_attempts, 1);
	assert_int_equal(r.action, POLICY_ABORT);
	assert_int_equal(r.reason, POLICY_R_ATTEMPTS_EXHAUSTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decision_table),
	    cmocka_unit_test(test_predict_downtime),
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_history),
	    cmocka_unit_test(test_estimate),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_properties),
	    cmocka_unit_test(test_sim_light_writer),
	    cmocka_unit_test(test_sim_heavy_writer_timeout_abort),
	    cmocka_unit_test(test_sim_heavy_writer_timeout_force),
	    cmocka_unit_test(test_sim_heavy_writer_postcopy),
	    cmocka_unit_test(test_sim_heavy_writer_auto_converge),
	    cmocka_unit_test(test_sim_timeout_in_first_pass),
	    cmocka_unit_test(test_sim_overrun_learned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
