// SPDX-License-Identifier: GPL-2.0-only
/* The request framer on its own: where values start and end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/qmp_framer.h"

#define MAX_VALUES 16

struct collected {
	int n;
	char *values[MAX_VALUES]; /* NULL entry: an over-long value was reported */
	int stop_after;		  /* return false after this many callbacks (0: never) */
};

static bool collect(void *ctx, const char *text, size_t len)
{
	struct collected *c = ctx;

	assert_true(c->n < MAX_VALUES);
	c->values[c->n++] = text ? strndup(text, len) : NULL;
	return c->stop_after == 0 || c->n < c->stop_after;
}

static void collected_free(struct collected *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->values[i]);
	memset(c, 0, sizeof(*c));
}

/* Feed @in in pieces of @step bytes and collect what comes out. */
static void feed(struct qmp_framer *f, const char *in, size_t step, struct collected *c)
{
	size_t len = strlen(in);

	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		assert_int_equal(qmp_framer_feed(f, in + off, n, collect, c), 0);
	}
}

static void expect_values(const char *in, size_t limit, const char *const *want, int nwant)
{
	/* Same result whatever the read boundaries are. */
	for (size_t step = 1; step <= strlen(in); step++) {
		struct qmp_framer f;
		struct collected c = {0};

		qmp_framer_init(&f, limit);
		feed(&f, in, step, &c);
		assert_int_equal(c.n, nwant);
		for (int i = 0; i < nwant; i++) {
			if (want[i])
				assert_string_equal(c.values[i], want[i]);
			else
				assert_null(c.values[i]);
		}
		collected_free(&c);
		qmp_framer_fini(&f);
	}
}

static void test_objects_back_to_back(void **state)
{
	const char *want[] = {"{\"a\": 1}", "{\"b\": [1, {}]}", "[]"};
	expect_values("  {\"a\": 1}{\"b\": [1, {}]}\r\n\n[]", 1024, want, 3);
}

static void test_brackets_in_strings(void **state)
{
	const char *want[] = {"{\"s\": \"}]{[\\\"\\\\\"}", "{}"};
	expect_values("{\"s\": \"}]{[\\\"\\\\\"}{}", 1024, want, 2);
}

static void test_multiline_value(void **state)
{
	const char *want[] = {"{\n \"execute\":\n \"x\"\n}"};
	expect_values("{\n \"execute\":\n \"x\"\n}\n", 1024, want, 1);
}

static void test_scalar_ends_at_newline(void **state)
{
	const char *want[] = {"42\n", "\"str\" \n", "{}"};
	expect_values("42\n\"str\" \n{}", 1024, want, 3);
}

static void test_incomplete_is_held(void **state)
{
	struct qmp_framer f;
	struct collected c = {0};

	qmp_framer_init(&f, 1024);
	feed(&f, "{\"execute\": \"a\", \"arguments\": {", 1, &c);
	feed(&f, "42\n", 3, &c); /* a newline inside an object does not end it */
	assert_int_equal(c.n, 0);
	assert_true(qmp_framer_pending(&f));
	feed(&f, "}}", 2, &c);
	assert_int_equal(c.n, 1);
	assert_false(qmp_framer_pending(&f));
	collected_free(&c);
	qmp_framer_fini(&f);
}

static void test_control_char_in_string_ends_value(void **state)
{
	const char *want[] = {"{\"execute\": \"sto\n", "{}"};
	expect_values("{\"execute\": \"sto\n{}", 1024, want, 2);
}

static void test_stray_closer(void **state)
{
	const char *want[] = {"}", "]", "{}"};
	expect_values("}]{}", 1024, want, 3);
}

static void test_too_long_is_skipped(void **state)
{
	/* Reported once (NULL), the rest of it discarded, framing resumes. */
	const char *want[] = {"{\"a\": 1}", NULL, "{\"c\": 3}"};
	expect_values("{\"a\": 1}{\"b\": \"0123456789}{\", \"x\": [1, 2, 3]}{\"c\": 3}", 16, want,
		      3);

	/* Exactly the limit is accepted. */
	const char *exact[] = {"{\"ab\": 12345678}"};
	expect_values("{\"ab\": 12345678}", 16, exact, 1);
	const char *over[] = {NULL};
	expect_values("{\"ab\": 123456789}", 16, over, 1);
}

static void test_callback_can_stop(void **state)
{
	struct qmp_framer f;
	struct collected c = {.stop_after = 1};

	qmp_framer_init(&f, 1024);
	feed(&f, "{}{}{}", 6, &c);
	assert_int_equal(c.n, 1);
	collected_free(&c);
	qmp_framer_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_objects_back_to_back),
	    cmocka_unit_test(test_brackets_in_strings),
	    cmocka_unit_test(test_multiline_value),
	    cmocka_unit_test(test_scalar_ends_at_newline),
	    cmocka_unit_test(test_incomplete_is_held),
	    cmocka_unit_test(test_control_char_in_string_ends_value),
	    cmocka_unit_test(test_stray_closer),
	    cmocka_unit_test(test_too_long_is_skipped),
	    cmocka_unit_test(test_callback_can_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
