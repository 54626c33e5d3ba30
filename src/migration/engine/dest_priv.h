/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The destination's loader, shared by its two files: dest.c (the page
 * sinks, the record handlers, the loop) and dest_conn.c (the connections:
 * the first one's handshake, post-copy's reconnections, the thread that
 * accepts).  Private to the engine; everything in struct mig_dest belongs
 * to the migration thread.
 */
#ifndef FERRY_MIGRATION_ENGINE_DEST_PRIV_H
#define FERRY_MIGRATION_ENGINE_DEST_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "common/bitmap.h"
#include "migration/engine/engine.h"
#include "migration/stream/stream.h"

#define DEST_IO_TIMEOUT_MS 30000
#define DEST_BLOB_MAX	   STREAM_VM_STATE_MAX
#define DEST_MFD_ACCEPT_MS 10000 /* for the data channels, after READY */

/* Where the loader is in the stream, as a bit: what may come next. */
enum dest_phase {
	DP_PASSES = 1,	 /* pages and pass ends; a snapshot's state and END */
	DP_WINDOW = 2,	 /* after SWITCHOVER_PREPARE: the last pages (or DISCARD), state, END */
	DP_ENDED = 4,	 /* after END: the loop is done */
	DP_POSTCOPY = 8, /* after a post-copy GO: the guest runs, pages, POSTCOPY_END */
};

struct mig_dest;

/*
 * The page sink: where received pages go.  Pre-copy reads them straight
 * into guest RAM (direct), the record's checksum checked at its end, before
 * the guest can ever run.  Post-copy must not expose a page before its
 * checksum held (the guest runs meanwhile): it takes only verified pages
 * (place / place_zero; direct NULL).
 */
struct dest_sink_ops {
	const char *kind;
	void *(*direct)(struct mig_dest *d, uint64_t gfn); /* NULL: verified pages only */
	int (*place)(struct mig_dest *d, uint64_t gfn, const void *data, struct ferr *err);
	int (*place_zero)(struct mig_dest *d, uint64_t gfn, struct ferr *err);
	/* Optional: @n pages from @gfn, consecutive in RAM, their data one
	 * after the other at @data (NULL: zero pages), in one go. */
	int (*place_run)(struct mig_dest *d, uint64_t gfn, uint64_t n, const void *data,
			 struct ferr *err);
};

/* The loader: one per incoming stream, owned by the migration thread. */
struct mig_dest {
	struct migration *m;
	const struct gmem *mem;
	const struct dest_sink_ops *sink;
	struct bitmap written; /* RAM-order pages this load has written */
	struct mig_stats st;
	struct stream_reader r;
	struct stream_writer w; /* the return path (live only) */
	struct stream_header h;
	enum dest_phase phase;
	bool live;
	bool start_paused;
	bool go; /* GO received */
	/* Sections (vm/state.h) loaded in this attempt: all before the hand-over. */
	bool *seen;
	unsigned nsections;
	void *buf; /* state blobs, verified pages */
	uint64_t total_hint;
	/* multifd: the data channels' receivers (multifd.h); NULL: none */
	struct mfd_dest *mfd;
	uint32_t attempts; /* SWITCHOVER_PREPAREs so far: the attempt CHANNEL_SYNC names */
	/* post-copy (postcopy.h): the channel and the missing set; NULL: none */
	struct pcd *pcd;
	bool postcopy;		/* this switchover is a switch to post-copy */
	bool started;		/* the guest runs here (post-copy: from GO on) */
	bool pc_fatal;		/* post-copy failed here (placing a page): no pause can help */
	struct channel *ch;	/* the main connection now */
	struct channel *own_ch; /* ... if a recovery opened it (closed here); else the caller's */
};

/* dest.c.  The sink multifd receivers write through: guest RAM, directly
 * (whatever x-verified-pages says), each receiver only its own chunks. */
struct stream_page_sink dest_ram_sink(struct mig_dest *d);

/* dest_conn.c.  The header, READY, and the data and post-copy channels. */
int dest_begin(struct mig_dest *d, struct channel *ch, struct ferr *err);
/* The main connection goes: its reader, writer and (a recovery's) channel;
 * @shut: the caller's channel is shut down too, so that the source sees it end. */
void dest_drop_conn(struct mig_dest *d, bool shut);
/*
 * Post-copy's connection broke (@err): pause, keeping everything, until the
 * operator reconnects both sides (0: going on, on the new connection) or the
 * wait ends (the error: the guest is lost).
 */
int dest_pc_recover(struct mig_dest *d, struct ferr *err);

#endif
