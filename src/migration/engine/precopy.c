// SPDX-License-Identifier: GPL-2.0-only
/*
 * Live pre-copy: passes over memory while the guest runs, then a
 * switchover that keeps the downtime limit or is rolled back.
 *
 *   setup      header; READY on the return path (gives the round trip)
 *   pass n     send the dirty set (copy mode), PASS_END, harvest, ask the
 *              policy (policy.c) what next
 *   switchover switchover.c: pause, final pages and state, ACK by the
 *              deadline, GO; or ABORT(RETRY), the guest resumes here and
 *              passes continue, up to the attempt budget
 *   after GO   the destination confirms (RESUMED) that it runs the guest
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/trace.h"
#include "migration/transport/channel.h"
#include "migration/engine/postcopy.h"
#include "migration/engine/precopy.h"
#include "migration/policy/policy.h"
#include "migration/engine/ram.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define PC_READY_TIMEOUT_NS   (10 * 1000000000ull)
#define PC_RESUMED_TIMEOUT_NS (2 * 1000000000ull)
#define PC_IO_TIMEOUT_MS      30000
#define PC_GONE_WHY                                                                          \
	"the guest was migrated and runs on the destination now: running it here too would " \
	"run it twice"
/* State size before it has been measured once: generous for x86 vCPUs. */
#define PC_STATE_GUESS_PER_VCPU (24u << 10)
#define PC_RESUME_GUESS_NS	1000000u
/* Passes that move less than this do not update the bandwidth estimate. */
#define PC_MIN_MEASURE_BYTES (4u << 20)
/* Shortest pass: below this, passes would spin on an idle guest. */
#define PC_MIN_PASS_NS 10000000u

void pc_note(struct pc *pc, const char *event, const char *reason, const char *detail)
{
	struct migration *m = pc->s->m;

	if (m->events.note)
		m->events.note(m->events.opaque, event, reason, detail);
}

int pc_wait_msg(struct pc *pc, uint32_t type, struct stream_msg *out, struct ferr *err)
{
	struct mig_src *s = pc->s;

	return rp_wait(&s->rp, type, s->end_record, atomic_load(&s->ch->deadline_ns),
		       PC_IO_TIMEOUT_MS, out, err);
}

/* An answer within @timeout_ns from now (outside the switchover). */
static int pc_wait_msg_for(struct pc *pc, uint32_t type, uint64_t timeout_ns,
			   struct stream_msg *out, struct ferr *err)
{
	return rp_wait(&pc->s->rp, type, 0, clock_now_ns() + timeout_ns, -1, out, err);
}

/*
 * After a transport error, say what happened in operator's words: the
 * destination's own reason if it sent one, else that it closed the
 * connection or vanished, and in which phase.
 */
static void pc_peer_reason(struct pc *pc, struct ferr *err)
{
	struct stream_msg msg;
	struct ferr peer = FERR_INIT;
	char was[FERR_MSG_MAX];

	/* Its last words may still be on their way: a moment for them. */
	if (pc->s->have_rp && !rp_peer_said(&pc->s->rp))
		pc_wait_msg_for(pc, STREAM_MSG_GO /* never sent to us */, 200000000u, &msg, &peer);
	if (pc->s->have_rp && rp_peer_said(&pc->s->rp)) {
		ferr_clear(err);
		rp_check(&pc->s->rp, err);
		return;
	}
	/* A data channel the source cut itself (x-multifd-cut): no peer to blame. */
	if (err->code == -ENOLINK)
		return;
	snprintf(was, sizeof(was), "%s", err->msg);
	int code = err->code;
	ferr_clear(err);
	if (code == -EPIPE) /* the return path's end of stream: nothing more to say */
		ferr_set(err, code,
			 "the destination closed the connection during %s (it exited or was "
			 "killed)",
			 pc->phase);
	else if (code == -ETIMEDOUT || code == -EHOSTUNREACH || code == -ENETUNREACH)
		ferr_set(err, code,
			 "the destination vanished during %s (no answer: its host is down or the "
			 "network is cut): %s",
			 pc->phase, was);
	else
		ferr_set(err, code,
			 "the destination closed the connection during %s (it exited or was "
			 "killed): %s",
			 pc->phase, was);
}

