// SPDX-License-Identifier: GPL-2.0-only
/*
 * The QMP server over a real UNIX socket, with a fake command table:
 * protocol, negotiation, framing, argument checks, events, several clients,
 * socket path handling, stop/flush, misbehaving clients.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "control/qmp.h"
#include "control/qmp_version.h"
#include "qmp_test_client.h"

struct fx {
	char dir[256];
	char path[512];
	struct qmp_server *s;
	/* Written by handlers on the control thread. */
	atomic_int slow_started;
	atomic_int after_ran;
	atomic_int after_saw_reply;
	int peek_fd; /* the client the after_reply hook looks at */
};

/* ---- the fake command table ------------------------------------------- */

static const struct qmp_arg echo_args[] = {
    {"text", QMP_ARG_STR, QMP_ARG_OPTIONAL},
    {0},
};

static int cmd_echo(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	*ret = json_pack("{s:s}", "text", qmp_arg_str(args, "text", "default"));
	return 0;
}

static const struct qmp_arg typed_args[] = {
    {"val", QMP_ARG_U64, 0},
    {"size", QMP_ARG_U64, 0},
    {"name", QMP_ARG_STR, QMP_ARG_OPTIONAL},
    {"flag", QMP_ARG_BOOL, QMP_ARG_OPTIONAL},
    {"i", QMP_ARG_I64, QMP_ARG_OPTIONAL},
    {"num", QMP_ARG_NUMBER, QMP_ARG_OPTIONAL},
    {"obj", QMP_ARG_OBJECT, QMP_ARG_OPTIONAL},
    {"list", QMP_ARG_ARRAY, QMP_ARG_OPTIONAL},
    {0},
};

static int cmd_typed(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	*ret = json_pack(
	    "{s:I, s:I, s:s, s:b, s:I, s:f, s:b}", "val", (json_int_t)qmp_arg_u64(args, "val", 0),
	    "size", (json_int_t)qmp_arg_u64(args, "size", 0), "name",
	    qmp_arg_str(args, "name", "anon"), "flag", qmp_arg_bool(args, "flag", false), "i",
	    (json_int_t)qmp_arg_i64(args, "i", -1), "num", qmp_arg_number(args, "num", 0.5),
	    "has_obj", qmp_arg_present(args, "obj"));
	return 0;
}

static int cmd_fail(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return qmp_error_set(qerr, "DeviceNotFound", -ENODEV, "Device '%s' not found", "disk9");
}

static int cmd_fail_plain(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return -EIO;
}

static int cmd_slow(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct fx *fx = opaque;

	atomic_store(&fx->slow_started, 1);
	usleep(200 * 1000);
	*ret = json_pack("{s:b}", "slept", 1);
	return 0;
}

static int cmd_ok(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return 0;
}

static void after_hook(void *opaque)
{
	struct fx *fx = opaque;
	struct pollfd p = {.fd = fx->peek_fd, .events = POLLIN};

	/* The reply must already be readable on the client's end. */
	atomic_store(&fx->after_saw_reply, poll(&p, 1, 0) == 1);
	atomic_store(&fx->after_ran, 1);
}

static int cmd_emit(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct fx *fx = opaque;

	qmp_server_emit(fx->s, "INSIDE", json_pack("{s:i}", "n", 1));
	return 0;
}

static const struct qmp_arg big_args[] = {
    {"size", QMP_ARG_U64, 0},
    {0},
};

static int cmd_big(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	size_t n = qmp_arg_u64(args, "size", 0);
	char *s = malloc(n + 1);

	memset(s, 'x', n);
	s[n] = '\0';
	*ret = json_pack("{s:s}", "data", s);
	free(s);
	return 0;
}

static const struct qmp_command fake_cmds[] = {
    {"echo", cmd_echo, echo_args, NULL},
    {"typed", cmd_typed, typed_args, NULL},
    {"fail", cmd_fail, NULL, NULL},
    {"fail-plain", cmd_fail_plain, NULL, NULL},
    {"slow", cmd_slow, NULL, NULL},
    {"after", cmd_ok, NULL, after_hook},
    {"after-fail", cmd_fail, NULL, after_hook},
    {"emit", cmd_emit, NULL, NULL},
    {"big", cmd_big, big_args, NULL},
    {0},
};

/* ---- fixture ----------------------------------------------------------- */

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct ferr err = FERR_INIT;

	tc_tmpdir(fx->dir, sizeof(fx->dir), fx->path, sizeof(fx->path));
	assert_int_equal(qmp_server_open(fx->path, fake_cmds, fx, &fx->s, &err), 0);
	assert_int_equal(qmp_server_start(fx->s, &err), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	qmp_server_close(fx->s);
	tc_rmdir(fx->dir);
	free(fx);
	return 0;
}

