/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the migration engine's files only. */
#ifndef FERRY_MIGRATION_MIG_PRIV_H
#define FERRY_MIGRATION_MIG_PRIV_H

#include "migration/migration.h"
#include "migration/stream/stream.h"

/* Publish a figure change, and progress for a terminal. */
void mig_publish(struct migration *m, const struct mig_stats *st);
void mig_progress(struct migration *m, const char *what, uint64_t done, uint64_t total);

/* Record the first failure and move to FAILED (or CANCELLED if cancelled). */
void mig_fail(struct migration *m, const struct ferr *err);

bool mig_cancelled(struct migration *m);

/*
 * Post-copy recovery, for either side's migration thread.  mig_pc_pause():
 * the connection broke (@why): status postcopy-paused (from -active or
 * -recover) with @why as the error, then wait for the operator's
 * migrate resume / migrate-recover (0: its URI in @uri, status
 * postcopy-recover), for postcopy-recover-timeout, or for the end of the
 * process (-ECANCELED).  mig_pc_breakable(): whether a failure after GO is
 * a break to pause on (a transport failure, or migrate-pause) rather than
 * the end (the process is quitting).
 */
int mig_pc_pause(struct migration *m, const struct ferr *why, char *uri, size_t len,
		 struct ferr *err);
bool mig_pc_breakable(struct migration *m);
/* Recovered: status postcopy-active again, the pause's error cleared. */
void mig_pc_resumed(struct migration *m);

/*
 * Guest ownership (vm_hold/vm_release): the engine holds the guest while
 * it moves it (@pause: and pauses it); mig_release_guest() gives it back
 * to the operator, resumed if @resume and the engine paused it (failures,
 * rollbacks); mig_hand_over() marks GO going out (cancel is refused from
 * then on; it fails if a cancel came first, atomically with that check); mig_guest_gone() records that it now runs elsewhere.
 */
int mig_hold_guest(struct migration *m, bool pause, const char *why, struct ferr *err);
void mig_release_guest(struct migration *m, bool resume);
bool mig_hand_over(struct migration *m); /* false: cancelled first, send no GO */
void mig_guest_gone(struct migration *m, const char *why);

#include "vm/dirty.h"
#include "migration/engine/ratelimit.h"
#include "migration/engine/return_path.h"
#include "migration/engine/multifd.h"

/* The source thread's context (mig_source.c, mig_precopy.c). */
struct mig_src {
	struct migration *m;
	const struct gmem *mem;
	struct channel *ch;
	struct stream_writer w;
	struct dirty_tracker tracker;
	bool tracking;
	struct ratelimit rl;
	struct mig_stats st; /* this thread's copy, published under m->lock */
	uint64_t npages;
	/* live migration only */
	struct return_path rp; /* the destination's messages, read by their own thread */
	bool have_rp;
	uint64_t end_record; /* number of the END awaiting its ACK */
	bool quiesced;	     /* sections quiesced by mig_src_send_state() */
	bool in_window;	     /* a switchover's downtime window: max-bandwidth does not apply */
	bool postcopy_cap;   /* after a post-copy GO: max-postcopy-bandwidth applies instead */
	/* multifd: the data channels and their senders (multifd.h); NULL: off */
	struct mfd_src *mfd;
	unsigned mfd_channels; /* 0: off */
	uint64_t mfd_cut_kib;  /* x-multifd-cut */
	const char *uri;       /* for the data channels' connects */
	const struct channel_opts *copts;
	uint64_t bytes_closed; /* stream bytes of main connections a post-copy recovery replaced */
};

/* Stream bytes written so far: the main connection's and every data channel's. */
uint64_t mig_src_bytes(const struct mig_src *s);
/* The data channels end (a post-copy GO: its pages go on the main
 * connection alone); their bytes stay counted. */
void mig_src_stop_multifd(struct mig_src *s);
/* The deadline on the main connection and every data channel. */
void mig_src_set_deadline(struct mig_src *s, uint64_t deadline_ns);

void mig_sleep_ns(uint64_t ns);
/*
 * Send the pages set in @todo (clearing them), rearming dirty tracking per
 * chunk first.  @skip_untouched: skip pages never populated (checked after
 * the rearm, so that a page first touched later is caught by the log).  @running: copy pages
 * (the guest may write them).  @deadline_ns: stop with -ETIME once passed
 * (0: none).
 */
int mig_src_send_pages(struct mig_src *s, struct bitmap *todo, bool skip_untouched, bool running,
		       uint64_t deadline_ns, struct ferr *err);
/* The pages of @todo in [@first, @first + @n) from a paused guest (no copy), flushed. */
int mig_src_send_range(struct mig_src *s, struct bitmap *todo, uint64_t first, uint64_t n,
		       struct ferr *err);
int mig_src_send_state(struct mig_src *s, struct ferr *err);
/* The guest stays here (rollback, failure): sections take work again. */
void mig_src_resume_state(struct mig_src *s);
/* Snapshot to a file (snapshot.c): pause, one pass, state, END. */
int snapshot_save(struct mig_src *s, struct ferr *err);
/* Live pre-copy to a peer: passes, switchover, GO. */
int mig_precopy(struct mig_src *s, const struct stream_header *h, struct ferr *err);

/* The engine threads. */
void *mig_source_thread(void *arg);
void *mig_dest_thread(void *arg);

/* Receive a whole stream into the (not running) VM: header to END. */
int mig_dest_load(struct migration *m, struct channel *ch, uint64_t total_hint, struct ferr *err);

/* Peek at a file stream's header (for ferry run --incoming file: without sizes). */
int mig_read_file_header(const char *path, struct stream_header *h, struct ferr *err);

#endif
