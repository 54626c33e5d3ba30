// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration policy (see policy.h and docs/policy.md).
 *
 * Everything that decides whether the guarantee holds is integer arithmetic
 * (128-bit where a product can overflow, saturating otherwise), so that a
 * prediction exactly at the limit is decided exactly.  Doubles are used only
 * for the soft questions: is another pass worth it, and when will it end.
 */
#include "migration/policy/policy.h"
#include "migration/policy/policy_throttle.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NSEC_PER_SEC 1000000000ull
/* QEMU's ceiling for downtime-limit; beyond it the figure is a typo. */
/* Bound on the convergence ETA's pass-by-pass walk. */
#define POLICY_ETA_MAX_STEPS 10000u

__extension__ typedef unsigned __int128 u128; /* gcc and clang, 64-bit */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_u128(u128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

static uint64_t pct_of(uint64_t v, uint32_t pct)
{
	return sat_u128((u128)v * pct / 100);
}

/* Saturating: 2^64 and beyond become UINT64_MAX (POLICY_NS_INF for times). */
static uint64_t u64_from_double(double v)
{
	if (!(v >= 0))
		return 0;
	if (v >= 18446744073709551616.0)
		return UINT64_MAX;
	return (uint64_t)v;
}

void policy_params_default(struct policy_params *p)
{
	*p = (struct policy_params){
	    .downtime_limit_ns = POLICY_DEFAULT_DOWNTIME_LIMIT_NS,
	    .max_bandwidth = 0,
	    .timeout_ns = 0,
	    .on_timeout = POLICY_TIMEOUT_ABORT,
	    .postcopy = false,
	    .postcopy_after_passes = POLICY_PASSES_OFF,
	    .margin_pct = POLICY_DEFAULT_MARGIN_PCT,
	    .gain_pct = POLICY_DEFAULT_GAIN_PCT,
	    .stall_passes = POLICY_DEFAULT_STALL_PASSES,
	    .stall_pct = POLICY_DEFAULT_STALL_PCT,
	    .max_passes = POLICY_DEFAULT_MAX_PASSES,
	    .max_attempts = POLICY_DEFAULT_MAX_ATTEMPTS,
	    .auto_converge = false,
	    .throttle_initial = POLICY_DEFAULT_THROTTLE_INITIAL,
	    .throttle_increment = POLICY_DEFAULT_THROTTLE_INCREMENT,
	    .throttle_max = POLICY_DEFAULT_THROTTLE_MAX,
	    .throttle_tailslow = false,
	};
}

int policy_params_check(const struct policy_params *p, struct ferr *err)
{
	if (p->downtime_limit_ns == 0 || p->downtime_limit_ns > POLICY_MAX_DOWNTIME_LIMIT_NS)
		return ferr_set(err, -EINVAL, "downtime-limit must be above 0 and at most 2000 s");
	if (p->margin_pct >= 100)
		return ferr_set(err, -EINVAL, "margin %u%% must be below 100%% of downtime-limit",
				p->margin_pct);
	if (p->gain_pct > 100)
		return ferr_set(err, -EINVAL, "gain %u%% must be at most 100%%", p->gain_pct);
	if (p->stall_pct >= 100)
		return ferr_set(err, -EINVAL, "stall %u%% must be below 100%%", p->stall_pct);
	if (p->stall_passes == 0)
		return ferr_set(err, -EINVAL, "stall-passes must be at least 1");
	if (p->max_passes == 0)
		return ferr_set(err, -EINVAL, "max-passes must be at least 1");
	if (p->max_attempts == 0)
		return ferr_set(err, -EINVAL, "max-attempts must be at least 1");
	if ((unsigned)p->on_timeout > POLICY_TIMEOUT_FORCE)
		return ferr_set(err, -EINVAL, "on-timeout %u is not abort, postcopy or force",
				(unsigned)p->on_timeout);
	if (p->on_timeout == POLICY_TIMEOUT_POSTCOPY && !p->postcopy)
		return ferr_set(err, -EINVAL, "on-timeout postcopy needs post-copy allowed");
	if (p->postcopy_after_passes != POLICY_PASSES_OFF && !p->postcopy)
		return ferr_set(err, -EINVAL,
				"postcopy-after-passes needs post-copy allowed (capability "
				"postcopy-ram)");
	if (p->postcopy_after_passes != POLICY_PASSES_OFF &&
	    p->postcopy_after_passes > p->max_passes)
		return ferr_set(err, -EINVAL, "postcopy-after-passes %u exceeds max-passes %u",
				p->postcopy_after_passes, p->max_passes);
	return policy_throttle_params_check(p, err);
}

void policy_history_init(struct policy_history *h)
{
	memset(h, 0, sizeof(*h));
}

uint64_t policy_predict_downtime(uint64_t remaining_bytes, uint64_t state_bytes, uint64_t bandwidth,
				 uint64_t rtt_ns, uint64_t resume_ns)
{
	if (!bandwidth)
		return POLICY_NS_INF;
	/* < 2^65 bytes times 10^9 < 2^95: no overflow in 128 bits. */
	u128 bytes = (u128)remaining_bytes + state_bytes;
	u128 ns = (bytes * NSEC_PER_SEC + bandwidth - 1) / bandwidth;
	return sat_add(sat_add(sat_u128(ns), rtt_ns), resume_ns);
}

/*
 * The last two pass ends, counting this call's if it is a new one that
 * policy_decide() has not recorded yet (policy_estimate() may run first).
 */
struct recent {
	uint32_t n; /* pass ends known, at most 2 */
	uint64_t remaining, prev_remaining;
	uint64_t bandwidth, prev_bandwidth;
};

static void recent_passes(const struct policy_input *in, const struct policy_history *h,
			  struct recent *r)
{
	if (!in->mid_pass && in->passes > h->passes) {
		r->n = h->recorded ? 2 : 1;
		r->remaining = in->remaining_bytes;
		r->bandwidth = in->bandwidth;
		r->prev_remaining = h->remaining;
		r->prev_bandwidth = h->bandwidth;
	} else {
		r->n = h->recorded < 2 ? h->recorded : 2;
		r->remaining = h->remaining;
		r->bandwidth = h->bandwidth;
		r->prev_remaining = h->prev_remaining;
		r->prev_bandwidth = h->prev_bandwidth;
	}
}

/*
 * The bandwidth predictions use: the figure of this call, but no more than
 * that of the previous pass end and no more than the cap.  The last pass
 * before a switchover is the shortest and its measurement the noisiest (a
 * few MB can vanish into socket buffers at memory speed); one pass of delay
 * when the link really got faster is the price of not trusting a spike.
 */
static uint64_t effective_bandwidth(const struct policy_params *p, const struct policy_input *in,
				    const struct recent *r)
{
	uint64_t bw = in->bandwidth;
	uint64_t before = in->mid_pass ? r->bandwidth : r->prev_bandwidth;

	if (before && before < bw) /* 0: no measurement, and none now stays 0 */
		bw = before;
	if (p->max_bandwidth && bw > p->max_bandwidth)
		bw = p->max_bandwidth;
	return bw;
}

/*
 * The margin: a share of the limit, and never less than the flight of GO
 * to the destination (rtt / 2), which happens after READY and so is not in
 * the prediction but is in the downtime.
 */
static uint64_t margin_ns(const struct policy_params *p, const struct policy_input *in)
{
	uint64_t m = pct_of(p->downtime_limit_ns, p->margin_pct);
	uint64_t half_rtt = in->rtt_ns / 2;

	return m > half_rtt ? m : half_rtt;
}

static bool fits(uint64_t predicted, uint64_t margin, uint64_t limit)
{
	return predicted != POLICY_NS_INF && sat_add(predicted, margin) <= limit;
}

/* Remaining set per pass, as the last two pass ends saw it; 0 if unknown. */
static double observed_ratio(const struct recent *r)
{
	if (r->n < 2)
		return 0;
	if (!r->prev_remaining)
		return r->remaining ? 1 : 0;
	return (double)r->remaining / (double)r->prev_remaining;
}

/*
 * Expected remaining(next pass end) / remaining(now), >= 0.  The model: sending R
 * takes R / bw, during which the guest dirties dirty_rate * R / bw.  A rate
 * measured over a long pass undercounts what a short one sees (rewrites of
 * one page coalesce), so the model is optimistic; the observed shrink of
 * the last pass is the reality check, and the larger of the two wins.
 */
static double expected_ratio(const struct policy_input *in, uint64_t bw, const struct recent *r)
{
	double rho = bw ? (double)in->dirty_rate / (double)bw : 1;
	double obs = observed_ratio(r);

	if (obs > rho)
		rho = obs;
	return rho;
}

/* A pass end: update convergence tracking, once per pass. */
static void record_pass(const struct policy_params *p, const struct policy_input *in,
			struct policy_history *h)
{
	uint64_t r = in->remaining_bytes;

	if (in->mid_pass || in->passes <= h->passes)
		return;
	/* Meaningful: at least stall_pct below the anchor (128 bits: no overflow). */
	if (h->recorded == 0 || (u128)r * 100 < (u128)h->anchor * (100 - p->stall_pct)) {
		h->anchor = r;
		h->stalled = 0;
	} else {
		h->stalled++; /* at most once per pass number: cannot wrap */
	}
	h->prev_remaining = h->remaining;
	h->remaining = r;
	h->prev_bandwidth = h->bandwidth;
	h->bandwidth = in->bandwidth;
	h->passes = in->passes;
	h->recorded++;
}

/*
 * A switchover we ordered overran and was rolled back.  Its measured
 * downtime against what the formula predicted for it is an error the next
 * predictions must include.  The error is kept additive and as the worst
 * seen: its usual causes (destination load slower than its estimate, TCP
 * restarting after the pause, pages dirtied between the last harvest and
 * the pause) do not shrink with the remaining set.
 */
uint64_t policy_penalty_now(const struct policy_history *h, uint64_t elapsed_ns)
{
	uint64_t age = elapsed_ns > h->penalty_at_ns ? elapsed_ns - h->penalty_at_ns : 0;
	uint64_t halvings = age / POLICY_PENALTY_HALF_LIFE_NS;

	return halvings >= 64 ? 0 : h->penalty_ns >> halvings;
}

static void learn_from_failure(const struct policy_params *p, const struct policy_input *in,
			       struct policy_history *h)
{
	uint64_t margin = margin_ns(p, in);
	uint64_t deadline, actual, base;

	if (in->failed_attempts <= h->attempts_seen)
		return;
	h->attempts_seen = in->failed_attempts;
	/* A failed attempt missed its READY deadline, whatever was measured. */
	deadline = margin < p->downtime_limit_ns ? p->downtime_limit_ns - margin : 0;
	actual = in->last_attempt_ns > deadline ? in->last_attempt_ns : deadline;
	/* Not ours (history lost?): assume it was predicted at the deadline. */
	base = h->switches ? h->switch_predicted_ns : deadline;
	uint64_t now = policy_penalty_now(h, in->elapsed_ns);
	h->penalty_ns = actual > base && actual - base > now ? actual - base : now;
	h->penalty_at_ns = in->elapsed_ns;
}

/* Everything the choice depends on, computed once. */
struct assessment {
	const struct policy_params *p;
	const struct policy_input *in;
	uint64_t bw; /* effective bandwidth, 0 = none */
	uint64_t margin;
	uint64_t raw_pre;  /* formula: pre-copy switchover now */
	uint64_t raw_post; /* formula: post-copy switch now (no RAM) */
	uint64_t pre;	   /* ... with the learned penalty */
	uint64_t post;
	bool pre_fits;
	bool post_fits;	  /* also: the fixed costs alone fit */
	bool postcopy_ok; /* allowed and available */
	bool attempts_left;
	bool timed_out;
	bool not_converging;
	double rho; /* expected_ratio() */
};

static void assess(const struct policy_params *p, const struct policy_input *in,
		   const struct policy_history *h, struct assessment *a)
{
	struct recent r;

	recent_passes(in, h, &r);
	a->p = p;
	a->in = in;
	a->bw = effective_bandwidth(p, in, &r);
	a->margin = margin_ns(p, in);
	a->raw_pre = policy_predict_downtime(in->remaining_bytes, in->state_bytes, a->bw,
					     in->rtt_ns, in->resume_ns);
	a->raw_post = policy_predict_downtime(0, in->state_bytes, a->bw, in->rtt_ns, in->resume_ns);
	uint64_t penalty = policy_penalty_now(h, in->elapsed_ns);
	a->pre = a->raw_pre == POLICY_NS_INF ? a->raw_pre : sat_add(a->raw_pre, penalty);
	a->post = a->raw_post == POLICY_NS_INF ? a->raw_post : sat_add(a->raw_post, penalty);
	/*
	 * Without a bandwidth the predictions are POLICY_NS_INF and nothing
	 * fits: nothing is ever switched on a guess.  And before the first
	 * pass has ended a switchover is not allowed at all (rule 1).
	 */
	a->pre_fits = in->passes >= 1 && fits(a->pre, a->margin, p->downtime_limit_ns);
	a->post_fits = fits(a->post, a->margin, p->downtime_limit_ns);
	a->postcopy_ok = p->postcopy && in->postcopy_available;
	a->attempts_left = in->failed_attempts < p->max_attempts;
	a->timed_out = p->timeout_ns && in->elapsed_ns >= p->timeout_ns;
	a->rho = expected_ratio(in, a->bw, &r);
	/* Over the limit although an empty RAM set would fit, and stuck. */
	a->not_converging = in->passes >= 1 && a->post_fits && !a->pre_fits &&
			    (h->stalled >= p->stall_passes || in->passes >= p->max_passes);
}

struct verdict {
	enum policy_action action;
	enum policy_reason reason;
	bool forced;
};

static struct verdict verdict(enum policy_action action, enum policy_reason reason)
{
	return (struct verdict){action, reason, false};
}

/*
 * Is one more pass worth it although the limit is met?  Only if it should
 * cut the predicted downtime by more than gain_pct.  The downtime is the
 * RAM part (R / bw) plus fixed costs; the next pass leaves rho * R, so
 *	gain = (1 - rho) * share,  share = (R / bw) / predicted.
 * Judging the downtime, not R alone, is what ends a geometric convergence:
 * once the RAM left is a small share, shrinking it further buys nothing.
 * *converged tells the two ways the gain can be small apart: small share
 * ("converged") or rho near 1 ("limit-met-no-further-gain").
 */
static bool worth_another_pass(const struct assessment *a, bool *converged)
{
	double ram_ns = (double)a->in->remaining_bytes * NSEC_PER_SEC / (double)a->bw;
	double total = ram_ns + (double)a->post;
	double share = total > 0 ? ram_ns / total : 0;
	double rho = a->rho > 1 ? 1 : a->rho;
	double gain = (1 - rho) * share;

	*converged = share * 100 <= a->p->gain_pct;
	return gain * 100 > a->p->gain_pct;
}

static struct verdict on_timeout(const struct assessment *a)
{
	/* It fits now: finishing within the limit beats every timeout action. */
	if (a->pre_fits && a->attempts_left)
		return verdict(POLICY_SWITCHOVER, POLICY_R_TIMEOUT_LIMIT_MET);
	switch (a->p->on_timeout) {
	case POLICY_TIMEOUT_FORCE:
		return (struct verdict){POLICY_SWITCHOVER, POLICY_R_TIMEOUT_FORCE, true};
	case POLICY_TIMEOUT_POSTCOPY:
		if (!a->postcopy_ok)
			return verdict(POLICY_ABORT, POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE);
		if (!a->attempts_left)
			return verdict(POLICY_ABORT, POLICY_R_ATTEMPTS_EXHAUSTED);
		/* Post-copy's own switch is guarded too: no forcing by the back door. */
		if (!a->post_fits)
			return verdict(POLICY_ABORT, POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT);
		return verdict(POLICY_POSTCOPY, POLICY_R_TIMEOUT_POSTCOPY);
	case POLICY_TIMEOUT_ABORT:
	default:
		return verdict(POLICY_ABORT, POLICY_R_TIMEOUT_ABORT);
	}
}

/* The procedure of docs/policy.md, in its order. */
static struct verdict choose(const struct assessment *a)
{
	const struct policy_params *p = a->p;
	const struct policy_input *in = a->in;
	bool converged;

	if (a->timed_out)
		return on_timeout(a);
	if (!a->attempts_left)
		return verdict(POLICY_ABORT, POLICY_R_ATTEMPTS_EXHAUSTED);
	/*
	 * A rolled-back attempt paused the guest: it runs at least as long
	 * before the next one, so that two attempts back to back can never
	 * add up to a pause longer than the limit.
	 */
	if (in->failed_attempts && in->since_attempt_ns &&
	    in->since_attempt_ns < in->last_attempt_ns)
		return verdict(POLICY_CONTINUE, POLICY_R_GUEST_RECOVERING);
	if (in->postcopy_requested && a->postcopy_ok && a->post_fits)
		return verdict(POLICY_POSTCOPY, POLICY_R_POSTCOPY_REQUESTED);
	/* Post-copy from the start: nothing measured yet, and nothing to wait
	 * for; the switch's deadline still keeps the limit. */
	if (in->passes == 0 && p->postcopy_after_passes == 0 && a->postcopy_ok)
		return verdict(POLICY_POSTCOPY, POLICY_R_HYBRID_PASSES_DONE);
	if (in->passes == 0)
		return verdict(POLICY_CONTINUE, POLICY_R_FIRST_PASS);
	if (!a->bw)
		return verdict(POLICY_CONTINUE, POLICY_R_NO_BANDWIDTH);
	if (in->mid_pass)
		return verdict(POLICY_CONTINUE, POLICY_R_PASS_IN_PROGRESS);
	/* Not even an empty RAM set would fit: neither switch can keep the limit. */
	if (!a->post_fits)
		return verdict(POLICY_CONTINUE, POLICY_R_LIMIT_UNREACHABLE);

	if (p->postcopy_after_passes != POLICY_PASSES_OFF &&
	    in->passes >= p->postcopy_after_passes && a->postcopy_ok) {
		/* A plain switchover that keeps the limit beats post-copy's risks. */
		if (a->pre_fits)
			return verdict(POLICY_SWITCHOVER, POLICY_R_HYBRID_LIMIT_MET);
		return verdict(POLICY_POSTCOPY, POLICY_R_HYBRID_PASSES_DONE);
	}

	if (a->pre_fits) {
		if (!worth_another_pass(a, &converged))
			return verdict(POLICY_SWITCHOVER,
				       converged ? POLICY_R_CONVERGED : POLICY_R_NO_FURTHER_GAIN);
		/* The pass budget bounds the search for a smaller downtime. */
		if (in->passes >= p->max_passes)
			return verdict(POLICY_SWITCHOVER, POLICY_R_MAX_PASSES);
		return verdict(POLICY_CONTINUE, POLICY_R_STILL_GAINING);
	}

	if (a->not_converging)
		return verdict(a->postcopy_ok ? POLICY_POSTCOPY : POLICY_CONTINUE,
			       POLICY_R_NOT_CONVERGING);
	return verdict(POLICY_CONTINUE, POLICY_R_LIMIT_NOT_MET);
}

void policy_decide(const struct policy_params *p, const struct policy_input *in,
		   struct policy_history *h, struct policy_decision *out)
{
	struct assessment a;
	struct verdict v;

	memset(out, 0, sizeof(*out));
	out->predicted_ns = POLICY_NS_INF;
	out->dirty_rate = in->dirty_rate;
	out->prev_throttle_pct = in->throttle_pct; /* lifted (0) if we go no further */
	if (policy_params_check(p, NULL) < 0) {
		out->action = POLICY_ABORT;
		out->reason = POLICY_R_BAD_PARAMS;
		return;
	}

	learn_from_failure(p, in, h);
	record_pass(p, in, h);
	assess(p, in, h, &a);
	v = choose(&a);

	out->action = v.action;
	out->reason = v.reason;
	out->forced = v.forced;
	out->bandwidth = a.bw;
	out->margin_ns = a.margin;
	out->not_converging = a.not_converging;
	out->predicted_ns = out->action == POLICY_POSTCOPY ? a.post : a.pre;
	policy_throttle(p, in, h,
			&(struct policy_throttle_view){.bw = a.bw,
						       .pre_fits = a.pre_fits,
						       .not_converging = a.not_converging,
						       .postcopy_ok = a.postcopy_ok},
			out);
	/* Remember what we promised, to learn if the engine reports it failed. */
	if (out->action == POLICY_SWITCHOVER && !out->forced) {
		h->switches++;
		h->switch_predicted_ns = a.raw_pre;
	} else if (out->action == POLICY_POSTCOPY) {
		h->switches++;
		h->switch_predicted_ns = a.raw_post;
	}
}

void policy_estimate(const struct policy_params *p, const struct policy_input *in,
		     const struct policy_history *h, struct policy_estimate *est)
{
	struct assessment a;
	double bw, budget_ns, budget, r, t = 0;
	uint32_t steps = 0, max_steps;

	est->downtime_ns = POLICY_NS_INF;
	est->pass_eta_ns = POLICY_NS_INF;
	est->converge_eta_ns = POLICY_NS_INF;
	est->converge_passes = 0;
	est->converge_downtime_ns = POLICY_NS_INF;
	if (policy_params_check(p, NULL) < 0)
		return;
	assess(p, in, h, &a);
	if (!a.bw)
		return;
	bw = (double)a.bw;
	est->downtime_ns = a.pre;
	est->pass_eta_ns = u64_from_double(
	    (double)(in->mid_pass ? in->pass_left_bytes : in->remaining_bytes) * NSEC_PER_SEC / bw);

	/* RAM that fits beside the fixed costs: the convergence target. */
	if (!a.post_fits)
		return;
	budget_ns = (double)(p->downtime_limit_ns - a.margin - a.post);
	budget = budget_ns * bw / NSEC_PER_SEC;

	/*
	 * Walk the geometric model: each pass sends r and leaves rho * r.  A
	 * pass that is under way (or the first) has to be finished first.
	 */
	r = (double)in->remaining_bytes;
	max_steps = p->max_passes > in->passes ? p->max_passes - in->passes : 0;
	if (max_steps > POLICY_ETA_MAX_STEPS)
		max_steps = POLICY_ETA_MAX_STEPS;
	while (r > budget || (steps == 0 && (in->mid_pass || in->passes == 0))) {
		if (steps >= max_steps || (steps > 0 && a.rho >= 1))
			return;
		t += r * NSEC_PER_SEC / bw;
		r *= a.rho;
		steps++;
	}
	est->converge_eta_ns = u64_from_double(t);
	est->converge_passes = steps;
	est->converge_downtime_ns =
	    sat_add(policy_predict_downtime(u64_from_double(r), in->state_bytes, a.bw, in->rtt_ns,
					    in->resume_ns),
		    policy_penalty_now(h, in->elapsed_ns));
}

static const char *const action_names[] = {
    [POLICY_CONTINUE] = "continue",
    [POLICY_SWITCHOVER] = "switchover",
    [POLICY_POSTCOPY] = "postcopy",
    [POLICY_ABORT] = "abort",
};

static const char *const reason_names[POLICY_R_COUNT] = {
    [POLICY_R_FIRST_PASS] = "first-pass",
    [POLICY_R_NO_BANDWIDTH] = "no-bandwidth",
    [POLICY_R_PASS_IN_PROGRESS] = "pass-in-progress",
    [POLICY_R_LIMIT_NOT_MET] = "limit-not-met",
    [POLICY_R_STILL_GAINING] = "limit-met-still-gaining",
    [POLICY_R_CONVERGED] = "converged",
    [POLICY_R_NO_FURTHER_GAIN] = "limit-met-no-further-gain",
    [POLICY_R_MAX_PASSES] = "max-passes",
    [POLICY_R_NOT_CONVERGING] = "not-converging",
    [POLICY_R_LIMIT_UNREACHABLE] = "limit-unreachable",
    [POLICY_R_POSTCOPY_REQUESTED] = "postcopy-requested",
    [POLICY_R_HYBRID_PASSES_DONE] = "hybrid-passes-done",
    [POLICY_R_HYBRID_LIMIT_MET] = "hybrid-limit-met",
    [POLICY_R_TIMEOUT_LIMIT_MET] = "timeout-limit-met",
    [POLICY_R_TIMEOUT_ABORT] = "timeout-abort",
    [POLICY_R_TIMEOUT_FORCE] = "timeout-force",
    [POLICY_R_TIMEOUT_POSTCOPY] = "timeout-postcopy",
    [POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE] = "timeout-postcopy-unavailable",
    [POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT] = "timeout-postcopy-over-limit",
    [POLICY_R_ATTEMPTS_EXHAUSTED] = "attempts-exhausted",
    [POLICY_R_GUEST_RECOVERING] = "guest-recovering",
    [POLICY_R_THROTTLING] = "throttling",
    [POLICY_R_THROTTLE_INEFFECTIVE] = "throttle-ineffective",
    [POLICY_R_BAD_PARAMS] = "bad-params",
};

static const char *const on_timeout_names[] = {
    [POLICY_TIMEOUT_ABORT] = "abort",
    [POLICY_TIMEOUT_POSTCOPY] = "postcopy",
    [POLICY_TIMEOUT_FORCE] = "force",
};

#define NAME_OF(table, i) \
	((unsigned)(i) < sizeof(table) / sizeof(table[0]) && table[i] ? table[i] : "unknown")

const char *policy_action_name(enum policy_action a)
{
	return NAME_OF(action_names, a);
}

const char *policy_reason_name(enum policy_reason r)
{
	return NAME_OF(reason_names, r);
}

const char *policy_on_timeout_name(enum policy_on_timeout t)
{
	return NAME_OF(on_timeout_names, t);
}

/* "12.3 ms", or "unknown". */
static const char *fmt_ms(char *buf, size_t len, uint64_t ns)
{
	if (ns == POLICY_NS_INF)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	return buf;
}

/* ", CPU throttle 20% -> 30%", ", CPU throttle 30%", ", CPU throttle lifted", or "". */
static const char *fmt_throttle(char *buf, size_t len, const struct policy_decision *d)
{
	if (d->throttle_pct != d->prev_throttle_pct && d->throttle_pct)
		snprintf(buf, len, ", CPU throttle %u%% -> %u%%", d->prev_throttle_pct,
			 d->throttle_pct);
	else if (d->throttle_pct)
		snprintf(buf, len, ", CPU throttle %u%%", d->throttle_pct);
	else if (d->prev_throttle_pct)
		snprintf(buf, len, ", CPU throttle lifted (was %u%%)", d->prev_throttle_pct);
	else
		buf[0] = '\0';
	return buf;
}

int policy_describe(const struct policy_params *p, const struct policy_decision *d, char *buf,
		    size_t len)
{
	char pred[32], limit[32], margin[32], thr[48];

	return snprintf(
	    buf, len,
	    "%s %s: predicted downtime %s (limit %s, margin %s), bandwidth %.1f MiB/s, "
	    "dirty rate %.1f MiB/s%s%s%s%s",
	    policy_action_name(d->action), policy_reason_name(d->reason),
	    fmt_ms(pred, sizeof(pred), d->predicted_ns),
	    fmt_ms(limit, sizeof(limit), p->downtime_limit_ns),
	    fmt_ms(margin, sizeof(margin), d->margin_ns), (double)d->bandwidth / (1 << 20),
	    (double)d->dirty_rate / (1 << 20), d->not_converging ? ", not converging" : "",
	    fmt_throttle(thr, sizeof(thr), d),
	    d->throttle_no_effect ? " (the last raise did not reduce the dirty rate)" : "",
	    d->forced ? ", FORCED: downtime not bounded by the limit" : "");
}
