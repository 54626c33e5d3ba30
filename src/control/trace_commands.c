// SPDX-License-Identifier: GPL-2.0-only
/*
 * trace-event-set-state / trace-event-get-state (QEMU's shape): switch the
 * engine's trace points at run time.  The handlers' opaque is the struct
 * trace (common/trace.h); docs/tracing.md lists the events.
 */
#include "control/trace_commands.h"

#include <errno.h>
#include <fnmatch.h>

#include "common/trace.h"

static const struct qmp_arg set_args[] = {
    {"name", QMP_ARG_STR, 0},
    {"enable", QMP_ARG_BOOL, 0},
    {0},
};

static int qmp_trace_set(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	const char *name = qmp_arg_str(args, "name", "");

	if (!trace_set(opaque, name, qmp_arg_bool(args, "enable", false)))
		return qmp_error_set(qerr, NULL, -EINVAL, "No trace event matches '%s'", name);
	return 0;
}

static const struct qmp_arg get_args[] = {
    {"name", QMP_ARG_STR, 0},
    {0},
};

static int qmp_trace_get(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	const char *name = qmp_arg_str(args, "name", "");
	json_t *list = json_array();

	if (!list)
		return qmp_error_set(qerr, NULL, -ENOMEM, "out of memory");
	for (unsigned e = 0; e < TRACE__COUNT; e++) {
		const char *n = trace_event_name(e);
		if (fnmatch(name, n, 0) != 0)
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "name", n, "state",
						      trace_on(opaque, e) ? "enabled" : "disabled",
						      "vcpu", 0));
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		return qmp_error_set(qerr, NULL, -EINVAL, "No trace event matches '%s'", name);
	}
	*ret = list;
	return 0;
}

const struct qmp_command qmp_trace_commands[] = {
    {"trace-event-set-state", qmp_trace_set, set_args, NULL},
    {"trace-event-get-state", qmp_trace_get, get_args, NULL},
    {0},
};
