// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every record kind, written and read back through mem channels: what
 * goes in comes out, counts and statistics agree on both sides.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migration/stream/stream.h"
#include "stream_test_util.h"

#define MiB (1ull << 20)

struct pair {
	struct fake_guest g;
	struct channel *wch, *rch;
	struct stream_writer w;
	struct stream_reader r;
	struct ferr err;
};

static void pair_start(struct pair *p, enum stream_dir dir)
{
	fake_guest_init(&p->g, 4, 1, 0ull, 4 * MiB);
	p->err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_mem_open(NULL, 0, &p->wch, &p->err), 0);
	assert_int_equal(stream_writer_init(&p->w, p->wch, dir, &p->err), 0);
	if (dir == STREAM_MIGRATION)
		assert_int_equal(stream_write_header(&p->w, &p->g.hdr, &p->err), 0);
	else
		assert_int_equal(stream_writer_set_header(&p->w, &p->g.hdr, &p->err), 0);
}

/* A migration stream whose header has @features too (and so a session block). */
static void pair_start_features(struct pair *p, uint64_t features)
{
	fake_guest_init(&p->g, 4, 1, 0ull, 4 * MiB);
	p->g.hdr.features |= features;
	p->err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_mem_open(NULL, 0, &p->wch, &p->err), 0);
	assert_int_equal(stream_writer_init(&p->w, p->wch, STREAM_MIGRATION, &p->err), 0);
	assert_int_equal(stream_write_header(&p->w, &p->g.hdr, &p->err), 0);
}

/* Everything written so far goes to a fresh reader. */
static void pair_flip(struct pair *p)
{
	assert_int_equal(stream_batch_flush(&p->w, &p->err), 0);
	p->rch = reopen(p->wch);
	p->wch = NULL;
	assert_int_equal(stream_reader_init(&p->r, p->rch, p->w.dir, &p->err), 0);
	if (p->w.dir == STREAM_MIGRATION)
		assert_int_equal(stream_read_header(&p->r, NULL, &p->err), 0);
	else
		assert_int_equal(stream_reader_set_header(&p->r, &p->g.hdr, &p->err), 0);
}

static void pair_end(struct pair *p)
{
	if (p->err.code)
		fail_msg("unexpected error: %s", p->err.msg);
	stream_writer_destroy(&p->w);
	stream_reader_destroy(&p->r);
	channel_close(p->wch);
	channel_close(p->rch);
	fake_guest_destroy(&p->g);
}

static void expect_record(struct pair *p, uint32_t type)
{
	struct stream_record rec;

	assert_int_equal(stream_next_record(&p->r, &rec, &p->err), 0);
	assert_int_equal(rec.type, type);
	assert_int_equal(rec.number, p->r.stats.records);
}

/* Field by field: padding inside the union is not part of the value. */
static void msg_equal(const struct stream_msg *got, const struct stream_msg *want)
{
	assert_int_equal(got->type, want->type);
	switch (want->type) {
	case STREAM_REC_PASS_END:
		assert_int_equal(got->pass_end.pass, want->pass_end.pass);
		assert_int_equal(got->pass_end.pages, want->pass_end.pages);
		assert_int_equal(got->pass_end.zero_pages, want->pass_end.zero_pages);
		assert_int_equal(got->pass_end.bytes, want->pass_end.bytes);
		assert_int_equal(got->pass_end.remaining, want->pass_end.remaining);
		assert_int_equal(got->pass_end.duration_ns, want->pass_end.duration_ns);
		break;
	case STREAM_REC_SWITCHOVER_PREPARE:
		assert_int_equal(got->switchover.flags, want->switchover.flags);
		assert_int_equal(got->switchover.remaining, want->switchover.remaining);
		break;
	case STREAM_REC_END:
		assert_int_equal(got->end.records, want->end.records);
		assert_int_equal(got->end.pages, want->end.pages);
		assert_int_equal(got->end.zero_pages, want->end.zero_pages);
		assert_int_equal(got->end.bytes, want->end.bytes);
		break;
	case STREAM_MSG_READY:
		assert_int_equal(got->ready.features, want->ready.features);
		break;
	case STREAM_MSG_ABORT:
		assert_int_equal(got->abort.reason, want->abort.reason);
		break;
	case STREAM_MSG_RESUMED:
		assert_int_equal(got->resumed.resume_ns, want->resumed.resume_ns);
		break;
	case STREAM_MSG_ERROR:
		assert_int_equal(got->error.code, want->error.code);
		assert_string_equal(got->error.text, want->error.text);
		break;
	case STREAM_MSG_ACK:
		assert_int_equal(got->ack.type, want->ack.type);
		assert_int_equal(got->ack.record, want->ack.record);
		break;
	case STREAM_MSG_POSTCOPY_PAGE_REQUEST:
		assert_int_equal(got->page_request.count, want->page_request.count);
		assert_memory_equal(got->page_request.gfn, want->page_request.gfn,
				    8 * want->page_request.count);
		break;
	}
}

static void expect_msg(struct pair *p, const struct stream_msg *want)
{
	struct stream_msg got;

	expect_record(p, want->type);
	assert_int_equal(stream_read_msg(&p->r, &got, &p->err), 0);
	msg_equal(&got, want);
}

static void test_header(void **state)
{
	for (int n = 1; n <= 2; n++) {
		struct stream_header h = {
		    .page_size = 4096,
		    .vcpu_count = 64,
		    .nregions = (uint32_t)n,
		    .features = STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY | (1ull << 40),
		    .cpuid_digest = 0xfeedfacecafebeefull,
		    .regions = {{0, 3ull << 30}},
		};
		struct stream_header got;
		struct ferr err = FERR_INIT;
		struct stream_writer w;
		struct stream_reader r;
		struct channel *ch;

		if (n == 2)
			h.regions[1] = (struct stream_region){4ull << 30, 1ull << 30};
		assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
		assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
		assert_int_equal(stream_write_header(&w, &h, &err), 0);
		/* POSTCOPY brings the session block (16 bytes). */
		assert_int_equal(w.stats.bytes, 56 + 16 * n + 16);
		ch = reopen(ch);
		assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
		/* Unknown optional features (bit 40) are accepted and kept. */
		assert_int_equal(stream_read_header(&r, &got, &err), 0);
		h.version = 1;
		assert_memory_equal(&got, &h, sizeof(h));
		assert_int_equal(r.stats.bytes, w.stats.bytes);
		stream_writer_destroy(&w);
		stream_reader_destroy(&r);
		channel_close(ch);
	}
}

