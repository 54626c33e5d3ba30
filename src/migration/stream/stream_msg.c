// SPDX-License-Identifier: GPL-2.0-only
/*
 * Control messages and fixed-size records: struct stream_msg <-> payload.
 * Both directions check the same rules, so a ferry never writes what a
 * ferry refuses to read; the decoder assumes nothing about @p but that
 * @len bytes are there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "migration/stream/stream_priv.h"

#define ERRNO_MAX 4095 /* Linux errnos are 1..4095 (MAX_ERRNO) */

static int why_set(char *why, size_t whylen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int why_set(char *why, size_t whylen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return code;
}

/* An ACK names a record the source sent on the migration stream. */
static bool ackable(uint32_t type)
{
	const struct stream_type_info *t = stream_type_info(type);

	return t && (t->dirs & STREAM_DIR_BIT(STREAM_MIGRATION));
}

static int check_frames(const uint64_t *gfn, uint32_t count, const struct stream_header *h,
			int code, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < count; i++) {
		if (!stream_header_has_gfn(h, gfn[i])) {
			stream_gfn_why(h, gfn[i], why, whylen);
			return code;
		}
	}
	return 0;
}

/* One operator line from whatever the caller had: never fails. */
static size_t error_text(const char *in, char *out)
{
	size_t n = 0;

	for (; in && in[n] && n < STREAM_ERROR_TEXT_MAX; n++) {
		unsigned char c = (unsigned char)in[n];
		out[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n == 0) {
		static const char unknown[] = "unknown error";
		memcpy(out, unknown, sizeof(unknown) - 1);
		n = sizeof(unknown) - 1;
	}
	return n;
}

/* Every frame a DISCARD names lies inside the header's regions. */
static int check_discard(const struct stream_discard *d, const struct stream_header *h, int code,
			 char *why, size_t whylen)
{
	if (d->first & ~STREAM_GFN_MASK)
		return why_set(why, whylen, code,
			       "first frame 0x%016" PRIx64 " has reserved bits set", d->first);
	for (uint32_t i = 0; i < d->nwords; i++)
		for (uint64_t b = d->bits[i]; b; b &= b - 1) {
			uint64_t gfn = d->first + 64ull * i + (uint64_t)__builtin_ctzll(b);
			if (!stream_header_has_gfn(h, gfn)) {
				stream_gfn_why(h, gfn, why, whylen);
				return code;
			}
		}
	return 0;
}

int stream_msg_encode(const struct stream_msg *m, const struct stream_header *h, uint8_t *buf,
		      size_t *len, char *why, size_t whylen)
{
	switch (m->type) {
	case STREAM_REC_PASS_END: {
		const struct stream_pass_end *pe = &m->pass_end;
		struct stream_wire_pass_end w = {htole32(pe->pass),	  0,
						 htole64(pe->pages),	  htole64(pe->zero_pages),
						 htole64(pe->bytes),	  htole64(pe->remaining),
						 htole64(pe->duration_ns)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_REC_SWITCHOVER_PREPARE: {
		if (m->switchover.flags & ~STREAM_SWITCHOVER_KNOWN)
			return why_set(why, whylen, -EINVAL, "unknown flags 0x%" PRIx32,
				       m->switchover.flags);
		struct stream_wire_switchover w = {htole32(m->switchover.flags), 0,
						   htole64(m->switchover.remaining)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_REC_DISCARD:
	case STREAM_REC_STALE:
	case STREAM_MSG_POSTCOPY_MISSING: {
		const struct stream_discard *d = &m->discard;
		if (d->nwords < 1 || d->nwords > STREAM_DISCARD_MAX_WORDS)
			return why_set(why, whylen, -EINVAL,
				       "%" PRIu32 " words is out of range (1..%u)", d->nwords,
				       STREAM_DISCARD_MAX_WORDS);
		int rc = check_discard(d, h, -EINVAL, why, whylen);
		if (rc)
			return rc;
		struct stream_wire_discard w = {htole64(d->first), htole32(d->nwords), 0};
		memcpy(buf, &w, sizeof(w));
		for (uint32_t i = 0; i < d->nwords; i++) {
			uint64_t le = htole64(d->bits[i]);
			memcpy(buf + sizeof(w) + 8 * i, &le, 8);
		}
		*len = sizeof(w) + 8 * (size_t)d->nwords;
		return 0;
	}
	case STREAM_REC_END:
	case STREAM_REC_POSTCOPY_END: {
		const struct stream_end *e = &m->end;
		struct stream_wire_end w = {htole64(e->records), htole64(e->pages),
					    htole64(e->zero_pages), htole64(e->bytes)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_REC_CHANNEL_SYNC: {
		const struct stream_channel_sync *c = &m->sync;
		if (c->attempt == 0)
			return why_set(why, whylen, -EINVAL, "attempt 0");
		struct stream_wire_channel_sync w = {htole32(c->attempt),    0,
						     htole64(c->records),    htole64(c->pages),
						     htole64(c->zero_pages), htole64(c->bytes)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_MSG_READY: {
		if (m->ready.features & ~h->features)
			return why_set(why, whylen, -EINVAL,
				       "features 0x%" PRIx64 " are not in the stream's 0x%" PRIx64,
				       m->ready.features, h->features);
		struct stream_wire_ready w = {htole64(m->ready.features)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_MSG_GO:
		*len = 0;
		return 0;
	case STREAM_MSG_ABORT: {
		struct stream_wire_abort w = {htole32(m->abort.reason), 0};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_MSG_ERROR: {
		int code = m->error.code;
		if (code >= 0 || code < -ERRNO_MAX)
			code = -EIO;
		struct stream_wire_error w = {(int32_t)htole32((uint32_t)code), 0};
		memcpy(buf, &w, sizeof(w));
		*len = sizeof(w) + error_text(m->error.text, (char *)buf + sizeof(w));
		return 0;
	}
	case STREAM_MSG_RESUMED: {
		struct stream_wire_resumed w = {htole64(m->resumed.resume_ns)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_MSG_POSTCOPY_RESUME: {
		struct stream_wire_pc_resume w = {htole64(m->pc_resume.missing)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_MSG_ACK: {
		if (!ackable(m->ack.type) || m->ack.record == 0)
			return why_set(why, whylen, -EINVAL,
				       "cannot acknowledge record %" PRIu64 " of type 0x%" PRIx32,
				       m->ack.record, m->ack.type);
		struct stream_wire_ack w = {htole32(m->ack.type), 0, htole64(m->ack.record)};
		memcpy(buf, &w, *len = sizeof(w));
		return 0;
	}
	case STREAM_MSG_POSTCOPY_PAGE_REQUEST: {
		const struct stream_page_request *pr = &m->page_request;
		if (pr->count < 1 || pr->count > STREAM_BATCH_MAX_PAGES)
			return why_set(why, whylen, -EINVAL,
				       "%" PRIu32 " frames is out of range (1..%u)", pr->count,
				       STREAM_BATCH_MAX_PAGES);
		int rc = check_frames(pr->gfn, pr->count, h, -EINVAL, why, whylen);
		if (rc)
			return rc;
		struct stream_wire_page_request w = {htole32(pr->count), 0};
		memcpy(buf, &w, sizeof(w));
		for (uint32_t i = 0; i < pr->count; i++) {
			uint64_t le = htole64(pr->gfn[i]);
			memcpy(buf + sizeof(w) + 8 * i, &le, 8);
		}
		*len = sizeof(w) + 8 * (size_t)pr->count;
		return 0;
	}
	}
	return why_set(why, whylen, -EINVAL, "type 0x%" PRIx32 " is not a message", m->type);
}

static int decode_error(const uint8_t *p, size_t len, struct stream_error_msg *e, char *why,
			size_t whylen)
{
	struct stream_wire_error w;
	size_t n = len - sizeof(w);

	memcpy(&w, p, sizeof(w));
	e->code = (int32_t)le32toh((uint32_t)w.code);
	if (e->code >= 0 || e->code < -ERRNO_MAX)
		return why_set(why, whylen, -EPROTO, "error code %d is not a negative errno",
			       e->code);
	if (w.reserved)
		return why_set(why, whylen, -EPROTO, "reserved field is not 0");
	if (n < 1 || n > STREAM_ERROR_TEXT_MAX)
		return why_set(why, whylen, -EPROTO, "message of %zu bytes", n);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[sizeof(w) + i];
		if (c < 0x20 || c == 0x7f)
			return why_set(why, whylen, -EPROTO,
				       "message has control character 0x%02x at byte %zu", c, i);
	}
	memcpy(e->text, p + sizeof(w), n);
	e->text[n] = '\0';
	return 0;
}

static int decode_page_request(const uint8_t *p, size_t len, const struct stream_header *h,
			       struct stream_page_request *pr, char *why, size_t whylen)
{
	struct stream_wire_page_request w;

	memcpy(&w, p, sizeof(w));
	pr->count = le32toh(w.count);
	if (pr->count < 1 || pr->count > STREAM_BATCH_MAX_PAGES)
		return why_set(why, whylen, -EPROTO, "%" PRIu32 " frames is out of range (1..%u)",
			       pr->count, STREAM_BATCH_MAX_PAGES);
	if (w.reserved)
		return why_set(why, whylen, -EPROTO, "reserved field is not 0");
	if (len != sizeof(w) + 8 * (size_t)pr->count)
		return why_set(why, whylen, -EPROTO,
			       "%zu bytes long, but %" PRIu32 " frames make it %zu", len, pr->count,
			       sizeof(w) + 8 * (size_t)pr->count);
	for (uint32_t i = 0; i < pr->count; i++) {
		uint64_t le;
		memcpy(&le, p + sizeof(w) + 8 * i, 8);
		pr->gfn[i] = le64toh(le);
		if (pr->gfn[i] & ~STREAM_GFN_MASK)
			return why_set(why, whylen, -EPROTO,
				       "entry %" PRIu32 " has reserved bits set (0x%016" PRIx64 ")",
				       i, pr->gfn[i]);
	}
	return check_frames(pr->gfn, pr->count, h, -EPROTO, why, whylen);
}

int stream_msg_decode(uint32_t type, const uint8_t *p, size_t len, const struct stream_header *h,
		      struct stream_msg *m, char *why, size_t whylen)
{
	const struct stream_type_info *t = stream_type_info(type);

	if (!t || t->kind != STREAM_KIND_MSG)
		return why_set(why, whylen, -EINVAL, "not a message");
	if (len < t->min_len || len > t->max_len)
		return why_set(why, whylen, -EPROTO,
			       "length %zu is out of bounds (%" PRIu64 "..%" PRIu64 ")", len,
			       t->min_len, t->max_len);
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case STREAM_REC_PASS_END: {
		struct stream_wire_pass_end w;
		memcpy(&w, p, sizeof(w));
		if (w.reserved)
			return why_set(why, whylen, -EPROTO, "reserved field is not 0");
		m->pass_end = (struct stream_pass_end){
		    le32toh(w.pass),  le64toh(w.pages),	    le64toh(w.zero_pages),
		    le64toh(w.bytes), le64toh(w.remaining), le64toh(w.duration_ns)};
		return 0;
	}
	case STREAM_REC_SWITCHOVER_PREPARE: {
		struct stream_wire_switchover w;
		memcpy(&w, p, sizeof(w));
		m->switchover.flags = le32toh(w.flags);
		m->switchover.remaining = le64toh(w.remaining);
		if (m->switchover.flags & ~STREAM_SWITCHOVER_KNOWN)
			return why_set(why, whylen, -EPROTO, "unknown flags 0x%" PRIx32,
				       m->switchover.flags);
		if (w.reserved)
			return why_set(why, whylen, -EPROTO, "reserved field is not 0");
		return 0;
	}
	case STREAM_REC_DISCARD:
	case STREAM_REC_STALE:
	case STREAM_MSG_POSTCOPY_MISSING: {
		struct stream_wire_discard w;
		memcpy(&w, p, sizeof(w));
		m->discard.first = le64toh(w.first);
		m->discard.nwords = le32toh(w.nwords);
		if (w.reserved)
			return why_set(why, whylen, -EPROTO, "reserved field is not 0");
		if (m->discard.nwords < 1 || m->discard.nwords > STREAM_DISCARD_MAX_WORDS)
			return why_set(why, whylen, -EPROTO,
				       "%" PRIu32 " words is out of range (1..%u)",
				       m->discard.nwords, STREAM_DISCARD_MAX_WORDS);
		if (len != sizeof(w) + 8 * (size_t)m->discard.nwords)
			return why_set(why, whylen, -EPROTO,
				       "%zu bytes long, but %" PRIu32 " words make it %zu", len,
				       m->discard.nwords,
				       sizeof(w) + 8 * (size_t)m->discard.nwords);
		for (uint32_t i = 0; i < m->discard.nwords; i++) {
			uint64_t le;
			memcpy(&le, p + sizeof(w) + 8 * i, 8);
			m->discard.bits[i] = le64toh(le);
		}
		return check_discard(&m->discard, h, -EPROTO, why, whylen);
	}
	case STREAM_REC_END:
	case STREAM_REC_POSTCOPY_END: {
		struct stream_wire_end w;
		memcpy(&w, p, sizeof(w));
		m->end = (struct stream_end){le64toh(w.records), le64toh(w.pages),
					     le64toh(w.zero_pages), le64toh(w.bytes)};
		return 0;
	}
	case STREAM_REC_CHANNEL_SYNC: {
		struct stream_wire_channel_sync w;
		memcpy(&w, p, sizeof(w));
		if (w.reserved)
			return why_set(why, whylen, -EPROTO, "reserved field is not 0");
		m->sync = (struct stream_channel_sync){le32toh(w.attempt), le64toh(w.records),
						       le64toh(w.pages), le64toh(w.zero_pages),
						       le64toh(w.bytes)};
		if (m->sync.attempt == 0)
			return why_set(why, whylen, -EPROTO, "attempt 0 is invalid");
		return 0;
	}
	case STREAM_MSG_READY: {
		struct stream_wire_ready w;
		memcpy(&w, p, sizeof(w));
		m->ready.features = le64toh(w.features);
		if (m->ready.features & ~h->features)
			return why_set(why, whylen, -EPROTO,
				       "the destination accepts features 0x%" PRIx64
				       " that the stream (0x%" PRIx64 ") does not have",
				       m->ready.features, h->features);
		return 0;
	}
	case STREAM_MSG_GO:
		return 0;
	case STREAM_MSG_ABORT: {
		struct stream_wire_abort w;
		memcpy(&w, p, sizeof(w));
		m->abort.reason = le32toh(w.reason);
		if (w.reserved)
			return why_set(why, whylen, -EPROTO, "reserved field is not 0");
		return 0;
	}
	case STREAM_MSG_ERROR:
		return decode_error(p, len, &m->error, why, whylen);
	case STREAM_MSG_RESUMED: {
		struct stream_wire_resumed w;
		memcpy(&w, p, sizeof(w));
		m->resumed.resume_ns = le64toh(w.resume_ns);
		return 0;
	}
	case STREAM_MSG_POSTCOPY_RESUME: {
		struct stream_wire_pc_resume w;
		memcpy(&w, p, sizeof(w));
		m->pc_resume.missing = le64toh(w.missing);
		return 0;
	}
	case STREAM_MSG_ACK: {
		struct stream_wire_ack w;
		memcpy(&w, p, sizeof(w));
		m->ack.type = le32toh(w.type);
		m->ack.record = le64toh(w.record);
		if (w.reserved)
			return why_set(why, whylen, -EPROTO, "reserved field is not 0");
		if (!ackable(m->ack.type) || m->ack.record == 0)
			return why_set(why, whylen, -EPROTO,
				       "acknowledges record %" PRIu64 " of type 0x%" PRIx32
				       ", which the source cannot have sent",
				       m->ack.record, m->ack.type);
		return 0;
	}
	case STREAM_MSG_POSTCOPY_PAGE_REQUEST:
		return decode_page_request(p, len, h, &m->page_request, why, whylen);
	}
	return why_set(why, whylen, -EINVAL, "not a message");
}
