// SPDX-License-Identifier: GPL-2.0-only
#include "control/qmp_dispatch.h"

#include <errno.h>
#include <string.h>

#include "control/qmp_message.h"

/*
 * Built-in commands are about the protocol itself, so they live here rather
 * than in a module's table: their opaque is this per-call context.
 */
struct qmp_builtin_ctx {
	const struct qmp_registry *reg;
	struct qmp_session *sess;
};

static int qmp_cmd_capabilities(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct qmp_builtin_ctx *ctx = opaque;
	json_t *enable = qmp_arg_json(args, "enable");

	if (ctx->sess->negotiated)
		return qmp_error_set(
		    qerr, QMP_ERROR_COMMAND_NOT_FOUND, -EINVAL,
		    "Capabilities negotiation is already complete, command ignored");
	/* ferry offers no optional capability (QEMU's "oob"): asking for one fails. */
	if (json_array_size(enable) > 0) {
		json_t *cap = json_array_get(enable, 0);
		if (!json_is_string(cap))
			return qmp_error_set(
			    qerr, NULL, -EINVAL,
			    "Invalid parameter type for 'enable', expected: array of strings");
		return qmp_error_set(qerr, NULL, -EINVAL, "Capability '%s' not available",
				     json_string_value(cap));
	}
	ctx->sess->negotiated = true;
	return 0;
}

static int qmp_add_names(json_t *list, const struct qmp_command *cmds)
{
	for (; cmds && cmds->name; cmds++)
		if (json_array_append_new(list, json_pack("{s:s}", "name", cmds->name)) < 0)
			return -ENOMEM;
	return 0;
}

static int qmp_cmd_query_commands(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr);

static const struct qmp_arg qmp_capabilities_args[] = {
    {"enable", QMP_ARG_ARRAY, QMP_ARG_OPTIONAL},
    {0},
};

static const struct qmp_command qmp_builtins[] = {
    {"qmp_capabilities", qmp_cmd_capabilities, qmp_capabilities_args, NULL},
    {"query-commands", qmp_cmd_query_commands, NULL, NULL},
    {0},
};

static int qmp_cmd_query_commands(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	const struct qmp_builtin_ctx *ctx = opaque;
	json_t *list = json_array();
	int rc = qmp_add_names(list, qmp_builtins);

	for (unsigned t = 0; t < ctx->reg->ntables && rc == 0; t++)
		rc = qmp_add_names(list, ctx->reg->tables[t].cmds);
	if (rc < 0) {
		json_decref(list);
		return qmp_error_set(qerr, NULL, rc, "out of memory");
	}
	*ret = list;
	return 0;
}

static const struct qmp_command *qmp_table_find(const struct qmp_command *cmds, const char *name)
{
	for (; cmds && cmds->name; cmds++)
		if (strcmp(cmds->name, name) == 0)
			return cmds;
	return NULL;
}

/* The command called @name and the opaque to call it with; NULL if none. */
static const struct qmp_command *qmp_lookup(const struct qmp_registry *reg, const char *name,
					    void **opaque, bool *builtin)
{
	const struct qmp_command *cmd = qmp_table_find(qmp_builtins, name);

	*builtin = cmd != NULL;
	for (unsigned t = 0; !cmd && t < reg->ntables; t++) {
		cmd = qmp_table_find(reg->tables[t].cmds, name);
		*opaque = reg->tables[t].opaque;
	}
	return cmd;
}

int qmp_registry_add(struct qmp_registry *reg, const struct qmp_command *cmds, void *opaque,
		     struct ferr *err)
{
	if (!cmds)
		return 0;
	if (reg->ntables == QMP_MAX_TABLES)
		return ferr_set(err, -ENOSPC, "too many QMP command tables (max %d)",
				QMP_MAX_TABLES);
	for (const struct qmp_command *c = cmds; c->name; c++) {
		void *unused;
		bool builtin;

		if (!c->name[0] || !c->fn)
			return ferr_set(err, -EINVAL, "QMP command '%s' has no name or no handler",
					c->name);
		if (qmp_lookup(reg, c->name, &unused, &builtin) ||
		    qmp_table_find(cmds, c->name) != c)
			return ferr_set(err, -EEXIST, "QMP command '%s' is registered twice",
					c->name);
	}
	reg->tables[reg->ntables].cmds = cmds;
	reg->tables[reg->ntables].opaque = opaque;
	reg->ntables++;
	return 0;
}

