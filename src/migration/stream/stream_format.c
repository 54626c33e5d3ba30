// SPDX-License-Identifier: GPL-2.0-only
/*
 * The format's rules that writer and reader share: the record type table,
 * the header's encoding and checks, frame checks, zero-page detection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <xxhash.h>

#include "migration/stream/stream_priv.h"

#define MIG STREAM_DIR_BIT(STREAM_MIGRATION)
#define RET STREAM_DIR_BIT(STREAM_RETURN)

static const struct stream_type_info stream_types[] = {
    {STREAM_REC_PAGE_BATCH, "PAGE_BATCH", STREAM_KIND_BATCH, MIG,
     sizeof(struct stream_wire_page_batch) + 8,
     sizeof(struct stream_wire_page_batch) + 8 * STREAM_BATCH_MAX_PAGES + STREAM_BATCH_MAX_DATA},
    {STREAM_REC_PASS_END, "PASS_END", STREAM_KIND_MSG, MIG, sizeof(struct stream_wire_pass_end),
     sizeof(struct stream_wire_pass_end)},
    {STREAM_REC_VCPU_STATE, "VCPU_STATE", STREAM_KIND_BLOB, MIG,
     sizeof(struct stream_wire_vcpu_state),
     sizeof(struct stream_wire_vcpu_state) + STREAM_VCPU_STATE_MAX},
    {STREAM_REC_VM_STATE, "VM_STATE", STREAM_KIND_BLOB, MIG, 0, STREAM_VM_STATE_MAX},
    {STREAM_REC_DEVICE_STATE, "DEVICE_STATE", STREAM_KIND_BLOB, MIG,
     sizeof(struct stream_wire_device_state),
     sizeof(struct stream_wire_device_state) + STREAM_DEVICE_STATE_MAX},
    {STREAM_REC_SWITCHOVER_PREPARE, "SWITCHOVER_PREPARE", STREAM_KIND_MSG, MIG,
     sizeof(struct stream_wire_switchover), sizeof(struct stream_wire_switchover)},
    {STREAM_REC_END, "END", STREAM_KIND_MSG, MIG, sizeof(struct stream_wire_end),
     sizeof(struct stream_wire_end)},
    {STREAM_REC_CHANNEL_SYNC, "CHANNEL_SYNC", STREAM_KIND_MSG, MIG,
     sizeof(struct stream_wire_channel_sync), sizeof(struct stream_wire_channel_sync)},
    {STREAM_REC_DISCARD, "DISCARD", STREAM_KIND_MSG, MIG, sizeof(struct stream_wire_discard) + 8,
     sizeof(struct stream_wire_discard) + 8 * STREAM_DISCARD_MAX_WORDS},
    {STREAM_REC_STALE, "STALE", STREAM_KIND_MSG, MIG, sizeof(struct stream_wire_discard) + 8,
     sizeof(struct stream_wire_discard) + 8 * STREAM_DISCARD_MAX_WORDS},
    {STREAM_REC_POSTCOPY_END, "POSTCOPY_END", STREAM_KIND_MSG, MIG, sizeof(struct stream_wire_end),
     sizeof(struct stream_wire_end)},
    {STREAM_MSG_READY, "READY", STREAM_KIND_MSG, RET, sizeof(struct stream_wire_ready),
     sizeof(struct stream_wire_ready)},
    {STREAM_MSG_GO, "GO", STREAM_KIND_MSG, MIG, 0, 0},
    {STREAM_MSG_ABORT, "ABORT", STREAM_KIND_MSG, MIG | RET, sizeof(struct stream_wire_abort),
     sizeof(struct stream_wire_abort)},
    {STREAM_MSG_ERROR, "ERROR", STREAM_KIND_MSG, MIG | RET, sizeof(struct stream_wire_error) + 1,
     sizeof(struct stream_wire_error) + STREAM_ERROR_TEXT_MAX},
    {STREAM_MSG_ACK, "ACK", STREAM_KIND_MSG, RET, sizeof(struct stream_wire_ack),
     sizeof(struct stream_wire_ack)},
    {STREAM_MSG_RESUMED, "RESUMED", STREAM_KIND_MSG, RET, sizeof(struct stream_wire_resumed),
     sizeof(struct stream_wire_resumed)},
    {STREAM_MSG_POSTCOPY_PAGE_REQUEST, "POSTCOPY_PAGE_REQUEST", STREAM_KIND_MSG, RET,
     sizeof(struct stream_wire_page_request) + 8,
     sizeof(struct stream_wire_page_request) + 8 * STREAM_BATCH_MAX_PAGES},
    {STREAM_MSG_POSTCOPY_MISSING, "POSTCOPY_MISSING", STREAM_KIND_MSG, RET,
     sizeof(struct stream_wire_discard) + 8,
     sizeof(struct stream_wire_discard) + 8 * STREAM_DISCARD_MAX_WORDS},
    {STREAM_MSG_POSTCOPY_RESUME, "POSTCOPY_RESUME", STREAM_KIND_MSG, RET,
     sizeof(struct stream_wire_pc_resume), sizeof(struct stream_wire_pc_resume)},
};

_Static_assert(STREAM_MSG_MAX_LEN >= sizeof(struct stream_wire_error) + STREAM_ERROR_TEXT_MAX,
	       "message buffer holds the longest ERROR");

const struct stream_type_info *stream_type_info(uint32_t type)
{
	for (size_t i = 0; i < sizeof(stream_types) / sizeof(stream_types[0]); i++)
		if (stream_types[i].type == type)
			return &stream_types[i];
	return NULL;
}

const char *stream_type_name(uint32_t type)
{
	const struct stream_type_info *t = stream_type_info(type);

	return t ? t->name : NULL;
}

const char *stream_type_label(uint32_t type, char buf[STREAM_LABEL_LEN])
{
	const char *name = stream_type_name(type);

	if (name)
		return name;
	snprintf(buf, STREAM_LABEL_LEN, "type 0x%08" PRIx32, type);
	return buf;
}

const char *stream_size_str(uint64_t bytes, char buf[STREAM_SIZE_LEN])
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	int u = -1;

	while (u < 3 && bytes && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, STREAM_SIZE_LEN, "%" PRIu64 " bytes", bytes);
	else
		snprintf(buf, STREAM_SIZE_LEN, "%" PRIu64 " %s", bytes, units[u]);
	return buf;
}

uint64_t stream_header_ram(const struct stream_header *h)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < h->nregions && i < STREAM_MAX_REGIONS; i++)
		total += h->regions[i].size;
	return total;
}

bool stream_header_has_gfn(const struct stream_header *h, uint64_t gfn)
{
	if (gfn > STREAM_GFN_MASK)
		return false;
	uint64_t gpa = gfn << STREAM_PAGE_SHIFT;
	for (uint32_t i = 0; i < h->nregions; i++)
		if (gpa >= h->regions[i].gpa && gpa - h->regions[i].gpa < h->regions[i].size)
			return true;
	return false;
}

void stream_gfn_why(const struct stream_header *h, uint64_t gfn, char *buf, size_t len)
{
	char size[STREAM_SIZE_LEN];

	if (h->nregions == 0) {
		snprintf(buf, len, "frame 0x%" PRIx64 ": the guest has no memory", gfn);
		return;
	}
	const struct stream_region *last = &h->regions[h->nregions - 1];
	if (gfn > STREAM_GFN_MASK || (gfn << STREAM_PAGE_SHIFT) >= last->gpa + last->size) {
		if (h->nregions == 1 && last->gpa == 0)
			snprintf(buf, len, "frame 0x%" PRIx64 " is beyond guest memory of %s", gfn,
				 stream_size_str(last->size, size));
		else
			snprintf(buf, len,
				 "frame 0x%" PRIx64
				 " is beyond the end of guest memory at 0x%" PRIx64,
				 gfn, last->gpa + last->size);
	} else {
		snprintf(buf, len, "frame 0x%" PRIx64 " lies outside the guest's memory regions",
			 gfn);
	}
}

int stream_header_check(const struct stream_header *h, struct ferr *err)
{
	uint64_t total = 0;

	if (h->page_size != STREAM_PAGE_SIZE)
		return ferr_set(err, -EPROTO,
				"stream header: page size %" PRIu32 " is not supported (only %u)",
				h->page_size, STREAM_PAGE_SIZE);
	if (h->vcpu_count < 1 || h->vcpu_count > STREAM_MAX_VCPUS)
		return ferr_set(err, -EPROTO,
				"stream header: %" PRIu32 " vCPUs is out of range (1..%u)",
				h->vcpu_count, STREAM_MAX_VCPUS);
	if (h->nregions < 1 || h->nregions > STREAM_MAX_REGIONS)
		return ferr_set(err, -EPROTO,
				"stream header: %" PRIu32 " memory regions is out of range (1..%u)",
				h->nregions, STREAM_MAX_REGIONS);
	uint64_t required = h->features & STREAM_FEAT_REQUIRED_MASK & ~STREAM_FEAT_KNOWN;
	if (required)
		return ferr_set(err, -EPROTONOSUPPORT,
				"stream header: the stream needs features 0x%" PRIx64
				" unknown to this ferry",
				required);
	if (h->channel == STREAM_CHANNEL_POSTCOPY && !(h->features & STREAM_FEAT_POSTCOPY))
		return ferr_set(err, -EPROTO,
				"stream header: a post-copy channel without the POSTCOPY feature");
	if ((h->features & STREAM_FEAT_RESUME) && !(h->features & STREAM_FEAT_POSTCOPY))
		return ferr_set(err, -EPROTO,
				"stream header: a post-copy resume without the POSTCOPY feature");
	if (h->features & STREAM_FEAT_MULTIFD) {
		if (h->nchannels < 1 || h->nchannels > STREAM_MULTIFD_MAX)
			return ferr_set(err, -EPROTO,
					"stream header: %" PRIu32
					" data channels is out of range (1..%u)",
					h->nchannels, STREAM_MULTIFD_MAX);
		if (h->channel > h->nchannels && h->channel != STREAM_CHANNEL_POSTCOPY)
			return ferr_set(err, -EPROTO,
					"stream header: channel %" PRIu32 " of %" PRIu32
					" data channels does not exist",
					h->channel, h->nchannels);
	} else if (h->features & STREAM_FEAT_POSTCOPY) {
		if (h->nchannels || (h->channel && h->channel != STREAM_CHANNEL_POSTCOPY))
			return ferr_set(err, -EPROTO,
					"stream header: data channels without the MULTIFD feature");
	} else if (h->session || h->channel || h->nchannels) {
		return ferr_set(err, -EPROTO,
				"stream header: a session or channel without the MULTIFD or "
				"POSTCOPY feature");
	}
	for (uint32_t i = 0; i < h->nregions; i++) {
		const struct stream_region *r = &h->regions[i];
		if (r->size == 0)
			return ferr_set(err, -EPROTO,
					"stream header: memory region %" PRIu32 " at 0x%" PRIx64
					" is empty",
					i, r->gpa);
		if ((r->gpa | r->size) % STREAM_PAGE_SIZE)
			return ferr_set(err, -EPROTO,
					"stream header: memory region %" PRIu32 " [0x%" PRIx64
					", +0x%" PRIx64 ") is not page-aligned",
					i, r->gpa, r->size);
		if (r->size > STREAM_MAX_GPA || r->gpa > STREAM_MAX_GPA - r->size)
			return ferr_set(err, -EPROTO,
					"stream header: memory region %" PRIu32 " [0x%" PRIx64
					", +0x%" PRIx64 ") ends beyond 2^52",
					i, r->gpa, r->size);
		if (i > 0) {
			const struct stream_region *p = &h->regions[i - 1];
			if (r->gpa < p->gpa)
				return ferr_set(err, -EPROTO,
						"stream header: memory regions are not"
						" sorted (region %" PRIu32 " at 0x%" PRIx64
						" follows one at 0x%" PRIx64 ")",
						i, r->gpa, p->gpa);
			if (r->gpa < p->gpa + p->size)
				return ferr_set(err, -EPROTO,
						"stream header: memory regions %" PRIu32
						" [0x%" PRIx64 ", 0x%" PRIx64 ") and %" PRIu32
						" [0x%" PRIx64 ", 0x%" PRIx64 ") overlap",
						i - 1, p->gpa, p->gpa + p->size, i, r->gpa,
						r->gpa + r->size);
		}
		total += r->size; /* no overflow: each size is below 2^52 */
	}
	if (total > STREAM_MAX_GUEST) {
		char size[STREAM_SIZE_LEN];
		return ferr_set(err, -EPROTO,
				"stream header: guest memory of %s exceeds the 1 TiB limit",
				stream_size_str(total, size));
	}
	return 0;
}

