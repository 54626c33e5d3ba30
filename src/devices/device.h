/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Device state for snapshots and migration.  A device with guest-visible
 * state provides these ops; the VM keeps a table of { name, ops, dev }.
 * A load is refused unless the version is one the device understands.
 */
#ifndef FERRY_DEVICES_DEVICE_H
#define FERRY_DEVICES_DEVICE_H

#include <stdint.h>

#include "common/err.h"
#include "common/sbuf.h"

struct device_state_ops {
	uint32_t version; /* of the blob this code writes */
	int (*save)(void *dev, struct sbuf *out, struct ferr *err);
	int (*load)(void *dev, uint32_t version, const void *blob, size_t len, struct ferr *err);
};

#endif
