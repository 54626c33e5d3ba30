// SPDX-License-Identifier: GPL-2.0-only
/*
 * ferry's VM commands and events (src/control/commands.c, events.c) through
 * a real server, against the fake VM in fake_vm.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/commands.h"
#include "control/events.h"
#include "control/qmp.h"
#include "fake_vm.h"
#include "qmp_test_client.h"

struct fx {
	char dir[256];
	char path[512];
	struct qmp_server *s;
	struct vm vm;
	struct tc c;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct ferr err = FERR_INIT;

	tc_tmpdir(fx->dir, sizeof(fx->dir), fx->path, sizeof(fx->path));
	/* The order main() uses: server, then the VM with the listener, then its commands. */
	assert_int_equal(qmp_server_open(fx->path, NULL, NULL, &fx->s, &err), 0);
	fx->vm.state = VM_RS_RUNNING;
	fx->vm.name = "guest1";
	fx->vm.listener = (struct vm_listener){qmp_vm_listener, fx->s};
	assert_int_equal(qmp_server_add_commands(fx->s, qmp_vm_commands, &fx->vm, &err), 0);
	assert_int_equal(qmp_server_start(fx->s, &err), 0);
	tc_open(&fx->c, fx->path);
	tc_negotiate(&fx->c);
	fx->vm.peek_fd = fx->c.fd;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	tc_close(&fx->c);
	qmp_server_close(fx->s);
	tc_rmdir(fx->dir);
	free(fx);
	return 0;
}

static json_t *qmp(struct fx *fx, const char *text)
{
	return tc_qmp(&fx->c, text);
}

/* Assert a successful reply whose return equals @want (stolen). */
static void expect_return(json_t *reply, json_t *want)
{
	tc_assert_return(reply);
	if (!json_equal(json_object_get(reply, "return"), want)) {
		char *got = json_dumps(reply, 0), *w = json_dumps(want, 0);
		fail_msg("expected return %s, got %s", w, got);
	}
	json_decref(want);
	json_decref(reply);
}

static void expect_error(json_t *reply, const char *desc)
{
	tc_assert_error(reply, QMP_ERROR_GENERIC, desc);
	json_decref(reply);
}

static void expect_event(struct fx *fx, const char *name, json_t *data)
{
	json_t *ev = tc_recv(&fx->c);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), name);
	assert_non_null(json_object_get(ev, "timestamp"));
	if (data)
		assert_true(json_equal(json_object_get(ev, "data"), data));
	else
		assert_null(json_object_get(ev, "data"));
	json_decref(data);
	json_decref(ev);
}

static void test_query_status(void **state)
{
	struct fx *fx = *state;

	expect_return(
	    qmp(fx, "{'execute': 'query-status'}"),
	    json_pack("{s:s, s:b, s:b}", "status", "running", "running", 1, "singlestep", 0));
	fx->vm.state = VM_RS_PAUSED;
	expect_return(
	    qmp(fx, "{'execute': 'query-status'}"),
	    json_pack("{s:s, s:b, s:b}", "status", "paused", "running", 0, "singlestep", 0));
}

static void test_stop(void **state)
{
	struct fx *fx = *state;

	/* The STOP event the VM raises during the command comes before the reply. */
	tc_sendq(&fx->c, "{'execute': 'stop'}");
	expect_event(fx, "STOP", NULL);
	expect_return(tc_recv(&fx->c), json_object());
	assert_int_equal(fx->vm.state, VM_RS_PAUSED);
	assert_int_equal(fx->vm.stop_calls, 1);

	/* Already paused: succeeds without touching the VM (QEMU). */
	expect_return(qmp(fx, "{'execute': 'stop'}"), json_object());
	assert_int_equal(fx->vm.stop_calls, 1);

	fx->vm.state = VM_RS_SHUTDOWN;
	expect_error(qmp(fx, "{'execute': 'stop'}"), "cannot stop: the VM is in state 'shutdown'");
	fx->vm.state = VM_RS_PRELAUNCH;
	expect_error(qmp(fx, "{'execute': 'stop'}"), "cannot stop: the VM is in state 'prelaunch'");
	assert_int_equal(fx->vm.stop_calls, 1);
}