static void expect_return_text(json_t *reply, const char *text)
{
	tc_assert_return(reply);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(reply, "return"), "text")), text);
	json_decref(reply);
}

static void expect_error(json_t *reply, const char *class, const char *desc)
{
	tc_assert_error(reply, class, desc);
	json_decref(reply);
}

/* ---- protocol ---------------------------------------------------------- */

static void test_greeting(void **state)
{
	struct fx *fx = *state;
	struct tc c;
	char package[64];

	tc_open(&c, fx->path);
	json_t *g = tc_recv(&c);
	assert_int_equal(json_object_size(g), 1);
	json_t *qmp = json_object_get(g, "QMP");
	json_t *ver = json_object_get(qmp, "version");
	json_t *qemu = json_object_get(ver, "qemu");
	assert_int_equal(json_integer_value(json_object_get(qemu, "major")), QMP_VERSION_MAJOR);
	assert_int_equal(json_integer_value(json_object_get(qemu, "minor")), QMP_VERSION_MINOR);
	assert_int_equal(json_integer_value(json_object_get(qemu, "micro")), QMP_VERSION_MICRO);
	snprintf(package, sizeof(package), "ferry %d.%d.%d", QMP_VERSION_MAJOR, QMP_VERSION_MINOR,
		 QMP_VERSION_MICRO);
	assert_string_equal(json_string_value(json_object_get(ver, "package")), package);
	json_t *caps = json_object_get(qmp, "capabilities");
	assert_true(json_is_array(caps));
	assert_int_equal(json_array_size(caps), 0);
	json_decref(g);
	tc_close(&c);
}

static void test_negotiation_required(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	json_decref(tc_recv(&c));

	expect_error(tc_qmp(&c, "{'execute': 'echo'}"), QMP_ERROR_COMMAND_NOT_FOUND,
		     "Expecting capabilities negotiation with 'qmp_capabilities'");
	/* Even an unknown name gets the negotiation hint, as in QEMU. */
	expect_error(tc_qmp(&c, "{'execute': 'nosuch'}"), QMP_ERROR_COMMAND_NOT_FOUND,
		     "Expecting capabilities negotiation");
	/* No optional capability is offered: asking for one fails and negotiates nothing. */
	expect_error(
	    tc_qmp(&c, "{'execute': 'qmp_capabilities', 'arguments': {'enable': ['oob']}}"),
	    QMP_ERROR_GENERIC, "Capability 'oob' not available");
	expect_error(tc_qmp(&c, "{'execute': 'echo'}"), QMP_ERROR_COMMAND_NOT_FOUND,
		     "Expecting capabilities negotiation");

	json_t *r = tc_qmp(&c, "{'execute': 'qmp_capabilities', 'arguments': {'enable': []}}");
	tc_assert_return(r);
	assert_int_equal(json_object_size(json_object_get(r, "return")), 0);
	json_decref(r);

	expect_return_text(tc_qmp(&c, "{'execute': 'echo'}"), "default");
	expect_error(tc_qmp(&c, "{'execute': 'qmp_capabilities'}"), QMP_ERROR_COMMAND_NOT_FOUND,
		     "Capabilities negotiation is already complete");
	tc_close(&c);
}

static void test_id_echo(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);

	json_t *r = tc_qmp(&c, "{'execute': 'echo', 'id': 'abc'}");
	assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
	json_decref(r);

	r = tc_qmp(&c, "{'id': {'seq': [1, 2]}, 'execute': 'echo'}");
	json_t *want = json_pack("{s:[i,i]}", "seq", 1, 2);
	assert_true(json_equal(json_object_get(r, "id"), want));
	json_decref(want);
	json_decref(r);

	/* Errors carry the id too, even for a malformed request. */
	r = tc_qmp(&c, "{'execute': 'nosuch', 'id': 7}");
	tc_assert_error(r, QMP_ERROR_COMMAND_NOT_FOUND, NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
	json_decref(r);
	r = tc_qmp(&c, "{'execute': 1, 'id': null}");
	tc_assert_error(r, QMP_ERROR_GENERIC, NULL);
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);

	/* No id, no id member. */
	r = tc_qmp(&c, "{'execute': 'echo'}");
	assert_null(json_object_get(r, "id"));
	json_decref(r);
	tc_close(&c);
}

static void test_unknown_command(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	expect_error(tc_qmp(&c, "{'execute': 'nosuch'}"), QMP_ERROR_COMMAND_NOT_FOUND,
		     "The command nosuch has not been found");
	tc_close(&c);
}

static void test_handler_errors(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	json_t *r = tc_qmp(&c, "{'execute': 'fail'}");
	tc_assert_error(r, "DeviceNotFound", NULL);
	assert_string_equal(tc_desc(r), "Device 'disk9' not found");
	json_decref(r);
	/* No message: the errno speaks, class defaults to GenericError. */
	r = tc_qmp(&c, "{'execute': 'fail-plain'}");
	tc_assert_error(r, QMP_ERROR_GENERIC, NULL);
	assert_string_equal(tc_desc(r), strerror(EIO));
	json_decref(r);
	tc_close(&c);
}