static void pc_params(struct pc *pc)
{
	struct migration *m = pc->s->m;
	struct mig_params mp;

	pthread_mutex_lock(&m->lock);
	mp = m->params;
	pthread_mutex_unlock(&m->lock);
	mig_params_policy(&mp, &pc->pp);
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
	uint64_t rtt = channel_rtt_ns(pc->s->ch);
	if (rtt != UINT64_MAX)
		pc->rtt_ns = rtt;
	in->rtt_ns = pc->rtt_ns;
	in->resume_ns = pc->resume_ns;
	in->postcopy_available = pc->pcs != NULL;
	pthread_mutex_lock(&pc->s->m->lock);
	in->postcopy_requested = pc->s->m->postcopy_requested;
	pthread_mutex_unlock(&pc->s->m->lock);
	in->failed_attempts = pc->failed_attempts;
	in->last_attempt_ns = pc->last_attempt_ns;
	in->throttle_pct = pc->thr.pct;
	if (pc->attempt_end_ns)
		in->since_attempt_ns = clock_now_ns() - pc->attempt_end_ns;
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
	uint64_t t0 = clock_now_ns(), bytes0 = mig_src_bytes(s),
		 queued0 = channel_unsent(s->ch) + mfd_src_unsent(s->mfd);
	uint64_t normal0 = s->st.normal, zero0 = s->st.duplicate;
	uint64_t deadline = pc->pp.timeout_ns ? pc->start_ns + pc->pp.timeout_ns : 0;
	int rc;

	trace_pass_start(s->m->trace, n, bitmap_count(&pc->todo));
	pc_throttle_pass_begin(pc);
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
	uint64_t bytes = mig_src_bytes(s) - bytes0;
	/* What left the host: written, less what still sits in the sockets' queues. */
	uint64_t queued = channel_unsent(s->ch) + mfd_src_unsent(s->mfd);
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

	trace_pass_end(s->m->trace, n, s->st.normal - normal0 + s->st.duplicate - zero0, bytes, dur,
		       dirty);
	s->st.passes = n;
	s->st.dirty_sync_count++;
	s->st.remaining = dirty * GMEM_PAGE_SIZE;
	s->st.transferred = mig_src_bytes(s);
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
	pc_throttle_pass_end(pc, n <= MIG_PASS_HISTORY ? &s->st.pass[n - 1] : NULL);
	return 0;
}

