// SPDX-License-Identifier: GPL-2.0-only
/*
 * Header validation: each malformed header is refused with the error an
 * operator needs, and nothing read from it is used.
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

#define GiB (1ull << 30)

/* Offsets in the version 1 header (docs/stream-format.md). */
enum {
	VERSION = 8,
	HLEN = 12,
	PAGE_SIZE = 16,
	VCPUS = 20,
	NREGIONS = 24,
	RESERVED = 28,
	FEATURES = 32,
	R0_GPA = 48,
	R0_SIZE = 56,
	R1_GPA = 64,
	R1_SIZE = 72,
	HDR_LEN = 88
};

static const struct stream_header base = {
    .page_size = 4096,
    .vcpu_count = 4,
    .nregions = 2,
    .regions = {{0, 3 * GiB}, {4 * GiB, GiB}},
};

static void header_bytes(uint8_t buf[HDR_LEN])
{
	struct ferr err = FERR_INIT;
	struct stream_writer w;
	struct channel *ch;
	size_t len;

	assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
	assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &base, &err), 0);
	const void *data = channel_mem_data(ch, &len);
	assert_int_equal(len, HDR_LEN);
	memcpy(buf, data, HDR_LEN);
	stream_writer_destroy(&w);
	channel_close(ch);
}

static int read_header(const uint8_t *buf, size_t len, struct stream_header *h, struct ferr *err)
{
	struct stream_reader r;
	struct channel *ch;

	assert_int_equal(channel_mem_open(buf, len, &ch, err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, err), 0);
	int rc = stream_read_header(&r, h, err);
	/* The first error sticks, with its message. */
	if (rc) {
		struct ferr again = FERR_INIT;
		assert_int_equal(stream_next_record(&r, NULL, &again), rc);
		assert_string_equal(again.msg, err->msg);
	}
	stream_reader_destroy(&r);
	channel_close(ch);
	return rc;
}

static void put32(uint8_t *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, 4);
}

static void put64(uint8_t *buf, size_t off, uint64_t v)
{
	memcpy(buf + off, &v, 8);
}

struct bad_header {
	const char *what;
	size_t off;
	int width; /* 4 or 8 */
	uint64_t value;
	size_t off2; /* a second field, if width2 */
	int width2;
	uint64_t value2;
	bool fix_checksum;
	int rc;
	const char *msg; /* exact if it starts with '=', else a substring */
};

static const struct bad_header bad[] = {
    {"magic", 0, 8, 0x312e312f50545448ull, 0, 0, 0, false, -EPROTO,
     "=not a ferry migration stream (starts with 48 54 54 50 2f 31 2e 31 \"HTTP/1.1\")"},
    {"newer version", VERSION, 4, 2, 0, 0, 0, true, -EPROTONOSUPPORT,
     "=stream format version 2 is newer than this ferry understands (1)"},
    {"version flipped in transit", VERSION, 4, 3, 0, 0, 0, false, -EBADMSG,
     "stream header: checksum mismatch: stream says 0x"},
    {"version 0", VERSION, 4, 0, 0, 0, 0, true, -EPROTO, "=stream header: version 0 is invalid"},
    {"header_len odd", HLEN, 4, 87, 0, 0, 0, false, -EPROTO,
     "=stream header: length 87 is invalid (a multiple of 8 in 24..4096)"},
    {"header_len huge", HLEN, 4, 1u << 30, 0, 0, 0, false, -EPROTO, "is invalid"},
    {"header_len tiny", HLEN, 4, 16, 0, 0, 0, false, -EPROTO, "is invalid"},
    {"page size", PAGE_SIZE, 4, 8192, 0, 0, 0, true, -EPROTO,
     "=stream header: page size 8192 is not supported (only 4096)"},
    {"no vCPUs", VCPUS, 4, 0, 0, 0, 0, true, -EPROTO,
     "=stream header: 0 vCPUs is out of range (1..1024)"},
    {"too many vCPUs", VCPUS, 4, 1025, 0, 0, 0, true, -EPROTO, "1025 vCPUs is out of range"},
    {"no regions", NREGIONS, 4, 0, 0, 0, 0, true, -EPROTO,
     "=stream header: 0 memory regions is out of range (1..8)"},
    {"too many regions", NREGIONS, 4, 9, 0, 0, 0, true, -EPROTO, "9 memory regions"},
    {"regions vs length", NREGIONS, 4, 1, 0, 0, 0, true, -EPROTO,
     "=stream header: 88 bytes long, but 1 regions make it 72"},
    {"reserved", RESERVED, 4, 1, 0, 0, 0, true, -EPROTO, "reserved field is 0x1, not 0"},
    {"overlap", R1_GPA, 8, 2 * GiB, 0, 0, 0, true, -EPROTO,
     "=stream header: memory regions 0 [0x0, 0xc0000000) and 1 [0x80000000, 0xc0000000) overlap"},
    {"unsorted", R0_GPA, 8, 8 * GiB, 0, 0, 0, true, -EPROTO,
     "memory regions are not sorted (region 1 at 0x100000000 follows one at 0x200000000)"},
    {"unaligned size", R1_SIZE, 8, GiB + 1, 0, 0, 0, true, -EPROTO,
     "memory region 1 [0x100000000, +0x40000001) is not page-aligned"},
    {"unaligned gpa", R1_GPA, 8, 4 * GiB + 512, 0, 0, 0, true, -EPROTO, "not page-aligned"},
    {"empty region", R1_SIZE, 8, 0, 0, 0, 0, true, -EPROTO,
     "memory region 1 at 0x100000000 is empty"},
    {"beyond 2^52", R1_GPA, 8, (1ull << 52) - 4096, R1_SIZE, 8, 8192, true, -EPROTO,
     "ends beyond 2^52"},
    {"size wraps", R1_SIZE, 8, 0xfffffffffffff000ull, 0, 0, 0, true, -EPROTO, "ends beyond 2^52"},
    {"too much memory", R1_SIZE, 8, 1024 * GiB, 0, 0, 0, true, -EPROTO,
     "=stream header: guest memory of 1027 GiB exceeds the 1 TiB limit"},
    {"required feature", FEATURES, 8, 1ull << 5, 0, 0, 0, true, -EPROTONOSUPPORT,
     "=stream header: the stream needs features 0x20 unknown to this ferry"},
};

