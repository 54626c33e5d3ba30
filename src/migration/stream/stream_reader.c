// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stream reader: header, record framing and checksums, state records and
 * control messages.  Page batches are in stream_reader_pages.c.
 *
 * Nothing read from the channel is trusted: every length is checked
 * against a fixed bound before it sizes a read, and nothing is allocated
 * from it.  Payloads are verified before they are decoded, except page
 * data in direct mode (see docs/stream-format.md, "Integrity").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <xxhash.h>

#include "migration/stream/stream_priv.h"

int stream_reader_fail(struct stream_reader *r, struct ferr *err, int code, const char *fmt, ...)
{
	char label[STREAM_LABEL_LEN];
	va_list ap;
	int n = 0;

	if (!r->failed.code) {
		if (r->in_record)
			n = snprintf(r->failed.msg, sizeof(r->failed.msg),
				     "record %" PRIu64 " (%s): ", r->cur.number,
				     stream_type_label(r->cur.type, label));
		va_start(ap, fmt);
		vsnprintf(r->failed.msg + n, sizeof(r->failed.msg) - n, fmt, ap);
		va_end(ap);
		r->failed.code = code < 0 ? code : -EIO;
	}
	return ferr_set(err, r->failed.code, "%s", r->failed.msg);
}

int stream_reader_init(struct stream_reader *r, struct channel *ch, enum stream_dir dir,
		       struct ferr *err)
{
	*r = (struct stream_reader){.ch = ch, .dir = dir};
	r->buf = calloc(1, sizeof(*r->buf));
	if (r->buf)
		r->buf->hash = XXH3_createState();
	if (!r->buf || !r->buf->hash) {
		stream_reader_destroy(r);
		return ferr_set(err, -ENOMEM, "stream reader: out of memory");
	}
	return 0;
}

void stream_reader_destroy(struct stream_reader *r)
{
	if (r->buf) {
		XXH3_freeState(r->buf->hash);
		free(r->buf);
		r->buf = NULL;
	}
}

/* Raw bytes from the channel, counted; @what names them if the channel fails. */
static int read_raw(struct stream_reader *r, void *buf, size_t len, const char *what,
		    struct ferr *err)
{
	struct ferr cerr = FERR_INIT;

	int rc = channel_read_full(r->ch, buf, len, &cerr);
	if (rc)
		return stream_reader_fail(r, err, rc, "%s%s", what, cerr.msg);
	r->stats.bytes += len;
	return 0;
}

static void hex_prefix(const uint8_t *p, char *out, size_t len)
{
	size_t o = 0;

	for (int i = 0; i < STREAM_MAGIC_LEN; i++)
		o += snprintf(out + o, len - o, "%s%02x", i ? " " : "", p[i]);
	o += snprintf(out + o, len - o, " \"");
	for (int i = 0; i < STREAM_MAGIC_LEN; i++)
		out[o++] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? (char)p[i] : '.';
	snprintf(out + o, len - o, "\"");
}

