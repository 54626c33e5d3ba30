// SPDX-License-Identifier: GPL-2.0-only
/*
 * Parallel channels in the stream format (docs/stream-format.md,
 * "Parallel channels"): the header's MULTIFD block and CHANNEL_SYNC, their
 * bytes, round trips and every refusal.
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
/* One region: 48 + 16 bytes, then the 16-byte multifd block, then the checksum. */
enum { MF_SESSION = 64, MF_CHANNEL = 72, MF_NCHANNELS = 74, MF_RESERVED = 76, MF_HDR_LEN = 88 };

static struct stream_header mf_header(uint32_t channel, uint32_t nchannels)
{
	struct stream_header h = {
	    .page_size = 4096,
	    .vcpu_count = 1,
	    .nregions = 1,
	    .regions = {{0, 4 * MiB}},
	    .features = STREAM_FEAT_MULTIFD,
	    .session = 0x0123456789abcdefull,
	    .channel = channel,
	    .nchannels = nchannels,
	};
	return h;
}

static uint8_t *write_header(const struct stream_header *h, size_t *len, int *rc)
{
	struct ferr err = FERR_INIT;
	struct stream_writer w;
	struct channel *ch;

	assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
	assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
	*rc = stream_write_header(&w, h, &err);
	uint8_t *buf = mem_copy(ch, len);
	stream_writer_destroy(&w);
	channel_close(ch);
	return buf;
}

static int read_header(const uint8_t *buf, size_t len, struct stream_header *h, struct ferr *err)
{
	struct stream_reader r;
	struct channel *ch;

	assert_int_equal(channel_mem_open(buf, len, &ch, err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, err), 0);
	int rc = stream_read_header(&r, h, err);
	stream_reader_destroy(&r);
	channel_close(ch);
	return rc;
}

