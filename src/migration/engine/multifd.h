/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Parallel data channels (capability multifd): docs/channels.md and
 * docs/stream-format.md ("Parallel channels").  Private to the engine.
 *
 * Source: N data connections besides the main one, each with its own
 * stream writer (own checksum sequence) and its own sender thread.  The
 * migration thread walks memory chunk by chunk as without multifd (rearm,
 * residency), then hands the chunk's page set to the channel that owns the
 * chunk (chunk index modulo N), so every copy of a page travels on one
 * channel and arrives in order.  PASS_END, state, SWITCHOVER_PREPARE, END,
 * GO and ABORT stay on the main connection.
 *
 * Ownership: a sender's job queue, error and counters are guarded by its
 * lock; its channel and writer belong to the sender thread while it runs a
 * job, and to the migration thread while the sender is idle (after
 * mfd_src_wait()).  The channel's deadline and byte counts are atomics that
 * any thread reads.
 *
 * Destination: the loader (migration thread) accepts the data connections
 * through its listener after READY and refuses, with an ERROR record and a
 * MIGRATION_CHANNEL_REFUSED event, any whose session id is not this
 * migration's or whose index is taken or out of range.  One receiver
 * thread per channel reads its pages straight into guest memory; a page
 * outside the channel's chunks fails the load.  END is acknowledged only
 * once every channel's CHANNEL_SYNC for the attempt has arrived.
 */
#ifndef FERRY_MIGRATION_ENGINE_MULTIFD_H
#define FERRY_MIGRATION_ENGINE_MULTIFD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migration/stream/stream.h"
#include "migration/transport/channel.h"

#define MFD_CHUNK_PAGES 4096u /* the shard: a chunk of RAM-order pages */

struct gmem;
struct mfd_src;

/* Connect @n data channels to @uri (through channel_connect_opts, so TLS
 * applies to each), send each its header (@main with its index), start the
 * senders.  @cut_kib: test only, channel 1 fails after that much. */
int mfd_src_start(const struct gmem *mem, const char *uri, const struct channel_opts *copts,
		  int timeout_ms, const struct stream_header *main, uint64_t cut_kib,
		  struct trace *trace, struct mfd_src **out, struct ferr *err);
/* Queue the pages of chunk @first (RAM order, @n pages) set in @bits (bit i:
 * page first + i) on the channel that owns it; blocks while its queue is
 * full.  Fails with a channel's sticky error. */
int mfd_src_send_chunk(struct mfd_src *f, uint64_t first, uint64_t n, const uint64_t *bits,
		       bool running, struct ferr *err);
/* Wait until every sender is idle; the first error of any (-ETIME: a
 * deadline cut a record short, see mfd_src_flush_tails()). */
int mfd_src_wait(struct mfd_src *f, struct ferr *err);
/* CHANNEL_SYNC(@attempt) on every channel, then mfd_src_wait(). */
int mfd_src_sync(struct mfd_src *f, uint32_t attempt, struct ferr *err);
void mfd_src_set_deadline(struct mfd_src *f, uint64_t deadline_ns);
/* After a rollback (senders idle, deadline cleared): the records the deadline
 * cut short go out, and every channel can go on. */
int mfd_src_flush_tails(struct mfd_src *f, struct ferr *err);
uint64_t mfd_src_bytes(struct mfd_src *f);  /* written on every data channel */
uint64_t mfd_src_unsent(struct mfd_src *f); /* still in their socket queues */
void mfd_src_counts(struct mfd_src *f, uint64_t *normal, uint64_t *zero);
/* Senders idle: pages of jobs that failed or were dropped go back into @todo
 * (a page a deadline cut off, say; without KVM's manual dirty-log
 * protection the log no longer has it). */
struct bitmap;
void mfd_src_redo(struct mfd_src *f, struct bitmap *todo);
/* The data channels (for the migration's cancel): up to @max, how many. */
unsigned mfd_src_channels(struct mfd_src *f, struct channel **out, unsigned max);
/* Cancel, join and close everything (any state; NULL is fine). */
void mfd_src_stop(struct mfd_src *f);

struct mfd_dest;
struct channel_listener;
struct migration;

/*
 * Accept @main->nchannels data channels of session @main->session on @l
 * within @timeout_ms, refusing others (reported through @m's note event),
 * and start a receiver for each.  Pages go to @page (RAM-order index
 * @opaque-relative: see dest.c) and @zero.
 */
int mfd_dest_start(struct migration *m, struct channel_listener *l,
		   const struct stream_header *main, const struct gmem *mem,
		   const struct stream_page_sink *sink, int timeout_ms, struct mfd_dest **out,
		   struct ferr *err);
/* A receiver's failure, if any (cheap: for every record of the main loop). */
int mfd_dest_check(struct mfd_dest *f, struct ferr *err);
/* Wait until every channel's CHANNEL_SYNC for @attempt (or later) arrived. */
int mfd_dest_wait_sync(struct mfd_dest *f, struct migration *m, uint32_t attempt, int timeout_ms,
		       struct ferr *err);
void mfd_dest_counts(struct mfd_dest *f, uint64_t *bytes, uint64_t *pages, uint64_t *zero);
void mfd_dest_stop(struct mfd_dest *f);

#endif