static void test_pages_direct(void **state)
{
	struct fake_guest dst;
	struct pair p;

	pair_start(&p, STREAM_MIGRATION);
	fake_guest_init(&dst, 4, 1, 0ull, 4 * MiB);
	memset(dst.mem, 0xaa, dst.size); /* zero pages must really be zeroed */
	for (uint64_t gfn = 0; gfn < 600; gfn++) {
		if (gfn % 5 == 0) {
			assert_int_equal(stream_batch_zero(&p.w, gfn, &p.err), 0);
			continue;
		}
		fake_guest_fill(&p.g, gfn, 7);
		if (gfn % 2)
			assert_int_equal(
			    stream_batch_ref(&p.w, gfn, fake_guest_page(&p.g, gfn), &p.err), 0);
		else
			assert_int_equal(
			    stream_batch_copy(&p.w, gfn, fake_guest_page(&p.g, gfn), &p.err), 0);
	}
	pair_flip(&p);
	struct stream_page_sink sink = fake_guest_sink(&dst);
	for (int i = 0; i < 3; i++) {
		expect_record(&p, STREAM_REC_PAGE_BATCH);
		assert_int_equal(stream_read_page_batch(&p.r, &sink, &p.err), 0);
	}
	assert_memory_equal(dst.mem, p.g.mem, 600 * STREAM_PAGE_SIZE);
	for (size_t i = 600 * STREAM_PAGE_SIZE; i < dst.size; i++)
		if (dst.mem[i] != 0xaa)
			fail_msg("byte %zu beyond the pages sent was written", i);
	assert_int_equal(p.w.stats.batches, 3); /* 256 + 256 + 88 */
	assert_int_equal(p.w.stats.pages, 600);
	assert_int_equal(p.w.stats.zero_pages, 120);
	assert_int_equal(p.r.stats.batches, 3);
	assert_int_equal(p.r.stats.pages, 600);
	assert_int_equal(p.r.stats.zero_pages, 120);
	assert_int_equal(p.r.stats.bytes, p.w.stats.bytes);
	assert_int_equal(p.w.stats.bytes, p.rch->bytes_read);
	fake_guest_destroy(&dst);
	pair_end(&p);
}

static void test_pages_verified(void **state)
{
	static const uint64_t gfns[] = {7, 3, 1000, 2, 8};
	struct stream_page_batch *out = malloc(sizeof(*out));
	uint8_t *buf = malloc(STREAM_BATCH_MAX_DATA);
	struct pair p;

	pair_start(&p, STREAM_MIGRATION);
	for (size_t i = 0; i < 5; i++) {
		fake_guest_fill(&p.g, gfns[i], 1);
		if (gfns[i] == 2)
			assert_int_equal(stream_batch_zero(&p.w, 2, &p.err), 0);
		else
			assert_int_equal(
			    stream_batch_ref(&p.w, gfns[i], fake_guest_page(&p.g, gfns[i]), &p.err),
			    0);
	}
	pair_flip(&p);
	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(
	    stream_read_page_batch_verified(&p.r, buf, STREAM_BATCH_MAX_DATA, out, &p.err), 0);
	assert_int_equal(out->count, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(out->gfn[i], gfns[i]);
		if (gfns[i] == 2)
			assert_null(out->data[i]);
		else
			assert_memory_equal(out->data[i], fake_guest_page(&p.g, gfns[i]),
					    STREAM_PAGE_SIZE);
	}
	assert_int_equal(p.r.stats.zero_pages, 1);
	pair_end(&p);
	free(out);
	free(buf);
}

struct zero_log {
	struct fake_guest *g;
	int calls;
	uint64_t gfn[8], npages[8];
};

static void *log_page(void *opaque, uint64_t gfn)
{
	struct zero_log *l = opaque;

	return fake_guest_page(l->g, gfn);
}

static int log_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	struct zero_log *l = opaque;

	l->gfn[l->calls] = gfn;
	l->npages[l->calls++] = npages;
	return 0;
}

/* Zero runs are coalesced, and applied only once the checksum matched. */
static void test_zero_runs_after_verify(void **state)
{
	static const uint64_t zero[] = {10, 11, 12, 14, 20};
	struct fake_guest dst;
	struct pair p;

	fake_guest_init(&dst, 4, 1, 0ull, 4 * MiB);
	for (int corrupt = 0; corrupt < 2; corrupt++) {
		struct zero_log log = {.g = &dst};
		struct stream_page_sink sink = {log_page, log_zero, &log};
		pair_start(&p, STREAM_MIGRATION);
		fake_guest_fill(&p.g, 13, 0);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(stream_batch_zero(&p.w, zero[i], &p.err), 0);
		assert_int_equal(stream_batch_ref(&p.w, 13, fake_guest_page(&p.g, 13), &p.err), 0);
		for (size_t i = 3; i < 5; i++)
			assert_int_equal(stream_batch_zero(&p.w, zero[i], &p.err), 0);
		assert_int_equal(stream_batch_flush(&p.w, &p.err), 0);
		if (corrupt) { /* the last byte of the checksum */
			size_t len;
			uint8_t *data = (uint8_t *)channel_mem_data(p.wch, &len);
			data[len - 1] ^= 1;
		}
		pair_flip(&p);
		expect_record(&p, STREAM_REC_PAGE_BATCH);
		int rc = stream_read_page_batch(&p.r, &sink, &p.err);
		if (corrupt) {
			assert_int_equal(rc, -EBADMSG);
			assert_int_equal(log.calls, 0);
			ferr_clear(&p.err);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(log.calls, 3);
			assert_int_equal(log.gfn[0], 10);
			assert_int_equal(log.npages[0], 3);
			assert_int_equal(log.gfn[1], 14);
			assert_int_equal(log.npages[1], 1);
			assert_int_equal(log.gfn[2], 20);
			assert_int_equal(log.npages[2], 1);
		}
		pair_end(&p);
	}
	fake_guest_destroy(&dst);
}

