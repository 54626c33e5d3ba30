/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Post-copy (docs/postcopy.md): the guest runs on the destination before
 * every page has arrived.  Private to the engine.
 *
 * Both sides keep a second connection, the post-copy channel (header
 * channel index STREAM_CHANNEL_POSTCOPY), opened right after READY: the
 * destination's page requests travel on its return direction and the
 * source's answers on its forward direction, so that an answer never
 * waits behind the bulk stream, which keeps pushing the remaining pages on
 * the main connection.
 *
 * Source (postcopy_src.c): a server thread owns the channel's reader and
 * writer; it answers each request from guest memory (paused for good once
 * GO is out) and leaves the last requested page as a hint, under its lock,
 * for the bulk sender (the migration thread), which continues from there.
 *
 * Destination (postcopy_dest.c): guest memory is registered with a
 * userfaultfd (MISSING mode).  A fault thread owns the uffd's reads and the
 * channel's writer: a fault on a page still missing becomes a request, a
 * fault on a page that was never sent (a zero page) is filled at once.  A
 * receiver thread owns the channel's reader.  Pages from either connection
 * are installed only after their record's checksum held, with UFFDIO_COPY
 * (a page already there stays: the guest may have written it since), and
 * only then leave the missing set.  Everything else is under the lock.
 */
#ifndef FERRY_MIGRATION_ENGINE_POSTCOPY_H
#define FERRY_MIGRATION_ENGINE_POSTCOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migration/stream/stream.h"

struct bitmap;
struct channel;
struct channel_listener;
struct channel_opts;
struct gmem;
struct migration;
struct mig_postcopy_stats;

/* ---- source ---- */
struct pcs;

/* Connect the post-copy channel to @uri (after READY), send its header
 * (@main with the channel index), start the server. */
int pcs_start(struct migration *m, const struct gmem *mem, const char *uri,
	      const struct channel_opts *copts, const struct stream_header *main, struct pcs **out,
	      struct ferr *err);
/* The last page requested since the previous call (RAM order); false if none. */
bool pcs_take_hint(struct pcs *p, uint64_t *page);
/* The server's failure, if any. */
int pcs_check(struct pcs *p, struct ferr *err);
/* Pages requested and answered so far. */
uint64_t pcs_requests(struct pcs *p);
struct channel *pcs_channel(struct pcs *p);
/* Cancel, join and close (NULL is fine). */
void pcs_stop(struct pcs *p);

/* ---- destination ---- */
struct pcd;

/* Accept the post-copy channel of @main's session on @l within @timeout_ms. */
int pcd_accept(struct migration *m, struct channel_listener *l, const struct stream_header *main,
	       const struct gmem *mem, int timeout_ms, struct pcd **out, struct ferr *err);
/* Whether @h is channel @want of @main's session (the same guest layout). */
bool pcd_same_session(const struct stream_header *h, const struct stream_header *main,
		      uint32_t want);
/* A DISCARD record: these frames are not valid here. */
int pcd_discard(struct pcd *p, const struct stream_discard *d, struct ferr *err);
/*
 * The switch (at END of a post-copy switchover): drop the pages this load
 * wrote that the source discarded (@written, RAM order, cleared for them),
 * register guest memory with a userfaultfd, start the fault and receiver
 * threads.
 */
int pcd_arm(struct pcd *p, struct bitmap *written, struct ferr *err);
/* The switch was rolled back (ABORT(RETRY)): threads stopped, memory
 * unregistered, the discard set cleared; the channel stays. */
void pcd_disarm(struct pcd *p);
/* GO: the guest runs here from now on (statistics start). */
void pcd_go(struct pcd *p);
/* Install a verified page (@data NULL: a zero page) of RAM page @i. */
int pcd_place(struct pcd *p, uint64_t i, const void *data, struct ferr *err);
/* The same for RAM pages [@i, @i + @n) whose data lie one after the other
 * at @data (NULL: zero pages): one ioctl per stretch still missing. */
int pcd_place_run(struct pcd *p, uint64_t i, uint64_t n, const void *data, struct ferr *err);
/*
 * Wait until no page is missing; 0, or the receiver's or fault thread's
 * failure: *@fatal if guest memory cannot be served any more, else the
 * post-copy channel broke (a pause).
 */
int pcd_wait_owned(struct pcd *p, bool *fatal, struct ferr *err);
/* A thread's failure, if any (*@fatal as above). */
int pcd_check(struct pcd *p, bool *fatal, struct ferr *err);
/*
 * Recovery (docs/postcopy.md).  pcd_pause(): the post-copy channel goes;
 * the fault thread goes on filling never-sent pages and noting the pages
 * asked for, which wait.  pcd_send_missing(): POSTCOPY_MISSING naming every
 * page not here, then POSTCOPY_RESUME with their number, on @w (a resumed
 * main connection's return path).  pcd_reattach(): accept the resumed
 * session's post-copy channel on @l, ask again for the pages asked for and
 * still missing, and go on; on failure still paused.
 */
void pcd_pause(struct pcd *p);
int pcd_send_missing(struct pcd *p, struct stream_writer *w, struct ferr *err);
int pcd_reattach(struct pcd *p, struct channel_listener *l, const struct stream_header *main,
		 int timeout_ms, struct ferr *err);
void pcd_stats(struct pcd *p, struct mig_postcopy_stats *st);
/* Whether this host can do post-copy (a userfaultfd opens). */
bool pcd_supported(void);
/* Stop the threads and close (NULL is fine).  @lost: post-copy failed for
 * good with pages still missing: they become inaccessible (PROT_NONE) first,
 * so a vCPU that touches one fails in KVM; it never reads zeros. */
void pcd_stop(struct pcd *p, bool lost);

#endif
