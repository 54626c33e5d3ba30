// SPDX-License-Identifier: GPL-2.0-only
#include "fake_vm.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

static void fake_vm_event(struct vm *vm, enum vm_event_kind kind, const char *reason, bool guest)
{
	struct vm_event ev = {.kind = kind, .reason = reason, .guest = guest};
	if (vm->listener.event)
		vm->listener.event(vm->listener.opaque, &ev);
}

const char *vm_runstate_name(enum vm_runstate rs)
{
	static const char *const names[VM_RS__COUNT] = {
	    [VM_RS_PRELAUNCH] = "prelaunch",
	    [VM_RS_RUNNING] = "running",
	    [VM_RS_PAUSED] = "paused",
	    [VM_RS_SHUTDOWN] = "shutdown",
	    [VM_RS_INTERNAL_ERROR] = "internal-error",
	    [VM_RS_GUEST_PANICKED] = "guest-panicked",
	};
	return (unsigned)rs < VM_RS__COUNT ? names[rs] : "?";
}

enum vm_runstate vm_runstate(struct vm *vm)
{
	return vm->state;
}

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

int vm_stop(struct vm *vm, struct ferr *err)
{
	vm->stop_calls++;
	if (vm->state != VM_RS_RUNNING)
		return ferr_set(err, -EBUSY, "fake vm_stop: not running");
	vm->state = VM_RS_PAUSED;
	fake_vm_event(vm, VM_EVENT_STOP, NULL, false);
	return 0;
}

int vm_cont(struct vm *vm, struct ferr *err)
{
	vm->cont_calls++;
	if (vm->state != VM_RS_PAUSED)
		return ferr_set(err, -EBUSY, "fake vm_cont: not paused");
	vm->state = VM_RS_RUNNING;
	fake_vm_event(vm, VM_EVENT_RESUME, NULL, false);
	return 0;
}

void vm_request_quit(struct vm *vm, const char *reason, bool guest, int exit_status)
{
	struct pollfd p = {.fd = vm->peek_fd, .events = POLLIN};

	vm->quit_saw_reply = poll(&p, 1, 0) == 1;
	snprintf(vm->quit_reason, sizeof(vm->quit_reason), "%s", reason);
	vm->state = VM_RS_SHUTDOWN;
	atomic_fetch_add(&vm->quit_calls, 1);
	fake_vm_event(vm, VM_EVENT_SHUTDOWN, reason, guest);
}

int vm_pmemsave(struct vm *vm, uint64_t gpa, uint64_t size, const char *path, struct ferr *err)
{
	vm->pmem_gpa = gpa;
	vm->pmem_size = size;
	snprintf(vm->pmem_path, sizeof(vm->pmem_path), "%s", path);
	if (gpa + size > FAKE_VM_MEM)
		return ferr_set(err, -EINVAL, "pmemsave: [0x%llx, +0x%llx) is outside guest memory",
				(unsigned long long)gpa, (unsigned long long)size);
	return 0;
}

int vm_mem_read(struct vm *vm, uint64_t gpa, void *buf, size_t len, struct ferr *err)
{
	if (gpa >= FAKE_VM_MEM || len > FAKE_VM_MEM - gpa)
		return ferr_set(err, -EFAULT, "guest address 0x%llx is outside guest memory",
				(unsigned long long)gpa);
	memcpy(buf, vm->mem + gpa, len);
	return 0;
}

int vm_mem_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len, struct ferr *err)
{
	if (gpa >= FAKE_VM_MEM || len > FAKE_VM_MEM - gpa)
		return ferr_set(err, -EFAULT, "guest address 0x%llx is outside guest memory",
				(unsigned long long)gpa);
	memcpy(vm->mem + gpa, buf, len);
	return 0;
}

int vm_quit_check(struct vm *vm, struct ferr *err)
{
	return 0;
}

enum vm_owner vm_owner(struct vm *vm)
{
	return VM_OWNER_HERE;
}

int vm_check_owner(struct vm *vm, const char *what, struct ferr *err)
{
	return 0;
}
