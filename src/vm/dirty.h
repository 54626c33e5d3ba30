/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Dirty page tracking, behind an ops table so that KVM's dirty ring can sit
 * beside the dirty log.
 *
 * Pages are numbered in "RAM order": page i is at byte i * 4096 of the
 * host mapping of guest RAM (struct gmem), whatever its guest-physical
 * address, so one bitmap covers all memory slots.
 *
 * Protocol (what the migration engine does):
 *   start   logging on; every page counts as dirty until first rearmed
 *   sync    OR every page written since the previous sync into @dirty
 *   rearm   just before sending pages, re-protect them so that a guest
 *           write after this point shows up in a later sync
 *   stop    logging off (after switchover, outside the downtime window)
 * The invariant: a page whose contents the guest changes after it was
 * rearmed is reported by a later sync.  Only the owning thread calls these.
 */
#ifndef FERRY_MIGRATION_DIRTY_H
#define FERRY_MIGRATION_DIRTY_H

#include <stdint.h>

#include "common/bitmap.h"
#include "common/err.h"

struct vm;
struct dirty_tracker;

struct dirty_ops {
	const char *name;
	int (*start)(struct dirty_tracker *t, struct ferr *err);
	int (*sync)(struct dirty_tracker *t, struct bitmap *dirty, struct ferr *err);
	int (*rearm)(struct dirty_tracker *t, const struct bitmap *pages, uint64_t first,
		     uint64_t npages, struct ferr *err);
	void (*stop)(struct dirty_tracker *t);
};

struct dirty_tracker {
	const struct dirty_ops *ops;
	struct vm *vm;
	uint64_t npages;     /* pages of guest RAM */
	bool manual_protect; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 in use */
	bool initially_set;  /* ... with KVM_DIRTY_LOG_INITIALLY_SET */
	uint64_t *scratch;   /* one slot's worth of dirty-log bits */
	/* statistics, owner thread only */
	uint64_t syncs;
	uint64_t sync_ns;  /* time spent in sync */
	uint64_t rearm_ns; /* time spent in rearm */
};

/* The KVM dirty log tracker (KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG). */
int dirty_tracker_init(struct dirty_tracker *t, struct vm *vm, struct ferr *err);
void dirty_tracker_destroy(struct dirty_tracker *t);

#endif
