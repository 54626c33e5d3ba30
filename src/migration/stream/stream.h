/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The migration stream: writer and reader of the format in
 * docs/stream-format.md, over a struct channel.
 *
 * A stream has a direction.  The migration stream (source -> destination)
 * starts with a header and carries guest pages, state records and the
 * source's control messages; the return path (destination -> source) carries
 * the destination's control messages.  Each direction has its own writer on
 * one side and reader on the other; a writer and a reader may run in two
 * threads on the same socket.  A writer or reader is used by one thread.
 *
 * Errors: every call returns 0 or a negative errno and fills @err with one
 * line naming the record ("record 812 (PAGE_BATCH): frame 0x41000 is beyond
 * guest memory of 1 GiB").  The first failure sticks: every later call on
 * the same reader or writer fails with the same code and message, so a
 * caller may check only at the end of a sequence.
 *
 *   -EPROTO            the peer broke the format (or, writing, the caller did)
 *   -EBADMSG           checksum mismatch
 *   -EPROTONOSUPPORT   newer stream version, unknown required feature
 *   -EPIPE             the stream ended early
 *   -EMSGSIZE          the caller's buffer is too small for the record
 *   -EINVAL            a call out of sequence (a bug in the caller)
 *   anything else      from the channel (-ETIMEDOUT, -ECANCELED, ...)
 */
#ifndef FERRY_MIGRATION_STREAM_H
#define FERRY_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"
#include "migration/transport/channel.h"
#include "migration/stream/stream_format.h"

enum stream_dir {
	STREAM_MIGRATION, /* source -> destination */
	STREAM_RETURN,	  /* destination -> source */
};

struct stream_region {
	uint64_t gpa;
	uint64_t size;
};

/* The header, decoded.  Regions are sorted, page-aligned, disjoint. */
struct stream_header {
	uint32_t version;    /* as read; a writer always writes STREAM_VERSION */
	uint32_t page_size;  /* STREAM_PAGE_SIZE */
	uint32_t vcpu_count; /* 1..STREAM_MAX_VCPUS */
	uint32_t nregions;   /* 1..STREAM_MAX_REGIONS */
	uint64_t features;   /* STREAM_FEAT_* */
	uint64_t cpuid_digest;
	struct stream_region regions[STREAM_MAX_REGIONS];
	/* STREAM_FEAT_MULTIFD only (else all 0): the migration and the connection. */
	uint64_t session;   /* random, drawn by the source per migration */
	uint32_t channel;   /* 0: the main connection, 1..nchannels: a data channel */
	uint32_t nchannels; /* data channels, 1..STREAM_MULTIFD_MAX */
};

/* Check @h as a reader would (without version); message "stream header: ...". */
int stream_header_check(const struct stream_header *h, struct ferr *err);
/* Whether two headers describe the same guest: vCPUs, CPUID, memory layout
 * (what every connection of one migration must agree on). */
bool stream_header_same_guest(const struct stream_header *a, const struct stream_header *b);
/* Bytes of guest RAM: the sum of the region sizes. */
uint64_t stream_header_ram(const struct stream_header *h);
/* Whether frame @gfn lies inside one of the regions. */
bool stream_header_has_gfn(const struct stream_header *h, uint64_t gfn);

/* "PAGE_BATCH", ..., or NULL for a type this ferry does not know. */
const char *stream_type_name(uint32_t type);

/*
 * Whether the STREAM_PAGE_SIZE bytes at @page (8-byte aligned) are all zero.
 * Most non-zero pages differ from zero in their first bytes, so this stops
 * at the first non-zero 64-byte block.
 */
bool stream_page_is_zero(const void *page);

/*
 * What went through a reader or writer so far, for its own thread (other
 * threads watch the channel's atomic byte counts instead).
 */
struct stream_stats {
	uint64_t records;    /* records started (the current one's number) */
	uint64_t bytes;	     /* stream bytes, header included */
	uint64_t pages;	     /* PAGE_BATCH entries */
	uint64_t zero_pages; /* ... of which ZERO */
	uint64_t batches;    /* PAGE_BATCH records */
	uint64_t skipped;    /* reader: unknown optional records skipped */
};

/* Control messages and the fixed-size records, decoded. */
struct stream_pass_end {
	uint32_t pass;	      /* writer: filled in */
	uint64_t pages;	      /* writer: filled in */
	uint64_t zero_pages;  /* writer: filled in */
	uint64_t bytes;	      /* writer: filled in */
	uint64_t remaining;   /* pages still dirty after this pass */
	uint64_t duration_ns; /* of the pass, on the source */
};

struct stream_switchover {
	uint32_t flags; /* STREAM_SWITCHOVER_* */
	uint64_t remaining;
};

/* All of it is filled in by the writer, and checked by the reader. */
struct stream_end {
	uint64_t records;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t bytes;
};

/* CHANNEL_SYNC: counts filled in by the writer, checked by the reader. */
struct stream_channel_sync {
	uint32_t attempt; /* switchover attempt, 1, 2, ...; increasing per channel */
	uint64_t records;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t bytes;
};

struct stream_ack {
	uint32_t type;	 /* of the record acknowledged */
	uint64_t record; /* its number on the migration stream */
};

struct stream_error_msg {
	int code;			      /* negative errno */
	char text[STREAM_ERROR_TEXT_MAX + 1]; /* NUL-terminated */
};

struct stream_page_request {
	uint32_t count; /* 1..STREAM_BATCH_MAX_PAGES */
	uint64_t gfn[STREAM_BATCH_MAX_PAGES];
};

/* DISCARD: frames first + i for each bit i set in bits (i < 64 * nwords). */
struct stream_discard {
	uint64_t first;
	uint32_t nwords; /* 1..STREAM_DISCARD_MAX_WORDS */
	uint64_t bits[STREAM_DISCARD_MAX_WORDS];
};

struct stream_msg {
	/* STREAM_REC_{PASS_END,SWITCHOVER_PREPARE,END,CHANNEL_SYNC,DISCARD,POSTCOPY_END}, STREAM_MSG_* */
	uint32_t type;
	union {
		struct stream_pass_end pass_end;
		struct stream_switchover switchover;
		struct stream_end end; /* END, POSTCOPY_END */
		struct stream_channel_sync sync;
		struct stream_discard discard;
		struct {
			uint64_t features;
		} ready;
		struct {
			uint32_t reason; /* STREAM_ABORT_* */
		} abort;
		struct {
			uint64_t resume_ns; /* destination's CLOCK_MONOTONIC */
		} resumed;
		struct stream_error_msg error;
		struct stream_ack ack;
		struct stream_page_request page_request;
		struct {
			uint64_t missing;
		} pc_resume;
		/* GO has no payload; POSTCOPY_MISSING uses @discard */
	};
};

/* ------------------------------------------------------------------------ */
/* Writer */

struct stream_wbuf;

struct stream_writer {
	struct channel *ch;
	enum stream_dir dir;
	bool have_header;
	bool ended; /* END written: control messages only from now on */
	/* SWITCHOVER_PREPARE of this attempt said POSTCOPY: GO reopens the
	 * stream for PAGE_BATCH and POSTCOPY_END (postcopy then true). */
	bool postcopy_prepared, postcopy;
	struct stream_header hdr;
	struct stream_stats stats;
	struct ferr failed; /* the first error, sticky */
	/* PASS_END accounting */
	uint32_t pass;
	uint64_t pass_pages, pass_zero_pages, pass_start;
	struct stream_wbuf *buf; /* the batch being built, hash state */
	/*
	 * The unsent tail of a record cut short by the channel's deadline,
	 * copied so that it can go out later (stream_writer_flush_tail()).
	 */
	uint8_t *tail;
	size_t tail_len;
};

int stream_writer_init(struct stream_writer *w, struct channel *ch, enum stream_dir dir,
		       struct ferr *err);
/* Frees the writer; a batch not flushed is dropped. */
void stream_writer_destroy(struct stream_writer *w);

/*
 * A record whose write the channel's deadline (channel_set_deadline) cut
 * short fails with -ETIME, but the stream is not broken: the writer copies
 * the record's unsent bytes (at most one batch: the data may be guest
 * memory that must not be read once the guest runs again) and the record
 * counts as written.  Those bytes go out before the next record, or here,
 * once the caller has cleared the deadline; until then nothing else may be
 * written.  This is what lets a switchover that runs out of time resume the
 * guest at once and still roll back cleanly with ABORT(RETRY).
 *
 * GO is the exception: a GO cut short is never completed later (the
 * destination would start a guest the source has resumed), so a partial
 * GO fails the writer for good; a GO not begun fails with -ETIME alone.
 */
int stream_writer_flush_tail(struct stream_writer *w, struct ferr *err);
bool stream_writer_has_tail(const struct stream_writer *w);

/* Migration stream: check @h and send it.  First thing on the stream. */
int stream_write_header(struct stream_writer *w, const struct stream_header *h, struct ferr *err);
/* Return path: no header is sent, but frames are checked against @h. */
int stream_writer_set_header(struct stream_writer *w, const struct stream_header *h,
			     struct ferr *err);

/*
 * Pages go into a PAGE_BATCH that is sent when it holds STREAM_BATCH_MAX_PAGES,
 * on stream_batch_flush(), or before any other record.  The batch goes out
 * in one writev(): its header and entries, then the page data.
 *
 * stream_batch_ref() sends @page from where it is, with no copy: its
 * STREAM_PAGE_SIZE bytes must not change until the batch is sent, because
 * the checksum is computed just before (guest paused, post-copy source).
 * stream_batch_copy() copies @page first, for a guest that is running: the
 * checksum must cover exactly the bytes sent (docs/stream-format.md,
 * "Integrity").  stream_batch_zero() sends a ZERO entry, without data.
 */
int stream_batch_ref(struct stream_writer *w, uint64_t gfn, const void *page, struct ferr *err);
int stream_batch_copy(struct stream_writer *w, uint64_t gfn, const void *page, struct ferr *err);
int stream_batch_zero(struct stream_writer *w, uint64_t gfn, struct ferr *err);
int stream_batch_flush(struct stream_writer *w, struct ferr *err);

int stream_write_vcpu_state(struct stream_writer *w, uint32_t vcpu, const void *state, size_t len,
			    struct ferr *err);
int stream_write_vm_state(struct stream_writer *w, const void *state, size_t len, struct ferr *err);
/* @id: 1-31 printable characters, no space ("serial0"). */
int stream_write_device_state(struct stream_writer *w, const char *id, uint32_t version,
			      const void *state, size_t len, struct ferr *err);

/*
 * A control message or fixed-size record (see struct stream_msg for the
 * fields the writer fills).  ERROR text is cut to STREAM_ERROR_TEXT_MAX
 * bytes with control characters replaced, so reporting a failure never
 * fails for the text's sake.
 */
int stream_write_msg(struct stream_writer *w, const struct stream_msg *m, struct ferr *err);

/*
 * Any record, payload given as @iovcnt (<= STREAM_BATCH_MAX_PAGES + 1)
 * pieces: for record types this module has no writer for (extensions,
 * tests).  Not checked beyond type != 0, known flags and the length limit.
 */
int stream_write_record(struct stream_writer *w, uint32_t type, uint32_t flags,
			const struct iovec *iov, int iovcnt, struct ferr *err);

/* ------------------------------------------------------------------------ */
/* Reader */

struct stream_record {
	uint64_t number; /* 1, 2, ... in this direction */
	uint32_t type;
	uint32_t flags;
	uint64_t length; /* payload bytes, within the type's bounds */
};

/*
 * Where PAGE_BATCH data goes, in direct mode.  page() returns the host
 * address of frame @gfn's STREAM_PAGE_SIZE bytes, or NULL if it has none
 * (which fails the load); it is only asked for frames inside the header's
 * regions.  zero() makes @npages frames from @gfn read as zeros (for
 * instance by dropping them with madvise, which a fresh destination can
 * skip); if NULL, the reader writes zeros through page().  zero() runs
 * only after the record's checksum matched; page data is written before,
 * as it arrives (see docs/stream-format.md, "Integrity").
 */
struct stream_page_sink {
	void *(*page)(void *opaque, uint64_t gfn);
	int (*zero)(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err);
	void *opaque;
};

/* A PAGE_BATCH read in verified mode: data[i] is NULL for a ZERO entry. */
struct stream_page_batch {
	uint32_t count;
	uint64_t gfn[STREAM_BATCH_MAX_PAGES];
	const uint8_t *data[STREAM_BATCH_MAX_PAGES];
};

/* VCPU_STATE, VM_STATE or DEVICE_STATE, decoded (the state is in the caller's buffer). */
struct stream_blob {
	uint32_t vcpu;			   /* VCPU_STATE */
	char device[STREAM_DEVICE_ID_LEN]; /* DEVICE_STATE, NUL-terminated */
	uint32_t device_version;	   /* DEVICE_STATE */
	size_t len;			   /* bytes of state */
};

struct stream_rbuf;

struct stream_reader {
	struct channel *ch;
	enum stream_dir dir;
	bool have_header;
	bool ended;			  /* END read */
	bool postcopy_prepared, postcopy; /* as the writer's */
	struct stream_header hdr;
	struct stream_stats stats;
	struct ferr failed; /* the first error, sticky */
	/* the record being read */
	bool in_record;
	struct stream_record cur;
	uint64_t cur_start; /* its offset in the stream */
	uint64_t cur_left;  /* payload bytes not read yet */
	/* PASS_END accounting */
	uint32_t pass;
	uint64_t pass_pages, pass_zero_pages, pass_start;
	uint32_t sync_attempt;	 /* the last CHANNEL_SYNC's attempt */
	struct stream_rbuf *buf; /* batch entries, hash state, scratch */
};

int stream_reader_init(struct stream_reader *r, struct channel *ch, enum stream_dir dir,
		       struct ferr *err);
void stream_reader_destroy(struct stream_reader *r);

/* Migration stream: read and check the header.  @h may be NULL. */
int stream_read_header(struct stream_reader *r, struct stream_header *h, struct ferr *err);
/* Return path: adopt the header this side sent, for checking frames. */
int stream_reader_set_header(struct stream_reader *r, const struct stream_header *h,
			     struct ferr *err);

/*
 * The next record's header, checked: known type (unknown optional records
 * are skipped here), direction, flags, length within the type's bounds.
 * Then exactly one of the calls below consumes it.
 */
int stream_next_record(struct stream_reader *r, struct stream_record *rec, struct ferr *err);

/* Consume the current record without using it (still checksum-verified). */
int stream_skip_record(struct stream_reader *r, struct ferr *err);

/* PAGE_BATCH, direct mode: data straight into sink->page(), verified at the end. */
int stream_read_page_batch(struct stream_reader *r, const struct stream_page_sink *sink,
			   struct ferr *err);
/*
 * PAGE_BATCH, verified mode: the data goes into @buf (at most
 * STREAM_BATCH_MAX_DATA bytes needed) and is verified before this returns.
 */
int stream_read_page_batch_verified(struct stream_reader *r, void *buf, size_t cap,
				    struct stream_page_batch *out, struct ferr *err);

/* VCPU_STATE, VM_STATE, DEVICE_STATE: the state into @buf, verified. */
int stream_read_blob(struct stream_reader *r, struct stream_blob *b, void *buf, size_t cap,
		     struct ferr *err);

/* PASS_END, SWITCHOVER_PREPARE, END and control messages, verified. */
int stream_read_msg(struct stream_reader *r, struct stream_msg *m, struct ferr *err);

#endif
