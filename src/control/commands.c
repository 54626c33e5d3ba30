// SPDX-License-Identifier: GPL-2.0-only
/* The VM commands; each handler's opaque is the struct vm. */
#include "control/commands.h"

#include <errno.h>
#include <stdint.h>

#include "vm/vm.h"

/* Hand @v to the server as the reply, or fail if building it ran out of memory. */
static int qmp_reply(json_t **ret, json_t *v, struct qmp_error *qerr)
{
	if (!v)
		return qmp_error_set(qerr, NULL, -ENOMEM, "out of memory");
	*ret = v;
	return 0;
}

static int qmp_query_status(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	enum vm_runstate rs = vm_runstate(opaque);
	/* QEMU's name for a source whose guest has moved on. */
	const char *name = rs == VM_RS_PAUSED && vm_owner(opaque) == VM_OWNER_AWAY
			       ? "postmigrate"
			       : vm_runstate_name(rs);

	/* "singlestep" is always false: ferry has no TCG; kept for QEMU clients. */
	return qmp_reply(ret,
			 json_pack("{s:s, s:b, s:b}", "status", name, "running",
				   rs == VM_RS_RUNNING, "singlestep", 0),
			 qerr);
}

/*
 * QEMU semantics: "stop" on a paused VM and "cont" on a running one are
 * no-ops that succeed.  In states where the request makes no sense (not
 * started yet, ended), fail and say why.
 */
static int qmp_stop(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct vm *vm = opaque;
	enum vm_runstate rs = vm_runstate(vm);

	if (vm_check_owner(vm, "stop", &qerr->err))
		return -EBUSY;
	if (rs == VM_RS_PAUSED)
		return 0;
	if (rs != VM_RS_RUNNING)
		return qmp_error_set(qerr, NULL, -EBUSY, "cannot stop: the VM is in state '%s'",
				     vm_runstate_name(rs));
	int r = vm_stop(vm, &qerr->err);
	if (r == -EBUSY && vm_runstate(vm) == VM_RS_PAUSED) {
		/* Another thread (migration) paused it meanwhile: same outcome. */
		ferr_clear(&qerr->err);
		return 0;
	}
	return r;
}

static int qmp_cont(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct vm *vm = opaque;
	enum vm_runstate rs = vm_runstate(vm);

	if (vm_check_owner(vm, "continue", &qerr->err))
		return -EBUSY;
	if (rs == VM_RS_RUNNING)
		return 0;
	if (rs != VM_RS_PAUSED)
		return qmp_error_set(qerr, NULL, -EBUSY, "cannot continue: the VM is in state '%s'",
				     vm_runstate_name(rs));
	int r = vm_cont(vm, &qerr->err);
	if (r == -EBUSY && vm_runstate(vm) == VM_RS_RUNNING) {
		ferr_clear(&qerr->err);
		return 0;
	}
	return r;
}

/* The reply goes out first: once the VM quits, main() stops the server. */
static int qmp_quit(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	/* Quitting in the middle of a handover would lose the guest on both ends. */
	return vm_quit_check(opaque, &qerr->err);
}

static void qmp_quit_after_reply(void *opaque)
{
	vm_request_quit(opaque, "host-qmp-quit", false, 0);
}

static const struct qmp_arg qmp_pmemsave_args[] = {
    {"val", QMP_ARG_U64, 0},
    {"size", QMP_ARG_U64, 0},
    {"filename", QMP_ARG_STR, 0},
    {0},
};

static int qmp_pmemsave(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return vm_pmemsave(opaque, qmp_arg_u64(args, "val", 0), qmp_arg_u64(args, "size", 0),
			   qmp_arg_str(args, "filename", ""), &qerr->err);
}

static int qmp_query_name(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	const char *name = vm_name(opaque);

	/* As QEMU: {} for an unnamed VM. */
	if (!name || !name[0])
		return 0;
	return qmp_reply(ret, json_pack("{s:o}", "name", qmp_json_string(name)), qerr);
}

static int qmp_query_version(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return qmp_reply(ret, qmp_version(), qerr);
}

static const struct qmp_arg qmp_flip_byte_args[] = {
    {"addr", QMP_ARG_U64, 0},
    {"mask", QMP_ARG_U64, QMP_ARG_OPTIONAL},
    {0},
};

/*
 * Test-only: corrupt one guest byte on purpose, through vm_mem_write() so
 * the page is marked dirty, to check that migration carries (or a checker
 * detects) the change.  Not atomic against a running guest writing the
 * same byte; tests use it on memory the guest only reads.
 */
static int qmp_flip_byte(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct vm *vm = opaque;
	uint64_t addr = qmp_arg_u64(args, "addr", 0);
	uint64_t mask = qmp_arg_u64(args, "mask", 0xff);
	uint8_t old, new;
	int r;

	if (mask > 0xff)
		return qmp_error_set(qerr, NULL, -EINVAL,
				     "Parameter 'mask' expects a value from 0 to 255");
	r = vm_mem_read(vm, addr, &old, 1, &qerr->err);
	if (r < 0)
		return r;
	new = old ^ (uint8_t)mask;
	r = vm_mem_write(vm, addr, &new, 1, &qerr->err);
	if (r < 0)
		return r;
	return qmp_reply(ret, json_pack("{s:i, s:i}", "old", old, "new", new), qerr);
}

const struct qmp_command qmp_vm_commands[] = {
    {"query-status", qmp_query_status, NULL, NULL},
    {"stop", qmp_stop, NULL, NULL},
    {"cont", qmp_cont, NULL, NULL},
    {"quit", qmp_quit, NULL, qmp_quit_after_reply},
    {"pmemsave", qmp_pmemsave, qmp_pmemsave_args, NULL},
    {"query-name", qmp_query_name, NULL, NULL},
    {"query-version", qmp_query_version, NULL, NULL},
    {"x-ferry-flip-byte", qmp_flip_byte, qmp_flip_byte_args, NULL},
    {0},
};