static void test_malformed_json_keeps_connection(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	expect_error(tc_qmp(&c, "{'execute': }"), QMP_ERROR_GENERIC, "JSON parse error, ");
	/* Unterminated string: the newline ends it rather than leaving the client hanging. */
	expect_error(tc_qmp(&c, "{'execute': 'echo"), QMP_ERROR_GENERIC, "JSON parse error, ");
	expect_error(tc_qmp(&c, "}"), QMP_ERROR_GENERIC, "JSON parse error, ");
	expect_error(tc_qmp(&c, "nonsense"), QMP_ERROR_GENERIC, "JSON parse error, ");
	/* Not UTF-8. */
	expect_error(tc_cmd(&c, "{\"execute\": \"\xff\xfe\"}\n"), QMP_ERROR_GENERIC,
		     "JSON parse error, ");
	/* Duplicate keys are ambiguous: refused. */
	expect_error(tc_qmp(&c, "{'execute': 'echo', 'execute': 'fail'}"), QMP_ERROR_GENERIC,
		     "JSON parse error, ");
	tc_send_raw(&c, "{\"a\":\0}\n", 8);
	expect_error(tc_recv(&c), QMP_ERROR_GENERIC, "JSON parse error, ");

	expect_return_text(tc_qmp(&c, "{'execute': 'echo', 'arguments': {'text': 'alive'}}"),
			   "alive");
	tc_close(&c);
}

static void test_bad_requests(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	expect_error(tc_qmp(&c, "[1, 2]"), QMP_ERROR_GENERIC, "QMP input must be a JSON object");
	expect_error(tc_qmp(&c, "42"), QMP_ERROR_GENERIC, "QMP input must be a JSON object");
	expect_error(tc_qmp(&c, "'execute'"), QMP_ERROR_GENERIC, "QMP input must be a JSON object");
	expect_error(tc_qmp(&c, "{'arguments': {}}"), QMP_ERROR_GENERIC,
		     "QMP input lacks member 'execute'");
	expect_error(tc_qmp(&c, "{'execute': ['echo']}"), QMP_ERROR_GENERIC,
		     "QMP input member 'execute' must be a string");
	expect_error(tc_qmp(&c, "{'execute': 'echo', 'arguments': [1]}"), QMP_ERROR_GENERIC,
		     "QMP input member 'arguments' must be an object");
	expect_error(tc_qmp(&c, "{'execute': 'echo', 'foo': 1}"), QMP_ERROR_GENERIC,
		     "QMP input member 'foo' is unexpected");
	expect_return_text(tc_qmp(&c, "{'execute': 'echo'}"), "default");
	tc_close(&c);
}

static void test_oversize_request(void **state)
{
	struct fx *fx = *state;
	struct tc c;
	size_t n = QMP_MAX_REQUEST + 5000;
	char *big = malloc(n + 128);

	tc_open(&c, fx->path);
	tc_negotiate(&c);

	int off = sprintf(big, "{\"execute\": \"echo\", \"arguments\": {\"text\": \"");
	memset(big + off, 'y', n);
	strcpy(big + off + n, "\"}, \"id\": 1}\n");
	expect_error(tc_cmd(&c, big), QMP_ERROR_GENERIC, "longer than 65536 bytes");
	/* The rest of that request was discarded, not parsed as new requests. */
	json_t *extra = tc_recv_timeout(&c, TC_QUIET_MS);
	assert_null(extra);
	expect_return_text(tc_qmp(&c, "{'execute': 'echo', 'arguments': {'text': 'after'}}"),
			   "after");

	/* Just under the limit is fine. */
	off = sprintf(big, "{\"execute\": \"echo\", \"arguments\": {\"text\": \"");
	size_t fill = QMP_MAX_REQUEST - (size_t)off - strlen("\"}}");
	memset(big + off, 'z', fill);
	strcpy(big + off + fill, "\"}}\n");
	json_t *r = tc_cmd(&c, big);
	tc_assert_return(r);
	assert_int_equal(
	    strlen(json_string_value(json_object_get(json_object_get(r, "return"), "text"))), fill);
	json_decref(r);
	free(big);
	tc_close(&c);
}

