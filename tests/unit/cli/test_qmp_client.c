// SPDX-License-Identifier: GPL-2.0-only
/*
 * The CLI's QMP client (src/cli/qmp_client.c) against a scripted fake
 * server: greeting and negotiation, replies matched by id among events,
 * framing, and every way a connection can fail.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/qmp_client.h"
#include "common/clock.h"
#include "fake_server.h"
#include "tests.h"

#define SHORT_MS 300 /* a client timeout the tests are willing to wait for */

/* ---- the happy path -------------------------------------------------------- */

static void script_execute(struct fake *f)
{
	fake_greet(f);
	json_t *req = fake_expect(f, "echo");
	json_t *id = json_object_get(req, "id");
	json_t *args = json_object_get(req, "arguments");

	if (!json_is_integer(id))
		fake_fail(f, "request id is not an integer");
	json_t *want = json_pack("{s:s}", "text", "hi");

	if (!json_equal(args, want))
		fake_fail(f, "arguments not sent as given");
	json_decref(want);
	if (json_object_size(req) != 3)
		fake_fail(f, "request has members other than execute, arguments, id");
	fake_reply(f, req, "{\"text\": \"hi\"}");
	json_decref(req);
	/* No arguments: no "arguments" member at all. */
	req = fake_expect(f, "noargs");
	if (json_object_get(req, "arguments"))
		fake_fail(f, "'arguments' sent for a command without");
	fake_reply(f, req, "{}");
	json_decref(req);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_execute(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ret;

	fake_init(&f);
	fake_start(&f, script_execute, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	assert_int_equal(qmp_conn_execute(&c, "echo", json_pack("{s:s}", "text", "hi"), &ret, &err),
			 0);
	assert_string_equal(json_string_value(json_object_get(ret, "text")), "hi");
	json_decref(ret);
	assert_int_equal(qmp_conn_execute(&c, "noargs", NULL, &ret, &err), 0);
	assert_true(json_is_object(ret) && json_object_size(ret) == 0);
	json_decref(ret);
	assert_false(ferr_is_set(&err));
	qmp_conn_close(&c);
	fake_finish(&f);
}

/* Events before the reply are queued in order; a reply to another id is skipped. */
static void script_interleaved(struct fake *f)
{
	fake_greet(f);
	json_t *req = fake_expect(f, "query-migrate");
	fake_event(f, "MIGRATION", "{\"status\": \"active\"}");
	fake_send(f, "{\"return\": {\"status\": \"stale\"}, \"id\": 999}\r\n");
	fake_event(f, "MIGRATION_PASS", "{\"pass\": 2}");
	fake_reply(f, req, "{\"status\": \"active\"}");
	json_decref(req);
	/* A reply without id answers the one request in flight. */
	req = fake_expect(f, "query-status");
	fake_send(f, "{\"return\": {\"status\": \"running\"}}\r\n");
	json_decref(req);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_reply_matching(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ret, *ev;

	fake_init(&f);
	fake_start(&f, script_interleaved, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	assert_int_equal(qmp_conn_execute(&c, "query-migrate", NULL, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "active");
	json_decref(ret);

	assert_int_equal(qmp_conn_next_event(&c, 0, &ev, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "MIGRATION");
	json_decref(ev);
	assert_int_equal(qmp_conn_next_event(&c, 0, &ev, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "MIGRATION_PASS");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "data"), "pass")),
			 2);
	json_decref(ev);

	assert_int_equal(qmp_conn_execute(&c, "query-status", NULL, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
	json_decref(ret);

	/* Nothing more queued: a short wait gives no event and no error. */
	uint64_t t0 = clock_now_ns();
	assert_int_equal(qmp_conn_next_event(&c, 50, &ev, &err), 0);
	assert_null(ev);
	assert_true(clock_now_ns() - t0 >= 45000000u);
	assert_false(ferr_is_set(&err));
	qmp_conn_close(&c);
	fake_finish(&f);
}

static void script_error_reply(struct fake *f)
{
	fake_greet(f);
	json_t *req = fake_expect(f, "migrate");
	fake_reply_error(f, req, "a migration is already in progress (status active)");
	json_decref(req);
	/* The connection stays usable after a refusal. */
	fake_answer(f, "query-migrate", "{}");
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_error_reply(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ret = (json_t *)1;

	fake_init(&f);
	fake_start(&f, script_error_reply, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	assert_int_equal(
	    qmp_conn_execute(&c, "migrate", json_pack("{s:s}", "uri", "file:/x"), &ret, &err),
	    -EREMOTEIO);
	assert_null(ret);
	assert_string_equal(err.msg, "a migration is already in progress (status active)");
	ferr_clear(&err);
	assert_int_equal(qmp_conn_execute(&c, "query-migrate", NULL, &ret, &err), 0);
	json_decref(ret);
	qmp_conn_close(&c);
	fake_finish(&f);
}

/* A reply that arrives in pieces, with the greeting's line in two writes too. */
static void script_split(struct fake *f)
{
	fake_send(f, "{\"QMP\": {\"version\": {}, ");
	usleep(20000);
	fake_send(f, "\"capabilities\": []}}\r\n\r\n");
	fake_answer(f, "qmp_capabilities", "{}");
	json_t *req = fake_expect(f, "query-migrate");
	char text[128];
	snprintf(text, sizeof(text), "{\"return\": {\"status\": \"completed\"}, \"id\": %lld}\r\n",
		 (long long)json_integer_value(json_object_get(req, "id")));
	for (size_t off = 0; off < strlen(text); off += 7) {
		char chunk[8];
		snprintf(chunk, sizeof(chunk), "%.7s", text + off);
		fake_send(f, chunk);
		usleep(2000);
	}
	json_decref(req);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_split_messages(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ret;

	fake_init(&f);
	fake_start(&f, script_split, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	assert_int_equal(qmp_conn_execute(&c, "query-migrate", NULL, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "completed");
	json_decref(ret);
	qmp_conn_close(&c);
	fake_finish(&f);
}

static void script_late_event(struct fake *f)
{
	fake_greet(f);
	usleep(50000);
	fake_event(f, "MIGRATION", "{\"status\": \"completed\"}");
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_wait_for_event(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ev;

	fake_init(&f);
	fake_start(&f, script_late_event, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	assert_int_equal(qmp_conn_next_event(&c, FAKE_TIMEOUT_MS, &ev, &err), 0);
	assert_non_null(ev);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ev, "data"), "status")), "completed");
	json_decref(ev);
	qmp_conn_close(&c);
	fake_finish(&f);
}

/* A signal ends a wait for events (the caller sleeps there), never one for a reply. */
static void on_signal(int sig)
{
}

static void script_signal(struct fake *f)
{
	pthread_t *client = f->opaque;

	fake_greet(f);
	usleep(50000);
	pthread_kill(*client, SIGUSR1); /* in next_event */
	json_t *req = fake_expect(f, "query-migrate");
	usleep(50000);
	pthread_kill(*client, SIGUSR1); /* in execute */
	usleep(50000);
	fake_reply(f, req, "{}");
	json_decref(req);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_signal(void **state)
{
	struct sigaction sa = {.sa_handler = on_signal}, old;
	pthread_t self = pthread_self();
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ev, *ret;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	fake_init(&f);
	fake_start(&f, script_signal, &self);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(qmp_conn_next_event(&c, FAKE_TIMEOUT_MS, &ev, &err), 0);
	assert_null(ev);
	assert_true(clock_now_ns() - t0 < 2000000000ull);
	assert_int_equal(qmp_conn_execute(&c, "query-migrate", NULL, &ret, &err), 0);
	assert_true(json_is_object(ret));
	json_decref(ret);
	qmp_conn_close(&c);
	fake_finish(&f);
	sigaction(SIGUSR1, &old, NULL);
}

/* ---- failures ------------------------------------------------------------ */

/* A socket bound but not listening: what a crashed ferry leaves behind. */
static void test_connection_refused(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	char want[512];

	fake_init(&f);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f.path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(qmp_conn_open(&c, f.path, SHORT_MS, &err), -ECONNREFUSED);
	snprintf(want, sizeof(want),
		 "control socket %s: no ferry is listening (connection refused)", f.path);
	assert_string_equal(err.msg, want);
	assert_int_equal(c.fd, -1);
	close(fd);
	fake_finish(&f);
}

static void test_no_such_socket(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	char path[400], want[1024];
	FILE *file;

	fake_init(&f);
	assert_int_equal(qmp_conn_open(&c, f.path, SHORT_MS, &err), -ENOENT);
	snprintf(want, sizeof(want),
		 "control socket %s: no such file (is ferry running with --control %s?)", f.path,
		 f.path);
	assert_string_equal(err.msg, want);

	snprintf(path, sizeof(path), "%s/plain", f.dir);
	file = fopen(path, "w");
	assert_non_null(file);
	fclose(file);
	ferr_clear(&err);
	assert_int_equal(qmp_conn_open(&c, path, SHORT_MS, &err), -ENOTSOCK);
	assert_non_null(strstr(err.msg, ": not a socket"));

	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	ferr_clear(&err);
	assert_int_equal(qmp_conn_open(&c, longpath, SHORT_MS, &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "path longer than 107 bytes"));
	fake_finish(&f);
}

static void script_close_mid_reply(struct fake *f)
{
	fake_greet(f);
	json_t *req = fake_expect(f, "query-migrate");
	fake_send(f, "{\"return\": {\"sta");
	json_decref(req);
}

static void test_close_mid_reply(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;
	json_t *ret;

	fake_init(&f);
	fake_start(&f, script_close_mid_reply, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), 0);
	assert_int_equal(qmp_conn_execute(&c, "query-migrate", NULL, &ret, &err), -ECONNRESET);
	assert_non_null(strstr(err.msg, "ferry closed the connection in the middle of a message"));
	assert_null(ret);
	/* And again: the connection stays failed, with a message. */
	ferr_clear(&err);
	assert_true(qmp_conn_execute(&c, "query-migrate", NULL, &ret, &err) < 0);
	assert_true(ferr_is_set(&err));
	qmp_conn_close(&c);
	fake_finish(&f);
}

static void script_silent(struct fake *f)
{
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void script_no_capabilities_reply(struct fake *f)
{
	fake_send(f, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	json_decref(fake_expect(f, "qmp_capabilities"));
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_timeouts(void **state)
{
	struct ferr err = FERR_INIT;
	struct qmp_conn c;
	struct fake f;

	fake_init(&f);
	fake_start(&f, script_silent, NULL);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(qmp_conn_open(&c, f.path, SHORT_MS, &err), -ETIMEDOUT);
	assert_true(clock_now_ns() - t0 >= SHORT_MS * 1000000ull);
	assert_non_null(strstr(err.msg, "no greeting within 300 ms"));
	fake_finish(&f);

	ferr_clear(&err);
	fake_init(&f);
	fake_start(&f, script_no_capabilities_reply, NULL);
	assert_int_equal(qmp_conn_open(&c, f.path, SHORT_MS, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "no reply to 'qmp_capabilities' within 300 ms"));
	fake_finish(&f);
}

struct greeting_case {
	const char *greeting;
	int rc;
	const char *msg;
};

static void script_greeting(struct fake *f)
{
	const struct greeting_case *g = f->opaque;

	fake_send(f, g->greeting);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_bad_greetings(void **state)
{
	static const struct greeting_case cases[] = {
	    {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"too many QMP clients "
	     "connected\"}}\r\n",
	     -ECONNREFUSED, "ferry refused the connection: too many QMP clients connected"},
	    {"{\"hello\": 1}\r\n", -EPROTO, "not a QMP greeting"},
	    {"SSH-2.0-OpenSSH_9.2\r\n", -EPROTO, "something other than a JSON object"},
	    {"[1, 2]\n", -EPROTO, "something other than a JSON object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ferr err = FERR_INIT;
		struct qmp_conn c;
		struct fake f;

		fake_init(&f);
		fake_start(&f, script_greeting, (void *)&cases[i]);
		assert_int_equal(qmp_conn_open(&c, f.path, FAKE_TIMEOUT_MS, &err), cases[i].rc);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
		assert_non_null(strstr(err.msg, f.path));
		fake_finish(&f);
	}
}

int run_qmp_client_tests(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_execute),
	    cmocka_unit_test(test_reply_matching),
	    cmocka_unit_test(test_error_reply),
	    cmocka_unit_test(test_split_messages),
	    cmocka_unit_test(test_wait_for_event),
	    cmocka_unit_test(test_signal),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_no_such_socket),
	    cmocka_unit_test(test_close_mid_reply),
	    cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_bad_greetings),
	};
	return cmocka_run_group_tests_name("qmp_client", tests, NULL, NULL);
}
