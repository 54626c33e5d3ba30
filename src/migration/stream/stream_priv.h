/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared by the stream's own files only: the record type table, wire
 * encoding of the header and of control messages, message helpers.
 */
#ifndef FERRY_MIGRATION_STREAM_PRIV_H
#define FERRY_MIGRATION_STREAM_PRIV_H

#include <endian.h>
#include <string.h>

#include "migration/stream/stream.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* Only the page data relies on this: entries and fields are converted. */
#error "ferry's stream code assumes a little-endian host"
#endif

enum stream_kind {
	STREAM_KIND_BATCH, /* PAGE_BATCH */
	STREAM_KIND_BLOB,  /* a prefix, then opaque state */
	STREAM_KIND_MSG,   /* fixed layout, read whole */
};

#define STREAM_DIR_BIT(d) (1u << (d))

struct stream_type_info {
	uint32_t type;
	const char *name;
	enum stream_kind kind;
	unsigned dirs;	  /* STREAM_DIR_BIT()s of the directions it may travel */
	uint64_t min_len; /* payload bounds */
	uint64_t max_len;
};

/* NULL for a type this ferry does not know. */
const struct stream_type_info *stream_type_info(uint32_t type);

#define STREAM_LABEL_LEN 24
/* "PAGE_BATCH", or "type 0x0000002a" for an unknown one. */
const char *stream_type_label(uint32_t type, char buf[STREAM_LABEL_LEN]);

#define STREAM_SIZE_LEN 32
/* "1 GiB", "640 KiB", "12345 bytes": for messages. */
const char *stream_size_str(uint64_t bytes, char buf[STREAM_SIZE_LEN]);

/* Why frame @gfn is refused ("frame 0x41000 is beyond guest memory of 1 GiB"). */
void stream_gfn_why(const struct stream_header *h, uint64_t gfn, char *buf, size_t len);

/* The header's wire form, checksum included; @buf holds STREAM_HEADER_LEN(h->nregions). */
size_t stream_header_encode(const struct stream_header *h, uint8_t *buf);

/*
 * Version 1 header fields, after the reader checked prefix and checksum:
 * fills @h and checks it.  Messages start with "stream header: ".
 */
int stream_header_decode_v1(const uint8_t *buf, size_t len, struct stream_header *h,
			    struct ferr *err);

/* Largest payload a struct stream_msg encodes to (POSTCOPY_PAGE_REQUEST). */
#define STREAM_MSG_MAX_LEN (sizeof(struct stream_wire_discard) + 8 * STREAM_DISCARD_MAX_WORDS)
_Static_assert(STREAM_MSG_MAX_LEN >=
		   sizeof(struct stream_wire_page_request) + 8 * STREAM_BATCH_MAX_PAGES,
	       "the message buffer holds the longest POSTCOPY_PAGE_REQUEST");

/*
 * Control messages and fixed records <-> payload.  On failure, the reason
 * (without record context) goes to @why and they return -EPROTO (decode)
 * or -EINVAL (encode: the caller's mistake).  PASS_END and END counts are
 * checked by the reader, not here.
 */
int stream_msg_encode(const struct stream_msg *m, const struct stream_header *h, uint8_t *buf,
		      size_t *len, char *why, size_t whylen);
int stream_msg_decode(uint32_t type, const uint8_t *p, size_t len, const struct stream_header *h,
		      struct stream_msg *m, char *why, size_t whylen);

/* Whether @id (a field of STREAM_DEVICE_ID_LEN bytes) is a valid device id. */
bool stream_device_id_valid(const char *id);

struct XXH3_state_s;

/* ------------------------------------------------------------------------ */
/* Writer internals (stream_writer.c, stream_batch.c) */

struct stream_wbuf {
	struct XXH3_state_s *hash;
	struct iovec iov[STREAM_BATCH_MAX_PAGES + 3];	   /* header, payload, trailer */
	struct iovec iov_orig[STREAM_BATCH_MAX_PAGES + 3]; /* iov before sending */
	/* The batch being built: n entries, ndata of them with data. */
	uint32_t n, ndata, ncopy;
	struct {
		struct stream_wire_page_batch hdr;
		uint64_t ent[STREAM_BATCH_MAX_PAGES]; /* little-endian */
	} head;
	const uint8_t *data[STREAM_BATCH_MAX_PAGES];
	struct iovec payload[STREAM_BATCH_MAX_PAGES + 1];
	uint8_t *copy; /* STREAM_BATCH_MAX_DATA, allocated on first stream_batch_copy() */
};

/* Record the first failure (sticky) and report it in @err. */
int stream_writer_fail(struct stream_writer *w, struct ferr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether a record of @type may be written now; flushes a pending batch before others. */
int stream_writer_begin(struct stream_writer *w, uint32_t type, struct ferr *err);
/* Frame, checksum and send one record. */
int stream_writer_put(struct stream_writer *w, uint32_t type, uint32_t flags,
		      const struct iovec *payload, int n, struct ferr *err);

/* ------------------------------------------------------------------------ */
/* Reader internals (stream_reader.c, stream_reader_pages.c) */

#define STREAM_SCRATCH (64u << 10)

struct stream_rbuf {
	struct XXH3_state_s *hash;
	uint32_t n, ndata;
	uint64_t ent[STREAM_BATCH_MAX_PAGES]; /* host order, checked */
	uint8_t scratch[STREAM_SCRATCH];      /* for skipped payloads */
};

/* Record the first failure (sticky), prefixed "record N (TYPE): " if in a record. */
int stream_reader_fail(struct stream_reader *r, struct ferr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sticky error, current record of the kind expected? */
int stream_reader_expect(struct stream_reader *r, enum stream_kind kind, struct ferr *err);
/* @len bytes of the current record's payload, hashed. */
int stream_reader_take(struct stream_reader *r, void *buf, size_t len, struct ferr *err);
/*
 * Padding and checksum.  The caller ends the record (in_record = false)
 * once it has also checked the contents, so that messages about them
 * still name the record.
 */
int stream_reader_finish(struct stream_reader *r, struct ferr *err);
/* A sink that drops pages, for stream_skip_record(); @opaque is the reader. */
void *stream_reader_discard_page(void *opaque, uint64_t gfn);
int stream_reader_discard_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err);

#endif
