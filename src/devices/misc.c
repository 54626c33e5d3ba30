// SPDX-License-Identifier: GPL-2.0-only
#include "devices/misc.h"

#include "devices/chardev.h"
#include "machine/board.h"
#include "vm/iobus.h"

static uint32_t debugcon_in(void *dev, uint16_t port, unsigned size)
{
	return DEBUGCON_PORT; /* QEMU's readback value: lets a guest detect the port */
}

static void debugcon_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	uint8_t c = val;
	chardev_write(dev, &c, 1);
}

static const struct io_ops debugcon_ops = {
    .name = "debugcon",
    .in = debugcon_in,
    .out = debugcon_out,
};

static void debugexit_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	const struct board_ctl *ctl = dev;

	ctl->shutdown(ctl->opaque, "guest-exit", true, (int)(((val << 1) | 1) & 0xff));
}

static const struct io_ops debugexit_ops = {
    .name = "debug-exit",
    .out = debugexit_out,
};

static uint32_t sysctl_a_in(void *dev, uint16_t port, unsigned size)
{
	return 0x02; /* A20 enabled, no reset in progress */
}

static void sysctl_a_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	const struct board_ctl *ctl = dev;

	if (val & 1)
		ctl->reset(ctl->opaque, "guest-reset");
}

static const struct io_ops sysctl_a_ops = {
    .name = "port92",
    .in = sysctl_a_in,
    .out = sysctl_a_out,
};

/*
 * Only the 8042's reset command: Linux falls back on it (reboot=k) when
 * the ACPI reset register did nothing.  The status reads 0 (input buffer
 * empty), so its wait for the controller ends at once; no keyboard is
 * there, and Linux does not probe for one (the FADT says no 8042).
 */
static uint32_t kbc_in(void *dev, uint16_t port, unsigned size)
{
	return 0;
}

static void kbc_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	const struct board_ctl *ctl = dev;

	if ((val & 0xff) == BOARD_KBC_RESET)
		ctl->reset(ctl->opaque, "guest-reset");
}

static const struct io_ops kbc_ops = {
    .name = "kbc-reset",
    .in = kbc_in,
    .out = kbc_out,
};

int misc_devices_init(const struct board_ctl *ctl, struct iobus *bus, struct chardev *debugcon,
		      struct ferr *err)
{
	int rc;

	rc = iobus_register(bus, DEBUGCON_PORT, 1, &debugcon_ops, debugcon, err);
	if (!rc)
		rc = iobus_register(bus, DEBUGEXIT_PORT, 2, &debugexit_ops, (void *)ctl, err);
	if (!rc)
		rc = iobus_register(bus, SYSCTL_A_PORT, 1, &sysctl_a_ops, (void *)ctl, err);
	if (!rc)
		rc = iobus_register(bus, BOARD_KBC_CMD_PORT, 1, &kbc_ops, (void *)ctl, err);
	return rc;
}
