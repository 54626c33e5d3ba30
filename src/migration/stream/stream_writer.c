// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stream writer: framing, checksums, state records and control messages.
 * Page batches are in stream_batch.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <xxhash.h>

#include "migration/stream/stream_priv.h"

int stream_writer_fail(struct stream_writer *w, struct ferr *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!w->failed.code) {
		va_start(ap, fmt);
		vsnprintf(w->failed.msg, sizeof(w->failed.msg), fmt, ap);
		va_end(ap);
		w->failed.code = code < 0 ? code : -EIO;
	}
	return ferr_set(err, w->failed.code, "%s", w->failed.msg);
}

int stream_writer_init(struct stream_writer *w, struct channel *ch, enum stream_dir dir,
		       struct ferr *err)
{
	*w = (struct stream_writer){.ch = ch, .dir = dir};
	w->buf = calloc(1, sizeof(*w->buf));
	if (w->buf)
		w->buf->hash = XXH3_createState();
	if (!w->buf || !w->buf->hash) {
		stream_writer_destroy(w);
		return ferr_set(err, -ENOMEM, "stream writer: out of memory");
	}
	return 0;
}

void stream_writer_destroy(struct stream_writer *w)
{
	free(w->tail);
	w->tail = NULL;
	w->tail_len = 0;
	if (w->buf) {
		XXH3_freeState(w->buf->hash);
		free(w->buf->copy);
		free(w->buf);
		w->buf = NULL;
	}
}

static const char *dir_name(enum stream_dir dir)
{
	return dir == STREAM_MIGRATION ? "the migration stream" : "the return path";
}

bool stream_writer_has_tail(const struct stream_writer *w)
{
	return w->tail_len != 0;
}

int stream_writer_flush_tail(struct stream_writer *w, struct ferr *err)
{
	struct ferr cerr = FERR_INIT;
	size_t sent;

	if (w->failed.code)
		return ferr_set(err, w->failed.code, "%s", w->failed.msg);
	if (!w->tail_len)
		return 0;
	struct iovec iov = {w->tail, w->tail_len};
	int rc = channel_writev_sent(w->ch, &iov, 1, &sent, &cerr);
	if (rc == -ETIME) {
		/* Still not allowed to write: keep what is left for later. */
		memmove(w->tail, w->tail + sent, w->tail_len - sent);
		w->tail_len -= sent;
		return ferr_set(err, rc, "%s", cerr.msg);
	}
	free(w->tail);
	w->tail = NULL;
	w->tail_len = 0;
	if (rc)
		return stream_writer_fail(w, err, rc, "the rest of record %" PRIu64 ": %s",
					  w->stats.records, cerr.msg);
	return 0;
}

/*
 * After the deadline cut record @number short with @sent of the bytes in
 * @iov sent: keep the rest (see stream.h).
 */
static int keep_tail(struct stream_writer *w, const struct iovec *iov, int iovcnt, size_t sent,
		     struct ferr *err)
{
	size_t total = 0, off = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	w->tail = malloc(total - sent);
	if (!w->tail)
		return -ENOMEM;
	w->tail_len = total - sent;
	for (int i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len, skip = 0;
		if (off + len <= sent) {
			off += len;
			continue;
		}
		if (off < sent)
			skip = sent - off;
		memcpy(w->tail + (off + skip - sent), (const uint8_t *)iov[i].iov_base + skip,
		       len - skip);
		off += len;
	}
	return 0;
}