int stream_read_header(struct stream_reader *r, struct stream_header *out, struct ferr *err)
{
	uint8_t buf[STREAM_HEADER_MAX];
	struct stream_header h;
	struct ferr herr = FERR_INIT;
	uint32_t version, len;
	uint64_t sum;

	if (r->failed.code)
		return ferr_set(err, r->failed.code, "%s", r->failed.msg);
	if (r->dir != STREAM_MIGRATION || r->have_header)
		return stream_reader_fail(r, err, -EINVAL, "stream reader: no header to read here");
	int rc = read_raw(r, buf, STREAM_HEADER_PREFIX, "stream header: ", err);
	if (rc)
		return rc;
	if (memcmp(buf, STREAM_MAGIC, STREAM_MAGIC_LEN)) {
		char hex[64];
		hex_prefix(buf, hex, sizeof(hex));
		/* A TLS handshake record: 0x16, then version 3.x. */
		bool tls = buf[0] == 0x16 && buf[1] == 0x03;
		return stream_reader_fail(r, err, -EPROTO,
					  "not a ferry migration stream (starts with %s)%s", hex,
					  tls ? ": a TLS handshake (the source uses TLS: set "
						"tls-creds here too)"
					      : "");
	}
	memcpy(&version, buf + 8, 4);
	memcpy(&len, buf + 12, 4);
	version = le32toh(version);
	len = le32toh(len);
	/* Bounded by STREAM_HEADER_MAX in every version: read it all, check the
	 * checksum, and only then believe the version. */
	if (len < STREAM_HEADER_PREFIX + 8 || len > STREAM_HEADER_MAX || len % 8)
		return stream_reader_fail(r, err, -EPROTO,
					  "stream header: length %" PRIu32
					  " is invalid (a multiple of 8 in %u..%u)",
					  len, STREAM_HEADER_PREFIX + 8, STREAM_HEADER_MAX);
	rc = read_raw(r, buf + STREAM_HEADER_PREFIX, len - STREAM_HEADER_PREFIX,
		      "stream header: ", err);
	if (rc)
		return rc;
	memcpy(&sum, buf + len - 8, 8);
	sum = le64toh(sum);
	uint64_t want = XXH3_64bits(buf, len - 8);
	if (sum != want)
		return stream_reader_fail(r, err, -EBADMSG,
					  "stream header: checksum mismatch:"
					  " stream says 0x%016" PRIx64
					  ", data hashes to 0x%016" PRIx64,
					  sum, want);
	if (version == 0)
		return stream_reader_fail(r, err, -EPROTO, "stream header: version 0 is invalid");
	if (version > STREAM_VERSION)
		return stream_reader_fail(r, err, -EPROTONOSUPPORT,
					  "stream format version %" PRIu32
					  " is newer than this ferry understands (%u)",
					  version, STREAM_VERSION);
	if (len < STREAM_HEADER_LEN(0))
		return stream_reader_fail(r, err, -EPROTO,
					  "stream header: %" PRIu32 " bytes is too short", len);
	rc = stream_header_decode_v1(buf, len, &h, &herr);
	if (rc)
		return stream_reader_fail(r, err, rc, "%s", herr.msg);
	r->hdr = h;
	r->have_header = true;
	r->postcopy = h.features & STREAM_FEAT_RESUME; /* starts where GO left it */
	if (out)
		*out = h;
	return 0;
}

int stream_reader_set_header(struct stream_reader *r, const struct stream_header *h,
			     struct ferr *err)
{
	struct ferr herr = FERR_INIT;

	if (r->failed.code)
		return ferr_set(err, r->failed.code, "%s", r->failed.msg);
	if (r->dir != STREAM_RETURN || r->have_header)
		return stream_reader_fail(r, err, -EINVAL,
					  "stream reader: the migration stream has its own header");
	int rc = stream_header_check(h, &herr);
	if (rc)
		return stream_reader_fail(r, err, rc, "%s", herr.msg);
	r->hdr = *h;
	r->hdr.version = STREAM_VERSION;
	r->have_header = true;
	r->postcopy = h->features & STREAM_FEAT_RESUME;
	return 0;
}

int stream_reader_take(struct stream_reader *r, void *buf, size_t len, struct ferr *err)
{
	if (len > r->cur_left) /* a bug in this module: never from the stream */
		return stream_reader_fail(r, err, -EINVAL,
					  "stream reader: reading past the payload");
	int rc = read_raw(r, buf, len, "", err);
	if (rc)
		return rc;
	XXH3_64bits_update(r->buf->hash, buf, len);
	r->cur_left -= len;
	return 0;
}

