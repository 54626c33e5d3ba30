/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A dirty-log harvester that runs without a migration: logging on, and
 * every interval a sync plus a rearm of everything found, as migration
 * passes do.  For benchmarks and tests only (control: x-ferry-dirty-log):
 * it shows what dirty tracking costs the guest and that the log sees its
 * writes.  Owned by the control thread; the harvester thread owns the
 * tracker and bitmap while it runs.
 */
#ifndef FERRY_MIGRATION_DIRTY_PROBE_H
#define FERRY_MIGRATION_DIRTY_PROBE_H

#include <stdint.h>

#include "common/err.h"

struct vm;
struct dirty_probe;

struct dirty_probe_stats {
	uint64_t syncs;
	uint64_t dirty_pages; /* summed over syncs */
	uint64_t last_dirty_pages;
	uint64_t sync_ns;
	uint64_t rearm_ns;
};

int dirty_probe_start(struct vm *vm, uint64_t interval_ns, struct dirty_probe **out,
		      struct ferr *err);
/* Stop the thread, turn logging off, return the totals, free. */
void dirty_probe_stop(struct dirty_probe *p, struct dirty_probe_stats *st);
void dirty_probe_stats(struct dirty_probe *p, struct dirty_probe_stats *st);

#endif