static void test_bad_headers(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct bad_header *b = &bad[i];
		struct ferr err = FERR_INIT;
		uint8_t buf[HDR_LEN];

		header_bytes(buf);
		if (b->width == 4)
			put32(buf, b->off, (uint32_t)b->value);
		else
			put64(buf, b->off, b->value);
		if (b->width2 == 8)
			put64(buf, b->off2, b->value2);
		if (b->fix_checksum)
			rechecksum_header(buf);
		int rc = read_header(buf, sizeof(buf), NULL, &err);
		if (rc != b->rc)
			fail_msg("%s: got %d (%s), want %d", b->what, rc, err.msg, b->rc);
		if (b->msg[0] == '=' ? strcmp(err.msg, b->msg + 1) != 0 : !strstr(err.msg, b->msg))
			fail_msg("%s: message \"%s\", want \"%s\"", b->what, err.msg, b->msg);
	}
}

static void test_good_header(void **state)
{
	struct stream_header h;
	struct ferr err = FERR_INIT;
	uint8_t buf[HDR_LEN];

	header_bytes(buf);
	put64(buf, FEATURES, 1ull << 63); /* optional, unknown: ignored */
	rechecksum_header(buf);
	assert_int_equal(read_header(buf, sizeof(buf), &h, &err), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.features, 1ull << 63);
	assert_int_equal(h.nregions, 2);
	assert_int_equal(h.regions[1].gpa, 4 * GiB);
	assert_int_equal(stream_header_ram(&h), 4 * GiB);
	assert_true(stream_header_has_gfn(&h, 0));
	assert_true(stream_header_has_gfn(&h, (3 * GiB >> 12) - 1));
	assert_false(stream_header_has_gfn(&h, 3 * GiB >> 12)); /* the PCI hole */
	assert_true(stream_header_has_gfn(&h, 4 * GiB >> 12));
	assert_false(stream_header_has_gfn(&h, 5 * GiB >> 12));
	assert_false(stream_header_has_gfn(&h, ~0ull));
}

/* Any single flipped bit is refused; nothing crashes. */
static void test_every_bit(void **state)
{
	uint8_t buf[HDR_LEN];

	for (size_t bit = 0; bit < HDR_LEN * 8; bit++) {
		struct ferr err = FERR_INIT;
		header_bytes(buf);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = read_header(buf, sizeof(buf), NULL, &err);
		if (rc == 0)
			fail_msg("bit %zu flipped went unnoticed", bit);
		assert_true(err.msg[0] != '\0');
	}
}

static void test_truncated(void **state)
{
	uint8_t buf[HDR_LEN];

	header_bytes(buf);
	for (size_t len = 0; len < HDR_LEN; len++) {
		struct ferr err = FERR_INIT;
		char want[96];
		size_t have = len < 16 ? len : len - 16, need = len < 16 ? 16 : HDR_LEN - 16;
		assert_int_equal(read_header(buf, len, NULL, &err), -EPIPE);
		snprintf(want, sizeof(want),
			 "stream header: mem: stream ended after %zu of %zu bytes", have, need);
		assert_string_equal(err.msg, want);
	}
}

/* A writer never sends what a reader refuses. */
static void test_writer_refuses(void **state)
{
	struct stream_header h = base;
	struct ferr err = FERR_INIT, again = FERR_INIT;
	struct stream_writer w;
	struct channel *ch;
	size_t len;

	h.regions[1].gpa = 2 * GiB;
	assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
	assert_int_equal(stream_writer_init(&w, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_write_header(&w, &h, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "overlap"));
	channel_mem_data(ch, &len);
	assert_int_equal(len, 0);
	assert_int_equal(stream_write_header(&w, &base, &again), -EPROTO); /* sticky */
	assert_string_equal(again.msg, err.msg);
	stream_writer_destroy(&w);
	channel_close(ch);
}

static void test_header_in_wrong_direction(void **state)
{
	struct ferr err = FERR_INIT;
	struct stream_reader r;
	struct stream_writer w;
	struct channel *ch;

	assert_int_equal(channel_mem_open(NULL, 0, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_RETURN, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), -EINVAL);
	stream_reader_destroy(&r);
	ferr_clear(&err);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_reader_set_header(&r, &base, &err), -EINVAL);
	stream_reader_destroy(&r);
	ferr_clear(&err);
	assert_int_equal(stream_writer_init(&w, ch, STREAM_RETURN, &err), 0);
	assert_int_equal(stream_write_header(&w, &base, &err), -EINVAL);
	stream_writer_destroy(&w);
	channel_close(ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_headers),	   cmocka_unit_test(test_good_header),
	    cmocka_unit_test(test_every_bit),	   cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_writer_refuses), cmocka_unit_test(test_header_in_wrong_direction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
