// SPDX-License-Identifier: GPL-2.0-only
/* The names of run states and owners: no KVM here, so that fakes of the VM share them. */
#include "vm/vm.h"

static const char *const vm_runstate_names[VM_RS__COUNT] = {
    [VM_RS_PRELAUNCH] = "prelaunch",
    [VM_RS_INMIGRATE] = "inmigrate",
    [VM_RS_RUNNING] = "running",
    [VM_RS_PAUSED] = "paused",
    [VM_RS_SHUTDOWN] = "shutdown",
    [VM_RS_INTERNAL_ERROR] = "internal-error",
    [VM_RS_GUEST_PANICKED] = "guest-panicked",
};

const char *vm_runstate_name(enum vm_runstate rs)
{
	return rs < VM_RS__COUNT ? vm_runstate_names[rs] : "unknown";
}

static const char *const vm_owner_names[] = {
    [VM_OWNER_HERE] = "here",
    [VM_OWNER_HANDING_OVER] = "handing-over",
    [VM_OWNER_AWAY] = "away",
};

const char *vm_owner_name(enum vm_owner o)
{
	return o <= VM_OWNER_AWAY ? vm_owner_names[o] : "unknown";
}
