/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ACPI fixed hardware, the part a guest needs to power off and reset:
 *  - PM1a event block (ports in machine/board.h): PM1_STS reads 0 (no
 *    events are ever raised), PM1_EN is kept;
 *  - PM1a control block: SCI_EN always set (there is no SMI handoff);
 *    writing SLP_EN with SLP_TYP = S5 ends ferry with status 0
 *    ("guest-poweroff"); other sleep states are ignored;
 *  - the reset register (0xcf9, the FADT's RESET_REG): a write with bit 2
 *    (reset CPU) set resets the VM in place (machine/machine.h).
 * State: PM1_EN (migrated: "acpi-pm" section, docs/stream-format.md).
 */
#ifndef FERRY_DEVICES_ACPI_PM_H
#define FERRY_DEVICES_ACPI_PM_H

#include <stdint.h>

#include "common/err.h"
#include "devices/device.h"

struct board_ctl;
struct iobus;

struct acpi_pm {
	const struct board_ctl *ctl; /* owned by the machine */
	uint16_t pm1_en;	     /* vCPU threads; a racy read-modify-write is harmless */
};

int acpi_pm_init(struct acpi_pm *pm, const struct board_ctl *ctl, struct iobus *bus,
		 struct ferr *err);
extern const struct device_state_ops acpi_pm_state_ops;
/* As at power-on: PM1_EN clear. */
void acpi_pm_reset(struct acpi_pm *pm);

#endif
