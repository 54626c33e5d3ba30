/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Auto-converge's part of the policy (policy_throttle.c), private to
 * policy/: policy_decide() calls it last, once the action is chosen.
 */
#ifndef FERRY_MIGRATION_POLICY_THROTTLE_H
#define FERRY_MIGRATION_POLICY_THROTTLE_H

#include "migration/policy/policy.h"

/* What the throttle rules need of policy.c's assessment. */
struct policy_throttle_view {
	uint64_t bw;	     /* effective bandwidth, 0 = none */
	bool pre_fits;	     /* a pre-copy switchover fits now */
	bool not_converging; /* over the limit and stalled */
	bool postcopy_ok;    /* post-copy allowed and available */
};

int policy_throttle_params_check(const struct policy_params *p, struct ferr *err);

/*
 * Set out->throttle_pct (and the other throttle fields) from the decision
 * already in @out; may turn its reason into "throttling" or
 * "throttle-ineffective" (the action stays CONTINUE).  @h is updated once
 * per pass end, like the convergence history.
 */
void policy_throttle(const struct policy_params *p, const struct policy_input *in,
		     struct policy_history *h, const struct policy_throttle_view *v,
		     struct policy_decision *out);

#endif