static void test_framing(void **state)
{
	struct fx *fx = *state;
	struct tc c;
	json_t *r;

	tc_open(&c, fx->path);
	tc_negotiate(&c);

	/* Two on one line, no separator. */
	tc_sendq(&c, "{'execute': 'echo', 'id': 1}{'execute': 'echo', 'id': 2}");
	r = tc_recv(&c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	r = tc_recv(&c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);

	/* Split byte by byte, with brackets and escaped quotes inside the string. */
	const char *req = "{\"execute\": \"echo\", \"arguments\": {\"text\": \"a}]\\\"{[\\\\\"}}\n";
	for (const char *p = req; *p; p++) {
		tc_send_raw(&c, p, 1);
		usleep(200);
	}
	expect_return_text(tc_recv(&c), "a}]\"{[\\");

	/* Spread over lines, CRLF, no trailing newline. */
	expect_return_text(
	    tc_cmd(
		&c,
		"{\r\n  \"execute\":\r\n  \"echo\",\r\n  \"arguments\": {\"text\": \"ml\"}\r\n}"),
	    "ml");
	tc_close(&c);
}

static void test_args_checker(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);

	json_t *r = tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 4096, 'size': 0}}");
	tc_assert_return(r);
	json_t *want = json_pack("{s:i, s:i, s:s, s:b, s:i, s:f, s:b}", "val", 4096, "size", 0,
				 "name", "anon", "flag", 0, "i", -1, "num", 0.5, "has_obj", 0);
	assert_true(json_equal(json_object_get(r, "return"), want));
	json_decref(want);
	json_decref(r);

	r = tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'name': 'n', "
		       "'flag': true, 'i': -5, 'num': 3, 'obj': {}, 'list': []}}");
	tc_assert_return(r);
	want = json_pack("{s:i, s:i, s:s, s:b, s:i, s:f, s:b}", "val", 1, "size", 2, "name", "n",
			 "flag", 1, "i", -5, "num", 3.0, "has_obj", 1);
	assert_true(json_equal(json_object_get(r, "return"), want));
	json_decref(want);
	json_decref(r);

	expect_error(
	    tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'foo': 3}}"),
	    QMP_ERROR_GENERIC, "Parameter 'foo' is unexpected");
	expect_error(tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': '12'}}"),
		     QMP_ERROR_GENERIC, "Invalid parameter type for 'size', expected: integer");
	expect_error(tc_qmp(&c, "{'execute': 'typed', 'arguments': {'size': 2}}"),
		     QMP_ERROR_GENERIC, "Parameter 'val' is missing");
	expect_error(tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': -1, 'size': 2}}"),
		     QMP_ERROR_GENERIC, "Parameter 'val' expects a non-negative integer");
	expect_error(tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1.5, 'size': 2}}"),
		     QMP_ERROR_GENERIC, "Invalid parameter type for 'val', expected: integer");
	expect_error(
	    tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'flag': 'yes'}}"),
	    QMP_ERROR_GENERIC, "Invalid parameter type for 'flag', expected: boolean");
	expect_error(
	    tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'name': 5}}"),
	    QMP_ERROR_GENERIC, "Invalid parameter type for 'name', expected: string");
	expect_error(
	    tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'num': '1'}}"),
	    QMP_ERROR_GENERIC, "Invalid parameter type for 'num', expected: number");
	expect_error(
	    tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'obj': []}}"),
	    QMP_ERROR_GENERIC, "Invalid parameter type for 'obj', expected: object");
	expect_error(
	    tc_qmp(&c, "{'execute': 'typed', 'arguments': {'val': 1, 'size': 2, 'list': {}}}"),
	    QMP_ERROR_GENERIC, "Invalid parameter type for 'list', expected: array");
	/* A command that declares no arguments takes none. */
	expect_error(tc_qmp(&c, "{'execute': 'query-commands', 'arguments': {'x': 1}}"),
		     QMP_ERROR_GENERIC, "Parameter 'x' is unexpected");
	tc_close(&c);
}

/* qmp_args_check() on its own, as handlers use it for nested objects. */
static void test_args_check_direct(void **state)
{
	static const struct qmp_arg spec[] = {
	    {"a", QMP_ARG_U64, 0},
	    {"b", QMP_ARG_STR, QMP_ARG_OPTIONAL},
	    {0},
	};
	struct qmp_error qerr = {NULL, FERR_INIT};
	json_t *args = json_pack("{s:i}", "a", 3);

	assert_int_equal(qmp_args_check(args, spec, &qerr), 0);
	assert_int_equal(qmp_arg_u64(args, "a", 9), 3);
	assert_string_equal(qmp_arg_str(args, "b", "dflt"), "dflt");
	json_decref(args);

	args = json_pack("{s:i}", "c", 3);
	assert_int_equal(qmp_args_check(args, NULL, &qerr), -EINVAL);
	assert_string_equal(qerr.err.msg, "Parameter 'c' is unexpected");
	assert_null(qerr.class);
	json_decref(args);
}

