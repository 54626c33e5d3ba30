// SPDX-License-Identifier: GPL-2.0-only
#include "cli/qmp_client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"

/* Far above anything ferry sends (query-migrate is a few KiB): a peer that is not ferry. */
#define QMP_CONN_MAX_MSG (16u << 20)

static uint64_t deadline_after(int timeout_ms)
{
	return clock_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
}

/*
 * Wait until @deadline for bytes and append them to the buffer.  -ETIMEDOUT
 * without a message (whether that is an error is the caller's call), or
 * -errno with one.  A signal ends the wait (as -ETIMEDOUT) only when
 * @until_signal: waiting for a reply goes on, waiting for events is how a
 * caller sleeps and it may want to act on the signal at once.
 */
static int conn_fill(struct qmp_conn *c, uint64_t deadline, bool until_signal, struct ferr *err)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	for (;;) {
		uint64_t now = clock_now_ns();
		int ms = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
		int r = poll(&pfd, 1, ms);

		if (r > 0)
			break;
		if (r == 0 || (errno == EINTR && until_signal))
			return -ETIMEDOUT;
		if (errno != EINTR)
			return ferr_errno(err, -errno, "control socket %s", c->path);
	}
	if (c->cap - c->len < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 65536;
		char *p = realloc(c->buf, cap);

		if (!p)
			return ferr_set(err, -ENOMEM, "control socket %s: out of memory", c->path);
		c->buf = p;
		c->cap = cap;
	}
	do
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	while (n < 0 && errno == EINTR);
	/* Closing with our request unread resets the connection: the same to us. */
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return ferr_set(err, -ECONNRESET,
				"control socket %s: ferry closed the connection%s", c->path,
				c->len ? " in the middle of a message" : "");
	if (n < 0)
		return ferr_errno(err, -errno, "control socket %s", c->path);
	c->len += (size_t)n;
	return 0;
}

/* The next message (one JSON object per line), waiting until @deadline. */
static int conn_read(struct qmp_conn *c, uint64_t deadline, bool until_signal, json_t **msg,
		     struct ferr *err)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - c->buf) + 1, blank = 0;
			json_error_t jerr;

			while (blank < n && c->buf[blank] && strchr(" \t\r\n", c->buf[blank]))
				blank++;
			json_t *m = blank == n ? NULL : json_loadb(c->buf, n, 0, &jerr);

			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (blank == n) /* an empty line: nothing to parse */
				continue;
			if (!json_is_object(m)) {
				json_decref(m);
				return ferr_set(
				    err, -EPROTO,
				    "control socket %s: ferry sent something other than "
				    "a JSON object (is this a ferry control socket?)",
				    c->path);
			}
			*msg = m;
			return 0;
		}
		if (c->len >= QMP_CONN_MAX_MSG)
			return ferr_set(err, -EMSGSIZE,
					"control socket %s: message longer than %u MiB", c->path,
					QMP_CONN_MAX_MSG >> 20);
		int rc = conn_fill(c, deadline, until_signal, err);
		if (rc)
			return rc;
	}
}

