// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live pre-copy: passes over memory while the guest runs, then a
 * switchover that keeps the downtime limit or is rolled back.
 *
 *   setup      header; READY on the return path (gives the round trip)
 *   pass n     send the dirty set (copy mode), PASS_END, harvest, ask the
 *              policy (policy.c) what next
 *   switchover pause (t0), harvest, SWITCHOVER_PREPARE, remaining pages,
 *              state, END; the destination loads and ACKs END.  ACK by
 *              t0 + limit - margin: GO, done.  Otherwise ABORT(RETRY), the
 *              source resumes its guest and passes continue, up to the
 *              attempt budget.  Nothing slow (stopping dirty logging,
 *              freeing bitmaps) happens between t0 and GO.
 *
 * The deadline also bounds the final send: if the channel cannot take the
 * last bytes in time, the write times out mid-record, the stream cannot be
 * continued, and the migration fails — with the guest resumed on the
 * source within the limit.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "migration/channel.h"
#include "migration/mig_priv.h"
#include "migration/policy.h"
#include "migration/ram.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define PC_READY_TIMEOUT_NS   (10 * 1000000000ull)
#define PC_RESUMED_TIMEOUT_NS (2 * 1000000000ull)
#define PC_IO_TIMEOUT_MS      30000
/* State size before it has been measured once: generous for x86 vCPUs. */
#define PC_STATE_GUESS_PER_VCPU (24u << 10)
#define PC_RESUME_GUESS_NS	1000000u
/* Passes that move less than this do not update the bandwidth estimate. */
#define PC_MIN_MEASURE_BYTES (4u << 20)
/* Shortest pass: below this, passes would spin on an idle guest. */
#define PC_MIN_PASS_NS 10000000u

struct pc {
	struct mig_src *s;
	struct policy_params pp;
	struct policy_history hist;
	struct bitmap todo;
	uint64_t start_ns;
	uint64_t rtt_ns;
	uint64_t resume_ns;  /* destination's load cost, learned from attempts */
	uint64_t bandwidth;  /* B/s over the last pass */
	uint64_t dirty_rate; /* B/s over the last pass */
	uint64_t last_pass_ns;
	uint64_t last_sync_ns;
	uint32_t failed_attempts;
	uint64_t last_attempt_ns;
	bool not_converging_reported;
};

static void pc_note(struct pc *pc, const char *event, const char *reason, const char *detail)
{
	struct migration *m = pc->s->m;

	if (m->events.note)
		m->events.note(m->events.opaque, event, reason, detail);
}

/*
 * Wait for return-path message @type until @deadline_ns (0: the I/O
 * timeout).  The fd is polled first so that a deadline that passes
 * leaves the reader usable.  ERROR or ABORT from the destination end the
 * migration with its words.  Returns -ETIME when the deadline passed.
 */