int stream_reader_finish(struct stream_reader *r, struct ferr *err)
{
	uint8_t tail[16];
	uint64_t sum;

	if (r->cur_left)
		return stream_reader_fail(r, err, -EINVAL,
					  "stream reader: %" PRIu64 " payload bytes left unread",
					  r->cur_left);
	uint64_t pad = stream_pad8(r->cur.length);
	int rc = read_raw(r, tail, pad + 8, "", err);
	if (rc)
		return rc;
	for (uint64_t i = 0; i < pad; i++)
		if (tail[i])
			return stream_reader_fail(r, err, -EPROTO, "padding is not zero");
	XXH3_64bits_update(r->buf->hash, tail, pad);
	memcpy(&sum, tail + pad, 8);
	sum = le64toh(sum);
	uint64_t want = XXH3_64bits_digest(r->buf->hash);
	if (sum != want)
		return stream_reader_fail(r, err, -EBADMSG,
					  "checksum mismatch: stream says 0x%016" PRIx64
					  ", data hashes to 0x%016" PRIx64 " (corrupt, or"
					  " records lost or out of order)",
					  sum, want);
	return 0;
}

static int drain(struct stream_reader *r, struct ferr *err)
{
	while (r->cur_left) {
		size_t n = r->cur_left < STREAM_SCRATCH ? r->cur_left : STREAM_SCRATCH;
		int rc = stream_reader_take(r, r->buf->scratch, n, err);
		if (rc)
			return rc;
	}
	int rc = stream_reader_finish(r, err);
	if (rc == 0)
		r->in_record = false;
	return rc;
}

static const char *dir_name(enum stream_dir dir)
{
	return dir == STREAM_MIGRATION ? "the migration stream" : "the return path";
}

/* The record header just read, against everything known before its payload. */
static int check_record(struct stream_reader *r, const struct stream_type_info *t, struct ferr *err)
{
	const struct stream_record *rec = &r->cur;

	if (rec->type == 0)
		return stream_reader_fail(r, err, -EPROTO, "record type 0 is invalid");
	if (rec->flags & ~STREAM_REC_FLAGS_KNOWN)
		return stream_reader_fail(r, err, -EPROTO, "reserved flags 0x%" PRIx32 " are set",
					  rec->flags & ~STREAM_REC_FLAGS_KNOWN);
	if (rec->length > STREAM_RECORD_MAX)
		return stream_reader_fail(r, err, -EPROTO,
					  "length %" PRIu64 " exceeds the %u MiB limit",
					  rec->length, STREAM_RECORD_MAX >> 20);
	if (!t)
		return 0; /* unknown: skipped or refused by the caller */
	if (!(t->dirs & STREAM_DIR_BIT(r->dir)))
		return stream_reader_fail(r, err, -EPROTO, "not valid on %s", dir_name(r->dir));
	if (rec->length < t->min_len || rec->length > t->max_len)
		return stream_reader_fail(r, err, -EPROTO,
					  "length %" PRIu64 " is out of bounds"
					  " (%" PRIu64 "..%" PRIu64 ")",
					  rec->length, t->min_len, t->max_len);
	if (r->ended && rec->type < STREAM_MSG_FIRST)
		return stream_reader_fail(r, err, -EPROTO, "record after END");
	/* After a post-copy GO: the remaining pages, then POSTCOPY_END. */
	if (r->postcopy && rec->type < STREAM_MSG_FIRST && rec->type != STREAM_REC_PAGE_BATCH &&
	    rec->type != STREAM_REC_POSTCOPY_END)
		return stream_reader_fail(r, err, -EPROTO, "not valid after a post-copy GO");
	if (!r->postcopy && rec->type == STREAM_REC_POSTCOPY_END)
		return stream_reader_fail(r, err, -EPROTO, "not valid before a post-copy GO");
	if ((rec->type == STREAM_MSG_POSTCOPY_MISSING || rec->type == STREAM_MSG_POSTCOPY_RESUME) &&
	    !(r->hdr.features & STREAM_FEAT_RESUME))
		return stream_reader_fail(r, err, -EPROTO, "not valid outside a post-copy resume");
	if (rec->type == STREAM_REC_STALE && (r->ended || r->postcopy_prepared || r->postcopy))
		return stream_reader_fail(r, err, -EPROTO, "not valid outside pre-copy's passes");
	if (rec->type == STREAM_REC_DISCARD && (r->ended || !r->postcopy_prepared))
		return stream_reader_fail(r, err, -EPROTO,
					  "not valid outside a post-copy switchover");
	return 0;
}

