/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Migration commands (opaque: struct migration).  They turn requests into
 * calls on the migration engine and hold no migration logic themselves.
 */
#ifndef FERRY_CONTROL_MIG_COMMANDS_H
#define FERRY_CONTROL_MIG_COMMANDS_H

#include "control/qmp.h"
#include "migration/migration.h"

struct migration;

extern const struct qmp_command qmp_mig_commands[];

/* Events: MIGRATION {status}, MIGRATION_PASS {pass}; any thread, @s may be NULL. */
enum mig_status;
void qmp_mig_status_event(struct qmp_server *s, enum mig_status status);
void qmp_mig_pass_event(struct qmp_server *s, uint64_t pass);
/* ferry's MIGRATION_* events with {"reason", "detail"}. */
void qmp_mig_note_event(struct qmp_server *s, const char *event, const char *reason,
			const char *detail);

/* MIGRATION_THROTTLE {"cpu-throttle-percentage", "reason", "detail"}: auto-converge. */
void qmp_mig_throttle_event(struct qmp_server *s, unsigned pct, const char *reason,
			    const char *detail);

#endif
