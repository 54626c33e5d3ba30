/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A small blocking client for ferry's control socket (docs/control-protocol.md):
 * connect, check the greeting, negotiate, then run one command at a time.
 *
 * Events may arrive at any point, also between a request and its reply;
 * they are queued in arrival order and handed out by qmp_conn_next_event().
 * Every wait is bounded: a ferry that stops answering is an error, not a
 * hang.  Messages name the socket ("control socket /x: ...") so that the
 * caller can print them as they are.
 */
#ifndef FERRY_CLI_QMP_CLIENT_H
#define FERRY_CLI_QMP_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

#define QMP_CONN_TIMEOUT_MS 10000 /* a sensible wait for the greeting and for replies */

struct qmp_conn {
	int fd;
	char path[108]; /* for messages (sun_path's size) */
	int timeout_ms; /* longest wait for a message that must come */
	json_int_t next_id;
	char *buf; /* received bytes not yet parsed */
	size_t len, cap;
	json_t *events; /* array: received, not yet taken */
};

/*
 * Connect to @path, read the greeting and negotiate capabilities, each step
 * within @timeout_ms.  On failure @c is left closed.
 */
int qmp_conn_open(struct qmp_conn *c, const char *path, int timeout_ms, struct ferr *err);
void qmp_conn_close(struct qmp_conn *c);

/*
 * Run @cmd with @args (reference stolen; NULL for none) and wait for its
 * reply, queueing events that come first.  0 and the "return" value in
 * *@ret (new reference; may be NULL when @ret is NULL); -EREMOTEIO when
 * ferry refused the command, with its "desc" in @err; -ETIMEDOUT when no
 * reply came within c->timeout_ms (a late one is skipped, so the connection
 * stays usable); another negative errno when the connection failed.
 */
int qmp_conn_execute(struct qmp_conn *c, const char *cmd, json_t *args, json_t **ret,
		     struct ferr *err);

/*
 * The oldest queued event, else wait up to @timeout_ms for one.  0 with
 * *@ev set (new reference), or NULL when none came in time or a signal
 * cut the wait short; a negative errno when the connection failed.
 */
int qmp_conn_next_event(struct qmp_conn *c, int timeout_ms, json_t **ev, struct ferr *err);

#endif
