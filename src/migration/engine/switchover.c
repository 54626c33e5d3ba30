// SPDX-License-Identifier: GPL-2.0-only
/*
 * One switchover attempt: DESIGN.md section 5, in code.
 *
 *   1. the policy allowed it (precopy.c asked);
 *   2. pause the guest (t0), harvest the dirty log once more, send
 *      SWITCHOVER_PREPARE, the remaining pages, all state, END;
 *   3. the destination loads everything and ACKs END;
 *   4. ACK before t0 + limit - margin: GO, the destination owns the guest.
 *      Otherwise ABORT(RETRY): the guest resumes here, passes go on;
 *   5. nothing slow happens between t0 and GO.
 *
 * The budget is the channel's deadline (channel_set_deadline): every send
 * and receive of the window ends by then whatever the link does, and a
 * record cut short is finished after the guest has resumed
 * (docs/stream-format.md, "Deadlines").  Ownership of the guest moves with
 * it: held by the engine from the pause, handed over with GO, back to the
 * operator on a rollback (vm_hold / vm_release).
 */
#include <errno.h>
#include <stdio.h>

#include "common/clock.h"
#include "common/trace.h"
#include "migration/engine/precopy.h"
#include "migration/transport/channel.h"
#include "vm/dirty.h"
#include "vm/vm.h"

/* What stop/cont/quit are told while a switchover holds the guest. */
#define SW_HANDOVER_WHY                                                                      \
	"a switchover is handing the guest over to the destination (it resumes here if the " \
	"switchover is rolled back; migrate-cancel keeps it here)"

/*
 * What the stream still has in the sockets' send queues reaches the
 * destination before anything of the window.  On a capped link those queues
 * grow to megabytes (autotuning), so the tail of a big pass would be paid
 * for inside the downtime window: a switch to post-copy right after a full
 * pass missed its deadline on every attempt (tests/system/
 * test_postcopy_netns.py, 200 Mbit/s: 70-160 ms of queue against a 50 ms
 * limit).  The guest keeps running until the queues are empty (sent and
 * acknowledged), for at most SW_DRAIN_MAX_NS; then the attempt goes ahead
 * and its deadline decides, as before.
 */
#define SW_DRAIN_MAX_NS	 5000000000ull
#define SW_DRAIN_POLL_NS 1000000u

static void sw_drain(struct pc *pc)
{
	struct mig_src *s = pc->s;
	uint64_t end = clock_now_ns() + SW_DRAIN_MAX_NS;

	while (channel_unsent(s->ch) + mfd_src_unsent(s->mfd) && !mig_cancelled(s->m) &&
	       clock_now_ns() < end)
		mig_sleep_ns(SW_DRAIN_POLL_NS);
}

/* The attempt's line in the switchover table, once its pause has ended. */
static void sw_record(struct pc *pc, enum mig_attempt_outcome outcome,
		      const struct mig_downtime_phases *ph, uint64_t t0, uint64_t end)
{
	struct mig_stats *st = &pc->s->st;

	static const char *const names[] = {
	    [MIG_ATTEMPT_GO] = "go",
	    [MIG_ATTEMPT_ROLLED_BACK] = "rolled-back",
	    [MIG_ATTEMPT_FAILED] = "failed",
	};
	trace_switchover_end(pc->s->m->trace, st->attempts, names[outcome], end > t0 ? end - t0 : 0,
			     pc->pp.downtime_limit_ns);
	if (st->attempts > MIG_ATTEMPT_HISTORY)
		return;
	st->attempt[st->attempts - 1] = (struct mig_attempt_stats){
	    .attempt = st->attempts,
	    .outcome = outcome,
	    .paused_at_ns = t0,
	    .paused_ns = end > t0 ? end - t0 : 0,
	    .bytes = pc->window_bytes,
	    .phases = *ph,
	};
}

/*
 * Roll back an attempt that ran out of time: the guest first, then what
 * the stream still owes (the rest of a record the deadline cut short, at
 * the link's pace, the guest running meanwhile), then ABORT(RETRY).
 * -EAGAIN when the stream goes on; otherwise the migration fails.
 */
static int sw_roll_back(struct pc *pc, const struct mig_downtime_phases *ph, uint64_t t0,
			enum mig_status window, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct stream_msg ab = {.type = STREAM_MSG_ABORT};
	char detail[160];
	int rc;

	mig_src_resume_state(s);
	mig_release_guest(m, true);
	pc->attempt_end_ns = clock_now_ns();
	sw_record(pc, MIG_ATTEMPT_ROLLED_BACK, ph, t0, pc->attempt_end_ns);
	mig_set_status(m, window, MIG_ACTIVE);
	mig_src_set_deadline(s, 0);
	ferr_clear(err);
	pc->failed_attempts++;
	s->st.aborted_attempts++;
	snprintf(detail, sizeof(detail),
		 "paused %.1f ms of a %.1f ms limit (send %.1f ms, destination %.1f ms); "
		 "guest resumed on the source",
		 pc->last_attempt_ns / 1e6, pc->pp.downtime_limit_ns / 1e6, ph->send / 1e6,
		 ph->dest / 1e6);
	pc_note(pc, "MIGRATION_SWITCHOVER_ABORTED", "deadline", detail);
	ab.abort.reason = STREAM_ABORT_RETRY;
	rc = stream_writer_flush_tail(&s->w, err);
	/* Every data channel finishes its cut record too, and goes on. */
	if (!rc && s->mfd)
		rc = mfd_src_flush_tails(s->mfd, err);
	if (!rc)
		rc = stream_write_msg(&s->w, &ab, err);
	if (rc)
		return rc;
	return -EAGAIN;
}

