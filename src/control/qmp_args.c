// SPDX-License-Identifier: GPL-2.0-only
/* Declarative argument checking and accessors for command handlers. */
#include "control/qmp.h"

#include <errno.h>
#include <string.h>

static const struct qmp_arg *qmp_arg_find(const struct qmp_arg *spec, const char *name)
{
	for (; spec && spec->name; spec++)
		if (strcmp(spec->name, name) == 0)
			return spec;
	return NULL;
}

/* The word QEMU uses after "expected: ". */
static const char *qmp_arg_type_name(enum qmp_arg_type type)
{
	static const char *const names[] = {
	    [QMP_ARG_U64] = "integer", [QMP_ARG_I64] = "integer",   [QMP_ARG_BOOL] = "boolean",
	    [QMP_ARG_STR] = "string",  [QMP_ARG_NUMBER] = "number", [QMP_ARG_OBJECT] = "object",
	    [QMP_ARG_ARRAY] = "array",
	};
	if ((unsigned)type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	return "?";
}

static bool qmp_arg_type_ok(enum qmp_arg_type type, const json_t *v)
{
	switch (type) {
	case QMP_ARG_U64:
	case QMP_ARG_I64:
		return json_is_integer(v);
	case QMP_ARG_BOOL:
		return json_is_boolean(v);
	case QMP_ARG_STR:
		return json_is_string(v);
	case QMP_ARG_NUMBER:
		return json_is_number(v);
	case QMP_ARG_OBJECT:
		return json_is_object(v);
	case QMP_ARG_ARRAY:
		return json_is_array(v);
	}
	return false;
}

const struct qmp_arg qmp_args_any[] = {{0}};

int qmp_args_check(const json_t *args, const struct qmp_arg *spec, struct qmp_error *qerr)
{
	if (!json_is_object(args))
		return qmp_error_set(qerr, NULL, -EINVAL, "Arguments must be a JSON object");
	if (spec == qmp_args_any)
		return 0;

	/* The iterator API wants a non-const object; iterating does not modify it. */
	json_t *obj = (json_t *)args;
	for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
		const char *key = json_object_iter_key(it);
		json_t *val = json_object_iter_value(it);
		const struct qmp_arg *a = qmp_arg_find(spec, key);
		if (!a)
			return qmp_error_set(qerr, NULL, -EINVAL, "Parameter '%s' is unexpected",
					     key);
		if (!qmp_arg_type_ok(a->type, val))
			return qmp_error_set(qerr, NULL, -EINVAL,
					     "Invalid parameter type for '%s', expected: %s", key,
					     qmp_arg_type_name(a->type));
		if (a->type == QMP_ARG_U64 && json_integer_value(val) < 0)
			return qmp_error_set(qerr, NULL, -EINVAL,
					     "Parameter '%s' expects a non-negative integer", key);
	}
	for (; spec && spec->name; spec++) {
		if (!(spec->flags & QMP_ARG_OPTIONAL) && !json_object_get(args, spec->name))
			return qmp_error_set(qerr, NULL, -EINVAL, "Parameter '%s' is missing",
					     spec->name);
	}
	return 0;
}

bool qmp_arg_present(const json_t *args, const char *name)
{
	return json_object_get(args, name) != NULL;
}

uint64_t qmp_arg_u64(const json_t *args, const char *name, uint64_t dflt)
{
	json_t *v = json_object_get(args, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return dflt;
	return (uint64_t)json_integer_value(v);
}

int64_t qmp_arg_i64(const json_t *args, const char *name, int64_t dflt)
{
	json_t *v = json_object_get(args, name);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool qmp_arg_bool(const json_t *args, const char *name, bool dflt)
{
	json_t *v = json_object_get(args, name);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

const char *qmp_arg_str(const json_t *args, const char *name, const char *dflt)
{
	json_t *v = json_object_get(args, name);
	return json_is_string(v) ? json_string_value(v) : dflt;
}

double qmp_arg_number(const json_t *args, const char *name, double dflt)
{
	json_t *v = json_object_get(args, name);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

json_t *qmp_arg_json(const json_t *args, const char *name)
{
	return json_object_get(args, name);
}
