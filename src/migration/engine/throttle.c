// SPDX-License-Identifier: GPL-2.0-only
/*
 * Auto-converge, the engine's side: the policy decides the CPU throttle
 * (policy_throttle.c), this file applies it to the VM (vm_set_throttle),
 * tells the operator (MIGRATION_THROTTLE), measures what the vCPUs really
 * slept (per pass and in total), and lifts it when the migration ends,
 * whichever way it ends.  Everything here belongs to the migration thread.
 */
#include <stdio.h>

#include "migration/engine/precopy.h"
#include "vm/vm.h"

void pc_throttle_begin(struct pc *pc)
{
	struct mig_src *s = pc->s;

	pthread_mutex_lock(&s->m->lock);
	s->st.auto_converge = s->m->params.auto_converge != 0;
	pthread_mutex_unlock(&s->m->lock);
	vm_throttle_stats(s->m->vm, &pc->thr.mig0);
	pc->thr.pass0 = pc->thr.mig0;
	/* A level set by hand before (x-ferry-throttle) is the policy's to keep
	 * or lift like its own, and is lifted at the end like its own. */
	pc->thr.pct = s->st.throttle_pct = pc->thr.mig0.pct;
}

void pc_throttle_pass_begin(struct pc *pc)
{
	vm_throttle_stats(pc->s->m->vm, &pc->thr.pass0);
}

void pc_throttle_pass_end(struct pc *pc, struct mig_pass_stats *ps)
{
	struct mig_stats *st = &pc->s->st;
	struct vm_throttle_stats now;

	vm_throttle_stats(pc->s->m->vm, &now);
	st->throttle_slept_ns = now.slept_ns - pc->thr.mig0.slept_ns;
	st->throttle_ran_ns = now.ran_ns - pc->thr.mig0.ran_ns;
	if (!ps)
		return;
	ps->throttle_pct = pc->thr.pct;
	ps->throttle_slept_ns = now.slept_ns - pc->thr.pass0.slept_ns;
	ps->throttle_ran_ns = now.ran_ns - pc->thr.pass0.ran_ns;
}

static void pc_throttle_set(struct pc *pc, uint32_t pct, const char *reason, const char *detail)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct ferr err = FERR_INIT;

	if (pct == pc->thr.pct)
		return;
	if (vm_set_throttle(m->vm, pct, &err)) {
		/* The policy keeps to 1..99: not reached; the guest runs as it was. */
		fprintf(stderr, "ferry: %s\n", err.msg);
		return;
	}
	pc->thr.pct = pct;
	s->st.throttle_pct = pct;
	s->st.throttle_changes++;
	if (pct > s->st.throttle_peak_pct)
		s->st.throttle_peak_pct = pct;
	if (m->events.throttle)
		m->events.throttle(m->events.opaque, pct, reason, detail);
	else
		pc_note(pc, "MIGRATION_THROTTLE", reason, detail);
}

void pc_throttle_apply(struct pc *pc, const struct policy_decision *d)
{
	const struct mig_stats *st = &pc->s->st;

	pc_throttle_set(pc, d->throttle_pct, st->policy_reason, st->policy_detail);
}

void pc_throttle_lift(struct pc *pc, const char *why)
{
	char detail[96];

	if (!pc->thr.pct)
		return;
	snprintf(detail, sizeof(detail), "CPU throttle lifted (was %u%%): %s", pc->thr.pct, why);
	pc_throttle_set(pc, 0, "migration-ended", detail);
	pc_throttle_pass_end(pc, NULL); /* the totals, up to now */
}