static void test_cont(void **state)
{
	struct fx *fx = *state;

	expect_return(qmp(fx, "{'execute': 'cont'}"), json_object());
	assert_int_equal(fx->vm.cont_calls, 0);

	fx->vm.state = VM_RS_PAUSED;
	tc_sendq(&fx->c, "{'execute': 'cont'}");
	expect_event(fx, "RESUME", NULL);
	expect_return(tc_recv(&fx->c), json_object());
	assert_int_equal(fx->vm.state, VM_RS_RUNNING);
	assert_int_equal(fx->vm.cont_calls, 1);

	fx->vm.state = VM_RS_INTERNAL_ERROR;
	expect_error(qmp(fx, "{'execute': 'cont'}"),
		     "cannot continue: the VM is in state 'internal-error'");
	fx->vm.state = VM_RS_GUEST_PANICKED;
	expect_error(qmp(fx, "{'execute': 'cont'}"),
		     "cannot continue: the VM is in state 'guest-panicked'");
	assert_int_equal(fx->vm.cont_calls, 1);
	expect_error(qmp(fx, "{'execute': 'cont', 'arguments': {'now': true}}"),
		     "Parameter 'now' is unexpected");
}

static void test_quit(void **state)
{
	struct fx *fx = *state;

	tc_sendq(&fx->c, "{'execute': 'quit', 'id': 'q'}");
	/* Read nothing until the VM was asked to quit: it checks the reply is waiting. */
	for (int i = 0; i < 5000 && !atomic_load(&fx->vm.quit_calls); i++)
		usleep(1000);
	json_t *r = tc_recv(&fx->c);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "q");
	expect_return(r, json_object());
	expect_event(fx, "SHUTDOWN",
		     json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-quit"));

	assert_int_equal(fx->vm.quit_calls, 1);
	assert_string_equal(fx->vm.quit_reason, "host-qmp-quit");
	/* The reply was on the client's socket before the VM was told to quit. */
	assert_true(fx->vm.quit_saw_reply);
}

static void test_pmemsave(void **state)
{
	struct fx *fx = *state;

	expect_return(qmp(fx, "{'execute': 'pmemsave', 'arguments': {'val': 4096, 'size': 0, "
			      "'filename': '/tmp/x.bin'}}"),
		      json_object());
	fx->vm.pmem_gpa = 1;
	expect_return(qmp(fx, "{'execute': 'pmemsave', 'arguments': {'val': 256, 'size': 512, "
			      "'filename': 'mem.bin'}}"),
		      json_object());
	assert_int_equal(fx->vm.pmem_gpa, 256);
	assert_int_equal(fx->vm.pmem_size, 512);
	assert_string_equal(fx->vm.pmem_path, "mem.bin");

	expect_error(qmp(fx, "{'execute': 'pmemsave', 'arguments': {'val': 0, 'size': 1}}"),
		     "Parameter 'filename' is missing");
	expect_error(
	    qmp(fx,
		"{'execute': 'pmemsave', 'arguments': {'val': '0', 'size': 1, 'filename': 'f'}}"),
	    "Invalid parameter type for 'val', expected: integer");
	/* The VM's own message reaches the operator. */
	expect_error(qmp(fx, "{'execute': 'pmemsave', 'arguments': {'val': 4000, 'size': 4096, "
			     "'filename': 'f'}}"),
		     "pmemsave: [0xfa0, +0x1000) is outside guest memory");
}

