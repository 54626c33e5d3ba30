/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The migration contract of a device (the VM core keeps the same one for
 * its vCPUs and its own state: vm/state.h, "sections").  A device with
 * guest-visible state provides these ops; the VM keeps a table of
 * { name, ops, dev }.  A load is refused unless the version is one the
 * device understands.
 *
 * Order on the source, inside the downtime window: quiesce every section,
 * then save each.  On the destination: load each as it arrives (any
 * order), then, once every section has arrived, post_load each, before
 * the guest runs.  If the switchover is rolled back, resume undoes
 * quiesce on the source.
 */
#ifndef FERRY_DEVICES_DEVICE_H
#define FERRY_DEVICES_DEVICE_H

#include <stdint.h>

#include "common/err.h"
#include "common/sbuf.h"

struct device_state_ops {
	uint32_t version; /* of the blob this code writes */
	/* Optional: take no new work; finish in-flight work or record it in the state. */
	int (*quiesce)(void *dev, struct ferr *err);
	int (*save)(void *dev, struct sbuf *out, struct ferr *err);
	int (*load)(void *dev, uint32_t version, const void *blob, size_t len, struct ferr *err);
	/* Optional: every section is loaded: re-arm notifications, kick pending work. */
	int (*post_load)(void *dev, struct ferr *err);
	/* Optional: the hand-over did not happen: take work again (after quiesce). */
	void (*resume)(void *dev);
};

#endif