static void test_state_records(void **state)
{
	static const size_t sizes[] = {0, 1, 7, 5000};
	uint8_t blob[5000], buf[8192];
	struct stream_blob b;
	struct pair p;

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 31 + 5);
	pair_start(&p, STREAM_MIGRATION);
	for (uint32_t v = 0; v < 4; v++)
		assert_int_equal(stream_write_vcpu_state(&p.w, v, blob, sizeof(blob) - v, &p.err),
				 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(stream_write_vm_state(&p.w, blob, sizes[i], &p.err), 0);
	assert_int_equal(stream_write_device_state(&p.w, "serial0", 3, blob, 9, &p.err), 0);
	assert_int_equal(stream_write_device_state(&p.w, "0123456789abcdefghijklmnopqrstu",
						   0xffffffff, NULL, 0, &p.err),
			 0);
	pair_flip(&p);
	for (uint32_t v = 0; v < 4; v++) {
		expect_record(&p, STREAM_REC_VCPU_STATE);
		assert_int_equal(stream_read_blob(&p.r, &b, buf, sizeof(buf), &p.err), 0);
		assert_int_equal(b.vcpu, v);
		assert_int_equal(b.len, sizeof(blob) - v);
		assert_memory_equal(buf, blob, b.len);
	}
	for (size_t i = 0; i < 4; i++) {
		expect_record(&p, STREAM_REC_VM_STATE);
		assert_int_equal(stream_read_blob(&p.r, &b, buf, sizeof(buf), &p.err), 0);
		assert_int_equal(b.len, sizes[i]);
		assert_memory_equal(buf, blob, b.len);
	}
	expect_record(&p, STREAM_REC_DEVICE_STATE);
	assert_int_equal(stream_read_blob(&p.r, &b, buf, sizeof(buf), &p.err), 0);
	assert_string_equal(b.device, "serial0");
	assert_int_equal(b.device_version, 3);
	assert_int_equal(b.len, 9);
	assert_memory_equal(buf, blob, 9);
	expect_record(&p, STREAM_REC_DEVICE_STATE);
	assert_int_equal(stream_read_blob(&p.r, &b, buf, 0, &p.err), 0);
	assert_string_equal(b.device, "0123456789abcdefghijklmnopqrstu");
	assert_int_equal(b.device_version, 0xffffffff);
	assert_int_equal(b.len, 0);
	pair_end(&p);
}

static void test_messages_migration(void **state)
{
	struct pair p;
	struct stream_msg m;

	pair_start(&p, STREAM_MIGRATION);
	fake_guest_fill(&p.g, 5, 0);
	assert_int_equal(stream_batch_ref(&p.w, 5, fake_guest_page(&p.g, 5), &p.err), 0);
	assert_int_equal(stream_batch_zero(&p.w, 6, &p.err), 0);
	uint64_t pass1_bytes = p.w.stats.bytes + 16 + 8 + 16 + 4096 + 8; /* + the batch */
	/* The caller's pass, pages, zero_pages and bytes are ignored. */
	m = (struct stream_msg){.type = STREAM_REC_PASS_END,
				.pass_end = {99, 99, 99, 99, .remaining = 12, .duration_ns = 345}};
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	m = (struct stream_msg){.type = STREAM_REC_PASS_END, .pass_end.remaining = 0};
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	m = (struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE,
				.switchover = {STREAM_SWITCHOVER_PAUSED, 77}};
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	uint64_t end_bytes = p.w.stats.bytes;
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_REC_END}, &p.err), 0);
	assert_true(p.w.ended);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_MSG_GO}, &p.err), 0);
	m = (struct stream_msg){.type = STREAM_MSG_ABORT, .abort.reason = STREAM_ABORT_TIMEOUT};
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	m = (struct stream_msg){.type = STREAM_MSG_ERROR, .error = {-ENOSPC, "disk full"}};
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	pair_flip(&p);

	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(stream_skip_record(&p.r, &p.err), 0);
	expect_msg(&p, &(struct stream_msg){.type = STREAM_REC_PASS_END,
					    .pass_end = {1, 2, 1, pass1_bytes, 12, 345}});
	expect_msg(
	    &p, &(struct stream_msg){.type = STREAM_REC_PASS_END, .pass_end = {2, 0, 0, 0, 0, 0}});
	expect_msg(&p, &(struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE,
					    .switchover = {STREAM_SWITCHOVER_PAUSED, 77}});
	expect_msg(&p, &(struct stream_msg){.type = STREAM_REC_END, .end = {4, 2, 1, end_bytes}});
	assert_true(p.r.ended);
	expect_msg(&p, &(struct stream_msg){.type = STREAM_MSG_GO});
	expect_msg(&p, &(struct stream_msg){.type = STREAM_MSG_ABORT,
					    .abort.reason = STREAM_ABORT_TIMEOUT});
	expect_msg(&p,
		   &(struct stream_msg){.type = STREAM_MSG_ERROR, .error = {-ENOSPC, "disk full"}});
	assert_int_equal(p.r.stats.records, 8);
	assert_int_equal(p.r.stats.bytes, p.w.stats.bytes);
	pair_end(&p);
}