int stream_writer_begin(struct stream_writer *w, uint32_t type, struct ferr *err)
{
	const struct stream_type_info *t = stream_type_info(type);

	if (w->failed.code)
		return ferr_set(err, w->failed.code, "%s", w->failed.msg);
	if (w->tail_len) {
		int rc = stream_writer_flush_tail(w, err);
		if (rc)
			return rc;
	}
	if (!w->have_header)
		return stream_writer_fail(w, err, -EINVAL, "stream writer: no header yet");
	if (t && !(t->dirs & STREAM_DIR_BIT(w->dir)))
		return stream_writer_fail(w, err, -EINVAL, "stream writer: %s is not sent on %s",
					  t->name, dir_name(w->dir));
	if ((type == STREAM_MSG_POSTCOPY_MISSING || type == STREAM_MSG_POSTCOPY_RESUME) &&
	    !(w->hdr.features & STREAM_FEAT_RESUME))
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: %s outside a post-copy resume", t->name);
	if (w->ended && type < STREAM_MSG_FIRST)
		return stream_writer_fail(w, err, -EINVAL, "stream writer: %s after END",
					  t ? t->name : "a record");
	/* Records go out in the order they were written: a pending batch first. */
	if (type != STREAM_REC_PAGE_BATCH)
		return stream_batch_flush(w, err);
	return 0;
}

int stream_writer_put(struct stream_writer *w, uint32_t type, uint32_t flags,
		      const struct iovec *payload, int n, struct ferr *err)
{
	struct stream_wbuf *b = w->buf;
	uint64_t number = w->stats.records + 1, len = 0;
	char label[STREAM_LABEL_LEN];
	uint8_t tail[16] = {0};
	int iovcnt = 0;

	if (n < 0 || n > (int)STREAM_BATCH_MAX_PAGES + 1)
		return stream_writer_fail(w, err, -EINVAL, "stream writer: %d payload pieces", n);
	for (int i = 0; i < n; i++)
		len += payload[i].iov_len;
	if (len > STREAM_RECORD_MAX)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: %s of %" PRIu64
					  " bytes exceeds the record limit",
					  stream_type_label(type, label), len);

	struct stream_wire_record rh = {htole32(type), htole32(flags), htole64(len)};
	uint64_t pad = stream_pad8(len);

	XXH3_64bits_reset_withSeed(b->hash, number);
	XXH3_64bits_update(b->hash, &rh, sizeof(rh));
	b->iov[iovcnt++] = (struct iovec){&rh, sizeof(rh)};
	for (int i = 0; i < n; i++) {
		if (!payload[i].iov_len)
			continue;
		XXH3_64bits_update(b->hash, payload[i].iov_base, payload[i].iov_len);
		b->iov[iovcnt++] = payload[i];
	}
	XXH3_64bits_update(b->hash, tail, pad);
	uint64_t sum = htole64(XXH3_64bits_digest(b->hash));
	memcpy(tail + pad, &sum, sizeof(sum));
	b->iov[iovcnt++] = (struct iovec){tail, pad + sizeof(sum)};

	struct ferr cerr = FERR_INIT;
	/* The vectors as they were: channel_writev_sent() consumes its copy. */
	struct iovec *orig = b->iov_orig;
	size_t sent;
	memcpy(orig, b->iov, sizeof(*orig) * (size_t)iovcnt);
	int rc = channel_writev_sent(w->ch, b->iov, iovcnt, &sent, &cerr);
	if (rc == -ETIME && type == STREAM_MSG_GO && sent == 0)
		return ferr_set(err, rc, "GO not sent: %s", cerr.msg);
	if (rc == -ETIME && type != STREAM_MSG_GO) {
		if (keep_tail(w, orig, iovcnt, sent, err) == 0) {
			w->stats.records = number;
			w->stats.bytes += sizeof(rh) + len + pad + sizeof(sum);
			return ferr_set(err, rc, "record %" PRIu64 " (%s) not yet sent whole: %s",
					number, stream_type_label(type, label), cerr.msg);
		}
		rc = -ENOMEM;
		snprintf(cerr.msg, sizeof(cerr.msg), "out of memory for the unsent rest");
	}
	if (rc)
		return stream_writer_fail(w, err, rc, "record %" PRIu64 " (%s): %s", number,
					  stream_type_label(type, label), cerr.msg);
	w->stats.records = number;
	w->stats.bytes += sizeof(rh) + len + pad + sizeof(sum);
	return 0;
}

