/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The source's return path: a thread that reads the destination's
 * messages as they arrive, not only when the engine waits for one.
 *
 *  - Control messages (READY, ACK, RESUMED) wait in a small queue until
 *    the engine asks for them (rp_wait), within a deadline it chooses.
 *  - ERROR and ABORT are the destination's last words: from the moment
 *    they arrive, rp_check() and rp_wait() report them, so a pass stops
 *    at its next chunk instead of writing into a dead migration.
 *  - Page requests (POSTCOPY_PAGE_REQUEST) go to the urgent page queue,
 *    which the page sender drains ahead of its pass order (rp_take_urgent).
 *  - On a resumed post-copy (rp_start_resume), the destination's missing
 *    set (POSTCOPY_MISSING) goes into the engine's bitmap as it arrives;
 *    POSTCOPY_RESUME, which closes it, waits in the queue like READY.
 *
 * Threads: the return-path thread owns the reader; everything else in the
 * struct is under @lock.  The migration thread starts and stops it and is
 * the only caller of the other functions.  The thread reads without the
 * switchover's deadline and without an inactivity limit (a destination is
 * silent through whole passes): it must never lose its place in a message,
 * and a dead peer shows as end of stream, a reset, or TCP keepalive.
 */
#ifndef FERRY_MIGRATION_ENGINE_RETURN_PATH_H
#define FERRY_MIGRATION_ENGINE_RETURN_PATH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migration/stream/stream.h"

#define RP_QUEUE  16   /* control messages not yet taken: at most a few are ever pending */
#define RP_URGENT 4096 /* page requests not yet served */

struct bitmap;
struct channel;
struct gmem;

struct return_path {
	struct stream_reader r; /* the thread's alone */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock. */
	struct stream_msg msgs[RP_QUEUE];
	unsigned head, count;
	uint64_t urgent[RP_URGENT];
	unsigned uhead, ucount;
	uint64_t urgent_requested, urgent_dropped;
	bool peer_said; /* ERROR or ABORT arrived: @peer has the words */
	struct ferr peer;
	bool ended; /* the thread stopped reading: @why */
	struct ferr why;
	uint64_t last_rx_ns; /* CLOCK_MONOTONIC of the last message */
	/* Resume only: the engine's bitmap (RAM order), written under lock
	 * until POSTCOPY_RESUME has been taken; pages named so far. */
	struct bitmap *missing;
	const struct gmem *mem;
	uint64_t nmissing;
};

/* Start reading @ch's return path (frames checked against @h). */
int rp_start(struct return_path *rp, struct channel *ch, const struct stream_header *h,
	     struct ferr *err);

/* The same, on a resumed post-copy: POSTCOPY_MISSING sets pages in
 * @missing (RAM order of @mem), which the caller reads once it has taken
 * POSTCOPY_RESUME. */
int rp_start_resume(struct return_path *rp, struct channel *ch, const struct stream_header *h,
		    struct bitmap *missing, const struct gmem *mem, struct ferr *err);
/* Pages POSTCOPY_MISSING named so far (distinct). */
uint64_t rp_missing_count(struct return_path *rp);

/*
 * Wait for message @type (an ACK must answer record @ack_record) until
 * @deadline_ns (CLOCK_MONOTONIC; 0: none) or @idle_ms without any message
 * since the wait began (< 0: none).  Messages of other types that arrive first are dropped:
 * they belong to a past attempt.  0, -ETIME (deadline, no message), or an
 * error with the reason: the destination's words, -ETIMEDOUT (silence),
 * or why the path ended.
 */
int rp_wait(struct return_path *rp, uint32_t type, uint64_t ack_record, uint64_t deadline_ns,
	    int idle_ms, struct stream_msg *out, struct ferr *err);

/* Non-blocking: the destination's last words, or why the path ended; 0 if it is alive. */
int rp_check(struct return_path *rp, struct ferr *err);
/* Whether the destination itself said why (ERROR, ABORT). */
bool rp_peer_said(struct return_path *rp);

/* Up to @max requested frames, oldest first; 0 if none. */
unsigned rp_take_urgent(struct return_path *rp, uint64_t *gfns, unsigned max);

/* Stop the thread: cancels @ch (the caller is done with it), joins, frees. */
void rp_stop(struct return_path *rp, struct channel *ch);

#endif
