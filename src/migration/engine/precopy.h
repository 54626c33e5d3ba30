/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Live pre-copy, shared by its two files: precopy.c (setup, passes, the
 * policy's calls, the end) and switchover.c (one switchover attempt:
 * DESIGN.md section 5).  Private to the engine.  Everything here belongs
 * to the migration thread.
 */
#ifndef FERRY_MIGRATION_ENGINE_PRECOPY_H
#define FERRY_MIGRATION_ENGINE_PRECOPY_H

#include "common/bitmap.h"
#include "migration/engine/engine.h"
#include "migration/policy/policy.h"
#include "vm/vm.h"

/* Auto-converge's state in the engine (throttle.c). */
struct pc_throttle {
	uint32_t pct;			/* the CPU throttle applied now */
	struct vm_throttle_stats mig0;	/* the VM's sums when the migration started */
	struct vm_throttle_stats pass0; /* ... and when the pass under way started */
};

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
	uint64_t attempt_end_ns; /* when the guest ran again after the last rollback */
	uint64_t window_bytes;	 /* put on the stream in the last attempt's window */
	bool not_converging_reported;
	struct stream_header hdr; /* the main connection's: a post-copy resume's is this one's */
	struct pcs *pcs; /* the post-copy channel's server (postcopy.h); NULL: no post-copy */
	bool gone;	 /* a post-copy GO went out: the guest never runs here again */
	char phase[32];	 /* "setup", "pass 3", "the switchover", "after GO": for messages */
	struct pc_throttle thr;
};

/* A ferry event (MIGRATION_NOT_CONVERGING, MIGRATION_SWITCHOVER_ABORTED, ...). */
void pc_note(struct pc *pc, const char *event, const char *reason, const char *detail);

/*
 * Auto-converge (throttle.c).  begin: at setup; pass_begin / pass_end:
 * around each pass, filling its line of the pass table (@ps may be NULL)
 * and the totals; apply: after each policy decision, the level it asks for
 * (MIGRATION_THROTTLE when it changes); lift: when the migration ends,
 * whatever the outcome (@why goes into the event).
 */
void pc_throttle_begin(struct pc *pc);
void pc_throttle_pass_begin(struct pc *pc);
void pc_throttle_pass_end(struct pc *pc, struct mig_pass_stats *ps);
void pc_throttle_apply(struct pc *pc, const struct policy_decision *d);
void pc_throttle_lift(struct pc *pc, const char *why);

/*
 * Wait for return-path message @type (return_path.h) within the channel's
 * deadline, if one is set, and the engine's inactivity limit.  ERROR or
 * ABORT from the destination end the migration with its words.  -ETIME:
 * the deadline passed.
 */
int pc_wait_msg(struct pc *pc, uint32_t type, struct stream_msg *out, struct ferr *err);

/*
 * One switchover attempt (switchover.c).  0: GO sent, the destination
 * owns the guest.  -EAGAIN: rolled back in time, the guest runs here again
 * and the stream goes on.  Other: failed (the guest resumed here).
 */
int switchover_attempt(struct pc *pc, const struct policy_decision *d, struct ferr *err);

/*
 * Post-copy (postcopy_src.c).  postcopy_send_discard(): inside a post-copy
 * switchover, DISCARD records naming the pages of @pc->todo.
 * postcopy_run(): after GO, the remaining pages in @pc->todo (nearest the
 * last request first), POSTCOPY_END, and the destination's ACK of it,
 * which says it owns every page.
 */
struct pcs;
/*
 * postcopy_pre_drop(): before a switch to post-copy, with the guest still
 * running here, STALE records naming the pages of @pc->todo, and the wait
 * (bounded) for the destination to have dropped its copies: that work
 * then stays out of the switch's window.
 */
int postcopy_pre_drop(struct pc *pc, struct ferr *err);
int postcopy_send_discard(struct pc *pc, struct ferr *err);
int postcopy_run(struct pc *pc, struct pcs *p, struct ferr *err);
/*
 * After GO, postcopy_run() failed: whether it is a break to pause on (the
 * connection failed, or migrate-pause) rather than the end (the
 * destination said it failed, or ferry is quitting).  postcopy_recover():
 * pause, keeping guest memory, until the operator's migrate resume
 * reconnects and the destination names the pages it still misses (then
 * 0, @pc->todo holding them), or until the wait ends (the guest is lost).
 */
bool postcopy_breakable(struct pc *pc);
int postcopy_recover(struct pc *pc, const struct ferr *why, struct ferr *err);

#endif
