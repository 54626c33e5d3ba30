// SPDX-License-Identifier: GPL-2.0-only
#include "qmp_test_client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"

void tc_tmpdir(char *dir, size_t dirlen, char *sock, size_t socklen)
{
	const char *base = getenv("TMPDIR");

	snprintf(dir, dirlen, "%s/ferry-qmp-test.XXXXXX", base && base[0] ? base : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(sock, socklen, "%s/qmp.sock", dir);
}

void tc_rmdir(const char *dir)
{
	char cmd[4200];

	/* Tests create a handful of fixed names; rm -rf keeps failures from leaking dirs. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int tc_connect_fd(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

void tc_open(struct tc *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	c->fd = tc_connect_fd(path);
	assert_true(c->fd >= 0);
}

void tc_close(struct tc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void tc_send_raw(struct tc *c, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

void tc_send(struct tc *c, const char *text)
{
	tc_send_raw(c, text, strlen(text));
}

/* Read more bytes; 0 on timeout, -1 on EOF/error, 1 on data. */
static int tc_fill(struct tc *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int r = poll(&pfd, 1, timeout_ms);

	if (r <= 0)
		return 0;
	if (c->len + 65536 > c->cap) {
		c->cap = c->cap ? c->cap * 2 : 131072;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 1;
}

json_t *tc_recv_timeout(struct tc *c, int timeout_ms)
{
	uint64_t deadline = clock_now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			size_t linelen = (size_t)(nl - c->buf);
			json_error_t jerr;

			assert_true(linelen >= 1);
			assert_int_equal(c->buf[linelen - 1], '\r');
			json_t *msg = json_loadb(c->buf, linelen - 1, 0, &jerr);
			if (!msg)
				fail_msg("server sent invalid JSON: %s: %.*s", jerr.text,
					 (int)linelen, c->buf);
			memmove(c->buf, nl + 1, c->len - linelen - 1);
			c->len -= linelen + 1;
			return msg;
		}
		/* With time up, still take what is already there. */
		uint64_t now = clock_now_ns();
		int wait = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		if (tc_fill(c, wait) <= 0)
			return NULL;
	}
}

json_t *tc_recv(struct tc *c)
{
	json_t *msg = tc_recv_timeout(c, TC_TIMEOUT_MS);
	if (!msg)
		fail_msg("no message from the server");
	return msg;
}

bool tc_wait_eof(struct tc *c, int timeout_ms)
{
	uint64_t deadline = clock_now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		uint64_t now = clock_now_ns();
		if (now >= deadline)
			return false;
		int r = tc_fill(c, (int)((deadline - now) / 1000000) + 1);
		if (r < 0)
			return true;
		c->len = 0; /* not interested in the data */
	}
}

void tc_negotiate(struct tc *c)
{
	json_t *greeting = tc_recv(c);
	assert_non_null(json_object_get(greeting, "QMP"));
	json_decref(greeting);

	json_t *reply = tc_qmp(c, "{'execute': 'qmp_capabilities'}");
	tc_assert_return(reply);
	json_decref(reply);
}

json_t *tc_cmd(struct tc *c, const char *text)
{
	tc_send(c, text);
	return tc_recv(c);
}

void tc_sendq(struct tc *c, const char *text)
{
	size_t len = strlen(text);
	char *s = malloc(len + 2);

	assert_non_null(s);
	for (size_t i = 0; i < len; i++)
		s[i] = text[i] == '\'' ? '"' : text[i];
	s[len] = '\n';
	s[len + 1] = '\0';
	tc_send(c, s);
	free(s);
}

json_t *tc_qmp(struct tc *c, const char *text)
{
	tc_sendq(c, text);
	return tc_recv(c);
}

const char *tc_desc(json_t *msg)
{
	return json_string_value(json_object_get(json_object_get(msg, "error"), "desc"));
}

void tc_assert_return(json_t *msg)
{
	if (!json_object_get(msg, "return")) {
		char *s = json_dumps(msg, 0);
		fail_msg("expected a return, got %s", s);
	}
}

void tc_assert_error(json_t *msg, const char *class, const char *desc_part)
{
	json_t *e = json_object_get(msg, "error");
	char *s = json_dumps(msg, 0);

	const char *got_class = json_string_value(json_object_get(e, "class"));
	const char *desc = json_string_value(json_object_get(e, "desc"));

	if (!e || !got_class || !desc)
		fail_msg("expected an error with class and desc, got %s", s);
	if (strcmp(got_class, class) != 0)
		fail_msg("expected class %s, got %s", class, s);
	if (desc_part && !strstr(desc, desc_part))
		fail_msg("expected desc containing \"%s\", got %s", desc_part, s);
	free(s);
}
