// SPDX-License-Identifier: GPL-2.0-only
#include "control/events.h"

#include "control/qmp.h"

void qmp_vm_listener(void *opaque, const struct vm_event *ev)
{
	struct qmp_server *s = opaque;

	/* No default: -Wswitch flags a new event kind left unmapped. */
	switch (ev->kind) {
	case VM_EVENT_STOP:
		qmp_server_emit(s, "STOP", NULL);
		break;
	case VM_EVENT_RESUME:
		qmp_server_emit(s, "RESUME", NULL);
		break;
	case VM_EVENT_RESET:
		qmp_server_emit(s, "RESET",
				json_pack("{s:b, s:o}", "guest", ev->guest, "reason",
					  qmp_json_string(ev->reason ? ev->reason : "unknown")));
		break;
	case VM_EVENT_SHUTDOWN:
		qmp_server_emit(s, "SHUTDOWN",
				json_pack("{s:b, s:o}", "guest", ev->guest, "reason",
					  qmp_json_string(ev->reason ? ev->reason : "unknown")));
		break;
	}
}