static void test_messages_return(void **state)
{
	struct stream_msg m[7] = {
	    {.type = STREAM_MSG_READY, .ready.features = 0},
	    {.type = STREAM_MSG_ACK, .ack = {STREAM_REC_END, 4242}},
	    {.type = STREAM_MSG_POSTCOPY_PAGE_REQUEST, .page_request = {3, {1023, 0, 17}}},
	    {.type = STREAM_MSG_ABORT, .abort.reason = STREAM_ABORT_CANCELLED},
	    {.type = STREAM_MSG_ERROR, .error = {-EPROTO, "record 3 (PAGE_BATCH): bad"}},
	    {.type = STREAM_MSG_ACK, .ack = {STREAM_MSG_GO, 1}},
	    {.type = STREAM_MSG_RESUMED, .resumed.resume_ns = 0xfedcba9876543210ull},
	};
	struct pair p;

	pair_start(&p, STREAM_RETURN);
	m[2].page_request.count = STREAM_BATCH_MAX_PAGES; /* the largest message */
	for (uint32_t i = 3; i < STREAM_BATCH_MAX_PAGES; i++)
		m[2].page_request.gfn[i] = i * 3;
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(stream_write_msg(&p.w, &m[i], &p.err), 0);
	pair_flip(&p);
	for (size_t i = 0; i < 7; i++)
		expect_msg(&p, &m[i]);
	assert_int_equal(p.r.stats.bytes, p.w.stats.bytes);
	assert_int_equal(stream_next_record(&p.r, NULL, &p.err), -EPIPE);
	assert_string_equal(p.err.msg, "return path ended after record 7 (RESUMED)");
	ferr_clear(&p.err);
	pair_end(&p);
}

/*
 * ABORT(RETRY) after END rolls the switchover back: more records follow,
 * and the second END counts everything since the header.
 */
/* A switch to post-copy: DISCARD in its window, pages after GO, POSTCOPY_END. */
static void test_postcopy_sequence(void **state)
{
	struct stream_msg prep = {.type = STREAM_REC_SWITCHOVER_PREPARE,
				  .switchover = {STREAM_SWITCHOVER_POSTCOPY, 3}};
	struct stream_msg disc = {.type = STREAM_REC_DISCARD};
	struct stream_msg got;
	struct stream_record rec;
	struct pair p;

	disc.discard.first = 0;
	disc.discard.nwords = 1;
	disc.discard.bits[0] = 0xb; /* frames 0, 1, 3 */
	pair_start_features(&p, STREAM_FEAT_POSTCOPY);
	assert_int_equal(stream_write_msg(&p.w, &prep, &p.err), 0);
	assert_int_equal(stream_write_msg(&p.w, &disc, &p.err), 0);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_REC_END}, &p.err), 0);
	/* Before GO the stream is ended as after any END. */
	assert_int_equal(stream_batch_zero(&p.w, 1, &p.err), -EINVAL);
	ferr_clear(&p.err);
	p.w.failed = (struct ferr)FERR_INIT;
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_MSG_GO}, &p.err), 0);
	assert_true(p.w.postcopy);
	assert_int_equal(stream_batch_zero(&p.w, 1, &p.err), 0);
	assert_int_equal(stream_batch_ref(&p.w, 3, fake_guest_page(&p.g, 3), &p.err), 0);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_REC_POSTCOPY_END}, &p.err),
	    0);
	pair_flip(&p);
	expect_msg(&p, &prep);
	expect_record(&p, STREAM_REC_DISCARD);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.discard.nwords, 1);
	assert_int_equal(got.discard.bits[0], 0xb);
	expect_record(&p, STREAM_REC_END);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	expect_record(&p, STREAM_MSG_GO);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_true(p.r.postcopy);
	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(stream_skip_record(&p.r, &p.err), 0);
	expect_record(&p, STREAM_REC_POSTCOPY_END);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.end.pages, 2);
	assert_int_equal(got.end.zero_pages, 1);
	assert_true(p.r.ended);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), -EPIPE);
	ferr_clear(&p.err);
	pair_end(&p);
}

/* DISCARD outside a post-copy window; a post-copy switch without the feature. */
static void test_postcopy_refused(void **state)
{
	struct stream_msg disc = {.type = STREAM_REC_DISCARD};
	struct stream_msg got;
	struct pair p;

	disc.discard.nwords = 1;
	disc.discard.bits[0] = 1;
	/* DISCARD between passes. */
	pair_start_features(&p, STREAM_FEAT_POSTCOPY);
	assert_int_equal(stream_write_msg(&p.w, &disc, &p.err), 0);
	pair_flip(&p);
	struct stream_record rec;
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), -EPROTO);
	assert_non_null(strstr(p.err.msg, "outside a post-copy switchover"));
	ferr_clear(&p.err);
	stream_writer_destroy(&p.w);
	stream_reader_destroy(&p.r);
	channel_close(p.rch);
	fake_guest_destroy(&p.g);

	/* A frame beyond guest memory. */
	pair_start_features(&p, STREAM_FEAT_POSTCOPY);
	disc.discard.first = 1ull << 40;
	assert_int_equal(stream_write_msg(&p.w, &disc, &p.err), -EINVAL);
	assert_non_null(strstr(p.err.msg, "beyond"));
	ferr_clear(&p.err);
	stream_writer_destroy(&p.w);
	channel_close(p.wch);
	fake_guest_destroy(&p.g);

	/* A post-copy switch in a stream without POSTCOPY. */
	pair_start(&p, STREAM_MIGRATION);
	assert_int_equal(
	    stream_write_msg(&p.w,
			     &(struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE,
						  .switchover.flags = STREAM_SWITCHOVER_POSTCOPY},
			     &p.err),
	    0);
	pair_flip(&p);
	expect_record(&p, STREAM_REC_SWITCHOVER_PREPARE);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), -EPROTO);
	assert_non_null(strstr(p.err.msg, "without POSTCOPY"));
	ferr_clear(&p.err);
	pair_end(&p);
}

/* A return path with header @features (a resumed post-copy's: RESUME). */
static void pair_start_return(struct pair *p, uint64_t features)
{
	fake_guest_init(&p->g, 4, 1, 0ull, 4 * MiB);
	p->g.hdr.features |= features;
	p->err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_mem_open(NULL, 0, &p->wch, &p->err), 0);
	assert_int_equal(stream_writer_init(&p->w, p->wch, STREAM_RETURN, &p->err), 0);
	assert_int_equal(stream_writer_set_header(&p->w, &p->g.hdr, &p->err), 0);
}