static void test_query_commands(void **state)
{
	struct fx *fx = *state;
	struct tc c;
	const char *want[] = {"qmp_capabilities", "query-commands", "echo", "typed", "big"};

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	json_t *r = tc_qmp(&c, "{'execute': 'query-commands'}");
	json_t *list = json_object_get(r, "return");
	assert_true(json_is_array(list));
	assert_int_equal(json_array_size(list), 2 + sizeof(fake_cmds) / sizeof(fake_cmds[0]) - 1);
	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		bool found = false;
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *name = json_object_get(json_array_get(list, i), "name");
			found |= strcmp(json_string_value(name), want[w]) == 0;
		}
		assert_true(found);
	}
	json_decref(r);
	tc_close(&c);
}

/* ---- events ------------------------------------------------------------ */

#define NTICKS 100

static void *emit_ticks(void *opaque)
{
	struct qmp_server *s = opaque;

	for (int i = 0; i < NTICKS; i++)
		qmp_server_emit(s, "TICK", json_pack("{s:i}", "n", i));
	return NULL;
}

static void test_events(void **state)
{
	struct fx *fx = *state;
	struct tc a, b, late;
	pthread_t t;
	json_t *ev;

	tc_open(&a, fx->path);
	tc_negotiate(&a);
	tc_open(&b, fx->path);
	tc_negotiate(&b);
	tc_open(&late, fx->path);
	json_decref(tc_recv(&late)); /* greeting only: not negotiated */

	time_t before = time(NULL);
	assert_int_equal(pthread_create(&t, NULL, emit_ticks, fx->s), 0);
	assert_int_equal(pthread_join(t, NULL), 0);

	struct tc *both[] = {&a, &b};
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < NTICKS; i++) {
			ev = tc_recv(both[k]);
			assert_string_equal(json_string_value(json_object_get(ev, "event")),
					    "TICK");
			assert_int_equal(
			    json_integer_value(json_object_get(json_object_get(ev, "data"), "n")),
			    i);
			json_t *ts = json_object_get(ev, "timestamp");
			json_int_t sec = json_integer_value(json_object_get(ts, "seconds"));
			json_int_t usec = json_integer_value(json_object_get(ts, "microseconds"));
			assert_true(sec >= before && sec <= time(NULL));
			assert_true(usec >= 0 && usec < 1000000);
			json_decref(ev);
		}
	}

	/* The unnegotiated client got nothing, and nothing was saved up for it. */
	assert_null(tc_recv_timeout(&late, TC_QUIET_MS));
	tc_sendq(&late, "{'execute': 'qmp_capabilities'}");
	json_t *r = tc_recv(&late);
	tc_assert_return(r);
	json_decref(r);
	expect_return_text(tc_qmp(&late, "{'execute': 'echo'}"), "default");

	/* Events from before a client negotiated are not replayed to it. */
	struct tc fresh;
	tc_open(&fresh, fx->path);
	json_decref(tc_recv(&fresh));
	qmp_server_emit(fx->s, "EARLY", NULL);
	r = tc_qmp(&fresh, "{'execute': 'qmp_capabilities'}");
	tc_assert_return(r);
	json_decref(r);
	assert_null(tc_recv_timeout(&fresh, TC_QUIET_MS));
	tc_close(&fresh);
	ev = tc_recv(&late);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "EARLY");
	json_decref(ev);

	/* Without data, "data" is absent (QEMU's STOP). */
	qmp_server_emit(fx->s, "STOP", NULL);
	ev = tc_recv(&late);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "STOP");
	assert_null(json_object_get(ev, "data"));
	assert_non_null(json_object_get(ev, "timestamp"));
	json_decref(ev);

	tc_close(&a);
	tc_close(&b);
	tc_close(&late);
}

static void test_event_from_handler_precedes_reply(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	tc_sendq(&c, "{'execute': 'emit', 'id': 1}");
	json_t *first = tc_recv(&c);
	assert_string_equal(json_string_value(json_object_get(first, "event")), "INSIDE");
	json_t *second = tc_recv(&c);
	tc_assert_return(second);
	json_decref(first);
	json_decref(second);
	tc_close(&c);
}

/* Emitting with no server, or after stop, is harmless (and leak-free under ASan). */
static void test_emit_edge_cases(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	qmp_server_emit(NULL, "NOBODY", json_pack("{s:i}", "n", 1));

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	qmp_server_emit(fx->s, "LAST", json_object());
	qmp_server_stop(fx->s);
	qmp_server_emit(fx->s, "AFTER", json_object());
	qmp_server_stop(fx->s); /* idempotent */

	/* Events queued before stop were delivered, then the server hung up. */
	json_t *ev = tc_recv(&c);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "LAST");
	json_decref(ev);
	assert_true(tc_wait_eof(&c, TC_TIMEOUT_MS));
	tc_close(&c);
}

/* ---- clients ----------------------------------------------------------- */