static int pc_setup(struct pc *pc, const struct stream_header *h, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct stream_msg msg;
	uint64_t t0 = clock_now_ns();
	int rc;

	/* The return-path thread reads with no inactivity limit: the
	 * destination is silent through whole passes. */
	s->ch->rd_timeout_ms = -1;
	rc = rp_start(&s->rp, s->ch, h, err);
	if (rc)
		return rc;
	s->have_rp = true;
	rc = pc_wait_msg_for(pc, STREAM_MSG_READY, PC_READY_TIMEOUT_NS, &msg, err);
	if (rc == -ETIME)
		return ferr_set(err, -ETIMEDOUT, "%s: the destination did not answer within %llu s",
				s->ch->name, PC_READY_TIMEOUT_NS / 1000000000ull);
	/* A destination with tls-creds hangs up on a plaintext source, which
	 * then has nothing but a closed connection to show for it. */
	if ((rc == -ECONNRESET || rc == -EPIPE) && !s->st.tls.tls)
		ferr_prefix(err, "the destination hung up before READY (does it require TLS? then "
				 "set tls-creds): ");
	if (rc)
		return rc;
	/*
	 * The round trip: the kernel's measure if there is one (timing READY
	 * would add the destination's start-up to it, and the margin covers
	 * rtt/2), else READY's.  Refreshed at every pass end.
	 */
	pc->rtt_ns = channel_rtt_ns(s->ch);
	if (pc->rtt_ns == UINT64_MAX)
		pc->rtt_ns = clock_now_ns() - t0;
	pc->resume_ns = PC_RESUME_GUESS_NS;
	/* Post-copy allowed and the destination can do it: its own channel. */
	if ((h->features & STREAM_FEAT_POSTCOPY) && (msg.ready.features & STREAM_FEAT_POSTCOPY)) {
		rc = pcs_start(s->m, s->mem, s->uri, s->copts, h, &pc->pcs, err);
		if (rc)
			return rc;
	}
	/* The destination took the header: now the data channels (multifd.h). */
	if (s->mfd_channels) {
		rc = mfd_src_start(s->mem, s->uri, s->copts, PC_IO_TIMEOUT_MS / 3, h,
				   s->mfd_cut_kib, s->m->trace, &s->mfd, err);
		if (rc)
			return rc;
		s->st.multifd_channels = s->mfd_channels;
		_Static_assert(sizeof(s->m->data_ch) / sizeof(s->m->data_ch[0]) >=
				   STREAM_MULTIFD_MAX,
			       "room for every data channel");
		pthread_mutex_lock(&s->m->lock);
		s->m->ndata_ch = mfd_src_channels(s->mfd, s->m->data_ch, STREAM_MULTIFD_MAX);
		if (s->m->cancel)
			for (unsigned i = 0; i < s->m->ndata_ch; i++)
				channel_cancel(s->m->data_ch[i]);
		pthread_mutex_unlock(&s->m->lock);
	}
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
		rp_stop(&s->rp, s->ch); /* the channel is done with: cancelled */
		s->have_rp = false;
	}
	pthread_mutex_lock(&s->m->lock);
	s->m->ndata_ch = 0;
	pthread_mutex_unlock(&s->m->lock);
	mfd_src_stop(s->mfd); /* idle: every send waits for its senders */
	s->mfd = NULL;
	pcs_stop(pc->pcs);
	pc->pcs = NULL;
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
	pc.hdr = *h;
	snprintf(pc.phase, sizeof(pc.phase), "setup");
	pc_params(&pc);
	rc = pc_setup(&pc, h, err);
	if (rc)
		goto out;
	s->st.setup_done_ns = clock_now_ns();
	pc_throttle_begin(&pc);
	mig_set_status(m, MIG_SETUP, MIG_ACTIVE);
	for (;;) {
		/* Post-copy from the start asks the policy before any pass. */
		if (n > 0 || !pc.pcs || pc.pp.postcopy_after_passes != 0 || pc.failed_attempts) {
			snprintf(pc.phase, sizeof(pc.phase), "pass %u", n + 1);
			rc = pc_pass(&pc, ++n, err);
			if (rc)
				break;
			if (m->events.pass)
				m->events.pass(m->events.opaque, n);
		}
		pc_params(&pc);
		pc_fill_input(&pc, n, &in);
		policy_decide(&pc.pp, &in, &pc.hist, &d);
		trace_policy_decision(m->trace, n, policy_action_name(d.action),
				      policy_reason_name(d.reason), d.predicted_ns, d.bandwidth,
				      in.dirty_rate);
		pc_record_decision(&pc, &d);
		pc_throttle_apply(&pc, &d);
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
		if (d.action == POLICY_SWITCHOVER || (d.action == POLICY_POSTCOPY && pc.pcs)) {
			snprintf(pc.phase, sizeof(pc.phase), "%s",
				 d.action == POLICY_POSTCOPY ? "the switch to post-copy"
							     : "the switchover");
			rc = d.action == POLICY_POSTCOPY ? postcopy_pre_drop(&pc, err) : 0;
			if (!rc)
				rc = switchover_attempt(&pc, &d, err);
			if (rc == -EAGAIN) {
				mig_publish(m, &s->st);
				continue;
			}
			pc.gone = !rc && d.action == POLICY_POSTCOPY;
			break;
		}
		/* ABORT (the policy never says POSTCOPY without a post-copy channel). */
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
		snprintf(pc.phase, sizeof(pc.phase), "after GO");
		int wrc =
		    pc_wait_msg_for(&pc, STREAM_MSG_RESUMED, PC_RESUMED_TIMEOUT_NS, &msg, &e2);
		if (wrc == -ETIME) {
			/*
			 * Silent but connected (stopped, or very slow): it may start the
			 * guest at any moment, so the guest may not resume here; and it
			 * starts only once its confirmation is written, so the connection
			 * must stay open for it.  Wait for the confirmation, or for the
			 * connection to die (end of stream, reset, TCP keepalive), which
			 * means it never started.
			 */
			pc_note(&pc, "MIGRATION_UNCONFIRMED", "no-resume-report",
				"the destination took GO but has not confirmed for 2 s; the guest "
				"stays paused here until it confirms or the connection is lost");
			ferr_clear(&e2);
			wrc = rp_wait(&s->rp, STREAM_MSG_RESUMED, 0, 0, -1, &msg, &e2);
		}
		if (wrc == 0) {
			/* CLOCK_MONOTONIC is one clock only on one host: across hosts the
			 * difference means nothing and is not reported. */
			if (msg.resumed.resume_ns > s->st.pause_at_ns)
				s->st.dest_resume_ns = msg.resumed.resume_ns - s->st.pause_at_ns;
			mig_guest_gone(m, PC_GONE_WHY);
			if (pc.gone) {
				/* Post-copy: the guest runs there on pages still here.
				 * They go on the main connection alone: the destination
				 * places them through its userfaultfd, which data
				 * channels writing into RAM would bypass. */
				mig_src_stop_multifd(s);
				snprintf(pc.phase, sizeof(pc.phase), "post-copy");
				mig_publish(m, &s->st);
				rc = postcopy_run(&pc, pc.pcs, err);
				while (rc && postcopy_breakable(&pc)) {
					struct ferr why = *err;
					ferr_clear(err);
					rc = postcopy_recover(&pc, &why, err);
					if (rc)
						break; /* the wait for recovery ended: lost */
					rc = postcopy_run(&pc, pc.pcs, err);
				}
				if (rc)
					ferr_prefix(
					    err,
					    "post-copy failed after the destination took the "
					    "guest (it cannot run there without the pages still "
					    "here, nor here again): ");
			}
		} else {
			pc.gone = false; /* it never started the guest: every page is here */
			rc = ferr_set(err, -ECONNRESET,
				      "the destination went away after GO without taking the guest "
				      "(%s); the guest resumes on the source",
				      e2.msg);
		}
	} else if (rc == -ECANCELED || mig_cancelled(m)) {
		struct stream_msg ab = {.type = STREAM_MSG_ABORT};
		ab.abort.reason = STREAM_ABORT_CANCELLED;
		stream_write_msg(&s->w, &ab, NULL);
	} else if (!own_decision) {
		/* A transport error: the destination may have said why it left. */
		pc_peer_reason(&pc, err);
	}
out:
	/* The guest runs at full speed again here, or never runs here again. */
	pc_throttle_lift(&pc, rc == 0		 ? "the migration completed"
			      : mig_cancelled(m) ? "the migration was cancelled"
						 : "the migration failed");
	if (rc && !pc.gone) {
		mig_src_resume_state(s);
		mig_release_guest(m, true);
	}
	pc_teardown(&pc);
	return rc;
}
