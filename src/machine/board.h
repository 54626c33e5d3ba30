/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ferry board's fixed resources: the one place that says which port
 * and interrupt each built-in device uses, so that the ACPI tables
 * (boot/acpi.c) and the devices (devices/) agree without including each
 * other.
 */
#ifndef FERRY_MACHINE_BOARD_H
#define FERRY_MACHINE_BOARD_H

/* ACPI fixed hardware (devices/acpi_pm.c) */
#define ACPI_PM_BASE	   0x600
#define ACPI_PM1A_EVT_PORT ACPI_PM_BASE	      /* PM1_STS, PM1_EN: 2 + 2 bytes */
#define ACPI_PM1_EVT_LEN   4
#define ACPI_PM1A_CNT_PORT (ACPI_PM_BASE + 4) /* PM1_CNT: 2 bytes */
#define ACPI_PM1_CNT_LEN   2
#define ACPI_PM_LEN	   6
#define ACPI_SCI_IRQ	   9
#define ACPI_SLP_TYP_S5	   5 /* \_S5 in the DSDT: soft off */

/* The PCI-style reset control register that the FADT names as RESET_REG. */
#define ACPI_RESET_PORT	 0xcf9
#define ACPI_RESET_VALUE 0x06 /* full reset | reset CPU */

#endif
