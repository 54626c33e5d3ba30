/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * QMP-shaped control protocol: a JSON command server on a UNIX stream socket.
 *
 * This layer knows nothing about the VM.  Modules hand it tables of
 * commands (struct qmp_command) with an opaque pointer each; the server
 * parses requests, checks arguments against each command's declared
 * argument list, runs the handler and writes the reply.  Anything may
 * broadcast an asynchronous event with qmp_server_emit().  The wire format
 * is described in docs/control-protocol.md.
 *
 * Threads and ownership
 *  - The thread that calls qmp_server_open() (main) owns the server: only
 *    it may call qmp_server_add_commands(), _start(), _stop() and _close().
 *    Command tables are registered before _start() and are read-only after.
 *  - The control thread, started by qmp_server_start(), owns the listening
 *    socket and every client (socket, input and output buffers, negotiation
 *    state).  No other thread touches a client, so client state has no lock.
 *    Every command handler runs on this thread, one at a time; a handler
 *    may block (all clients wait meanwhile).
 *  - The event queue and the stop request are the only state shared across
 *    threads; they sit under the server's mutex.  qmp_server_emit() may be
 *    called from any thread, including from a handler on the control thread,
 *    at any time between qmp_server_open() and qmp_server_close().
 *
 * Typical use (main):
 *	qmp_server_open(path, NULL, NULL, &qmp, err);
 *	cfg.listener = (struct vm_listener){qmp_vm_listener, qmp};
 *	vm_create(&cfg, &vm, err);
 *	qmp_server_add_commands(qmp, qmp_vm_commands, vm, err);
 *	qmp_server_start(qmp, err);
 *	...vm_wait(vm)...
 *	qmp_server_stop(qmp);	 (replies and events reach the clients)
 *	vm_destroy(vm);		 (no emitter left)
 *	qmp_server_close(qmp);
 */
#ifndef FERRY_CONTROL_QMP_H
#define FERRY_CONTROL_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

/* Error classes, named as QEMU names them. */
#define QMP_ERROR_GENERIC	    "GenericError"
#define QMP_ERROR_COMMAND_NOT_FOUND "CommandNotFound"

/* Limits, also stated in docs/control-protocol.md. */
#define QMP_MAX_REQUEST	    (64 * 1024)	  /* bytes in one request */
#define QMP_MAX_CLIENT_OUT  (1024 * 1024) /* unsent bytes queued to one client */
#define QMP_MAX_EVENT_QUEUE (1024 * 1024) /* events not yet handed to clients */
#define QMP_MAX_CLIENTS	    16
#define QMP_MAX_TABLES	    8

/*
 * A failed command: @class is the QMP error class (NULL means
 * QMP_ERROR_GENERIC), @err the operator-readable description.  Handlers
 * usually just pass &qerr->err to the function that fails.
 */
struct qmp_error {
	const char *class;
	struct ferr err;
};

