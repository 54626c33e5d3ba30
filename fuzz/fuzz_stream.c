// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the stream decoder (src/migration/stream_reader*.c).
 *
 * An input that starts with 'F' (as the magic does) is a migration stream:
 * its header is read and then every record, into a fake 4 MiB guest.
 * Anything else is a return path (its first byte is a record type's low
 * byte), read against a fixed header (4 MiB, 4 vCPUs, all features).
 * Each input is read several times (struct plan), so that the direct and
 * verified page paths, the zero callback and skipping all see it.
 *
 * Besides the sanitizers, it checks what the API promises: a failure
 * carries its code and a message, the reader never claims more bytes than
 * the input had, and page data only lands inside the fake guest.
 *
 * Random mutations never produce a matching XXH3, and state records and
 * messages are only decoded once their checksum matched; so each input
 * is read as it is, and with every checksum recomputed (the framing walked
 * as the reader would), which lets the fuzzer reach the checks behind the
 * checksum.  The decoder itself has no fuzzing mode.
 *
 * FUZZ_STREAM_VERBOSE=1 prints how each input ends, for triage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "migration/stream/stream.h"

#define GUEST_SIZE (4u << 20)
#define BLOB_MAX   (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_guest {
	const struct stream_header *hdr;
	uint8_t *mem; /* GUEST_SIZE, regions in RAM order */
};

static void *guest_page(void *opaque, uint64_t gfn)
{
	struct fuzz_guest *g = opaque;
	uint64_t gpa = gfn * STREAM_PAGE_SIZE, off = 0;

	if (!stream_header_has_gfn(g->hdr, gfn))
		abort(); /* the reader promised to check */
	for (uint32_t i = 0; i < g->hdr->nregions; i++) {
		const struct stream_region *r = &g->hdr->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			off += gpa - r->gpa;
			return off < GUEST_SIZE ? g->mem + off : NULL;
		}
		off += r->size;
	}
	abort();
}

static int guest_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	for (uint64_t i = 0; i < npages; i++) {
		uint8_t *p = guest_page(opaque, gfn + i);
		if (!p)
			return ferr_set(err, -EFAULT, "frame 0x%llx is not in the fake guest",
					(unsigned long long)(gfn + i));
		memset(p, 0, STREAM_PAGE_SIZE);
	}
	return 0;
}

static void check_failure(int rc, const struct ferr *err)
{
	if (rc >= 0 || err->code != rc || err->msg[0] == '\0') {
		fprintf(stderr, "failure %d without its message (code %d, \"%s\")\n", rc, err->code,
			err->msg);
		abort();
	}
}

/* How one pass consumes records: each input goes through every pass. */
struct plan {
	bool fix;      /* recompute checksums first */
	bool verified; /* PAGE_BATCH in verified mode, else direct */
	bool zero_cb;  /* direct mode: a zero() callback, else the reader memsets */
	bool skip;     /* skip every seventh record */
};

static const struct plan plans[] = {
    {false, false, true, false},
    {true, false, false, true},
    {true, false, true, false},
    {true, true, false, false},
};

static int consume(struct stream_reader *r, const struct stream_record *rec, struct fuzz_guest *g,
		   const struct plan *plan, uint8_t *buf, struct ferr *err)
{
	struct stream_page_sink sink = {guest_page, plan->zero_cb ? guest_zero : NULL, g};
	static struct stream_page_batch batch;
	struct stream_blob blob;
	struct stream_msg msg;

	if (plan->skip && rec->number % 7 == 5)
		return stream_skip_record(r, err);
	switch (rec->type) {
	case STREAM_REC_PAGE_BATCH:
		if (plan->verified)
			return stream_read_page_batch_verified(r, buf, STREAM_BATCH_MAX_DATA,
							       &batch, err);
		return stream_read_page_batch(r, &sink, err);
	case STREAM_REC_VCPU_STATE:
	case STREAM_REC_VM_STATE:
	case STREAM_REC_DEVICE_STATE:
		return stream_read_blob(r, &blob, buf, BLOB_MAX, err);
	default:
		return stream_read_msg(r, &msg, err);
	}
}

/* Give the header and every complete record a matching checksum. */
static void fix_checksums(uint8_t *buf, size_t size, bool migration)
{
	uint64_t off = 0, number = 1, len, sum;
	uint32_t hlen;

	if (migration) {
		if (size < STREAM_HEADER_PREFIX)
			return;
		memcpy(&hlen, buf + 12, 4);
		if (hlen < STREAM_HEADER_PREFIX + 8 || hlen > STREAM_HEADER_MAX || hlen > size)
			return;
		sum = XXH3_64bits(buf, hlen - 8);
		memcpy(buf + hlen - 8, &sum, 8);
		off = hlen;
	}
	while (off + sizeof(struct stream_wire_record) <= size) {
		memcpy(&len, buf + off + 8, 8);
		if (len > size)
			return;
		uint64_t body = sizeof(struct stream_wire_record) + len + stream_pad8(len);
		if (body + 8 > size - off)
			return;
		sum = XXH3_64bits_withSeed(buf + off, body, number++);
		memcpy(buf + off + body, &sum, 8);
		off += body + 8;
	}
}

static void run(const uint8_t *data, size_t size, bool migration, const struct plan *plan)
{
	static const struct stream_header return_hdr = {
	    .page_size = STREAM_PAGE_SIZE,
	    .vcpu_count = 4,
	    .nregions = 1,
	    .features = STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME,
	    .regions = {{0, GUEST_SIZE}},
	};
	/* Allocated once: a fresh 4 MiB per input would cost more than the decoding. */
	static uint8_t *mem, *buf;
	struct ferr err = FERR_INIT;
	struct stream_reader r;
	struct stream_record rec;
	struct channel *ch;
	int rc;

	if (!mem) {
		mem = malloc(GUEST_SIZE);
		buf = malloc(STREAM_BATCH_MAX_DATA);
		if (!mem || !buf)
			abort();
	}
	if (channel_mem_open(data, size, &ch, &err))
		abort();
	if (stream_reader_init(&r, ch, migration ? STREAM_MIGRATION : STREAM_RETURN, &err))
		abort();
	struct fuzz_guest g = {&r.hdr, mem};

	if (migration)
		rc = stream_read_header(&r, NULL, &err);
	else
		rc = stream_reader_set_header(&r, &return_hdr, &err);
	while (rc == 0) {
		rc = stream_next_record(&r, &rec, &err);
		if (rc == 0)
			rc = consume(&r, &rec, &g, plan, buf, &err);
	}
	check_failure(rc, &err);
	if (getenv("FUZZ_STREAM_VERBOSE"))
		fprintf(stderr, "%zu bytes, %llu records: %s\n", size,
			(unsigned long long)r.stats.records, err.msg);
	/* Sticky: the next call fails the same way. */
	struct ferr again = FERR_INIT;
	if (stream_next_record(&r, &rec, &again) != rc || strcmp(again.msg, err.msg))
		abort();
	if (r.stats.bytes > size || r.stats.pages < r.stats.zero_pages)
		abort();
	stream_reader_destroy(&r);
	channel_close(ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool migration = size > 0 && data[0] == STREAM_MAGIC[0];
	uint8_t *fixed = malloc(size ? size : 1);

	if (!fixed)
		abort();
	if (size)
		memcpy(fixed, data, size);
	fix_checksums(fixed, size, migration);
	for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++)
		run(plans[i].fix ? fixed : data, size, migration, &plans[i]);
	free(fixed);
	return 0;
}
