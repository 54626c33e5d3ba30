/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Port I/O dispatch.  Devices register port ranges with an ops table;
 * vCPU threads dispatch KVM_EXIT_IO through it.  Registration happens
 * before the vCPUs start and the table is read-only afterwards, so the
 * lookup takes no lock; each device serialises its own state.
 */
#ifndef FERRY_VM_IOBUS_H
#define FERRY_VM_IOBUS_H

#include <stdint.h>

#include "common/err.h"

#define IOBUS_MAX_RANGES 16

struct io_ops {
	const char *name;
	/* @size is 1, 2 or 4; @port is absolute. */
	uint32_t (*in)(void *dev, uint16_t port, unsigned size);
	void (*out)(void *dev, uint16_t port, unsigned size, uint32_t val);
};

struct io_range {
	uint16_t base;
	uint16_t len;
	const struct io_ops *ops;
	void *dev;
};

struct iobus {
	unsigned n;
	struct io_range ranges[IOBUS_MAX_RANGES];
};

int iobus_register(struct iobus *bus, uint16_t base, uint16_t len, const struct io_ops *ops,
		   void *dev, struct ferr *err);

/* Unclaimed reads return all ones and unclaimed writes are dropped, as on a PC. */
uint32_t iobus_in(const struct iobus *bus, uint16_t port, unsigned size);
void iobus_out(const struct iobus *bus, uint16_t port, unsigned size, uint32_t val);

#endif