/* Record a failure with an explicit class; returns @code like ferr_set(). */
int qmp_error_set(struct qmp_error *qerr, const char *class, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Declared arguments.  The server checks a request's "arguments" against
 * the command's list before calling the handler: unknown names, wrong JSON
 * types and missing required arguments are refused with QEMU's wording,
 * so handlers read arguments with the qmp_arg_*() accessors below and never
 * validate types themselves.
 */
enum qmp_arg_type {
	QMP_ARG_U64,	/* JSON integer >= 0 (jansson limits it to INT64_MAX) */
	QMP_ARG_I64,	/* JSON integer */
	QMP_ARG_BOOL,	/* true / false */
	QMP_ARG_STR,	/* JSON string */
	QMP_ARG_NUMBER, /* JSON integer or real */
	QMP_ARG_OBJECT, /* JSON object, checked by the handler */
	QMP_ARG_ARRAY,	/* JSON array, checked by the handler */
};

#define QMP_ARG_OPTIONAL 0x1

struct qmp_arg {
	const char *name; /* NULL in the final {0} entry */
	enum qmp_arg_type type;
	unsigned flags; /* QMP_ARG_OPTIONAL */
};

/*
 * Check @args (a JSON object) against @spec (NULL: no arguments accepted).
 * Returns 0, or -EINVAL with @qerr filled.  The server does this for every
 * command; handlers call it themselves only for nested objects.
 */
int qmp_args_check(const json_t *args, const struct qmp_arg *spec, struct qmp_error *qerr);

/*
 * Spec for commands whose arguments come from a table of their own (e.g.
 * migrate-set-parameters): any object passes, the handler checks names.
 */
extern const struct qmp_arg qmp_args_any[];
#define QMP_ARGS_ANY qmp_args_any

/* Accessors for checked arguments: the value, or @dflt when absent. */
bool qmp_arg_present(const json_t *args, const char *name);
uint64_t qmp_arg_u64(const json_t *args, const char *name, uint64_t dflt);
int64_t qmp_arg_i64(const json_t *args, const char *name, int64_t dflt);
bool qmp_arg_bool(const json_t *args, const char *name, bool dflt);
const char *qmp_arg_str(const json_t *args, const char *name, const char *dflt);
double qmp_arg_number(const json_t *args, const char *name, double dflt);
json_t *qmp_arg_json(const json_t *args, const char *name); /* borrowed; NULL if absent */

/*
 * A command handler.  @args is always a JSON object (empty when the request
 * had none) that already passed the command's argument check; it is
 * borrowed.  On success return 0 and optionally set *@ret to a new
 * reference (the server takes it; NULL replies {}).  On failure return a
 * negative errno with @qerr filled; *@ret is ignored.
 */
typedef int qmp_handler_fn(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr);

struct qmp_command {
	const char *name; /* NULL in the final {0} entry */
	qmp_handler_fn *fn;
	const struct qmp_arg *args; /* accepted arguments; NULL: none */
	/*
	 * Optional.  Runs on the control thread after a successful reply has
	 * been queued and offered to the socket, for commands whose effect
	 * must follow their reply ("quit").
	 */
	void (*after_reply)(void *opaque);
};

struct qmp_server;

/*
 * Create the socket at @path and listen on it; register @table (may be
 * NULL) with @opaque.  An existing path is reused only if it is a stale
 * socket nobody listens on.  Clients that connect before
 * qmp_server_start() wait in the backlog.
 */
int qmp_server_open(const char *path, const struct qmp_command *table, void *opaque,
		    struct qmp_server **out, struct ferr *err);

/*
 * Register another module's table, with its own opaque.  Only before
 * qmp_server_start(); a name already registered is refused.
 */
int qmp_server_add_commands(struct qmp_server *s, const struct qmp_command *table, void *opaque,
			    struct ferr *err);

/* Start the control thread. */
int qmp_server_start(struct qmp_server *s, struct ferr *err);

/*
 * Broadcast event @event to every client that has completed capabilities
 * negotiation.  Steals @data (a JSON object, or NULL for an event without
 * data).  Never blocks on a client.  Thread-safe; a NULL @s just drops the
 * event, so producers need not care whether a control socket exists.
 * Events emitted while a command runs reach its client before its reply.
 */
void qmp_server_emit(struct qmp_server *s, const char *event, json_t *data);

/*
 * Stop the control thread: queued events are handed out, pending output is
 * flushed for at most ~100 ms, then every client is disconnected.  A
 * command running meanwhile completes and its reply is part of that flush;
 * input not yet processed is dropped.  Events emitted afterwards are
 * discarded.  Idempotent; must not be called from a command handler.
 */
void qmp_server_stop(struct qmp_server *s);

/*
 * Stop if needed, close the socket, unlink its path, free @s.  Only once
 * nothing can call qmp_server_emit() on @s any more (after vm_destroy()).
 */
void qmp_server_close(struct qmp_server *s);

/* {"qemu": {"major": .., "minor": .., "micro": ..}, "package": "ferry X.Y.Z"} */
json_t *qmp_version(void);

/*
 * json_string() that never fails on bytes that are not UTF-8 (file names,
 * VM names from the command line): such bytes become '?'.
 */
json_t *qmp_json_string(const char *s);

#endif