static void test_header_bytes_and_round_trip(void **state)
{
	struct stream_header h = mf_header(3, 4), back;
	struct ferr err = FERR_INIT;
	size_t len;
	int rc;
	uint8_t *buf = write_header(&h, &len, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(len, MF_HDR_LEN);
	uint32_t hlen;
	memcpy(&hlen, buf + 12, 4);
	assert_int_equal(hlen, MF_HDR_LEN);
	static const uint8_t block[16] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
					  3,	0,    4,    0,	  0,	0,    0,    0};
	assert_memory_equal(buf + MF_SESSION, block, sizeof(block));
	assert_int_equal(read_header(buf, len, &back, &err), 0);
	assert_int_equal(back.session, h.session);
	assert_int_equal(back.channel, 3);
	assert_int_equal(back.nchannels, 4);
	assert_int_equal(back.features, STREAM_FEAT_MULTIFD);
	free(buf);

	/* Without the feature the header is version 1's, unchanged: 72 bytes. */
	h = mf_header(0, 0);
	h.features = 0;
	h.session = 0;
	buf = write_header(&h, &len, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(len, MF_HDR_LEN - 16);
	assert_int_equal(read_header(buf, len, &back, &err), 0);
	assert_int_equal(back.session, 0);
	assert_int_equal(back.nchannels, 0);
	free(buf);
}

static void test_writer_refuses(void **state)
{
	static const struct {
		uint32_t channel, nchannels;
		uint64_t features;
		const char *msg;
	} bad[] = {
	    {0, 0, STREAM_FEAT_MULTIFD, "0 data channels is out of range (1..16)"},
	    {0, 17, STREAM_FEAT_MULTIFD, "17 data channels is out of range (1..16)"},
	    {3, 2, STREAM_FEAT_MULTIFD, "channel 3 of 2 data channels does not exist"},
	    {1, 2, 0, "a session or channel without the MULTIFD or POSTCOPY feature"},
	    {1, 0, STREAM_FEAT_POSTCOPY, "data channels without the MULTIFD feature"},
	    {0, 2, STREAM_FEAT_POSTCOPY, "data channels without the MULTIFD feature"},
	    {STREAM_CHANNEL_POSTCOPY, 0, 0, "a post-copy channel without the POSTCOPY feature"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct stream_header h = mf_header(bad[i].channel, bad[i].nchannels);
		struct ferr err = FERR_INIT;
		struct stream_writer w;
		struct channel *ch;
		h.features = bad[i].features;
		assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
		assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
		assert_int_equal(stream_write_header(&w, &h, &err), -EPROTO);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("case %zu: \"%s\", want \"%s\"", i, err.msg, bad[i].msg);
		stream_writer_destroy(&w);
		channel_close(ch);
	}
}

static void test_reader_refuses(void **state)
{
	struct stream_header h = mf_header(1, 2);
	struct ferr err = FERR_INIT;
	size_t len;
	int rc;
	uint8_t *good = write_header(&h, &len, &rc);
	uint8_t buf[MF_HDR_LEN];

	assert_int_equal(rc, 0);
	/* nchannels 0, channel beyond it, reserved not 0 */
	static const struct {
		size_t off;
		uint16_t v;
		const char *msg;
	} bad[] = {
	    {MF_NCHANNELS, 0, "0 data channels is out of range"},
	    {MF_NCHANNELS, 300, "300 data channels is out of range"},
	    {MF_CHANNEL, 5, "channel 5 of 2 data channels does not exist"},
	    {MF_RESERVED, 1, "multifd reserved field is not 0"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, good, len);
		memcpy(buf + bad[i].off, &bad[i].v, 2);
		rechecksum_header(buf);
		ferr_clear(&err);
		assert_int_equal(read_header(buf, len, NULL, &err), -EPROTO);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("case %zu: \"%s\", want \"%s\"", i, err.msg, bad[i].msg);
	}
	/* The feature bit without the block (a 72-byte header) */
	memcpy(buf, good, len);
	uint32_t short_len = MF_HDR_LEN - 16;
	memcpy(buf + 12, &short_len, 4);
	rechecksum_header(buf); /* checksum now at 64: over the first 64 bytes */
	ferr_clear(&err);
	assert_int_equal(read_header(buf, short_len, NULL, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "and the session block make it 88"));
	free(good);
}

/* A data channel: pages, CHANNEL_SYNC(1), pages, CHANNEL_SYNC(2). */
static uint8_t *data_channel(struct fake_guest *g, uint32_t a1, uint32_t a2, size_t *len)
{
	struct stream_header h = mf_header(1, 2);
	struct ferr err = FERR_INIT;
	struct stream_writer w;
	struct channel *ch;
	struct stream_msg sync = {.type = STREAM_REC_CHANNEL_SYNC};

	fake_guest_fill(g, 1, 1);
	fake_guest_fill(g, 2, 1);
	assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
	assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &h, &err), 0);
	assert_int_equal(stream_batch_ref(&w, 1, fake_guest_page(g, 1), &err), 0);
	assert_int_equal(stream_batch_zero(&w, 0, &err), 0);
	sync.sync.attempt = a1;
	assert_int_equal(stream_write_msg(&w, &sync, &err), 0);
	assert_int_equal(stream_batch_ref(&w, 2, fake_guest_page(g, 2), &err), 0);
	sync.sync.attempt = a2;
	assert_int_equal(stream_write_msg(&w, &sync, &err), 0);
	uint8_t *buf = mem_copy(ch, len);
	stream_writer_destroy(&w);
	channel_close(ch);
	return buf;
}

/* Read a data channel; the attempts of its CHANNEL_SYNCs in @attempts. */
static int read_channel(const uint8_t *buf, size_t len, struct fake_guest *g, uint32_t *attempts,
			struct ferr *err)
{
	struct stream_page_sink sink = fake_guest_sink(g);
	struct stream_reader r;
	struct stream_record rec;
	struct channel *ch;
	unsigned n = 0;
	int rc;

	assert_int_equal(channel_mem_open(buf, len, &ch, err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, err), 0);
	rc = stream_read_header(&r, NULL, err);
	while (!rc && r.stats.bytes < len) {
		rc = stream_next_record(&r, &rec, err);
		if (rc)
			break;
		if (rec.type == STREAM_REC_PAGE_BATCH) {
			rc = stream_read_page_batch(&r, &sink, err);
		} else {
			struct stream_msg m;
			rc = stream_read_msg(&r, &m, err);
			if (!rc)
				attempts[n++] = m.sync.attempt;
		}
	}
	stream_reader_destroy(&r);
	channel_close(ch);
	return rc;
}

