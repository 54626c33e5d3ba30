// SPDX-License-Identifier: GPL-2.0-only
/*
 * Auto-converge: when pre-copy does not converge and post-copy is not
 * taken, slow the guest down until it does (docs/policy.md, "Throttling").
 *
 * The rules, judged at pass ends only (the level a pass ran under is what
 * its dirty set shows; mid-pass calls hold the level):
 *  - start at throttle_initial once the pass ends say "not converging"
 *    (the same stall rule that would otherwise only be reported);
 *  - once throttled, every pass end that is still over the limit and made
 *    no progress (the remaining set not stall_pct below the anchor) adds
 *    throttle_increment, up to throttle_max; a pass that did make
 *    progress keeps the level: it helps, and more would only cost the guest;
 *  - "applied only while it helps": at throttle_max, stall_passes pass ends
 *    without progress mean the throttle cannot make this migration
 *    converge (the writes are not the vCPUs' to slow, or not enough): it is
 *    lifted and not applied again in this migration ("throttle-ineffective");
 *  - a raise that did not cut the measured dirty rate by stall_pct is said
 *    so (throttle_no_effect): the guest had headroom the throttle ate first,
 *    or its working set is still rewritten whole in every pass;
 *  - abort lifts it; switchover and post-copy keep it (the engine lifts it
 *    when the migration ends, and a rolled-back attempt goes on throttled).
 *
 * Pure like policy.c: no clock, no I/O; the engine applies the level.
 */
#include "migration/policy/policy_throttle.h"

#include <errno.h>

__extension__ typedef unsigned __int128 u128;

/* tailslow aims at a dirty rate of half the bandwidth, QEMU's
 * throttle-trigger-threshold default. */
#define THROTTLE_TAILSLOW_TARGET_PCT 50

int policy_throttle_params_check(const struct policy_params *p, struct ferr *err)
{
	if (!p->auto_converge)
		return 0;
	if (p->throttle_initial < 1 || p->throttle_initial > 99)
		return ferr_set(err, -EINVAL, "cpu-throttle-initial %u%% must be 1 to 99",
				p->throttle_initial);
	if (p->throttle_increment < 1 || p->throttle_increment > 99)
		return ferr_set(err, -EINVAL, "cpu-throttle-increment %u%% must be 1 to 99",
				p->throttle_increment);
	if (p->throttle_max < 1 || p->throttle_max > 99)
		return ferr_set(err, -EINVAL, "max-cpu-throttle %u%% must be 1 to 99",
				p->throttle_max);
	return 0;
}

/*
 * The next step up from @cur.  With tailslow, no more than what should
 * bring the dirty rate down to the target if it scales with vCPU time
 * (QEMU's mig_throttle_guest_down): the guest runs (100 - cur) % now and
 * would need (100 - cur) * target / dirty_rate.
 */
static uint32_t throttle_step(const struct policy_params *p, const struct policy_input *in,
			      uint64_t bw, uint32_t cur)
{
	uint32_t inc = p->throttle_increment;

	if (p->throttle_tailslow && bw && in->dirty_rate) {
		u128 target = (u128)bw * THROTTLE_TAILSLOW_TARGET_PCT / 100;
		uint32_t cpu_now = 100 - cur;
		uint32_t cpu_ideal = target >= in->dirty_rate
					 ? cpu_now
					 : (uint32_t)(cpu_now * target / in->dirty_rate);
		uint32_t want = cpu_now - cpu_ideal;

		if (want < inc)
			inc = want ? want : 1;
	}
	return cur + inc < p->throttle_max ? cur + inc : p->throttle_max;
}

/* Once per pass end: what the pass under the current level showed. */
static void throttle_judge(const struct policy_params *p, const struct policy_input *in,
			   struct policy_history *h)
{
	bool progress = h->stalled == 0; /* record_pass() set a new anchor */

	if (in->passes <= h->thr_pass)
		return;
	h->thr_pass = in->passes;
	if (in->throttle_pct && in->throttle_pct >= p->throttle_max && !progress)
		h->thr_stalled_at_max++;
	else
		h->thr_stalled_at_max = 0;
	if (h->thr_stalled_at_max >= p->stall_passes)
		h->thr_off = true;
	/* The pass right after a raise ran under it: did the dirty rate fall? */
	h->thr_no_effect =
	    in->throttle_pct && h->thr_raised_at && in->passes == h->thr_raised_at + 1 &&
	    (u128)in->dirty_rate * 100 > (u128)h->thr_rate_before * (100 - p->stall_pct);
}

void policy_throttle(const struct policy_params *p, const struct policy_input *in,
		     struct policy_history *h, const struct policy_throttle_view *v,
		     struct policy_decision *out)
{
	uint32_t cur = in->throttle_pct;

	out->prev_throttle_pct = cur;
	out->throttle_pct = cur;
	/* Giving up, or not asked for (any more): the guest runs full speed. */
	if (out->action == POLICY_ABORT || !p->auto_converge) {
		out->throttle_pct = 0;
		return;
	}
	if (in->mid_pass || in->passes == 0)
		return;
	throttle_judge(p, in, h);
	out->throttle_no_effect = cur && h->thr_no_effect;
	if (h->thr_off) {
		out->throttle_pct = 0;
		if (cur && out->action == POLICY_CONTINUE)
			out->reason = POLICY_R_THROTTLE_INEFFECTIVE;
		return;
	}
	/*
	 * Raise only where another pass is due because the limit is not met:
	 * not while the guest recovers from a rollback, not when the fixed
	 * costs alone exceed the limit (no throttle helps), not when post-copy
	 * is there to finish instead.
	 */
	if (out->action != POLICY_CONTINUE || v->pre_fits || v->postcopy_ok ||
	    (out->reason != POLICY_R_LIMIT_NOT_MET && out->reason != POLICY_R_NOT_CONVERGING))
		return;
	if (cur ? h->stalled == 0 || cur >= p->throttle_max : !v->not_converging)
		return;
	out->throttle_pct =
	    cur ? throttle_step(p, in, v->bw, cur)
		: (p->throttle_initial < p->throttle_max ? p->throttle_initial : p->throttle_max);
	out->reason = POLICY_R_THROTTLING;
	if (in->passes > h->thr_raised_at) {
		h->thr_raised_at = in->passes;
		h->thr_rate_before = in->dirty_rate;
	}
}
