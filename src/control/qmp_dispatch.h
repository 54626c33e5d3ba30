/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * From one parsed request to its reply: request shape checks, capabilities
 * negotiation, command lookup across the registered tables, argument
 * checks, the handler call.  No sockets here.
 */
#ifndef FERRY_CONTROL_QMP_DISPATCH_H
#define FERRY_CONTROL_QMP_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "control/qmp.h"

/* Every registered table with its opaque; read-only once the server runs. */
struct qmp_registry {
	unsigned ntables;
	struct {
		const struct qmp_command *cmds;
		void *opaque;
	} tables[QMP_MAX_TABLES];
};

/* Per-client protocol state. */
struct qmp_session {
	bool negotiated; /* qmp_capabilities succeeded: commands and events allowed */
};

/* Work to run once the reply is on its way (struct qmp_command.after_reply). */
struct qmp_deferred {
	void (*fn)(void *opaque);
	void *opaque;
};

/* Add @cmds; -EEXIST if a name is already taken, -ENOSPC past QMP_MAX_TABLES. */
int qmp_registry_add(struct qmp_registry *reg, const struct qmp_command *cmds, void *opaque,
		     struct ferr *err);

/*
 * Execute @req (any JSON value) for a client in state @sess.  Returns the
 * reply to send (NULL only if out of memory) and fills @after.
 */
json_t *qmp_dispatch(const struct qmp_registry *reg, struct qmp_session *sess, json_t *req,
		     struct qmp_deferred *after);

/* Parse one framed request (@text, @len) and qmp_dispatch() it. */
json_t *qmp_dispatch_text(const struct qmp_registry *reg, struct qmp_session *sess,
			  const char *text, size_t len, struct qmp_deferred *after);

#endif