static void test_channel_sync_round_trip(void **state)
{
	struct fake_guest src, dst;
	struct ferr err = FERR_INIT;
	uint32_t attempts[4] = {0};
	size_t len;

	fake_guest_init(&src, 1, 1, 0ull, 4 * MiB);
	fake_guest_init(&dst, 1, 1, 0ull, 4 * MiB);
	uint8_t *buf = data_channel(&src, 1, 3, &len);
	/* CHANNEL_SYNC's bytes: type 8, length 40, attempt, reserved, 4 counts */
	size_t off = record_offset(buf, len, 2);
	uint32_t type, attempt, reserved;
	uint64_t length, records, pages, zero;
	memcpy(&type, buf + off, 4);
	memcpy(&length, buf + off + 8, 8);
	memcpy(&attempt, buf + off + 16, 4);
	memcpy(&reserved, buf + off + 20, 4);
	memcpy(&records, buf + off + 24, 8);
	memcpy(&pages, buf + off + 32, 8);
	memcpy(&zero, buf + off + 40, 8);
	assert_int_equal(type, 8);
	assert_int_equal(length, 40);
	assert_int_equal(attempt, 1);
	assert_int_equal(reserved, 0);
	assert_int_equal(records, 1); /* one PAGE_BATCH, with the zero entry */
	assert_int_equal(pages, 2);
	assert_int_equal(zero, 1);
	assert_int_equal(read_channel(buf, len, &dst, attempts, &err), 0);
	assert_int_equal(attempts[0], 1);
	assert_int_equal(attempts[1], 3);
	assert_memory_equal(fake_guest_page(&dst, 1), fake_guest_page(&src, 1), 4096);
	assert_memory_equal(fake_guest_page(&dst, 2), fake_guest_page(&src, 2), 4096);
	free(buf);
	fake_guest_destroy(&src);
	fake_guest_destroy(&dst);
}

static void test_channel_sync_refusals(void **state)
{
	struct fake_guest src, dst;
	struct ferr err = FERR_INIT;
	uint32_t attempts[4];
	size_t len;

	fake_guest_init(&src, 1, 1, 0ull, 4 * MiB);
	fake_guest_init(&dst, 1, 1, 0ull, 4 * MiB);

	/* attempts must increase on a channel */
	uint8_t *buf = data_channel(&src, 2, 2, &len);
	assert_int_equal(read_channel(buf, len, &dst, attempts, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "(CHANNEL_SYNC): attempt 2 follows attempt 2"));
	free(buf);

	/* a lost page is caught by the counts */
	buf = data_channel(&src, 1, 2, &len);
	size_t off = record_offset(buf, len, 2);
	uint64_t pages = 3;
	memcpy(buf + off + 32, &pages, 8);
	rechecksum(buf, off, 2);
	ferr_clear(&err);
	assert_int_equal(read_channel(buf, len, &dst, attempts, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "source sent 1 records, 3 pages (1 zero), "));
	/* reserved not zero */
	pages = 2;
	memcpy(buf + off + 32, &pages, 8);
	buf[off + 20] = 1;
	rechecksum(buf, off, 2);
	ferr_clear(&err);
	assert_int_equal(read_channel(buf, len, &dst, attempts, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "reserved field is not 0"));
	/* attempt 0 */
	buf[off + 20] = 0;
	memset(buf + off + 16, 0, 4);
	rechecksum(buf, off, 2);
	ferr_clear(&err);
	assert_int_equal(read_channel(buf, len, &dst, attempts, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "attempt 0 is invalid"));
	free(buf);

	/* not valid on a stream without MULTIFD */
	struct stream_header h = mf_header(0, 0);
	struct stream_writer w;
	struct channel *ch;
	struct stream_msg sync = {.type = STREAM_REC_CHANNEL_SYNC, .sync.attempt = 1};
	h.features = 0;
	h.session = 0;
	assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
	assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &h, &err), 0);
	assert_int_equal(stream_write_msg(&w, &sync, &err), 0);
	buf = mem_copy(ch, &len);
	stream_writer_destroy(&w);
	channel_close(ch);
	ferr_clear(&err);
	assert_int_equal(read_channel(buf, len, &dst, attempts, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "not valid in a stream without MULTIFD"));
	free(buf);
	fake_guest_destroy(&src);
	fake_guest_destroy(&dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_bytes_and_round_trip),
	    cmocka_unit_test(test_writer_refuses),
	    cmocka_unit_test(test_reader_refuses),
	    cmocka_unit_test(test_channel_sync_round_trip),
	    cmocka_unit_test(test_channel_sync_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