/*
 * A resumed post-copy: the stream starts where GO left it (pages and
 * POSTCOPY_END only), and its return path carries the missing set.
 */
static void test_postcopy_resume(void **state)
{
	struct stream_msg miss = {.type = STREAM_MSG_POSTCOPY_MISSING};
	struct stream_msg done = {.type = STREAM_MSG_POSTCOPY_RESUME, .pc_resume.missing = 3};
	struct stream_msg got;
	struct pair p;

	pair_start_features(&p, STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME);
	assert_true(p.w.postcopy);
	assert_int_equal(stream_batch_ref(&p.w, 3, fake_guest_page(&p.g, 3), &p.err), 0);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_REC_POSTCOPY_END}, &p.err),
	    0);
	pair_flip(&p);
	assert_true(p.r.postcopy);
	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(stream_skip_record(&p.r, &p.err), 0);
	expect_record(&p, STREAM_REC_POSTCOPY_END);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.end.pages, 1);
	pair_end(&p);

	/* The return path: POSTCOPY_MISSING, then POSTCOPY_RESUME. */
	miss.discard.first = 64;
	miss.discard.nwords = 2;
	miss.discard.bits[0] = 0x5;
	miss.discard.bits[1] = 1ull << 63;
	pair_start_return(&p, STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME);
	assert_int_equal(stream_write_msg(&p.w, &miss, &p.err), 0);
	assert_int_equal(stream_write_msg(&p.w, &done, &p.err), 0);
	pair_flip(&p);
	expect_record(&p, STREAM_MSG_POSTCOPY_MISSING);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.discard.first, 64);
	assert_int_equal(got.discard.nwords, 2);
	assert_int_equal(got.discard.bits[0], 0x5);
	assert_int_equal(got.discard.bits[1], 1ull << 63);
	expect_record(&p, STREAM_MSG_POSTCOPY_RESUME);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.pc_resume.missing, 3);
	pair_end(&p);
}

/* What a resume stream refuses, and what only a resume stream may carry. */
static void test_postcopy_resume_refused(void **state)
{
	struct stream_msg miss = {.type = STREAM_MSG_POSTCOPY_MISSING};
	struct stream_record rec;
	struct pair p;

	miss.discard.nwords = 1;
	miss.discard.bits[0] = 1;
	/* A pass end on a resumed stream: it starts after GO. */
	pair_start_features(&p, STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME);
	p.w.postcopy = false; /* a writer that does not know better */
	assert_int_equal(
	    stream_write_msg(&p.w,
			     &(struct stream_msg){.type = STREAM_REC_PASS_END, .pass_end.pass = 1},
			     &p.err),
	    0);
	pair_flip(&p);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), -EPROTO);
	assert_non_null(strstr(p.err.msg, "not valid after a post-copy GO"));
	ferr_clear(&p.err);
	pair_end(&p);

	/* The missing set outside a resume: the writer refuses to send it... */
	pair_start_return(&p, STREAM_FEAT_POSTCOPY);
	assert_int_equal(stream_write_msg(&p.w, &miss, &p.err), -EINVAL);
	assert_non_null(strstr(p.err.msg, "outside a post-copy resume"));
	ferr_clear(&p.err);
	stream_writer_destroy(&p.w);
	channel_close(p.wch);
	fake_guest_destroy(&p.g);
	/* ... and a reader refuses it from a writer that does not check. */
	pair_start_return(&p, STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME);
	assert_int_equal(stream_write_msg(&p.w, &miss, &p.err), 0);
	p.g.hdr.features &= ~STREAM_FEAT_RESUME; /* the reader's header */
	pair_flip(&p);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), -EPROTO);
	assert_non_null(strstr(p.err.msg, "outside a post-copy resume"));
	ferr_clear(&p.err);
	pair_end(&p);

	/* RESUME without POSTCOPY is not a header. */
	fake_guest_init(&p.g, 4, 1, 0ull, 4 * MiB);
	p.g.hdr.features |= STREAM_FEAT_RESUME;
	struct ferr err = FERR_INIT;
	assert_int_equal(stream_header_check(&p.g.hdr, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "resume without the POSTCOPY"));
	fake_guest_destroy(&p.g);
}

/* STALE: between passes only, and optional (a reader that does not know it skips it). */
static void test_stale_record(void **state)
{
	struct stream_msg stale = {.type = STREAM_REC_STALE};
	struct stream_msg got;
	struct stream_record rec;
	struct pair p;

	stale.discard.first = 0;
	stale.discard.nwords = 1;
	stale.discard.bits[0] = 0x6; /* frames 1, 2 */
	pair_start_features(&p, STREAM_FEAT_POSTCOPY);
	assert_int_equal(stream_write_msg(&p.w, &stale, &p.err), 0);
	assert_int_equal(stream_batch_zero(&p.w, 1, &p.err), 0);
	pair_flip(&p);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), 0);
	assert_int_equal(rec.type, STREAM_REC_STALE);
	assert_true(rec.flags & STREAM_REC_OPTIONAL);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.discard.bits[0], 0x6);
	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(stream_skip_record(&p.r, &p.err), 0);
	pair_end(&p);

	/* Inside a switchover it is refused. */
	pair_start_features(&p, STREAM_FEAT_POSTCOPY);
	assert_int_equal(
	    stream_write_msg(&p.w,
			     &(struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE,
						  .switchover.flags = STREAM_SWITCHOVER_POSTCOPY},
			     &p.err),
	    0);
	assert_int_equal(stream_write_msg(&p.w, &stale, &p.err), 0);
	pair_flip(&p);
	expect_record(&p, STREAM_REC_SWITCHOVER_PREPARE);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), -EPROTO);
	assert_non_null(strstr(p.err.msg, "outside pre-copy's passes"));
	ferr_clear(&p.err);
	pair_end(&p);
}

