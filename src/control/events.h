/* SPDX-License-Identifier: GPL-2.0-only */
/* VM run-state changes as QMP events. */
#ifndef FERRY_CONTROL_EVENTS_H
#define FERRY_CONTROL_EVENTS_H

#include "vm/vm.h"

/*
 * A vm_listener: emits STOP, RESUME and SHUTDOWN on the struct qmp_server
 * @opaque (NULL: events are dropped).  Any thread.
 *   cfg.listener = (struct vm_listener){qmp_vm_listener, qmp};
 */
void qmp_vm_listener(void *opaque, const struct vm_event *ev);

#endif