static int set_header(struct stream_writer *w, const struct stream_header *h, struct ferr *err)
{
	struct ferr herr = FERR_INIT;

	if (w->failed.code)
		return ferr_set(err, w->failed.code, "%s", w->failed.msg);
	if (w->have_header)
		return stream_writer_fail(w, err, -EINVAL, "stream writer: header already set");
	int rc = stream_header_check(h, &herr);
	if (rc)
		return stream_writer_fail(w, err, rc, "stream writer: %s", herr.msg);
	w->hdr = *h;
	w->hdr.version = STREAM_VERSION;
	/* A resumed post-copy starts where GO left the stream. */
	w->postcopy = h->features & STREAM_FEAT_RESUME;
	return 0;
}

int stream_write_header(struct stream_writer *w, const struct stream_header *h, struct ferr *err)
{
	uint8_t buf[STREAM_HEADER_LEN_F(STREAM_MAX_REGIONS, STREAM_FEAT_MULTIFD)];
	struct ferr cerr = FERR_INIT;

	if (w->dir != STREAM_MIGRATION)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: the return path has no header");
	int rc = set_header(w, h, err);
	if (rc)
		return rc;
	size_t len = stream_header_encode(&w->hdr, buf);
	/* No deadline is set before the header: a failure here is final. */
	rc = channel_write_full(w->ch, buf, len, &cerr);
	if (rc)
		return stream_writer_fail(w, err, rc, "stream header: %s", cerr.msg);
	w->have_header = true;
	w->stats.bytes += len;
	return 0;
}

int stream_writer_set_header(struct stream_writer *w, const struct stream_header *h,
			     struct ferr *err)
{
	if (w->dir != STREAM_RETURN)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: the migration stream sends its header");
	int rc = set_header(w, h, err);
	if (rc == 0)
		w->have_header = true;
	return rc;
}

static int write_blob(struct stream_writer *w, uint32_t type, const void *prefix, size_t prefix_len,
		      const void *state, size_t len, uint64_t max, struct ferr *err)
{
	struct iovec iov[2] = {{(void *)prefix, prefix_len}, {(void *)state, len}};

	int rc = stream_writer_begin(w, type, err);
	if (rc)
		return rc;
	if (len > max)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: %s of %zu bytes exceeds %" PRIu64,
					  stream_type_name(type), len, max);
	if (len && !state)
		return stream_writer_fail(w, err, -EINVAL, "stream writer: %s without data",
					  stream_type_name(type));
	return stream_writer_put(w, type, 0, iov, 2, err);
}

int stream_write_vcpu_state(struct stream_writer *w, uint32_t vcpu, const void *state, size_t len,
			    struct ferr *err)
{
	struct stream_wire_vcpu_state p = {htole32(vcpu), 0};

	if (w->have_header && vcpu >= w->hdr.vcpu_count)
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: vCPU %" PRIu32
					  " does not exist (the stream has %" PRIu32 " vCPUs)",
					  vcpu, w->hdr.vcpu_count);
	return write_blob(w, STREAM_REC_VCPU_STATE, &p, sizeof(p), state, len,
			  STREAM_VCPU_STATE_MAX, err);
}

int stream_write_vm_state(struct stream_writer *w, const void *state, size_t len, struct ferr *err)
{
	return write_blob(w, STREAM_REC_VM_STATE, NULL, 0, state, len, STREAM_VM_STATE_MAX, err);
}

int stream_write_device_state(struct stream_writer *w, const char *id, uint32_t version,
			      const void *state, size_t len, struct ferr *err)
{
	struct stream_wire_device_state p = {.version = htole32(version)};
	size_t n = id ? strnlen(id, sizeof(p.id)) : 0;

	if (n < sizeof(p.id))
		memcpy(p.id, id, n); /* the rest stays NUL */
	if (n == sizeof(p.id) || !stream_device_id_valid(p.id))
		return stream_writer_fail(w, err, -EINVAL,
					  "stream writer: invalid device id \"%.*s\"", (int)n,
					  id ? id : "");
	return write_blob(w, STREAM_REC_DEVICE_STATE, &p, sizeof(p), state, len,
			  STREAM_DEVICE_STATE_MAX, err);
}