static void test_switchover_retry(void **state)
{
	const struct stream_msg end = {.type = STREAM_REC_END},
				retry = {.type = STREAM_MSG_ABORT,
					 .abort.reason = STREAM_ABORT_RETRY};
	struct stream_record rec;
	struct stream_msg got;
	struct pair p;

	pair_start(&p, STREAM_MIGRATION);
	assert_int_equal(stream_batch_zero(&p.w, 1, &p.err), 0);
	assert_int_equal(stream_write_msg(&p.w, &end, &p.err), 0);
	assert_int_equal(stream_write_msg(&p.w, &retry, &p.err), 0);
	assert_false(p.w.ended);
	assert_int_equal(stream_batch_zero(&p.w, 2, &p.err), 0);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_REC_PASS_END}, &p.err), 0);
	assert_int_equal(stream_write_msg(&p.w, &end, &p.err), 0);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_MSG_GO}, &p.err), 0);
	pair_flip(&p);
	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(stream_skip_record(&p.r, &p.err), 0);
	expect_record(&p, STREAM_REC_END);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_true(p.r.ended);
	expect_msg(&p, &retry);
	assert_false(p.r.ended);
	expect_record(&p, STREAM_REC_PAGE_BATCH);
	assert_int_equal(stream_skip_record(&p.r, &p.err), 0);
	expect_record(&p, STREAM_REC_PASS_END);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.pass_end.pages, 2); /* pass 1 spans both attempts */
	expect_record(&p, STREAM_REC_END);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.end.records, 5);
	assert_int_equal(got.end.pages, 2);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), 0);
	assert_int_equal(rec.type, STREAM_MSG_GO);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	pair_end(&p);

	/* Any other ABORT leaves the stream ended. */
	pair_start(&p, STREAM_MIGRATION);
	assert_int_equal(stream_write_msg(&p.w, &end, &p.err), 0);
	assert_int_equal(
	    stream_write_msg(
		&p.w, &(struct stream_msg){.type = STREAM_MSG_ABORT, .abort.reason = 1}, &p.err),
	    0);
	assert_int_equal(stream_batch_zero(&p.w, 2, &p.err), -EINVAL);
	assert_string_equal(p.err.msg, "stream writer: PAGE_BATCH after END");
	ferr_clear(&p.err);
	stream_writer_destroy(&p.w);
	channel_close(p.wch);
	fake_guest_destroy(&p.g);
}

/*
 * A channel whose deadline passes after @cut bytes: writes go 7 bytes at a
 * time into a mem channel, so that the cut falls inside a record.
 */
struct cutter {
	struct channel ch;
	struct channel *mem;
	size_t cut, done;
};

static ssize_t cutter_writev(struct channel *ch, const struct iovec *iov, int n, struct ferr *err)
{
	struct cutter *c = (struct cutter *)ch;
	struct iovec one = iov[0];

	if (one.iov_len > 7)
		one.iov_len = 7;
	if (c->done < c->cut && one.iov_len > c->cut - c->done)
		one.iov_len = c->cut - c->done;
	ssize_t r = c->mem->ops->writev(c->mem, &one, 1, err);
	bool before = c->done < c->cut;
	if (r > 0)
		c->done += (size_t)r;
	if (before && c->done >= c->cut)
		channel_set_deadline(ch, 1); /* long past, once */
	return r;
}

static void cutter_close(struct channel *ch)
{
}

static const struct channel_ops cutter_ops = {
    .kind = "cutter", .writev = cutter_writev, .close = cutter_close};

/* Header, a batch of frames 0-3 straight from guest memory, VM state, END. */
static int write_four(struct stream_writer *w, struct fake_guest *g, struct ferr *err)
{
	int rc = 0;

	for (uint64_t gfn = 0; !rc && gfn < 4; gfn++)
		rc = stream_batch_ref(w, gfn, fake_guest_page(g, gfn), err);
	if (!rc)
		rc = stream_batch_flush(w, err);
	return rc;
}

