// SPDX-License-Identifier: GPL-2.0-only
/* Trace points: patterns, switching, the line format, cheap when off. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/trace.h"

static char *sink_text(FILE *f)
{
	static char buf[4096];
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	return buf;
}

static void test_patterns(void **state)
{
	struct trace t;
	struct ferr err = FERR_INIT;

	assert_int_equal(trace_init(&t, NULL, &err), 0);
	assert_int_equal(atomic_load(&t.on), 0);
	assert_int_equal(trace_init(&t, "pass_*,switchover_end", &err), 0);
	assert_true(trace_on(&t, TRACE_PASS_START));
	assert_true(trace_on(&t, TRACE_PASS_END));
	assert_true(trace_on(&t, TRACE_SWITCHOVER_END));
	assert_false(trace_on(&t, TRACE_SWITCHOVER_PHASE));
	assert_false(trace_on(&t, TRACE_POLICY_DECISION));
	assert_int_equal(trace_set(&t, "*", false), TRACE__COUNT);
	assert_int_equal(atomic_load(&t.on), 0);
	assert_int_equal(trace_set(&t, "*stall", true), 1);
	assert_true(trace_on(&t, TRACE_CHANNEL_STALL));
	assert_int_equal(trace_set(&t, "nothing*", true), 0);
	/* A pattern that names nothing is the operator's mistake: say so. */
	assert_int_equal(trace_init(&t, "pass_end,pas_start", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"pas_start\" matches no trace event"));
	/* Empty items are ignored; NULL traces nothing and costs nothing. */
	ferr_clear(&err);
	assert_int_equal(trace_init(&t, ",pass_end,", &err), 0);
	assert_false(trace_on(NULL, TRACE_PASS_END));
	trace_pass_end(NULL, 1, 2, 3, 4, 5);
	for (unsigned e = 0; e < TRACE__COUNT; e++)
		assert_non_null(trace_event_name(e));
	assert_null(trace_event_name(TRACE__COUNT));
}

static void test_lines(void **state)
{
	struct trace t;
	struct ferr err = FERR_INIT;
	FILE *f = tmpfile();

	assert_non_null(f);
	assert_int_equal(trace_init(&t, "pass_end", &err), 0);
	t.sink = f;
	trace_pass_end(&t, 3, 514, 2109624, 15212259, 12);
	trace_pass_start(&t, 4, 12); /* off: nothing */
	char *text = sink_text(f);
	unsigned long long s, us;
	char rest[256];
	assert_int_equal(sscanf(text, "ferry-trace: %llu.%6llu %255[^\n]", &s, &us, rest), 3);
	assert_string_equal(rest, "pass_end pass=3 pages=514 bytes=2109624 ns=15212259 dirty=12");
	assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text)); /* one line */
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_patterns),
	    cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
