/* SPDX-License-Identifier: GPL-2.0-only */
/* The trace control commands; register with a struct trace as opaque. */
#ifndef FERRY_CONTROL_TRACE_COMMANDS_H
#define FERRY_CONTROL_TRACE_COMMANDS_H

#include "control/qmp.h"

extern const struct qmp_command qmp_trace_commands[];

#endif
