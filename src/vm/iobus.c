// SPDX-License-Identifier: GPL-2.0-only
#include "vm/iobus.h"

#include <errno.h>
#include <stddef.h>

int iobus_register(struct iobus *bus, uint16_t base, uint16_t len, const struct io_ops *ops,
		   void *dev, struct ferr *err)
{
	if (len == 0 || (uint32_t)base + len > 0x10000)
		return ferr_set(err, -EINVAL, "%s: bad port range %#x+%u", ops->name, base, len);
	for (unsigned i = 0; i < bus->n; i++) {
		const struct io_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < base + len)
			return ferr_set(err, -EBUSY, "%s: ports %#x+%u overlap %s", ops->name, base,
					len, r->ops->name);
	}
	if (bus->n == IOBUS_MAX_RANGES)
		return ferr_set(err, -ENOSPC, "%s: too many port ranges", ops->name);
	bus->ranges[bus->n++] = (struct io_range){base, len, ops, dev};
	return 0;
}

static const struct io_range *iobus_find(const struct iobus *bus, uint16_t port)
{
	for (unsigned i = 0; i < bus->n; i++) {
		const struct io_range *r = &bus->ranges[i];
		if (port >= r->base && port - r->base < r->len)
			return r;
	}
	return NULL;
}

uint32_t iobus_in(const struct iobus *bus, uint16_t port, unsigned size)
{
	const struct io_range *r = iobus_find(bus, port);

	if (!r || !r->ops->in)
		return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
	return r->ops->in(r->dev, port, size);
}

void iobus_out(const struct iobus *bus, uint16_t port, unsigned size, uint32_t val)
{
	const struct io_range *r = iobus_find(bus, port);

	if (r && r->ops->out)
		r->ops->out(r->dev, port, size, val);
}
