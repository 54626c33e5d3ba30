// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/parse.h"

struct size_case {
	const char *in;
	int rc;
	uint64_t out;
};

static void test_parse_size_table(void **state)
{
	static const struct size_case cases[] = {
	    {"0", 0, 0},
	    {"4096", 0, 4096},
	    {"4k", 0, 4096},
	    {"4K", 0, 4096},
	    {"256M", 0, 256ull << 20},
	    {"256MiB", 0, 256ull << 20},
	    {"256MB", 0, 256ull << 20},
	    {"1G", 0, 1ull << 30},
	    {"2T", 0, 2ull << 40},
	    {"100B", 0, 100},
	    {"0x1000", 0, 0x1000},
	    {"", -EINVAL, 0},
	    {"M", -EINVAL, 0},
	    {"-1", -EINVAL, 0},
	    {"+1", -EINVAL, 0},
	    {"1.5G", -EINVAL, 0},
	    {"12Q", -EINVAL, 0},
	    {"1GG", -EINVAL, 0},
	    {"1 G", -EINVAL, 0},
	    {"0x", -EINVAL, 0},
	    {"18446744073709551615", 0, UINT64_MAX},
	    {"18446744073709551616", -ERANGE, 0},
	    {"17179869184G", -ERANGE, 0},
	    {"99999999999999999999999999999999999", -ERANGE, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0xdead;
		int rc = parse_size(cases[i].in, &v);
		if (rc != cases[i].rc)
			fail_msg("parse_size(\"%s\") = %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && v != cases[i].out)
			fail_msg("parse_size(\"%s\") -> %llu, want %llu", cases[i].in,
				 (unsigned long long)v, (unsigned long long)cases[i].out);
		if (rc != 0)
			assert_int_equal(v, 0xdead); /* output untouched on error */
	}
}

static void test_parse_duration_table(void **state)
{
	static const struct size_case cases[] = {
	    {"10ms", 0, 10000000},
	    {"10", 0, 10000000},
	    {"250us", 0, 250000},
	    {"7ns", 0, 7},
	    {"2s", 0, 2000000000},
	    {"", -EINVAL, 0},
	    {"ms", -EINVAL, 0},
	    {"5min", -EINVAL, 0},
	    {"1.5s", -EINVAL, 0},
	    {"-5ms", -EINVAL, 0},
	    {"18446744073709551615s", -ERANGE, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;
		int rc = parse_duration_ns(cases[i].in, &v);
		if (rc != cases[i].rc)
			fail_msg("parse_duration_ns(\"%s\") = %d, want %d", cases[i].in, rc,
				 cases[i].rc);
		if (rc == 0 && v != cases[i].out)
			fail_msg("parse_duration_ns(\"%s\") -> %llu", cases[i].in,
				 (unsigned long long)v);
	}
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	assert_int_equal(parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("0xfFfF", &v), 0);
	assert_int_equal(v, 0xffff);
	assert_int_equal(parse_u64("12a", &v), -EINVAL);
	assert_int_equal(parse_u64(NULL, &v), -EINVAL);
	assert_int_equal(parse_u64("0x10000000000000000", &v), -ERANGE);
}

static void test_fmt_size(void **state)
{
	char buf[32];

	assert_string_equal(fmt_size(512, buf, sizeof(buf)), "512 B");
	assert_string_equal(fmt_size(1536, buf, sizeof(buf)), "1.5 KiB");
	assert_string_equal(fmt_size(1ull << 30, buf, sizeof(buf)), "1.0 GiB");
}

static void test_ferr_first_message_sticks(void **state)
{
	struct ferr err = FERR_INIT;

	assert_false(ferr_is_set(&err));
	assert_int_equal(ferr_set(&err, -EINVAL, "first %d", 1), -EINVAL);
	assert_int_equal(ferr_set(&err, -ENOMEM, "second"), -ENOMEM);
	assert_int_equal(err.code, -EINVAL);
	assert_string_equal(err.msg, "first 1");
	ferr_prefix(&err, "ctx: ");
	assert_string_equal(err.msg, "ctx: first 1");
	/* a positive or zero code must still read as a failure */
	struct ferr e2 = FERR_INIT;
	assert_true(ferr_set(&e2, 0, "x") < 0);
	assert_true(ferr_is_set(&e2));
	/* ferr_errno appends strerror */
	struct ferr e3 = FERR_INIT;
	ferr_errno(&e3, -ENOENT, "open %s", "f");
	assert_string_equal(e3.msg, "open f: No such file or directory");
	/* NULL err is allowed */
	assert_int_equal(ferr_set(NULL, -EIO, "x"), -EIO);
}

static void test_ferr_prefix_truncates_tail(void **state)
{
	struct ferr err = FERR_INIT;
	char longmsg[FERR_MSG_MAX];

	memset(longmsg, 'a', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	ferr_set(&err, -EINVAL, "%s", longmsg);
	ferr_prefix(&err, "prefix: ");
	assert_int_equal(strlen(err.msg), FERR_MSG_MAX - 1);
	assert_memory_equal(err.msg, "prefix: aaa", 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_size_table),
	    cmocka_unit_test(test_parse_duration_table),
	    cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_fmt_size),
	    cmocka_unit_test(test_ferr_first_message_sticks),
	    cmocka_unit_test(test_ferr_prefix_truncates_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
