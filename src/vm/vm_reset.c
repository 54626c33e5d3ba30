// SPDX-License-Identifier: GPL-2.0-only
/*
 * Resetting a running VM in place.  A device asks (vm_request_reset) from
 * whichever thread noticed the guest's request, usually a vCPU in the
 * middle of an I/O exit, which cannot wait for its own parking; the
 * thread in vm_wait() does the work: park every vCPU, let the board's
 * handler put everything back as at boot, then let the vCPUs run again.
 * What the handler does is the board's business (machine/machine.c).
 */
#include <stdio.h>

#include "vm/vm_priv.h"

void vm_set_reset_handler(struct vm *vm, const struct vm_reset_handler *h)
{
	pthread_mutex_lock(&vm->lock);
	vm->reset = *h;
	pthread_mutex_unlock(&vm->lock);
}

void vm_request_reset(struct vm *vm, const char *reason)
{
	pthread_mutex_lock(&vm->lock);
	/*
	 * While a reset runs (from before the vCPUs park until they run again)
	 * a request can only come from the guest being reset, still running
	 * its fallbacks (Linux tries the 8042 15 ms after the ACPI register):
	 * it is the same reset.
	 */
	if (!vm->quit && vm->owner != VM_OWNER_AWAY && !vm->resetting) {
		vm->reset_req = true;
		vm->reset_reason = reason;
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
}

/*
 * Pages the handler wrote (the kernel reloaded) bypassed dirty tracking:
 * a migration in its pre-copy passes must send all of RAM again.
 */
static void vm_reset_mark_ram(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++)
		vm_mark_self_dirty(vm, vm->mem.regions[i].gpa, vm->mem.regions[i].size);
}

void vm_reset_if_requested(struct vm *vm)
{
	struct vm_event ev = {.kind = VM_EVENT_RESET, .guest = true};
	struct ferr err = FERR_INIT;
	bool running;
	int rc;

	if (vm->owner != VM_OWNER_HERE ||
	    (vm->state != VM_RS_RUNNING && vm->state != VM_RS_PAUSED)) {
		/* a migration holds the guest: vm_release() says when that ends */
		pthread_cond_wait(&vm->cond, &vm->lock);
		return;
	}
	ev.reason = vm->reset_reason ? vm->reset_reason : "guest-reset";
	vm->reset_req = false;
	vm->resetting = true;
	running = vm->state == VM_RS_RUNNING;
	if (running)
		vm_pause_locked(vm);
	if (vm->quit) {
		vm->resetting = false;
		pthread_cond_broadcast(&vm->cond);
		return;
	}
	pthread_mutex_unlock(&vm->lock);
	rc = vm->reset.reset ? vm->reset.reset(vm->reset.opaque, &err) : 1;
	if (rc == 0) {
		vm_reset_mark_ram(vm);
		vm_emit(vm, &ev);
	}
	pthread_mutex_lock(&vm->lock);
	vm->resetting = false;
	if (running)
		vm->pause_req = false;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (rc < 0) {
		char report[sizeof(err.msg) + 64];
		snprintf(report, sizeof(report), "resetting the VM failed: %s", err.msg);
		vm_fail(vm, VM_RS_INTERNAL_ERROR, "reset-failed", report);
	} else if (rc > 0) {
		vm_request_quit(vm, ev.reason, true, 0); /* a board that cannot reset */
	}
	pthread_mutex_lock(&vm->lock);
}