/*
 * One switchover attempt (DESIGN.md section 5).  0: GO sent, the
 * destination owns the guest.  -EAGAIN: rolled back in time, the guest
 * runs on the source again and the stream goes on.  Other: failed (guest
 * resumed on the source).
 *
 * The downtime budget is the channel's deadline, t0 + limit - margin:
 * every send and receive between the pause and GO, the ACK wait included,
 * ends by then whatever the link does (channel_set_deadline).  The margin
 * is what GO's flight and the destination's start may take.
 */
int switchover_attempt(struct pc *pc, const struct policy_decision *d, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct mig_downtime_phases ph = {0};
	struct stream_msg msg;
	uint64_t t0, t, deadline;
	/* Post-copy: the same hand-over, with DISCARD instead of the last pages. */
	bool post = d->action == POLICY_POSTCOPY;
	enum mig_status window = post ? MIG_POSTCOPY_ACTIVE : MIG_DEVICE;
	int rc;

	if (!d->forced)
		sw_drain(pc);
	s->st.attempts++;
	s->st.forced = d->forced;
	t = clock_now_ns();
	rc = mig_hold_guest(m, true, SW_HANDOVER_WHY, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	bool guest_running = m->vm_paused_by_us;
	pthread_mutex_unlock(&m->lock);
	/*
	 * The guest's downtime runs from its first vCPU stopping (t0).  One
	 * paused by the operator stays so if this attempt is rolled back.
	 */
	t0 = guest_running ? vm_pause_started_ns(m->vm) : t;
	deadline = d->forced ? 0 : t0 + pc->pp.downtime_limit_ns - d->margin_ns;
	trace_switchover_phase(m->trace, s->st.attempts, "paused", clock_now_ns() - t0);
	mig_src_set_deadline(s, deadline);
	s->st.pause_at_ns = t0;
	ph.pause = clock_now_ns() - t; /* getting every vCPU out: partly still running */
	t = clock_now_ns();
	mig_set_status(m, MIG_ACTIVE, window);

	rc = s->tracker.ops->sync(&s->tracker, &pc->todo, err);
	ph.harvest = clock_now_ns() - t;
	trace_switchover_phase(m->trace, s->st.attempts, "harvested", clock_now_ns() - t0);
	t = clock_now_ns();
	if (!rc) {
		struct stream_msg sp = {.type = STREAM_REC_SWITCHOVER_PREPARE};
		sp.switchover.remaining = bitmap_count(&pc->todo);
		sp.switchover.flags = (guest_running ? 0 : STREAM_SWITCHOVER_PAUSED) |
				      (post ? STREAM_SWITCHOVER_POSTCOPY : 0);
		rc = stream_write_msg(&s->w, &sp, err);
	}
	uint64_t bytes0 = mig_src_bytes(s);
	s->in_window = true;
	if (!rc)
		rc = post ? postcopy_send_discard(pc, err)
			  : mig_src_send_pages(s, &pc->todo, false, false, deadline, err);
	if (!rc)
		rc = mig_src_send_state(s, err);
	/* Each data channel ends the attempt; the destination ACKs END only
	 * once every one of those arrived (multifd.h). */
	if (!rc && s->mfd)
		rc = mfd_src_sync(s->mfd, s->st.attempts, err);
	if (!rc) {
		s->end_record = s->w.stats.records + 1;
		rc = stream_write_msg(&s->w, &(struct stream_msg){.type = STREAM_REC_END}, err);
	}
	s->in_window = false;
	pc->window_bytes = mig_src_bytes(s) - bytes0;
	ph.send = clock_now_ns() - t;
	trace_switchover_phase(m->trace, s->st.attempts, "sent", clock_now_ns() - t0);
	t = clock_now_ns();
	if (!rc)
		rc = pc_wait_msg(pc, STREAM_MSG_ACK, &msg, err);
	ph.dest = clock_now_ns() - t;
	trace_switchover_phase(m->trace, s->st.attempts, rc ? "no-ack" : "acked",
			       clock_now_ns() - t0);
	if (!rc) {
		/* A full measurement of the destination's part: the next prediction uses it. */
		pc->resume_ns = ph.dest;
		uint64_t go_delay;
		pthread_mutex_lock(&m->lock);
		go_delay = m->params.x_go_delay_ms;
		pthread_mutex_unlock(&m->lock);
		if (go_delay)
			mig_sleep_ns(go_delay *
				     1000000u); /* test only: a window to lose the peer */
		t = clock_now_ns();
		/* From here on, cancel may not resume the guest: it may run there. */
		if (!mig_hand_over(m))
			rc = ferr_set(err, -ECANCELED, "migration cancelled");
		else
			rc = stream_write_msg(&s->w, &(struct stream_msg){.type = STREAM_MSG_GO},
					      err);
		ph.go = clock_now_ns() - t;
		if (!rc) {
			uint64_t now = clock_now_ns();
			mig_src_set_deadline(s, 0);
			s->st.downtime_ns = now - t0;
			s->st.phases = ph;
			sw_record(pc, MIG_ATTEMPT_GO, &ph, t0, now);
			return 0;
		}
	}
	s->st.phases = ph;
	pc->last_attempt_ns = clock_now_ns() - t0;
	if (rc == -ETIME && !s->w.failed.code)
		return sw_roll_back(pc, &ph, t0, window, err);
	mig_src_set_deadline(s, 0);
	mig_src_resume_state(s);
	mig_release_guest(m, true);
	sw_record(pc, MIG_ATTEMPT_FAILED, &ph, t0, clock_now_ns());
	return rc;
}