int stream_next_record(struct stream_reader *r, struct stream_record *out, struct ferr *err)
{
	struct stream_wire_record w;
	char label[STREAM_LABEL_LEN];

	if (r->failed.code)
		return ferr_set(err, r->failed.code, "%s", r->failed.msg);
	if (r->in_record)
		return stream_reader_fail(r, err, -EINVAL,
					  "stream reader: the record was not consumed");
	if (!r->have_header)
		return stream_reader_fail(r, err, -EINVAL, "stream reader: no header yet");
	for (;;) {
		uint64_t before = atomic_load(&r->ch->bytes_read);
		struct ferr cerr = FERR_INIT;
		int rc = channel_read_full(r->ch, &w, sizeof(w), &cerr);
		if (rc == -EPIPE && atomic_load(&r->ch->bytes_read) == before) {
			/* At a record boundary: say where, not how many bytes. */
			const char *what = r->dir == STREAM_RETURN ? "return path" : "stream";
			if (r->stats.records == 0)
				return stream_reader_fail(
				    r, err, rc, "%s ended before any record%s", what,
				    r->dir == STREAM_RETURN ? "" : " after the header");
			return stream_reader_fail(
			    r, err, rc, "%s ended after record %" PRIu64 " (%s)%s", what,
			    r->cur.number, stream_type_label(r->cur.type, label),
			    r->ended || r->dir == STREAM_RETURN ? ""
			    /* a data channel has no END: its source stopped mid-way */
			    : r->hdr.channel ? " (the data channel was closed)"
					     : " without an END record");
		}
		if (rc)
			return stream_reader_fail(r, err, rc, "record %" PRIu64 ": %s",
						  r->stats.records + 1, cerr.msg);
		r->cur_start = r->stats.bytes;
		r->stats.bytes += sizeof(w);
		r->cur = (struct stream_record){r->stats.records + 1, le32toh(w.type),
						le32toh(w.flags), le64toh(w.length)};
		r->stats.records = r->cur.number;
		r->cur_left = r->cur.length;
		r->in_record = true;
		XXH3_64bits_reset_withSeed(r->buf->hash, r->cur.number);
		XXH3_64bits_update(r->buf->hash, &w, sizeof(w));

		const struct stream_type_info *t = stream_type_info(r->cur.type);
		rc = check_record(r, t, err);
		if (rc)
			return rc;
		if (t)
			break;
		if (!(r->cur.flags & STREAM_REC_OPTIONAL))
			return stream_reader_fail(r, err, -EPROTO,
						  "unknown mandatory record"
						  " (written by a newer ferry?)");
		rc = drain(r, err);
		if (rc)
			return rc;
		r->stats.skipped++;
	}
	if (out)
		*out = r->cur;
	return 0;
}

int stream_reader_expect(struct stream_reader *r, enum stream_kind kind, struct ferr *err)
{
	static const char *const kinds[] = {"a page batch", "a state record", "a message"};

	if (r->failed.code)
		return ferr_set(err, r->failed.code, "%s", r->failed.msg);
	if (!r->in_record)
		return stream_reader_fail(r, err, -EINVAL, "stream reader: no current record");
	const struct stream_type_info *t = stream_type_info(r->cur.type);
	if (t->kind != kind)
		return stream_reader_fail(r, err, -EINVAL, "stream reader: not %s", kinds[kind]);
	return 0;
}

int stream_skip_record(struct stream_reader *r, struct ferr *err)
{
	if (r->failed.code)
		return ferr_set(err, r->failed.code, "%s", r->failed.msg);
	if (!r->in_record)
		return stream_reader_fail(r, err, -EINVAL, "stream reader: no current record");
	/* A batch is read as usual, into nowhere: its pages must still count
	 * for PASS_END and END, and its frames still be valid. */
	if (r->cur.type == STREAM_REC_PAGE_BATCH) {
		const struct stream_page_sink discard = {
		    .page = stream_reader_discard_page,
		    .zero = stream_reader_discard_zero,
		    .opaque = r,
		};
		return stream_read_page_batch(r, &discard, err);
	}
	if (r->cur.type == STREAM_REC_PASS_END || r->cur.type == STREAM_REC_END ||
	    r->cur.type == STREAM_REC_CHANNEL_SYNC) {
		struct stream_msg m; /* their checks are the point of reading them */
		return stream_read_msg(r, &m, err);
	}
	return drain(r, err);
}