/* QEMU's checks on the request object itself, with QEMU's wording. */
static int qmp_check_request(json_t *req, struct qmp_error *qerr)
{
	if (!json_is_object(req))
		return qmp_error_set(qerr, NULL, -EINVAL, "QMP input must be a JSON object");
	for (void *it = json_object_iter(req); it; it = json_object_iter_next(req, it)) {
		const char *key = json_object_iter_key(it);
		json_t *val = json_object_iter_value(it);

		if (strcmp(key, "execute") == 0) {
			if (!json_is_string(val))
				return qmp_error_set(qerr, NULL, -EINVAL,
						     "QMP input member 'execute' must be a string");
		} else if (strcmp(key, "arguments") == 0) {
			if (!json_is_object(val))
				return qmp_error_set(
				    qerr, NULL, -EINVAL,
				    "QMP input member 'arguments' must be an object");
		} else if (strcmp(key, "id") != 0) {
			return qmp_error_set(qerr, NULL, -EINVAL,
					     "QMP input member '%s' is unexpected", key);
		}
	}
	if (!json_object_get(req, "execute"))
		return qmp_error_set(qerr, NULL, -EINVAL, "QMP input lacks member 'execute'");
	return 0;
}

static json_t *qmp_failure_reply(const struct qmp_error *qerr, int code, json_t *id)
{
	const char *desc = qerr->err.msg[0] ? qerr->err.msg : strerror(code < 0 ? -code : EIO);
	return qmp_error_reply(qerr->class, desc, id);
}

json_t *qmp_dispatch(const struct qmp_registry *reg, struct qmp_session *sess, json_t *req,
		     struct qmp_deferred *after)
{
	struct qmp_error qerr = {NULL, FERR_INIT};
	json_t *id = json_object_get(req, "id"); /* NULL for non-objects */
	void *opaque = NULL;
	bool builtin;
	int ret;

	after->fn = NULL;
	after->opaque = NULL;

	ret = qmp_check_request(req, &qerr);
	if (ret < 0)
		return qmp_failure_reply(&qerr, ret, id);

	const char *name = json_string_value(json_object_get(req, "execute"));
	const struct qmp_command *cmd = qmp_lookup(reg, name, &opaque, &builtin);

	/* Before negotiation nothing else exists, whatever the name. */
	if (!sess->negotiated && strcmp(name, "qmp_capabilities") != 0)
		return qmp_error_reply(QMP_ERROR_COMMAND_NOT_FOUND,
				       "Expecting capabilities negotiation with 'qmp_capabilities'",
				       id);
	if (!cmd) {
		qmp_error_set(&qerr, QMP_ERROR_COMMAND_NOT_FOUND, -ENOENT,
			      "The command %s has not been found", name);
		return qmp_failure_reply(&qerr, -ENOENT, id);
	}

	json_t *args = json_object_get(req, "arguments");
	args = args ? json_incref(args) : json_object();
	if (!args)
		return NULL;

	struct qmp_builtin_ctx ctx = {reg, sess};
	json_t *result = NULL;

	ret = qmp_args_check(args, cmd->args, &qerr);
	if (ret == 0)
		ret = cmd->fn(builtin ? &ctx : opaque, args, &result, &qerr);
	json_decref(args);

	if (ret < 0) {
		json_decref(result); /* a handler that set it before failing */
		return qmp_failure_reply(&qerr, ret, id);
	}
	if (cmd->after_reply) {
		after->fn = cmd->after_reply;
		after->opaque = opaque;
	}
	return qmp_return_reply(result, id);
}

json_t *qmp_dispatch_text(const struct qmp_registry *reg, struct qmp_session *sess,
			  const char *text, size_t len, struct qmp_deferred *after)
{
	json_error_t jerr;

	after->fn = NULL;
	after->opaque = NULL;

	/*
	 * The framer hands over exactly one value, so no EOF-check games:
	 * anything after it is an error.  Duplicate keys are refused so that
	 * {"execute": "stop", "execute": "cont"} cannot mean either.
	 */
	json_t *req = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		char desc[FERR_MSG_MAX];
		snprintf(desc, sizeof(desc), "JSON parse error, %s (at byte %d)", jerr.text,
			 jerr.position);
		return qmp_error_reply(QMP_ERROR_GENERIC, desc, NULL);
	}
	json_t *reply = qmp_dispatch(reg, sess, req, after);
	json_decref(req);
	return reply;
}
