/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A scripted stand-in for ferry's control socket: a thread that listens on
 * a UNIX socket in a temporary directory, accepts one client and runs a
 * script against it.  cmocka's asserts belong to the test thread, so the
 * script records its first failure instead; fake_finish() asserts on it.
 */
#ifndef FERRY_TESTS_CLI_FAKE_SERVER_H
#define FERRY_TESTS_CLI_FAKE_SERVER_H

#include <pthread.h>
#include <stdbool.h>

#include <jansson.h>

#define FAKE_TIMEOUT_MS 5000

struct fake;
typedef void fake_script(struct fake *f);

struct fake {
	char dir[80];
	char path[108]; /* fits sun_path */
	int listen_fd;
	int fd; /* the accepted client */
	pthread_t thread;
	fake_script *script;
	void *opaque;
	char failure[512]; /* first failure of the script, "" if none */
};

/* A temporary directory with "<dir>/ctl.sock" in it, not yet listening. */
void fake_init(struct fake *f);
/* Listen, and run @script in a thread for the first client. */
void fake_start(struct fake *f, fake_script *script, void *opaque);
/* Join the script, assert it did not fail, remove the directory. */
void fake_finish(struct fake *f);

/* For scripts (server thread). */
void fake_fail(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fake_send(struct fake *f, const char *text);
/* Send as QMP does: compact JSON and "\r\n"; steals @msg. */
void fake_send_json(struct fake *f, json_t *msg);
/* Next request; NULL (and a failure) on EOF or timeout. */
json_t *fake_recv(struct fake *f);
/* Next request, checking that it executes @cmd; returns it (caller decrefs). */
json_t *fake_expect(struct fake *f, const char *cmd);
/* Reply {"return": VALUE, "id": <request's id>}; @value is JSON text. */
void fake_reply(struct fake *f, json_t *req, const char *value);
void fake_reply_error(struct fake *f, json_t *req, const char *desc);
/* Expect @cmd and reply @value to it. */
void fake_answer(struct fake *f, const char *cmd, const char *value);
void fake_event(struct fake *f, const char *name, const char *data);
/* Greeting, then answer qmp_capabilities. */
void fake_greet(struct fake *f);
/* True if the client closes its end within @ms. */
bool fake_wait_eof(struct fake *f, int ms);

#endif