int stream_read_blob(struct stream_reader *r, struct stream_blob *b, void *buf, size_t cap,
		     struct ferr *err)
{
	union {
		struct stream_wire_vcpu_state vcpu;
		struct stream_wire_device_state dev;
	} p;
	size_t plen = 0;

	int rc = stream_reader_expect(r, STREAM_KIND_BLOB, err);
	if (rc)
		return rc;
	if (r->cur.type == STREAM_REC_VCPU_STATE)
		plen = sizeof(p.vcpu);
	else if (r->cur.type == STREAM_REC_DEVICE_STATE)
		plen = sizeof(p.dev);
	uint64_t len = r->cur.length - plen; /* length >= plen: checked by next_record */
	if (len > cap)
		return stream_reader_fail(r, err, -EMSGSIZE,
					  "state of %" PRIu64 " bytes does not"
					  " fit the %zu-byte buffer",
					  len, cap);
	rc = stream_reader_take(r, &p, plen, err);
	if (!rc)
		rc = stream_reader_take(r, buf, len, err);
	if (!rc)
		rc = stream_reader_finish(r, err);
	if (rc)
		return rc;

	*b = (struct stream_blob){.len = len};
	if (r->cur.type == STREAM_REC_VCPU_STATE) {
		b->vcpu = le32toh(p.vcpu.vcpu);
		if (b->vcpu >= r->hdr.vcpu_count)
			return stream_reader_fail(r, err, -EPROTO,
						  "vCPU %" PRIu32 " does not exist"
						  " (the stream has %" PRIu32 " vCPUs)",
						  b->vcpu, r->hdr.vcpu_count);
		if (p.vcpu.reserved)
			return stream_reader_fail(r, err, -EPROTO, "reserved field is not 0");
	} else if (r->cur.type == STREAM_REC_DEVICE_STATE) {
		if (!stream_device_id_valid(p.dev.id))
			return stream_reader_fail(r, err, -EPROTO,
						  "device id is not 1-31 printable"
						  " characters padded with NUL");
		if (p.dev.reserved)
			return stream_reader_fail(r, err, -EPROTO, "reserved field is not 0");
		memcpy(b->device, p.dev.id, sizeof(b->device));
		b->device_version = le32toh(p.dev.version);
	}
	r->in_record = false;
	return 0;
}

