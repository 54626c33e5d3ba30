// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stream reader: PAGE_BATCH records, in direct mode (page data read
 * straight into the destination's memory, verified at the end of the
 * record) or verified mode (into a buffer, verified before use).
 *
 * Either way the batch header and every entry are read and checked first:
 * count, reserved bits, frame inside the header's regions, and length
 * exactly what the entries imply.  Only then is any byte of page data
 * read, so a bad record can never direct a write outside guest memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "migration/stream/stream_priv.h"

void *stream_reader_discard_page(void *opaque, uint64_t gfn)
{
	struct stream_reader *r = opaque;

	return r->buf->scratch;
}

int stream_reader_discard_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	return 0;
}

static int read_entries(struct stream_reader *r, struct ferr *err)
{
	struct stream_rbuf *b = r->buf;
	struct stream_wire_page_batch h;
	char why[FERR_MSG_MAX - 64];

	int rc = stream_reader_take(r, &h, sizeof(h), err);
	if (rc)
		return rc;
	b->n = le32toh(h.count);
	b->ndata = 0;
	if (b->n < 1 || b->n > STREAM_BATCH_MAX_PAGES)
		return stream_reader_fail(r, err, -EPROTO,
					  "%" PRIu32 " pages is out of range (1..%u)", b->n,
					  STREAM_BATCH_MAX_PAGES);
	if (h.reserved)
		return stream_reader_fail(r, err, -EPROTO, "reserved field is not 0");
	if (r->cur.length < sizeof(h) + 8 * (uint64_t)b->n)
		return stream_reader_fail(r, err, -EPROTO,
					  "length %" PRIu64 " cannot hold %" PRIu32 " entries",
					  r->cur.length, b->n);
	rc = stream_reader_take(r, b->ent, 8 * (size_t)b->n, err);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < b->n; i++) {
		uint64_t e = le64toh(b->ent[i]);
		if (e & STREAM_ENTRY_RESERVED)
			return stream_reader_fail(r, err, -EPROTO,
						  "entry %" PRIu32 " has reserved"
						  " bits set (0x%016" PRIx64 ")",
						  i, e);
		if (!stream_header_has_gfn(&r->hdr, e & STREAM_GFN_MASK)) {
			stream_gfn_why(&r->hdr, e & STREAM_GFN_MASK, why, sizeof(why));
			return stream_reader_fail(r, err, -EPROTO, "%s", why);
		}
		if (!(e & STREAM_ENTRY_ZERO))
			b->ndata++;
		b->ent[i] = e;
	}
	uint64_t want = sizeof(h) + 8 * (uint64_t)b->n + (uint64_t)b->ndata * STREAM_PAGE_SIZE;
	if (r->cur.length != want)
		return stream_reader_fail(r, err, -EPROTO,
					  "length %" PRIu64 " does not match its %" PRIu32
					  " entries, %" PRIu32 " of them with data (%" PRIu64
					  " bytes)",
					  r->cur.length, b->n, b->ndata, want);
	return 0;
}

static void account(struct stream_reader *r)
{
	uint32_t zero = r->buf->n - r->buf->ndata;

	r->stats.pages += r->buf->n;
	r->stats.zero_pages += zero;
	r->stats.batches++;
	r->pass_pages += r->buf->n;
	r->pass_zero_pages += zero;
	r->in_record = false;
}

static uint8_t *sink_page(struct stream_reader *r, const struct stream_page_sink *sink,
			  uint64_t gfn, struct ferr *err)
{
	uint8_t *p = sink->page(sink->opaque, gfn);

	if (!p)
		stream_reader_fail(r, err, -EFAULT,
				   "frame 0x%" PRIx64 " has no page at the destination", gfn);
	return p;
}

/* ZERO entries, once the record is verified: runs of consecutive frames at once. */
static int apply_zero(struct stream_reader *r, const struct stream_page_sink *sink,
		      struct ferr *err)
{
	const struct stream_rbuf *b = r->buf;

	for (uint32_t i = 0, j; i < b->n; i = j) {
		j = i + 1;
		if (!(b->ent[i] & STREAM_ENTRY_ZERO))
			continue;
		uint64_t gfn = b->ent[i] & STREAM_GFN_MASK;
		while (j < b->n && (b->ent[j] & STREAM_ENTRY_ZERO) &&
		       (b->ent[j] & STREAM_GFN_MASK) == gfn + (j - i))
			j++;
		if (sink->zero) {
			struct ferr zerr = FERR_INIT;
			int rc = sink->zero(sink->opaque, gfn, j - i, &zerr);
			if (rc)
				return stream_reader_fail(
				    r, err, rc, "%s",
				    zerr.msg[0] ? zerr.msg : "zero-filling frames failed");
			continue;
		}
		for (uint32_t k = 0; k < j - i; k++) {
			uint8_t *p = sink_page(r, sink, gfn + k, err);
			if (!p)
				return r->failed.code;
			memset(p, 0, STREAM_PAGE_SIZE);
		}
	}
	return 0;
}

int stream_read_page_batch(struct stream_reader *r, const struct stream_page_sink *sink,
			   struct ferr *err)
{
	const struct stream_rbuf *b = r->buf;
	uint8_t *run = NULL;
	size_t run_len = 0;
	int rc = stream_reader_expect(r, STREAM_KIND_BATCH, err);
	if (!rc && (!sink || !sink->page))
		rc = stream_reader_fail(r, err, -EINVAL, "stream reader: no page sink");
	if (!rc)
		rc = read_entries(r, err);
	if (rc)
		return rc;
	/* Pages adjacent at the destination are read with one call: with a
	 * linear scan at the source, that is usually the whole batch. */
	for (uint32_t i = 0; i < b->n; i++) {
		if (b->ent[i] & STREAM_ENTRY_ZERO)
			continue;
		uint8_t *p = sink_page(r, sink, b->ent[i] & STREAM_GFN_MASK, err);
		if (!p)
			return r->failed.code;
		if (run && p == run + run_len) {
			run_len += STREAM_PAGE_SIZE;
			continue;
		}
		if (run && (rc = stream_reader_take(r, run, run_len, err)))
			return rc;
		run = p;
		run_len = STREAM_PAGE_SIZE;
	}
	if (run && (rc = stream_reader_take(r, run, run_len, err)))
		return rc;
	rc = stream_reader_finish(r, err);
	if (!rc)
		rc = apply_zero(r, sink, err);
	if (rc)
		return rc;
	account(r);
	return 0;
}

int stream_read_page_batch_verified(struct stream_reader *r, void *buf, size_t cap,
				    struct stream_page_batch *out, struct ferr *err)
{
	const struct stream_rbuf *b = r->buf;

	int rc = stream_reader_expect(r, STREAM_KIND_BATCH, err);
	if (!rc)
		rc = read_entries(r, err);
	if (rc)
		return rc;
	size_t need = (size_t)b->ndata * STREAM_PAGE_SIZE;
	if (need > cap)
		return stream_reader_fail(r, err, -EMSGSIZE,
					  "%zu bytes of pages do not fit the %zu-byte buffer", need,
					  cap);
	rc = stream_reader_take(r, buf, need, err);
	if (!rc)
		rc = stream_reader_finish(r, err);
	if (rc)
		return rc;
	const uint8_t *data = buf;
	out->count = b->n;
	for (uint32_t i = 0; i < b->n; i++) {
		out->gfn[i] = b->ent[i] & STREAM_GFN_MASK;
		out->data[i] = (b->ent[i] & STREAM_ENTRY_ZERO) ? NULL : data;
		if (out->data[i])
			data += STREAM_PAGE_SIZE;
	}
	account(r);
	return 0;
}