bool stream_device_id_valid(const char *id)
{
	size_t n = 0;

	while (n < STREAM_DEVICE_ID_LEN && id[n] >= 0x21 && id[n] <= 0x7e)
		n++;
	if (n == 0 || n == STREAM_DEVICE_ID_LEN)
		return false; /* empty, or no room for the terminating NUL */
	for (size_t i = n; i < STREAM_DEVICE_ID_LEN; i++)
		if (id[i] != '\0')
			return false; /* a non-printable byte, or garbage after the NUL */
	return true;
}

size_t stream_header_encode(const struct stream_header *h, uint8_t *buf)
{
	size_t len = STREAM_HEADER_LEN_F(h->nregions, h->features),
	       off = sizeof(struct stream_wire_header);
	struct stream_wire_header w = {
	    .version = htole32(STREAM_VERSION),
	    .header_len = htole32((uint32_t)len),
	    .page_size = htole32(h->page_size),
	    .vcpu_count = htole32(h->vcpu_count),
	    .nregions = htole32(h->nregions),
	    .features = htole64(h->features),
	    .cpuid_digest = htole64(h->cpuid_digest),
	};

	memcpy(w.magic, STREAM_MAGIC, STREAM_MAGIC_LEN);
	memcpy(buf, &w, sizeof(w));
	for (uint32_t i = 0; i < h->nregions; i++) {
		struct stream_wire_region r = {htole64(h->regions[i].gpa),
					       htole64(h->regions[i].size)};
		memcpy(buf + off, &r, sizeof(r));
		off += sizeof(r);
	}
	if (h->features & STREAM_FEAT_SESSION) {
		struct stream_wire_multifd mf = {htole64(h->session), htole16((uint16_t)h->channel),
						 htole16((uint16_t)h->nchannels), 0};
		memcpy(buf + off, &mf, sizeof(mf));
		off += sizeof(mf);
	}
	uint64_t sum = htole64(XXH3_64bits(buf, off));
	memcpy(buf + off, &sum, sizeof(sum));
	return len;
}

