/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ferry's VM commands: run state, memory, identity.  Register with the VM
 * as opaque, e.g. qmp_server_add_commands(qmp, qmp_vm_commands, vm, err).
 * Other modules (migration) keep their own tables next to their code.
 */
#ifndef FERRY_CONTROL_COMMANDS_H
#define FERRY_CONTROL_COMMANDS_H

#include "control/qmp.h"

extern const struct qmp_command qmp_vm_commands[];

#endif
