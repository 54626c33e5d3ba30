// SPDX-License-Identifier: GPL-2.0-only
/* State blob sections: round trips, and hostile blobs refused without overreading. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/sbuf.h"

static void test_round_trip(void **state)
{
	struct sbuf b = SBUF_INIT;
	struct sbuf_reader r;
	struct sbuf_section s;
	struct ferr err = FERR_INIT;
	uint8_t big[10000];

	memset(big, 0x5a, sizeof(big));
	assert_int_equal(sbuf_put_section(&b, 1, "abc", 3), 0);
	assert_int_equal(sbuf_put_section(&b, 2, big, sizeof(big)), 0);
	assert_int_equal(sbuf_put_section(&b, 3, NULL, 0), 0);
	assert_int_equal(b.len % 8, 0);
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(sbuf_next_section(&r, &s, &err), 1);
	assert_int_equal(s.tag, 1);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.data, "abc", 3);
	assert_int_equal(sbuf_next_section(&r, &s, &err), 1);
	assert_int_equal(s.len, sizeof(big));
	assert_memory_equal(s.data, big, sizeof(big));
	assert_int_equal(sbuf_next_section(&r, &s, &err), 1);
	assert_int_equal(s.tag, 3);
	assert_int_equal(s.len, 0);
	assert_int_equal(sbuf_next_section(&r, &s, &err), 0);
	sbuf_free(&b);
}

static void test_hostile_lengths(void **state)
{
	uint8_t blob[24] = {0};
	struct sbuf_reader r;
	struct sbuf_section s;
	uint32_t len;

	/* a section claiming more than is there */
	for (len = 17; len < 0xffffffffu / 2; len = len * 3 + 1) {
		struct ferr err = FERR_INIT;
		memcpy(blob + 4, &len, 4);
		sbuf_reader_init(&r, blob, sizeof(blob));
		assert_int_equal(sbuf_next_section(&r, &s, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "claims"));
	}
	len = 0xffffffffu;
	memcpy(blob + 4, &len, 4);
	sbuf_reader_init(&r, blob, sizeof(blob));
	assert_int_equal(sbuf_next_section(&r, &s, NULL), -EBADMSG);
	/* stray bytes shorter than a section header */
	struct ferr err = FERR_INIT;
	sbuf_reader_init(&r, blob, 5);
	assert_int_equal(sbuf_next_section(&r, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "stray"));
}

/* Every prefix of a valid blob either parses cleanly or fails: never reads past it. */
static void test_every_truncation(void **state)
{
	struct sbuf b = SBUF_INIT;

	sbuf_put_section(&b, 7, "0123456789", 10);
	sbuf_put_section(&b, 8, "x", 1);
	for (size_t n = 0; n <= b.len; n++) {
		uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		struct sbuf_reader r;
		struct sbuf_section s;
		int rc, sections = 0;

		memcpy(copy, b.data, n);
		sbuf_reader_init(&r, copy, n);
		while ((rc = sbuf_next_section(&r, &s, NULL)) > 0)
			sections++;
		if (n == b.len)
			assert_int_equal(sections, 2);
		if (n != 0 && n != 24 && n != b.len)
			assert_true(rc < 0);
		free(copy);
	}
	sbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_hostile_lengths),
	    cmocka_unit_test(test_every_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