static void test_deadline_keeps_the_tail(void **state)
{
	struct fake_guest g;
	struct stream_writer w;
	struct ferr err = FERR_INIT;
	struct channel *ref;
	size_t ref_len;

	fake_guest_init(&g, 4, 1, 0ull, 4 * MiB);
	for (uint64_t gfn = 0; gfn < 4; gfn++)
		fake_guest_fill(&g, gfn, 1);
	/* What the stream must be. */
	assert_int_equal(channel_mem_open(NULL, 0, &ref, &err), 0);
	assert_int_equal(stream_writer_init(&w, ref, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &g.hdr, &err), 0);
	assert_int_equal(write_four(&w, &g, &err), 0);
	assert_int_equal(stream_write_vm_state(&w, "state", 5, &err), 0);
	assert_int_equal(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_REC_END}, &err),
			 0);
	stream_writer_destroy(&w);
	uint8_t *want = mem_copy(ref, &ref_len);
	channel_close(ref);

	/* The deadline passes inside the page data of the batch. */
	struct cutter c = {.ch = {.ops = &cutter_ops,
				  .fd = -1,
				  .cancel_fd = -1,
				  .timeout_ms = -1,
				  .name = "cutter"},
			   .cut = record_offset(want, ref_len, 1) + 2 * STREAM_PAGE_SIZE + 5};
	assert_int_equal(channel_mem_open(NULL, 0, &c.mem, &err), 0);
	assert_int_equal(stream_writer_init(&w, &c.ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &g.hdr, &err), 0);
	assert_int_equal(write_four(&w, &g, &err), -ETIME);
	assert_non_null(strstr(err.msg, "not yet sent whole"));
	assert_true(stream_writer_has_tail(&w));
	assert_int_equal(w.failed.code, 0);
	assert_int_equal(w.stats.pages, 4); /* counted: they will go out */
	/* Nothing else may go out while the deadline holds... */
	ferr_clear(&err);
	assert_int_equal(stream_write_vm_state(&w, "state", 5, &err), -ETIME);
	/* ...and the guest runs again: the tail is what was read while paused. */
	for (uint64_t gfn = 0; gfn < 4; gfn++)
		fake_guest_fill(&g, gfn, 2);
	channel_set_deadline(&c.ch, 0);
	ferr_clear(&err);
	assert_int_equal(stream_writer_flush_tail(&w, &err), 0);
	assert_false(stream_writer_has_tail(&w));
	assert_int_equal(stream_write_vm_state(&w, "state", 5, &err), 0);
	assert_int_equal(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_REC_END}, &err),
			 0);
	size_t got_len;
	const uint8_t *got = channel_mem_data(c.mem, &got_len);
	assert_int_equal(got_len, ref_len);
	assert_memory_equal(got, want, ref_len);
	stream_writer_destroy(&w);
	channel_close(c.mem);

	/* GO is never completed late: not begun, it fails alone... */
	c = (struct cutter){.ch = c.ch, .cut = SIZE_MAX};
	channel_set_deadline(&c.ch, 0);
	assert_int_equal(channel_mem_open(NULL, 0, &c.mem, &err), 0);
	assert_int_equal(stream_writer_init(&w, &c.ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &g.hdr, &err), 0);
	channel_set_deadline(&c.ch, 1);
	assert_int_equal(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_MSG_GO}, &err),
			 -ETIME);
	assert_false(stream_writer_has_tail(&w));
	assert_int_equal(w.failed.code, 0);
	stream_writer_destroy(&w);
	channel_close(c.mem);
	/* ...cut in the middle, it breaks the stream for good. */
	c = (struct cutter){.ch = c.ch};
	channel_set_deadline(&c.ch, 0);
	assert_int_equal(channel_mem_open(NULL, 0, &c.mem, &err), 0);
	assert_int_equal(stream_writer_init(&w, &c.ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &g.hdr, &err), 0);
	c.cut = c.done + 10;
	ferr_clear(&err);
	assert_int_equal(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_MSG_GO}, &err),
			 -ETIME);
	assert_false(stream_writer_has_tail(&w));
	assert_int_equal(w.failed.code, -ETIME);
	stream_writer_destroy(&w);
	channel_close(c.mem);
	free(want);
	fake_guest_destroy(&g);
}

static void test_error_text_sanitized(void **state)
{
	struct stream_msg m = {.type = STREAM_MSG_ERROR, .error = {5, "bad\nthing\x7f!"}};
	struct stream_msg got;
	struct pair p;

	pair_start(&p, STREAM_RETURN);
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	m.error = (struct stream_error_msg){-EIO, ""};
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	memset(m.error.text, 'x', sizeof(m.error.text) - 1);
	m.error.text[sizeof(m.error.text) - 1] = '\0';
	assert_int_equal(stream_write_msg(&p.w, &m, &p.err), 0);
	pair_flip(&p);
	expect_record(&p, STREAM_MSG_ERROR);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(got.error.code, -EIO); /* not a negative errno: replaced */
	assert_string_equal(got.error.text, "bad?thing?!");
	expect_record(&p, STREAM_MSG_ERROR);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_string_equal(got.error.text, "unknown error");
	expect_record(&p, STREAM_MSG_ERROR);
	assert_int_equal(stream_read_msg(&p.r, &got, &p.err), 0);
	assert_int_equal(strlen(got.error.text), STREAM_ERROR_TEXT_MAX);
	pair_end(&p);
}

static void test_unknown_optional_skipped(void **state)
{
	static const char junk[13] = "future stuff";
	struct stream_record rec;
	struct stream_msg m;
	struct pair p;

	pair_start(&p, STREAM_MIGRATION);
	struct iovec iov = {(void *)junk, sizeof(junk)};
	assert_int_equal(stream_write_record(&p.w, 0x4242, STREAM_REC_OPTIONAL, &iov, 1, &p.err),
			 0);
	assert_int_equal(stream_write_record(&p.w, 0x9999, STREAM_REC_OPTIONAL, NULL, 0, &p.err),
			 0);
	assert_int_equal(
	    stream_write_msg(&p.w, &(struct stream_msg){.type = STREAM_REC_END}, &p.err), 0);
	pair_flip(&p);
	assert_int_equal(stream_next_record(&p.r, &rec, &p.err), 0);
	assert_int_equal(rec.type, STREAM_REC_END);
	assert_int_equal(rec.number, 3);
	assert_int_equal(p.r.stats.skipped, 2);
	assert_int_equal(stream_read_msg(&p.r, &m, &p.err), 0); /* END counts the skipped ones */
	assert_int_equal(m.end.records, 2);
	pair_end(&p);
}

/* stream_skip_record() on every kind; END still adds up. */
static void test_skip_everything(void **state)
{
	struct fake_guest src;
	struct stream_reader r;
	struct stream_record rec;
	struct ferr err = FERR_INIT;
	struct channel *ch;
	size_t len;

	fake_guest_init(&src, 4, 1, 0ull, 4 * MiB);
	uint8_t *buf = sample_stream(&src, NULL, &len);
	assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), 0);
	do {
		assert_int_equal(stream_next_record(&r, &rec, &err), 0);
		assert_int_equal(stream_skip_record(&r, &err), 0);
	} while (rec.type != STREAM_MSG_GO);
	assert_true(r.ended); /* END was checked while skipped */
	assert_int_equal(r.stats.pages, 6);
	assert_int_equal(r.stats.zero_pages, 3);
	assert_int_equal(r.stats.bytes, len);
	assert_int_equal(stream_next_record(&r, &rec, &err), -EPIPE);
	assert_string_equal(err.msg, "stream ended after record 11 (GO)");
	stream_reader_destroy(&r);
	channel_close(ch);
	fake_guest_destroy(&src);
	free(buf);
}