/* PASS_END and END: the source's counts against what arrived. */
static int check_counts(struct stream_reader *r, const struct stream_msg *m, struct ferr *err)
{
	if (m->type == STREAM_REC_PASS_END) {
		const struct stream_pass_end *pe = &m->pass_end;
		if (pe->pass != r->pass + 1)
			return stream_reader_fail(r, err, -EPROTO,
						  "pass %" PRIu32 " follows pass %" PRIu32,
						  pe->pass, r->pass);
		if (pe->pages != r->pass_pages || pe->zero_pages != r->pass_zero_pages)
			return stream_reader_fail(
			    r, err, -EPROTO,
			    "source sent %" PRIu64 " pages (%" PRIu64 " zero) in pass %" PRIu32
			    ", %" PRIu64 " (%" PRIu64 " zero) arrived",
			    pe->pages, pe->zero_pages, pe->pass, r->pass_pages, r->pass_zero_pages);
		if (pe->bytes != r->cur_start - r->pass_start)
			return stream_reader_fail(r, err, -EPROTO,
						  "source sent %" PRIu64 " bytes in"
						  " pass %" PRIu32 ", %" PRIu64 " arrived",
						  pe->bytes, pe->pass,
						  r->cur_start - r->pass_start);
		r->pass = pe->pass;
		r->pass_pages = r->pass_zero_pages = 0;
		r->pass_start = r->stats.bytes;
	} else if (m->type == STREAM_REC_END || m->type == STREAM_REC_POSTCOPY_END) {
		const struct stream_end *e = &m->end;
		if (e->records != r->cur.number - 1)
			return stream_reader_fail(r, err, -EPROTO,
						  "source sent %" PRIu64 " records,"
						  " %" PRIu64 " arrived",
						  e->records, r->cur.number - 1);
		if (e->pages != r->stats.pages || e->zero_pages != r->stats.zero_pages)
			return stream_reader_fail(r, err, -EPROTO,
						  "source sent %" PRIu64 " pages (%" PRIu64
						  " zero), %" PRIu64 " (%" PRIu64 " zero) arrived",
						  e->pages, e->zero_pages, r->stats.pages,
						  r->stats.zero_pages);
		if (e->bytes != r->cur_start)
			return stream_reader_fail(
			    r, err, -EPROTO, "source sent %" PRIu64 " bytes, %" PRIu64 " arrived",
			    e->bytes, r->cur_start);
		r->ended = true;
	} else if (m->type == STREAM_REC_CHANNEL_SYNC) {
		const struct stream_channel_sync *c = &m->sync;
		if (!(r->hdr.features & STREAM_FEAT_MULTIFD))
			return stream_reader_fail(r, err, -EPROTO,
						  "not valid in a stream without MULTIFD");
		if (c->attempt <= r->sync_attempt)
			return stream_reader_fail(r, err, -EPROTO,
						  "attempt %" PRIu32 " follows attempt %" PRIu32,
						  c->attempt, r->sync_attempt);
		if (c->records != r->cur.number - 1 || c->pages != r->stats.pages ||
		    c->zero_pages != r->stats.zero_pages || c->bytes != r->cur_start)
			return stream_reader_fail(
			    r, err, -EPROTO,
			    "source sent %" PRIu64 " records, %" PRIu64 " pages (%" PRIu64
			    " zero), %" PRIu64 " bytes; %" PRIu64 ", %" PRIu64 " (%" PRIu64
			    " zero), %" PRIu64 " arrived",
			    c->records, c->pages, c->zero_pages, c->bytes, r->cur.number - 1,
			    r->stats.pages, r->stats.zero_pages, r->cur_start);
		r->sync_attempt = c->attempt;
	}
	return 0;
}

int stream_read_msg(struct stream_reader *r, struct stream_msg *m, struct ferr *err)
{
	uint8_t buf[STREAM_MSG_MAX_LEN];
	char why[FERR_MSG_MAX - 64];

	int rc = stream_reader_expect(r, STREAM_KIND_MSG, err);
	if (rc)
		return rc;
	size_t len = r->cur.length;
	if (len > sizeof(buf)) /* the type table keeps every message below this */
		return stream_reader_fail(r, err, -EINVAL, "stream reader: message too long");
	rc = stream_reader_take(r, buf, len, err);
	if (!rc)
		rc = stream_reader_finish(r, err);
	if (rc)
		return rc;
	rc = stream_msg_decode(r->cur.type, buf, len, &r->hdr, m, why, sizeof(why));
	if (rc)
		return stream_reader_fail(r, err, rc, "%s", why);
	rc = check_counts(r, m, err);
	if (rc)
		return rc;
	/* A rolled-back switchover: the source resumed its guest and sends more. */
	if (m->type == STREAM_MSG_ABORT && m->abort.reason == STREAM_ABORT_RETRY &&
	    r->dir == STREAM_MIGRATION) {
		r->ended = false;
		r->postcopy_prepared = false;
	} else if (m->type == STREAM_REC_SWITCHOVER_PREPARE) {
		r->postcopy_prepared = m->switchover.flags & STREAM_SWITCHOVER_POSTCOPY;
		if (r->postcopy_prepared && !(r->hdr.features & STREAM_FEAT_POSTCOPY))
			return stream_reader_fail(r, err, -EPROTO,
						  "a post-copy switchover in a stream without "
						  "POSTCOPY");
	} else if (m->type == STREAM_MSG_GO && r->postcopy_prepared) {
		r->ended = false;
		r->postcopy = true;
	}
	r->in_record = false;
	return 0;
}