static void test_two_clients(void **state)
{
	struct fx *fx = *state;
	struct tc a, b;
	json_t *r;

	tc_open(&a, fx->path);
	tc_open(&b, fx->path);
	tc_negotiate(&a);
	tc_negotiate(&b);

	/* A half-sent request on one client does not hold up the other. */
	tc_send(&a, "{\"execute\": \"echo\", \"arguments\": {\"text\": ");
	expect_return_text(tc_qmp(&b, "{'execute': 'echo', 'arguments': {'text': 'b'}}"), "b");
	assert_null(tc_recv_timeout(&a, TC_QUIET_MS));
	expect_return_text(tc_qmp(&a, "'a'}}"), "a");

	/* Interleaved, each gets its own replies. */
	for (int i = 0; i < 20; i++) {
		char req[128];
		snprintf(req, sizeof(req), "{\"execute\": \"echo\", \"id\": %d}\n", i);
		tc_send(i % 2 ? &a : &b, req);
	}
	for (int i = 0; i < 20; i++) {
		r = tc_recv(i % 2 ? &a : &b);
		assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
		json_decref(r);
	}
	tc_close(&a);
	tc_close(&b);
}

static void test_too_many_clients(void **state)
{
	struct fx *fx = *state;
	struct tc c[QMP_MAX_CLIENTS], extra;

	for (int i = 0; i < QMP_MAX_CLIENTS; i++) {
		tc_open(&c[i], fx->path);
		json_t *g = tc_recv(&c[i]);
		assert_non_null(json_object_get(g, "QMP"));
		json_decref(g);
	}
	tc_open(&extra, fx->path);
	expect_error(tc_recv(&extra), QMP_ERROR_GENERIC, "too many QMP clients");
	assert_true(tc_wait_eof(&extra, TC_TIMEOUT_MS));
	tc_close(&extra);

	/* A slot frees up when a client leaves. */
	tc_close(&c[0]);
	json_t *g = NULL;
	for (int tries = 0; tries < 50 && !g; tries++) {
		tc_open(&extra, fx->path);
		g = tc_recv(&extra);
		if (!json_object_get(g, "QMP")) {
			json_decref(g);
			g = NULL;
			tc_close(&extra);
			usleep(20 * 1000);
		}
	}
	assert_non_null(g);
	json_decref(g);
	tc_close(&extra);
	for (int i = 1; i < QMP_MAX_CLIENTS; i++)
		tc_close(&c[i]);
}

static void test_half_close_still_answered(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_send(&c, "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"echo\", \"arguments\": "
		    "{\"text\": \"bye\"}}\n");
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
	json_decref(tc_recv(&c)); /* greeting */
	json_decref(tc_recv(&c)); /* capabilities */
	expect_return_text(tc_recv(&c), "bye");
	assert_true(tc_wait_eof(&c, TC_TIMEOUT_MS));
	tc_close(&c);
}

static void test_big_reply(void **state)
{
	struct fx *fx = *state;
	struct tc c;
	const size_t n = 600 * 1024; /* several socket buffers: partial sends + POLLOUT */

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	json_t *r = tc_qmp(&c, "{'execute': 'big', 'arguments': {'size': 614400}}");
	tc_assert_return(r);
	assert_int_equal(
	    strlen(json_string_value(json_object_get(json_object_get(r, "return"), "data"))), n);
	json_decref(r);
	expect_return_text(tc_qmp(&c, "{'execute': 'echo'}"), "default");
	tc_close(&c);
}

/* A client that is not reading is cut off at the cap; others are unaffected. */
struct reader {
	struct tc *c;
	int want;
	int got;
};

static void *count_events(void *opaque)
{
	struct reader *r = opaque;
	while (r->got < r->want) {
		json_t *ev = tc_recv_timeout(r->c, TC_TIMEOUT_MS);
		if (!ev)
			break;
		if (json_object_get(ev, "event"))
			r->got++;
		json_decref(ev);
	}
	return NULL;
}

static void test_slow_client_disconnected(void **state)
{
	struct fx *fx = *state;
	struct tc slow, good;
	const int nevents = 40;
	const size_t blob = 64 * 1024;
	char *s = malloc(blob + 1);
	pthread_t t;

	memset(s, 'b', blob);
	s[blob] = '\0';
	tc_open(&slow, fx->path);
	tc_negotiate(&slow);
	tc_open(&good, fx->path);
	tc_negotiate(&good);

	struct reader rd = {&good, nevents, 0};
	assert_int_equal(pthread_create(&t, NULL, count_events, &rd), 0);
	for (int i = 0; i < nevents; i++) {
		qmp_server_emit(fx->s, "BLOB", json_pack("{s:s}", "blob", s));
		usleep(3000); /* let the control thread keep up: this tests the client cap */
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rd.got, nevents);

	/* 40 x 64 KiB is well over the 1 MiB cap plus what the socket can hold. */
	assert_true(tc_wait_eof(&slow, TC_TIMEOUT_MS));
	tc_close(&slow);
	expect_return_text(tc_qmp(&good, "{'execute': 'echo'}"), "default");
	tc_close(&good);
	free(s);
}