static int conn_send(struct qmp_conn *c, const char *text, size_t len, struct ferr *err)
{
	while (len) {
		ssize_t n = send(c->fd, text, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) /* SO_SNDTIMEO */
			return ferr_set(err, -ETIMEDOUT,
					"control socket %s: ferry is not reading its requests",
					c->path);
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return ferr_set(err, -ECONNRESET,
					"control socket %s: ferry closed the connection", c->path);
		if (n < 0)
			return ferr_errno(err, -errno, "control socket %s", c->path);
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

static int connect_error(const char *path, int e, int timeout_ms, struct ferr *err)
{
	struct stat st;

	switch (e) {
	case ENOENT:
		return ferr_set(err, -e,
				"control socket %s: no such file (is ferry running with "
				"--control %s?)",
				path, path);
	case ECONNREFUSED:
		/* Linux also refuses connections to a file that is not a socket. */
		if (stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			return ferr_set(err, -ENOTSOCK, "control socket %s: not a socket", path);
		return ferr_set(
		    err, -e, "control socket %s: no ferry is listening (connection refused)", path);
	case EAGAIN: /* blocking connect, backlog full until SO_SNDTIMEO */
	case EINPROGRESS:
	case ETIMEDOUT:
		return ferr_set(
		    err, -ETIMEDOUT,
		    "control socket %s: ferry did not accept the connection within %d ms", path,
		    timeout_ms);
	default:
		return ferr_errno(err, -e, "control socket %s", path);
	}
}

/* Greeting: {"QMP": {...}}, or one error line when ferry has too many clients. */
static int conn_greeting(struct qmp_conn *c, struct ferr *err)
{
	json_t *msg = NULL;
	int rc = conn_read(c, deadline_after(c->timeout_ms), false, &msg, err);

	if (rc == -ETIMEDOUT)
		return ferr_set(err, rc,
				"control socket %s: no greeting within %d ms (is this a ferry "
				"control socket?)",
				c->path, c->timeout_ms);
	if (rc)
		return rc;
	json_t *error = json_object_get(msg, "error");
	if (error) {
		const char *desc = json_string_value(json_object_get(error, "desc"));
		rc = ferr_set(err, -ECONNREFUSED,
			      "control socket %s: ferry refused the connection: %s", c->path,
			      desc ? desc : "no reason given");
	} else if (!json_is_object(json_object_get(msg, "QMP"))) {
		rc = ferr_set(err, -EPROTO,
			      "control socket %s: not a QMP greeting (is this a ferry control "
			      "socket?)",
			      c->path);
	}
	json_decref(msg);
	return rc;
}

int qmp_conn_open(struct qmp_conn *c, const char *path, int timeout_ms, struct ferr *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (strlen(path) >= sizeof(sa.sun_path))
		return ferr_set(err, -ENAMETOOLONG, "control socket %s: path longer than %zu bytes",
				path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->events = json_array();
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c->events || c->fd < 0) {
		rc = c->events ? ferr_errno(err, -errno, "control socket %s: socket", path)
			       : ferr_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	/*
	 * A blocking connect to a UNIX socket only waits while the listener's
	 * backlog is full; SO_SNDTIMEO bounds that wait, and later sends.
	 */
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EISCONN) /* an interrupted connect completed meanwhile */
			break;
		rc = connect_error(path, errno, timeout_ms, err);
		goto fail;
	}
	rc = conn_greeting(c, err);
	if (rc)
		goto fail;
	rc = qmp_conn_execute(c, "qmp_capabilities", NULL, NULL, err);
	if (rc == -EREMOTEIO)
		ferr_prefix(err, "control socket %s: qmp_capabilities: ", path);
	if (rc)
		goto fail;
	return 0;
fail:
	qmp_conn_close(c);
	return rc;
}

void qmp_conn_close(struct qmp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	json_decref(c->events);
	c->events = NULL;
}

/* Match a message to the request @id: 1 ours, 0 not a reply to it. */
static int conn_is_reply(json_t *msg, json_int_t id)
{
	json_t *rid = json_object_get(msg, "id");

	if (json_object_get(msg, "event"))
		return 0;
	/*
	 * One request at a time: a reply without an id (ferry could not parse
	 * the request far enough to see it) is ours too.  One with another id
	 * answers an earlier request whose wait timed out: skip it.
	 */
	return !rid || (json_is_integer(rid) && json_integer_value(rid) == id);
}

int qmp_conn_execute(struct qmp_conn *c, const char *cmd, json_t *args, json_t **ret,
		     struct ferr *err)
{
	json_int_t id = ++c->next_id;
	json_t *req = json_pack("{s:s, s:I}", "execute", cmd, "id", id);
	json_t *msg = NULL;
	char *text;
	int rc;

	if (ret)
		*ret = NULL;
	if (req && args)
		json_object_set(req, "arguments", args);
	json_decref(args);
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	size_t len = text ? strlen(text) : 0;
	char *line = text ? realloc(text, len + 1) : NULL;
	if (!line) {
		free(text);
		return ferr_set(err, -ENOMEM, "out of memory");
	}
	line[len] = '\n'; /* one request, one line, one write */
	rc = conn_send(c, line, len + 1, err);
	free(line);
	if (rc)
		return rc;

	uint64_t deadline = deadline_after(c->timeout_ms);
	for (;;) {
		rc = conn_read(c, deadline, false, &msg, err);
		if (rc == -ETIMEDOUT)
			return ferr_set(err, rc, "control socket %s: no reply to '%s' within %d ms",
					c->path, cmd, c->timeout_ms);
		if (rc)
			return rc;
		if (json_object_get(msg, "event")) {
			json_array_append_new(c->events, msg);
			continue;
		}
		if (conn_is_reply(msg, id))
			break;
		json_decref(msg);
	}

	json_t *error = json_object_get(msg, "error");
	json_t *value = json_object_get(msg, "return");
	if (error) {
		const char *desc = json_string_value(json_object_get(error, "desc"));
		rc = ferr_set(err, -EREMOTEIO, "%s", desc ? desc : "failed, no reason given");
	} else if (!value) {
		rc = ferr_set(err, -EPROTO,
			      "control socket %s: reply to '%s' has neither 'return' nor 'error'",
			      c->path, cmd);
	} else if (ret) {
		*ret = json_incref(value);
	}
	json_decref(msg);
	return rc;
}

int qmp_conn_next_event(struct qmp_conn *c, int timeout_ms, json_t **ev, struct ferr *err)
{
	uint64_t deadline = deadline_after(timeout_ms);
	json_t *msg;
	int rc;

	*ev = NULL;
	for (;;) {
		if (json_array_size(c->events)) {
			*ev = json_incref(json_array_get(c->events, 0));
			json_array_remove(c->events, 0);
			return 0;
		}
		rc = conn_read(c, deadline, true, &msg, err);
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc)
			return rc;
		if (json_object_get(msg, "event"))
			json_array_append_new(c->events, msg);
		else
			json_decref(msg); /* a late reply nobody waits for any more */
	}
}