static void test_query_name(void **state)
{
	struct fx *fx = *state;

	expect_return(qmp(fx, "{'execute': 'query-name'}"), json_pack("{s:s}", "name", "guest1"));
	fx->vm.name = NULL;
	expect_return(qmp(fx, "{'execute': 'query-name'}"), json_object());
	/* A name from argv need not be UTF-8; the reply must still be valid JSON. */
	fx->vm.name = "g\xff";
	expect_return(qmp(fx, "{'execute': 'query-name'}"), json_pack("{s:s}", "name", "g?"));
}

static void test_query_version(void **state)
{
	struct fx *fx = *state;

	expect_return(qmp(fx, "{'execute': 'query-version'}"), qmp_version());
	json_t *v = qmp_version();
	assert_non_null(json_object_get(v, "qemu"));
	assert_non_null(strstr(json_string_value(json_object_get(v, "package")), "ferry "));
	json_decref(v);
}

static void test_flip_byte(void **state)
{
	struct fx *fx = *state;

	fx->vm.mem[0x100] = 0x5a;
	expect_return(qmp(fx, "{'execute': 'x-ferry-flip-byte', 'arguments': {'addr': 256}}"),
		      json_pack("{s:i, s:i}", "old", 0x5a, "new", 0xa5));
	assert_int_equal(fx->vm.mem[0x100], 0xa5);
	expect_return(
	    qmp(fx, "{'execute': 'x-ferry-flip-byte', 'arguments': {'addr': 256, 'mask': 1}}"),
	    json_pack("{s:i, s:i}", "old", 0xa5, "new", 0xa4));
	assert_int_equal(fx->vm.mem[0x100], 0xa4);

	expect_error(
	    qmp(fx, "{'execute': 'x-ferry-flip-byte', 'arguments': {'addr': 256, 'mask': 256}}"),
	    "Parameter 'mask' expects a value from 0 to 255");
	expect_error(qmp(fx, "{'execute': 'x-ferry-flip-byte', 'arguments': {'addr': 4096}}"),
		     "guest address 0x1000 is outside guest memory");
	expect_error(qmp(fx, "{'execute': 'x-ferry-flip-byte'}"), "Parameter 'addr' is missing");
	assert_int_equal(fx->vm.mem[0x100], 0xa4);
}

static void test_query_commands_lists_vm_table(void **state)
{
	struct fx *fx = *state;
	json_t *r = qmp(fx, "{'execute': 'query-commands'}");
	json_t *list = json_object_get(r, "return");
	size_t n = 0;

	for (const struct qmp_command *c = qmp_vm_commands; c->name; c++, n++) {
		bool found = false;
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *name = json_object_get(json_array_get(list, i), "name");
			found |= strcmp(json_string_value(name), c->name) == 0;
		}
		assert_true(found);
	}
	assert_int_equal(n, 8);
	assert_int_equal(json_array_size(list), n + 2); /* + qmp_capabilities, query-commands */
	json_decref(r);
}

static void test_listener_events(void **state)
{
	struct fx *fx = *state;
	struct vm_event guest_exit = {
	    .kind = VM_EVENT_SHUTDOWN, .reason = "guest-exit", .guest = true};
	struct vm_event no_reason = {.kind = VM_EVENT_SHUTDOWN};

	qmp_vm_listener(fx->s, &guest_exit);
	expect_event(fx, "SHUTDOWN", json_pack("{s:b, s:s}", "guest", 1, "reason", "guest-exit"));
	qmp_vm_listener(fx->s, &no_reason);
	expect_event(fx, "SHUTDOWN", json_pack("{s:b, s:s}", "guest", 0, "reason", "unknown"));
	/* No control socket configured: events go nowhere, without a crash or a leak. */
	qmp_vm_listener(NULL, &guest_exit);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_query_status),
	    T(test_stop),
	    T(test_cont),
	    T(test_quit),
	    T(test_pmemsave),
	    T(test_query_name),
	    T(test_query_version),
	    T(test_flip_byte),
	    T(test_query_commands_lists_vm_table),
	    T(test_listener_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