static void test_client_vanishes_mid_reply(void **state)
{
	struct fx *fx = *state;
	struct tc c, next;

	for (int i = 0; i < 5; i++) {
		tc_open(&c, fx->path);
		tc_send(&c, "{\"execute\": \"qmp_capabilities\"}\n"
			    "{\"execute\": \"big\", \"arguments\": {\"size\": 800000}}\n"
			    "{\"execute\": \"big\", \"arguments\": {\"size\": 800000}}\n");
		usleep(i * 2000);
		tc_close(&c);
	}
	tc_open(&next, fx->path);
	tc_negotiate(&next);
	expect_return_text(tc_qmp(&next, "{'execute': 'echo'}"), "default");
	tc_close(&next);
}

static void test_garbage_bytes(void **state)
{
	struct fx *fx = *state;
	struct tc c, next;
	unsigned seed = 12345;
	char chunk[1024];
	int replies = 0;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	for (int round = 0; round < 64; round++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof(chunk));
		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)rand_r(&seed);
		tc_send_raw(&c, chunk, n);
		json_t *m;
		while ((m = tc_recv_timeout(&c, 0))) {
			replies++;
			json_decref(m);
		}
	}
	/* Control characters end strings and bare values: some errors must come back. */
	tc_send(&c, "\n]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
	json_t *m;
	while ((m = tc_recv_timeout(&c, TC_QUIET_MS))) {
		replies++;
		json_decref(m);
	}
	assert_true(replies > 0);
	tc_close(&c);

	tc_open(&next, fx->path);
	tc_negotiate(&next);
	expect_return_text(tc_qmp(&next, "{'execute': 'echo'}"), "default");
	tc_close(&next);
}

/* ---- reply ordering and stop ------------------------------------------- */

static void test_after_reply_hook(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	fx->peek_fd = c.fd;

	/* Not run when the command fails. */
	expect_error(tc_qmp(&c, "{'execute': 'after-fail'}"), "DeviceNotFound", NULL);
	expect_return_text(tc_qmp(&c, "{'execute': 'echo'}"), "default");
	assert_int_equal(atomic_load(&fx->after_ran), 0);

	/* Read nothing until the hook ran: it checks that the reply is already waiting. */
	tc_sendq(&c, "{'execute': 'after'}");
	for (int i = 0; i < 5000 && !atomic_load(&fx->after_ran); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&fx->after_ran), 1);
	assert_int_equal(atomic_load(&fx->after_saw_reply), 1);
	json_t *r = tc_recv(&c);
	tc_assert_return(r);
	json_decref(r);
	tc_close(&c);
}

static void test_stop_flushes_pending_reply(void **state)
{
	struct fx *fx = *state;
	struct tc c;

	tc_open(&c, fx->path);
	tc_negotiate(&c);
	tc_sendq(&c, "{'execute': 'slow', 'id': 's'}");
	while (!atomic_load(&fx->slow_started))
		usleep(1000);
	/* The handler is still running: stop must wait for it, then flush its reply. */
	qmp_server_stop(fx->s);

	json_t *r = tc_recv_timeout(&c, 0); /* already there: no waiting */
	assert_non_null(r);
	tc_assert_return(r);
	assert_true(json_is_true(json_object_get(json_object_get(r, "return"), "slept")));
	json_decref(r);
	assert_true(tc_wait_eof(&c, TC_TIMEOUT_MS));
	tc_close(&c);
}

/* ---- the socket path ----------------------------------------------------- */