int stream_header_decode_v1(const uint8_t *buf, size_t len, struct stream_header *h,
			    struct ferr *err)
{
	struct stream_wire_header w;

	memcpy(&w, buf, sizeof(w));
	*h = (struct stream_header){
	    .version = le32toh(w.version),
	    .page_size = le32toh(w.page_size),
	    .vcpu_count = le32toh(w.vcpu_count),
	    .nregions = le32toh(w.nregions),
	    .features = le64toh(w.features),
	    .cpuid_digest = le64toh(w.cpuid_digest),
	};
	if (h->nregions < 1 || h->nregions > STREAM_MAX_REGIONS)
		return ferr_set(err, -EPROTO,
				"stream header: %" PRIu32 " memory regions is out of range (1..%u)",
				h->nregions, STREAM_MAX_REGIONS);
	if (len != STREAM_HEADER_LEN_F(h->nregions, h->features))
		return ferr_set(
		    err, -EPROTO,
		    "stream header: %zu bytes long, but %" PRIu32 " regions%s make it %zu", len,
		    h->nregions, h->features & STREAM_FEAT_SESSION ? " and the session block" : "",
		    STREAM_HEADER_LEN_F(h->nregions, h->features));
	if (w.reserved)
		return ferr_set(err, -EPROTO,
				"stream header: reserved field is 0x%" PRIx32 ", not 0",
				le32toh(w.reserved));
	for (uint32_t i = 0; i < h->nregions; i++) {
		struct stream_wire_region r;
		memcpy(&r, buf + sizeof(w) + i * sizeof(r), sizeof(r));
		h->regions[i].gpa = le64toh(r.gpa);
		h->regions[i].size = le64toh(r.size);
	}
	if (h->features & STREAM_FEAT_SESSION) {
		struct stream_wire_multifd mf;
		memcpy(&mf, buf + sizeof(w) + h->nregions * sizeof(struct stream_wire_region),
		       sizeof(mf));
		if (mf.reserved)
			return ferr_set(err, -EPROTO,
					"stream header: multifd reserved field is not 0");
		h->session = le64toh(mf.session);
		h->channel = le16toh(mf.channel);
		h->nchannels = le16toh(mf.nchannels);
	}
	return stream_header_check(h, err);
}

bool stream_page_is_zero(const void *page)
{
	typedef uint64_t __attribute__((may_alias)) word;
	const word *w = page;

	/* OR eight words at a time: the compiler vectorises this, and one
	 * test per 64 bytes keeps the early exit cheap. */
	for (size_t i = 0; i < STREAM_PAGE_SIZE / sizeof(word); i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

bool stream_header_same_guest(const struct stream_header *a, const struct stream_header *b)
{
	return a->vcpu_count == b->vcpu_count && a->nregions == b->nregions &&
	       a->cpuid_digest == b->cpuid_digest &&
	       memcmp(a->regions, b->regions, a->nregions * sizeof(a->regions[0])) == 0;
}
