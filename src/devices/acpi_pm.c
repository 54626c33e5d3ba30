// SPDX-License-Identifier: GPL-2.0-only
#include "devices/acpi_pm.h"

#include <errno.h>

#include "machine/board.h"
#include "vm/iobus.h"
#include "vm/state_parse.h"

#define PM1_CNT_SCI_EN	   0x0001
#define PM1_CNT_SLP_EN	   0x2000
#define PM1_CNT_SLP_TYP(v) (((v) >> 10) & 7)
#define RESET_CPU	   0x04

static uint32_t acpi_pm_in(void *dev, uint16_t port, unsigned size)
{
	struct acpi_pm *pm = dev;
	uint32_t v = 0;

	switch (port - ACPI_PM_BASE) {
	case 0: /* PM1_STS (and PM1_EN in the high half of a dword read) */
		v = (uint32_t)__atomic_load_n(&pm->pm1_en, __ATOMIC_RELAXED) << 16;
		break;
	case 2: /* PM1_EN */
		v = __atomic_load_n(&pm->pm1_en, __ATOMIC_RELAXED);
		break;
	case 4: /* PM1_CNT */
		v = PM1_CNT_SCI_EN;
		break;
	}
	return v & (size == 4 ? 0xffffffffu : size == 2 ? 0xffffu : 0xffu);
}

static void acpi_pm_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	struct acpi_pm *pm = dev;

	switch (port - ACPI_PM_BASE) {
	case 0:
		if (size == 4)
			__atomic_store_n(&pm->pm1_en, (uint16_t)(val >> 16), __ATOMIC_RELAXED);
		break; /* PM1_STS: write-1-to-clear of bits that are never set */
	case 2:
		__atomic_store_n(&pm->pm1_en, (uint16_t)val, __ATOMIC_RELAXED);
		break;
	case 4:
		if ((val & PM1_CNT_SLP_EN) && PM1_CNT_SLP_TYP(val) == ACPI_SLP_TYP_S5)
			pm->ctl->shutdown(pm->ctl->opaque, "guest-poweroff", true, 0);
		break;
	}
}

static const struct io_ops acpi_pm_ops = {
    .name = "acpi-pm",
    .in = acpi_pm_in,
    .out = acpi_pm_out,
};

static uint32_t acpi_reset_in(void *dev, uint16_t port, unsigned size)
{
	return 0;
}

static void acpi_reset_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	struct acpi_pm *pm = dev;

	if (val & RESET_CPU)
		pm->ctl->reset(pm->ctl->opaque, "guest-reset");
}

static const struct io_ops acpi_reset_ops = {
    .name = "reset-control",
    .in = acpi_reset_in,
    .out = acpi_reset_out,
};

static int acpi_pm_save(void *dev, struct sbuf *out, struct ferr *err)
{
	struct acpi_pm *pm = dev;
	uint16_t en = __atomic_load_n(&pm->pm1_en, __ATOMIC_RELAXED);

	if (sbuf_put_section(out, ACPI_PM_STATE_PM1, &en, sizeof(en)))
		return ferr_set(err, -ENOMEM, "acpi-pm: out of memory");
	return 0;
}

static int acpi_pm_load(void *dev, uint32_t version, const void *blob, size_t len, struct ferr *err)
{
	struct acpi_pm *pm = dev;
	uint16_t en;
	int rc = acpi_pm_blob_parse(version, blob, len, &en, err);

	if (!rc)
		__atomic_store_n(&pm->pm1_en, en, __ATOMIC_RELAXED);
	return rc;
}

const struct device_state_ops acpi_pm_state_ops = {
    .version = 1,
    .save = acpi_pm_save,
    .load = acpi_pm_load,
};

void acpi_pm_reset(struct acpi_pm *pm)
{
	__atomic_store_n(&pm->pm1_en, 0, __ATOMIC_RELAXED);
}

int acpi_pm_init(struct acpi_pm *pm, const struct board_ctl *ctl, struct iobus *bus,
		 struct ferr *err)
{
	int rc;

	pm->ctl = ctl;
	pm->pm1_en = 0;
	rc = iobus_register(bus, ACPI_PM_BASE, ACPI_PM_LEN, &acpi_pm_ops, pm, err);
	if (!rc)
		rc = iobus_register(bus, ACPI_RESET_PORT, 1, &acpi_reset_ops, pm, err);
	return rc;
}