/* A whole stream written 3 bytes and read 5 bytes per call is the same stream. */
static void test_trickle(void **state)
{
	struct fake_guest src, dst;
	struct ferr err = FERR_INIT;
	struct channel *mem, *t;
	size_t len, tlen;

	fake_guest_init(&src, 4, 1, 0ull, 4 * MiB);
	uint8_t *want = sample_stream(&src, NULL, &len);
	fake_guest_destroy(&src);
	fake_guest_init(&src, 4, 1, 0ull, 4 * MiB);
	assert_int_equal(channel_mem_open(NULL, 0, &mem, &err), 0);
	t = trickle_channel(mem, 3);
	sample_stream(&src, t, &tlen);
	const uint8_t *got = channel_mem_data(mem, &tlen);
	assert_int_equal(tlen, len);
	assert_memory_equal(got, want, len);
	channel_close(t);

	fake_guest_init(&dst, 4, 1, 0ull, 4 * MiB);
	assert_int_equal(load_stream(want, len, &dst, &err), 0);
	assert_memory_equal(dst.mem, src.mem, 4 * STREAM_PAGE_SIZE);
	fake_guest_destroy(&dst);
	fake_guest_destroy(&src);
	free(want);
}

static void test_trickle_read(void **state)
{
	struct fake_guest src, dst;
	struct ferr err = FERR_INIT;
	struct stream_reader r;
	struct stream_record rec;
	struct channel *ch;
	size_t len;

	fake_guest_init(&src, 4, 1, 0ull, 4 * MiB);
	fake_guest_init(&dst, 4, 1, 0ull, 4 * MiB);
	uint8_t *buf = sample_stream(&src, NULL, &len);
	assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
	ch = trickle_channel(ch, 5);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), 0);
	struct stream_page_sink sink = fake_guest_sink(&dst);
	do {
		assert_int_equal(stream_next_record(&r, &rec, &err), 0);
		if (rec.type == STREAM_REC_PAGE_BATCH)
			assert_int_equal(stream_read_page_batch(&r, &sink, &err), 0);
		else
			assert_int_equal(stream_skip_record(&r, &err), 0);
	} while (rec.type != STREAM_MSG_GO);
	assert_memory_equal(dst.mem, src.mem, 4 * STREAM_PAGE_SIZE);
	stream_reader_destroy(&r);
	channel_close(ch);
	fake_guest_destroy(&dst);
	fake_guest_destroy(&src);
	free(buf);
}

static void test_load_sample(void **state)
{
	struct fake_guest src, dst;
	struct ferr err = FERR_INIT;
	size_t len;

	fake_guest_init(&src, 4, 1, 0ull, 4 * MiB);
	fake_guest_init(&dst, 4, 1, 0ull, 4 * MiB);
	memset(dst.mem, 0x55, dst.size);
	uint8_t *buf = sample_stream(&src, NULL, &len);
	assert_int_equal(load_stream(buf, len, &dst, &err), 0);
	assert_memory_equal(dst.mem, src.mem, 4 * STREAM_PAGE_SIZE);
	assert_int_equal(dst.mem[4 * STREAM_PAGE_SIZE], 0x55);
	fake_guest_destroy(&dst);
	fake_guest_destroy(&src);
	free(buf);
}

static void test_page_is_zero(void **state)
{
	uint64_t page[STREAM_PAGE_SIZE / 8] = {0};
	uint8_t *b = (uint8_t *)page;

	assert_true(stream_page_is_zero(page));
	for (size_t i = 0; i < STREAM_PAGE_SIZE; i += 509) {
		b[i] = 0x10;
		assert_false(stream_page_is_zero(page));
		b[i] = 0;
	}
	b[STREAM_PAGE_SIZE - 1] = 1;
	assert_false(stream_page_is_zero(page));
}

static void test_type_names(void **state)
{
	static const struct {
		uint32_t type;
		const char *name;
	} t[] = {
	    {STREAM_REC_PAGE_BATCH, "PAGE_BATCH"},
	    {STREAM_REC_PASS_END, "PASS_END"},
	    {STREAM_REC_VCPU_STATE, "VCPU_STATE"},
	    {STREAM_REC_VM_STATE, "VM_STATE"},
	    {STREAM_REC_DEVICE_STATE, "DEVICE_STATE"},
	    {STREAM_REC_SWITCHOVER_PREPARE, "SWITCHOVER_PREPARE"},
	    {STREAM_REC_END, "END"},
	    {STREAM_MSG_READY, "READY"},
	    {STREAM_MSG_GO, "GO"},
	    {STREAM_MSG_ABORT, "ABORT"},
	    {STREAM_MSG_ERROR, "ERROR"},
	    {STREAM_MSG_ACK, "ACK"},
	    {STREAM_MSG_POSTCOPY_PAGE_REQUEST, "POSTCOPY_PAGE_REQUEST"},
	    {STREAM_MSG_RESUMED, "RESUMED"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(stream_type_name(t[i].type), t[i].name);
	assert_null(stream_type_name(0));
	assert_null(stream_type_name(0x8000));
	assert_null(stream_type_name(0x10001));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header),
	    cmocka_unit_test(test_pages_direct),
	    cmocka_unit_test(test_pages_verified),
	    cmocka_unit_test(test_zero_runs_after_verify),
	    cmocka_unit_test(test_state_records),
	    cmocka_unit_test(test_messages_migration),
	    cmocka_unit_test(test_messages_return),
	    cmocka_unit_test(test_switchover_retry),
	    cmocka_unit_test(test_postcopy_sequence),
	    cmocka_unit_test(test_postcopy_refused),
	    cmocka_unit_test(test_postcopy_resume),
	    cmocka_unit_test(test_postcopy_resume_refused),
	    cmocka_unit_test(test_stale_record),
	    cmocka_unit_test(test_deadline_keeps_the_tail),
	    cmocka_unit_test(test_error_text_sanitized),
	    cmocka_unit_test(test_unknown_optional_skipped),
	    cmocka_unit_test(test_skip_everything),
	    cmocka_unit_test(test_trickle),
	    cmocka_unit_test(test_trickle_read),
	    cmocka_unit_test(test_load_sample),
	    cmocka_unit_test(test_page_is_zero),
	    cmocka_unit_test(test_type_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
