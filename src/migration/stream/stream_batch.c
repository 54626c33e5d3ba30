// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stream writer: PAGE_BATCH records.  Entries collect in the writer's
 * buffer; the record goes out in one writev() of the batch header with
 * its entries, then one vector per run of pages adjacent in memory, which
 * for a linear scan of guest RAM is usually a single vector.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "migration/stream/stream_priv.h"

_Static_assert(offsetof(struct stream_wbuf, head.ent) - offsetof(struct stream_wbuf, head) ==
		   sizeof(struct stream_wire_page_batch),
	       "batch header and entries are contiguous");

static int batch_add(struct stream_writer *w, uint64_t gfn, const uint8_t *data, struct ferr *err)
{
	struct stream_wbuf *b = w->buf;
	char why[FERR_MSG_MAX - 32];

	int rc = stream_writer_begin(w, STREAM_REC_PAGE_BATCH, err);
	if (rc)
		return rc;
	if (!stream_header_has_gfn(&w->hdr, gfn)) {
		stream_gfn_why(&w->hdr, gfn, why, sizeof(why));
		return stream_writer_fail(w, err, -EINVAL, "stream writer: %s", why);
	}
	b->head.ent[b->n++] = htole64(data ? gfn : gfn | STREAM_ENTRY_ZERO);
	if (data)
		b->data[b->ndata++] = data;
	return b->n == STREAM_BATCH_MAX_PAGES ? stream_batch_flush(w, err) : 0;
}

int stream_batch_ref(struct stream_writer *w, uint64_t gfn, const void *page, struct ferr *err)
{
	if (!page)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: frame 0x%" PRIx64 " without data", gfn);
	return batch_add(w, gfn, page, err);
}

int stream_batch_copy(struct stream_writer *w, uint64_t gfn, const void *page, struct ferr *err)
{
	struct stream_wbuf *b = w->buf;

	if (!page)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: frame 0x%" PRIx64 " without data", gfn);
	if (!b->copy && posix_memalign((void **)&b->copy, STREAM_PAGE_SIZE, STREAM_BATCH_MAX_DATA))
		return stream_writer_fail(w, err, -ENOMEM, "stream writer: out of memory");
	/* The copies are dense, so that they form one vector however the
	 * entries interleave with zero pages or referenced ones. */
	uint8_t *copy = b->copy + (size_t)b->ncopy * STREAM_PAGE_SIZE;
	memcpy(copy, page, STREAM_PAGE_SIZE);
	int rc = batch_add(w, gfn, copy, err);
	if (rc == 0 && b->n) /* not flushed: the slot stays taken */
		b->ncopy++;
	return rc;
}

int stream_batch_zero(struct stream_writer *w, uint64_t gfn, struct ferr *err)
{
	return batch_add(w, gfn, NULL, err);
}

int stream_batch_flush(struct stream_writer *w, struct ferr *err)
{
	struct stream_wbuf *b = w->buf;
	int n = 0;

	if (w->failed.code)
		return ferr_set(err, w->failed.code, "%s", w->failed.msg);
	if (b->n == 0)
		return 0;
	b->head.hdr = (struct stream_wire_page_batch){htole32(b->n), 0};
	b->payload[n++] = (struct iovec){&b->head, sizeof(b->head.hdr) + 8 * (size_t)b->n};
	for (uint32_t i = 0; i < b->ndata; i++) {
		struct iovec *last = &b->payload[n - 1];
		if (n > 1 && (uint8_t *)last->iov_base + last->iov_len == b->data[i])
			last->iov_len += STREAM_PAGE_SIZE;
		else
			b->payload[n++] = (struct iovec){(void *)b->data[i], STREAM_PAGE_SIZE};
	}
	uint32_t pages = b->n, zero = b->n - b->ndata;
	b->n = b->ndata = b->ncopy = 0;
	int rc = stream_writer_put(w, STREAM_REC_PAGE_BATCH, 0, b->payload, n, err);
	/* Cut short by the deadline, the batch still goes out later: count it. */
	if (rc && !(rc == -ETIME && stream_writer_has_tail(w)))
		return rc;
	w->stats.pages += pages;
	w->stats.zero_pages += zero;
	w->stats.batches++;
	w->pass_pages += pages;
	w->pass_zero_pages += zero;
	return rc;
}
