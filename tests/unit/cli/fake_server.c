// SPDX-License-Identifier: GPL-2.0-only
#include "fake_server.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
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

void fake_init(struct fake *f)
{
	const char *base = getenv("TMPDIR");

	memset(f, 0, sizeof(*f));
	f->listen_fd = f->fd = -1;
	snprintf(f->dir, sizeof(f->dir), "%s/ferry-cli-test.XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd = {.fd = f->listen_fd, .events = POLLIN};

	if (poll(&pfd, 1, FAKE_TIMEOUT_MS) != 1) {
		fake_fail(f, "no client connected");
		return NULL;
	}
	f->fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (f->fd < 0) {
		fake_fail(f, "accept: %s", strerror(errno));
		return NULL;
	}
	f->script(f);
	close(f->fd);
	f->fd = -1;
	return NULL;
}

void fake_start(struct fake *f, fake_script *script, void *opaque)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	f->script = script;
	f->opaque = opaque;
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
}

void fake_finish(struct fake *f)
{
	char cmd[400];

	if (f->listen_fd >= 0) {
		pthread_join(f->thread, NULL);
		close(f->listen_fd);
		f->listen_fd = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	if (f->failure[0])
		fail_msg("fake server: %s", f->failure);
}

void fake_fail(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	if (f->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(f->failure, sizeof(f->failure), fmt, ap);
	va_end(ap);
}

void fake_send(struct fake *f, const char *text)
{
	size_t len = strlen(text);

	while (len) {
		ssize_t n = send(f->fd, text, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fake_fail(f, "send: %s", strerror(errno));
			return;
		}
		text += n;
		len -= (size_t)n;
	}
}

void fake_send_json(struct fake *f, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (!text) {
		fake_fail(f, "json_dumps failed");
		return;
	}
	fake_send(f, text);
	fake_send(f, "\r\n");
	free(text);
}

json_t *fake_recv(struct fake *f)
{
	char line[65536];
	size_t len = 0;
	json_error_t jerr;

	/* The client sends one request per line. */
	while (len < sizeof(line) - 1) {
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
		int r = poll(&pfd, 1, FAKE_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1) {
			fake_fail(f, "no request from the client");
			return NULL;
		}
		ssize_t n = recv(f->fd, line + len, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fake_fail(f, "client closed the connection");
			return NULL;
		}
		if (line[len++] == '\n')
			break;
	}
	json_t *req = json_loadb(line, len, 0, &jerr);
	if (!json_is_object(req))
		fake_fail(f, "request is not a JSON object: %.*s", (int)len, line);
	return req;
}

json_t *fake_expect(struct fake *f, const char *cmd)
{
	json_t *req = fake_recv(f);
	const char *got = json_string_value(json_object_get(req, "execute"));

	if (req && (!got || strcmp(got, cmd) != 0))
		fake_fail(f, "expected '%s', got '%s'", cmd, got ? got : "(none)");
	return req;
}

void fake_reply(struct fake *f, json_t *req, const char *value)
{
	json_error_t jerr;
	json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
	json_t *id = json_object_get(req, "id");

	if (!v) {
		fake_fail(f, "bad reply text in the test: %s", value);
		return;
	}
	json_t *msg = json_pack("{s:o}", "return", v);
	if (id)
		json_object_set(msg, "id", id);
	fake_send_json(f, msg);
}

void fake_reply_error(struct fake *f, json_t *req, const char *desc)
{
	json_t *msg = json_pack("{s:{s:s, s:s}}", "error", "class", "GenericError", "desc", desc);

	json_object_set(msg, "id", json_object_get(req, "id"));
	fake_send_json(f, msg);
}

void fake_answer(struct fake *f, const char *cmd, const char *value)
{
	json_t *req = fake_expect(f, cmd);

	if (req)
		fake_reply(f, req, value);
	json_decref(req);
}

void fake_event(struct fake *f, const char *name, const char *data)
{
	json_t *ev = json_pack("{s:{s:i, s:i}, s:s}", "timestamp", "seconds", 1, "microseconds", 2,
			       "event", name);

	if (data)
		json_object_set_new(ev, "data", json_loads(data, 0, NULL));
	fake_send_json(f, ev);
}

void fake_greet(struct fake *f)
{
	fake_send(f,
		  "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 0}, "
		  "\"package\": \"ferry 0.1.0\"}, \"capabilities\": []}}\r\n");
	fake_answer(f, "qmp_capabilities", "{}");
}

bool fake_wait_eof(struct fake *f, int ms)
{
	struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
	char buf[4096];

	for (;;) {
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return false;
		ssize_t n = recv(f->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* A client that leaves with replies unread resets the connection. */
		if (n <= 0)
			return n == 0 || errno == ECONNRESET;
	}
}