static void test_socket_mode_and_unlink(void **state)
{
	struct fx *fx = *state;
	struct stat st;

	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	qmp_server_close(fx->s);
	fx->s = NULL;
	assert_int_equal(lstat(fx->path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_socket_in_use(void **state)
{
	struct fx *fx = *state;
	struct ferr err = FERR_INIT;
	struct qmp_server *other = NULL;
	char want[600];
	struct tc c;

	assert_int_equal(qmp_server_open(fx->path, NULL, NULL, &other, &err), -EADDRINUSE);
	snprintf(want, sizeof(want), "control socket %s is in use by another process", fx->path);
	assert_string_equal(err.msg, want);
	assert_null(other);

	/* The first server was left alone. */
	tc_open(&c, fx->path);
	tc_negotiate(&c);
	tc_close(&c);
}

static void test_socket_stale_reused(void **state)
{
	struct fx *fx = *state;
	struct ferr err = FERR_INIT;
	struct qmp_server *s = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[600];
	struct tc c;

	/* A socket file whose owner died: bound, never unlinked. */
	snprintf(path, sizeof(path), "%s/stale.sock", fx->dir);
	assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) <
		    (int)sizeof(sa.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	assert_int_equal(qmp_server_open(path, NULL, NULL, &s, &err), 0);
	assert_int_equal(qmp_server_start(s, &err), 0);
	tc_open(&c, path);
	tc_negotiate(&c);
	tc_close(&c);
	qmp_server_close(s);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_socket_not_a_socket(void **state)
{
	struct fx *fx = *state;
	struct ferr err = FERR_INIT;
	struct qmp_server *s = NULL;
	char path[600], buf[16] = "";

	snprintf(path, sizeof(path), "%s/regular", fx->dir);
	FILE *f = fopen(path, "w");
	fputs("precious", f);
	fclose(f);

	assert_int_equal(qmp_server_open(path, NULL, NULL, &s, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "is not a socket"));
	f = fopen(path, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "precious");
}

static void test_socket_path_too_long(void **state)
{
	struct fx *fx = *state;
	struct ferr err = FERR_INIT;
	struct qmp_server *s = NULL;
	char path[300];

	assert_true(snprintf(path, sizeof(path), "%s/%0200d", fx->dir, 0) < (int)sizeof(path));
	assert_int_equal(qmp_server_open(path, NULL, NULL, &s, &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "too long"));
	assert_int_equal(access(path, F_OK), -1);

	ferr_clear(&err);
	assert_int_equal(qmp_server_open("", NULL, NULL, &s, &err), -EINVAL);
}

/* Replaced behind our back: close must not delete someone else's file. */
static void test_close_leaves_foreign_file(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(unlink(fx->path), 0);
	FILE *f = fopen(fx->path, "w");
	fclose(f);
	qmp_server_close(fx->s);
	fx->s = NULL;
	assert_int_equal(access(fx->path, F_OK), 0);
}

/* ---- registration ------------------------------------------------------ */

static const struct qmp_command dup_cmds[] = {
    {"echo", cmd_ok, NULL, NULL},
    {0},
};

static const struct qmp_command self_dup_cmds[] = {
    {"x-one", cmd_ok, NULL, NULL},
    {"x-one", cmd_ok, NULL, NULL},
    {0},
};

static const struct qmp_command builtin_dup_cmds[] = {
    {"query-commands", cmd_ok, NULL, NULL},
    {0},
};

static const struct qmp_command more_cmds[] = {
    {"x-more", cmd_echo, echo_args, NULL},
    {0},
};

static void test_registration(void **state)
{
	struct fx *fx = *state;
	struct ferr err = FERR_INIT;
	struct qmp_server *s = NULL;
	char path[600];
	struct tc c;

	snprintf(path, sizeof(path), "%s/reg.sock", fx->dir);
	assert_int_equal(qmp_server_open(path, fake_cmds, fx, &s, &err), 0);
	assert_int_equal(qmp_server_add_commands(s, dup_cmds, NULL, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "'echo' is registered twice"));
	ferr_clear(&err);
	assert_int_equal(qmp_server_add_commands(s, self_dup_cmds, NULL, &err), -EEXIST);
	ferr_clear(&err);
	assert_int_equal(qmp_server_add_commands(s, builtin_dup_cmds, NULL, &err), -EEXIST);
	ferr_clear(&err);
	assert_int_equal(qmp_server_add_commands(s, more_cmds, NULL, &err), 0);
	assert_int_equal(qmp_server_start(s, &err), 0);
	assert_int_equal(qmp_server_start(s, &err), -EBUSY);
	ferr_clear(&err);
	assert_int_equal(qmp_server_add_commands(s, dup_cmds, NULL, &err), -EBUSY);

	tc_open(&c, path);
	tc_negotiate(&c);
	expect_return_text(tc_qmp(&c, "{'execute': 'x-more', 'arguments': {'text': 'm'}}"), "m");
	tc_close(&c);
	qmp_server_close(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_greeting),
	    T(test_negotiation_required),
	    T(test_id_echo),
	    T(test_unknown_command),
	    T(test_handler_errors),
	    T(test_malformed_json_keeps_connection),
	    T(test_bad_requests),
	    T(test_oversize_request),
	    T(test_framing),
	    T(test_args_checker),
	    cmocka_unit_test(test_args_check_direct),
	    T(test_query_commands),
	    T(test_events),
	    T(test_event_from_handler_precedes_reply),
	    T(test_emit_edge_cases),
	    T(test_two_clients),
	    T(test_too_many_clients),
	    T(test_half_close_still_answered),
	    T(test_big_reply),
	    T(test_slow_client_disconnected),
	    T(test_client_vanishes_mid_reply),
	    T(test_garbage_bytes),
	    T(test_after_reply_hook),
	    T(test_stop_flushes_pending_reply),
	    T(test_socket_mode_and_unlink),
	    T(test_socket_in_use),
	    T(test_socket_stale_reused),
	    T(test_socket_not_a_socket),
	    T(test_socket_path_too_long),
	    T(test_close_leaves_foreign_file),
	    T(test_registration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