int stream_write_msg(struct stream_writer *w, const struct stream_msg *m, struct ferr *err)
{
	uint8_t buf[STREAM_MSG_MAX_LEN];
	struct stream_msg msg = *m;
	char why[FERR_MSG_MAX - 64];
	size_t len;

	const struct stream_type_info *t = stream_type_info(m->type);
	if (!t || t->kind != STREAM_KIND_MSG)
		return stream_writer_fail(
		    w, err, -EINVAL, "stream writer: type 0x%" PRIx32 " is not a message", m->type);
	int rc = stream_writer_begin(w, m->type, err); /* flushes: counts are final */
	if (rc)
		return rc;
	if (m->type == STREAM_REC_PASS_END) {
		msg.pass_end.pass = w->pass + 1;
		msg.pass_end.pages = w->pass_pages;
		msg.pass_end.zero_pages = w->pass_zero_pages;
		msg.pass_end.bytes = w->stats.bytes - w->pass_start;
	} else if (m->type == STREAM_REC_END || m->type == STREAM_REC_POSTCOPY_END) {
		msg.end = (struct stream_end){w->stats.records, w->stats.pages, w->stats.zero_pages,
					      w->stats.bytes};
	} else if (m->type == STREAM_REC_CHANNEL_SYNC) {
		msg.sync.records = w->stats.records;
		msg.sync.pages = w->stats.pages;
		msg.sync.zero_pages = w->stats.zero_pages;
		msg.sync.bytes = w->stats.bytes;
	}
	rc = stream_msg_encode(&msg, &w->hdr, buf, &len, why, sizeof(why));
	if (rc)
		return stream_writer_fail(w, err, rc, "stream writer: %s: %s", t->name, why);
	/* STALE is a hint a reader may skip: it only saves the destination work. */
	rc = stream_writer_put(w, m->type, m->type == STREAM_REC_STALE ? STREAM_REC_OPTIONAL : 0,
			       &(struct iovec){buf, len}, 1, err);
	if (rc)
		return rc;
	if (m->type == STREAM_REC_PASS_END) {
		w->pass++;
		w->pass_pages = w->pass_zero_pages = 0;
		w->pass_start = w->stats.bytes;
	} else if (m->type == STREAM_REC_END || m->type == STREAM_REC_POSTCOPY_END) {
		w->ended = true;
	} else if (m->type == STREAM_REC_SWITCHOVER_PREPARE) {
		w->postcopy_prepared = m->switchover.flags & STREAM_SWITCHOVER_POSTCOPY;
	} else if (m->type == STREAM_MSG_GO && w->postcopy_prepared) {
		w->ended = false; /* post-copy: the remaining pages follow */
		w->postcopy = true;
	} else if (m->type == STREAM_MSG_ABORT && m->abort.reason == STREAM_ABORT_RETRY &&
		   w->dir == STREAM_MIGRATION) {
		w->ended = false; /* the switchover was rolled back: the stream goes on */
		w->postcopy_prepared = false;
	}
	return 0;
}

int stream_write_record(struct stream_writer *w, uint32_t type, uint32_t flags,
			const struct iovec *iov, int iovcnt, struct ferr *err)
{
	if (w->failed.code)
		return ferr_set(err, w->failed.code, "%s", w->failed.msg);
	if (type == 0 || (flags & ~STREAM_REC_FLAGS_KNOWN))
		return stream_writer_fail(
		    w, err, -EINVAL,
		    "stream writer: record type 0x%" PRIx32 " with flags 0x%" PRIx32, type, flags);
	if (!w->have_header)
		return stream_writer_fail(w, err, -EINVAL, "stream writer: no header yet");
	int rc = stream_batch_flush(w, err);
	return rc ? rc : stream_writer_put(w, type, flags, iov, iovcnt, err);
}