static int pc_wait_msg(struct pc *pc, uint32_t type, uint64_t deadline_ns, struct stream_msg *out,
		       struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct stream_record rec;
	int rc;

	for (;;) {
		uint64_t now = clock_now_ns();
		int wait_ms = PC_IO_TIMEOUT_MS;
		if (deadline_ns) {
			if (now >= deadline_ns)
				return -ETIME;
			wait_ms = (int)((deadline_ns - now + 999999) / 1000000);
		}
		struct pollfd pfd[2] = {{s->ch->fd, POLLIN, 0}, {s->ch->cancel_fd, POLLIN, 0}};
		rc = poll(pfd, 2, wait_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return ferr_errno(err, -errno, "%s: poll", s->ch->name);
		if (pfd[1].revents)
			return ferr_set(err, -ECANCELED, "migration cancelled");
		if (rc == 0) {
			if (deadline_ns)
				return -ETIME;
			return ferr_set(err, -ETIMEDOUT,
					"%s: no answer from the destination for %d ms", s->ch->name,
					PC_IO_TIMEOUT_MS);
		}
		rc = stream_next_record(&s->rp, &rec, err);
		if (!rc)
			rc = stream_read_msg(&s->rp, out, err);
		if (rc)
			return rc;
		if (out->type == STREAM_MSG_ERROR)
			return ferr_set(err, out->error.code < 0 ? out->error.code : -EPROTO,
					"the destination failed: %s", out->error.text);
		if (out->type == STREAM_MSG_ABORT)
			return ferr_set(err, -ECONNABORTED, "the destination aborted (reason %u)",
					out->abort.reason);
		if (out->type == type) {
			/* An ACK for an END of an earlier, rolled-back attempt is stale. */
			if (type == STREAM_MSG_ACK && out->ack.record != s->end_record)
				continue;
			return 0;
		}
		/* anything else is harmless here (late messages of a past attempt) */
	}
}

/* After a failed write, the destination may have said why: prefer its words. */
static void pc_peer_reason(struct pc *pc, struct ferr *err)
{
	struct stream_msg msg;
	struct ferr peer = FERR_INIT;

	if (!pc->s->have_rp)
		return;
	if (pc_wait_msg(pc, STREAM_MSG_GO /* never sent to us */, clock_now_ns() + 200000000u, &msg,
			&peer) &&
	    ferr_is_set(&peer) && peer.code != -ECANCELED) {
		ferr_clear(err);
		*err = peer;
	}
}

static void pc_params(struct pc *pc)
{
	struct migration *m = pc->s->m;
	struct mig_params mp;

	pthread_mutex_lock(&m->lock);
	mp = m->params;
	pthread_mutex_unlock(&m->lock);
	policy_params_default(&pc->pp);
	pc->pp.downtime_limit_ns = mp.downtime_limit_ms * 1000000ull;
	pc->pp.max_bandwidth = mp.max_bandwidth;
	pc->pp.timeout_ns = mp.timeout_s * 1000000000ull;
	pc->pp.on_timeout = (enum policy_on_timeout)mp.on_timeout;
	pc->pp.max_attempts = (uint32_t)mp.max_attempts;
	pc->pp.postcopy = false; /* not available yet */
	if (pc->s->rl.rate != mp.max_bandwidth)
		ratelimit_set_rate(&pc->s->rl, mp.max_bandwidth, clock_now_ns());
}

static uint64_t pc_state_estimate(const struct pc *pc)
{
	if (pc->s->st.state_bytes)
		return pc->s->st.state_bytes;
	return (uint64_t)vm_ncpus(pc->s->m->vm) * PC_STATE_GUESS_PER_VCPU + 8192;
}

static void pc_fill_input(struct pc *pc, uint32_t passes, struct policy_input *in)
{
	memset(in, 0, sizeof(*in));
	in->passes = passes;
	in->elapsed_ns = clock_now_ns() - pc->start_ns;
	in->bandwidth = pc->bandwidth;
	in->dirty_rate = pc->dirty_rate;
	in->remaining_bytes = bitmap_count(&pc->todo) * GMEM_PAGE_SIZE;
	in->state_bytes = pc_state_estimate(pc);
	in->rtt_ns = pc->rtt_ns;
	in->resume_ns = pc->resume_ns;
	in->failed_attempts = pc->failed_attempts;
	in->last_attempt_ns = pc->last_attempt_ns;
}

static void pc_record_decision(struct pc *pc, const struct policy_decision *d)
{
	struct mig_stats *st = &pc->s->st;

	st->expected_downtime_ns = d->predicted_ns == POLICY_NS_INF ? 0 : d->predicted_ns;
	st->not_converging = d->not_converging;
	snprintf(st->policy_reason, sizeof(st->policy_reason), "%s", policy_reason_name(d->reason));
	policy_describe(&pc->pp, d, st->policy_detail, sizeof(st->policy_detail));
	if (d->not_converging && !pc->not_converging_reported) {
		pc->not_converging_reported = true;
		pc_note(pc, "MIGRATION_NOT_CONVERGING", st->policy_reason, st->policy_detail);
	}
}

/* One pass over @pc->todo with the guest running. */
static int pc_pass(struct pc *pc, uint32_t n, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct stream_msg pe = {.type = STREAM_REC_PASS_END};
	uint64_t t0 = clock_now_ns(), bytes0 = s->w.stats.bytes, queued0 = channel_unsent(s->ch);
	uint64_t normal0 = s->st.normal, zero0 = s->st.duplicate;
	uint64_t deadline = pc->pp.timeout_ns ? pc->start_ns + pc->pp.timeout_ns : 0;
	int rc;

	/* A pass that overruns the timeout stops early; the policy then decides. */
	rc = mig_src_send_pages(s, &pc->todo, n == 1, true, deadline, err);
	if (rc && rc != -ETIME)
		return rc;
	pe.pass_end.remaining = 0;
	pe.pass_end.duration_ns = clock_now_ns() - t0;
	int wrc = stream_write_msg(&s->w, &pe, err);
	if (wrc)
		return wrc;
	uint64_t dur = clock_now_ns() - t0;
	/* What the guest dirtied while the pass ran is the next pass. */
	wrc = s->tracker.ops->sync(&s->tracker, &pc->todo, err);
	if (wrc)
		return wrc;
	uint64_t bytes = s->w.stats.bytes - bytes0;
	/* What left the host: written, less what still sits in the socket's queue. */
	uint64_t queued = channel_unsent(s->ch);
	uint64_t sent = bytes + queued0 > queued ? bytes + queued0 - queued : 0;
	uint64_t dirty = bitmap_count(&pc->todo);
	uint64_t pass_bw = dur ? (uint64_t)((unsigned __int128)sent * 1000000000u / dur) : 0;
	/* Dirtied since the previous harvest, which includes any pause between passes. */
	uint64_t now = clock_now_ns(), since = now - (pc->last_sync_ns ? pc->last_sync_ns : t0);
	pc->last_sync_ns = now;
	pc->last_pass_ns = dur;
	/*
	 * Bandwidth is what the channel can take; a pass of a few pages says
	 * nothing about that (its time is fixed costs), so the estimate comes
	 * from the last pass that moved enough data to measure.
	 */
	if (sent >= PC_MIN_MEASURE_BYTES || !pc->bandwidth)
		pc->bandwidth = pass_bw;
	pc->dirty_rate =
	    since ? (uint64_t)((unsigned __int128)dirty * GMEM_PAGE_SIZE * 1000000000u / since) : 0;

	s->st.passes = n;
	s->st.dirty_sync_count++;
	s->st.remaining = dirty * GMEM_PAGE_SIZE;
	s->st.transferred = s->w.stats.bytes;
	s->st.mbps_x1000 = pc->bandwidth * 8 / 1000;
	s->st.dirty_pages_rate = pc->dirty_rate / GMEM_PAGE_SIZE;
	s->st.pages_per_second =
	    dur ? (s->st.normal - normal0 + s->st.duplicate - zero0) * 1000000000u / dur : 0;
	if (n <= MIG_PASS_HISTORY)
		s->st.pass[n - 1] = (struct mig_pass_stats){
		    .pass = n,
		    .pages = s->st.normal - normal0,
		    .zero_pages = s->st.duplicate - zero0,
		    .bytes = bytes,
		    .duration_ns = dur,
		    .dirty_pages = dirty,
		    .bandwidth = pass_bw,
		    .dirty_rate = pc->dirty_rate,
		};
	return 0;
}

/*
 * One switchover attempt.  0: GO sent, the destination owns the guest.
 * -EAGAIN: rolled back in time, the guest runs on the source again and
 * the stream can go on.  Other: failed (guest resumed on the source).
 */
static int pc_switchover(struct pc *pc, const struct policy_decision *d, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct mig_downtime_phases ph = {0};
	struct stream_msg msg;
	uint64_t t0, t, deadline;
	int saved_timeout = s->ch->timeout_ms;
	int rc;

	s->st.attempts++;
	s->st.forced = d->forced;
	t = clock_now_ns();
	bool guest_running = vm_runstate(m->vm) == VM_RS_RUNNING;
	if (guest_running) {
		rc = vm_stop(m->vm, err);
		if (rc)
			return rc;
		pthread_mutex_lock(&m->lock);
		m->vm_paused_by_us = true;
		pthread_mutex_unlock(&m->lock);
		/* The guest's downtime runs from its first vCPU stopping (t0). */
		t0 = vm_pause_started_ns(m->vm);
	} else {
		/* Paused by the operator: it stays so if this attempt is rolled back. */
		t0 = t;
	}
	s->st.pause_at_ns = t0;
	ph.pause = clock_now_ns() - t; /* getting every vCPU out: partly still running */
	t = clock_now_ns();
	deadline = d->forced ? 0 : t0 + pc->pp.downtime_limit_ns - d->margin_ns;
	mig_set_status(m, MIG_ACTIVE, MIG_DEVICE);

	rc = s->tracker.ops->sync(&s->tracker, &pc->todo, err);
	ph.harvest = clock_now_ns() - t;
	t = clock_now_ns();
	/*
	 * Writes may not outlast the deadline: a stuck channel must not hold
	 * the guest.  This includes SWITCHOVER_PREPARE, the first write of the
	 * window: after a rolled-back attempt the destination may still be
	 * busy with the last one and the socket full, and a write with the
	 * channel's ordinary timeout would keep the guest paused for as long as
	 * the destination took.
	 */
	if (deadline) {
		uint64_t left = deadline > clock_now_ns() ? deadline - clock_now_ns() : 0;
		s->ch->timeout_ms = (int)(left / 1000000u) + 1;
	}
	if (!rc) {
		struct stream_msg sp = {.type = STREAM_REC_SWITCHOVER_PREPARE};
		sp.switchover.remaining = bitmap_count(&pc->todo);
		sp.switchover.flags = guest_running ? 0 : STREAM_SWITCHOVER_PAUSED;
		rc = stream_write_msg(&s->w, &sp, err);
	}
	if (deadline) {
		uint64_t left = deadline > clock_now_ns() ? deadline - clock_now_ns() : 0;
		s->ch->timeout_ms = (int)(left / 1000000u) + 1;
	}
	if (!rc)
		rc = mig_src_send_pages(s, &pc->todo, false, false, deadline, err);
	if (!rc)
		rc = mig_src_send_state(s, err);
	if (!rc) {
		s->end_record = s->w.stats.records + 1;
		rc = stream_write_msg(&s->w, &(struct stream_msg){.type = STREAM_REC_END}, err);
	}
	s->ch->timeout_ms = saved_timeout;
	ph.send = clock_now_ns() - t;
	t = clock_now_ns();
	if (!rc)
		rc = pc_wait_msg(pc, STREAM_MSG_ACK, deadline, &msg, err);
	ph.dest = clock_now_ns() - t;
	if (!rc && deadline && clock_now_ns() > deadline)
		rc = -ETIME;
	if (!rc) {
		uint64_t go_delay;
		pthread_mutex_lock(&m->lock);
		go_delay = m->params.x_go_delay_ms;
		pthread_mutex_unlock(&m->lock);
		if (go_delay)
			mig_sleep_ns(go_delay *
				     1000000u); /* test only: a window to lose the peer */
		t = clock_now_ns();
		rc = stream_write_msg(&s->w, &(struct stream_msg){.type = STREAM_MSG_GO}, err);
		ph.go = clock_now_ns() - t;
		if (!rc) {
			s->st.downtime_ns = clock_now_ns() - t0;
			s->st.phases = ph;
			return 0;
		}
	}
	s->st.phases = ph;
	pc->last_attempt_ns = clock_now_ns() - t0;
	if (rc == -ETIME || rc == -ETIMEDOUT) {
		/* Over the deadline.  Between records the stream can go on. */
		bool clean = rc == -ETIME;
		char why[FERR_MSG_MAX];
		snprintf(why, sizeof(why), "%s", err->msg);
		/* The guest first: the ABORT may wait on a full socket. */
		mig_resume_source(pc->s->m);
		if (clean) {
			struct stream_msg ab = {.type = STREAM_MSG_ABORT};
			ab.abort.reason = STREAM_ABORT_RETRY;
			clean = stream_write_msg(&s->w, &ab, err) == 0;
		}
		mig_set_status(m, MIG_DEVICE, MIG_ACTIVE);
		pc->failed_attempts++;
		s->st.aborted_attempts++;
		/* The next prediction adds what this one missed by. */
		if (ph.dest > pc->resume_ns)
			pc->resume_ns = ph.dest;
		char detail[160];
		snprintf(detail, sizeof(detail),
			 "paused %.1f ms of a %.1f ms limit (send %.1f ms, destination %.1f ms); "
			 "guest resumed on the source",
			 pc->last_attempt_ns / 1e6, pc->pp.downtime_limit_ns / 1e6, ph.send / 1e6,
			 ph.dest / 1e6);
		pc_note(pc, "MIGRATION_SWITCHOVER_ABORTED", "deadline", detail);
		if (clean)
			return -EAGAIN;
		ferr_clear(err);
		return ferr_set(err, -ETIMEDOUT,
				"switchover abandoned: the channel could not take the final state "
				"within the %.0f ms downtime limit, and the stream cannot continue "
				"mid-record (%s; %s)",
				pc->pp.downtime_limit_ns / 1e6, detail, why);
	}
	mig_resume_source(pc->s->m);
	return rc;
}

static int pc_setup(struct pc *pc, const struct stream_header *h, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct stream_msg msg;
	uint64_t t0 = clock_now_ns();
	int rc;

	rc = stream_reader_init(&s->rp, s->ch, STREAM_RETURN, err);
	if (rc)
		return rc;
	s->have_rp = true;
	rc = stream_reader_set_header(&s->rp, h, err);
	if (!rc)
		rc = pc_wait_msg(pc, STREAM_MSG_READY, t0 + PC_READY_TIMEOUT_NS, &msg, err);
	if (rc == -ETIME)
		return ferr_set(err, -ETIMEDOUT, "%s: the destination did not answer within %llu s",
				s->ch->name, PC_READY_TIMEOUT_NS / 1000000000ull);
	if (rc)
		return rc;
	pc->rtt_ns = clock_now_ns() - t0;
	pc->resume_ns = PC_RESUME_GUESS_NS;
	rc = dirty_tracker_init(&s->tracker, s->m->vm, err);
	if (rc)
		return rc;
	rc = s->tracker.ops->start(&s->tracker, err);
	if (rc) {
		dirty_tracker_destroy(&s->tracker);
		return rc;
	}
	s->tracking = true;
	if (bitmap_init(&pc->todo, s->npages))
		return ferr_set(err, -ENOMEM, "out of memory for the page bitmap");
	bitmap_fill(&pc->todo);
	return 0;
}

static void pc_teardown(struct pc *pc)
{
	struct mig_src *s = pc->s;

	if (s->tracking) {
		s->tracker.ops->stop(&s->tracker);
		dirty_tracker_destroy(&s->tracker);
		s->tracking = false;
	}
	if (s->have_rp) {
		stream_reader_destroy(&s->rp);
		s->have_rp = false;
	}
	bitmap_destroy(&pc->todo);
}

int mig_precopy(struct mig_src *s, const struct stream_header *h, struct ferr *err)
{
	struct migration *m = s->m;
	struct pc pc = {.s = s, .start_ns = s->st.start_ns};
	struct policy_decision d;
	struct policy_input in;
	uint32_t n = 0;
	bool own_decision = false;
	int rc;

	policy_history_init(&pc.hist);
	pc_params(&pc);
	rc = pc_setup(&pc, h, err);
	if (rc)
		goto out;
	s->st.setup_done_ns = clock_now_ns();
	mig_set_status(m, MIG_SETUP, MIG_ACTIVE);
	for (;;) {
		rc = pc_pass(&pc, ++n, err);
		if (rc)
			break;
		if (m->events.pass)
			m->events.pass(m->events.opaque, n);
		pc_params(&pc);
		pc_fill_input(&pc, n, &in);
		policy_decide(&pc.pp, &in, &pc.hist, &d);
		pc_record_decision(&pc, &d);
		mig_publish(m, &s->st);
		if (d.action == POLICY_CONTINUE) {
			/*
			 * A pass that found almost nothing to send must not spin: give
			 * the guest time to dirty what the next pass is worth.
			 */
			if (pc.last_pass_ns < PC_MIN_PASS_NS)
				mig_sleep_ns(PC_MIN_PASS_NS - pc.last_pass_ns);
			continue;
		}
		if (d.action == POLICY_SWITCHOVER) {
			rc = pc_switchover(&pc, &d, err);
			if (rc == -EAGAIN) {
				mig_publish(m, &s->st);
				continue;
			}
			break;
		}
		/* ABORT, or POSTCOPY which this engine cannot do yet. */
		struct stream_msg ab = {.type = STREAM_MSG_ABORT};
		ab.abort.reason =
		    d.reason == POLICY_R_TIMEOUT_ABORT ? STREAM_ABORT_TIMEOUT : STREAM_ABORT_FAILED;
		stream_write_msg(&s->w, &ab, NULL);
		rc = ferr_set(err, -ETIMEDOUT, "migration abandoned (%s): %s",
			      policy_reason_name(d.reason), s->st.policy_detail);
		own_decision = true;
		break;
	}
	if (rc == 0) {
		/*
		 * After GO, outside the downtime window: the destination confirms
		 * it took the guest.  If the connection dies first, the destination
		 * is gone and never ran it (it confirms before starting the vCPUs),
		 * so the guest resumes here.  If it merely stays silent, it may be
		 * running: the source stays paused and says so.
		 */
		struct stream_msg msg;
		struct ferr e2 = FERR_INIT;
		int wrc = pc_wait_msg(&pc, STREAM_MSG_RESUMED,
				      clock_now_ns() + PC_RESUMED_TIMEOUT_NS, &msg, &e2);
		if (wrc == 0) {
			/* CLOCK_MONOTONIC is one clock only on one host: across hosts the
			 * difference means nothing and is not reported. */
			if (msg.resumed.resume_ns > s->st.pause_at_ns)
				s->st.dest_resume_ns = msg.resumed.resume_ns - s->st.pause_at_ns;
		} else if (wrc == -ETIME) {
			pc_note(&pc, "MIGRATION_UNCONFIRMED", "no-resume-report",
				"the destination took GO but did not confirm within 2 s; the guest "
				"stays paused here");
		} else {
			rc = ferr_set(err, -ECONNRESET,
				      "the destination went away after GO without taking the guest "
				      "(%s); the guest resumes on the source",
				      e2.msg);
		}
	} else if (rc == -ECANCELED || mig_cancelled(m)) {
		struct stream_msg ab = {.type = STREAM_MSG_ABORT};
		ab.abort.reason = STREAM_ABORT_CANCELLED;
		stream_write_msg(&s->w, &ab, NULL);
	} else if (!own_decision && rc != -ETIMEDOUT) {
		/* A transport error: the destination may have said why it left. */
		pc_peer_reason(&pc, err);
	}
out:
	if (rc)
		mig_resume_source(m);
	pc_teardown(&pc);
	return rc;
}
