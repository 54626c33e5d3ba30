/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ferry board's fixed resources: the one place that says which port
 * and interrupt each built-in device uses, so that the ACPI tables
 * (boot/acpi.c), the devices (devices/) and the machine that creates them
 * (machine/machine.c) agree without including each other.
 */
#ifndef FERRY_MACHINE_BOARD_H
#define FERRY_MACHINE_BOARD_H

#include <stdbool.h>

/*
 * What a device may ask of the board it sits on, so that devices/ needs
 * no VM (machine/machine.c binds these to the VM).  Both may be called
 * from any thread (vCPU threads, a device's own thread).
 */
struct board_ctl {
	/* Set ISA interrupt line @irq (PIC and IOAPIC pin of the same number). */
	int (*irq_line)(void *opaque, unsigned irq, bool level);
	/* End the VM: power-off, debug exit. */
	void (*shutdown)(void *opaque, const char *reason, bool guest, int exit_status);
	/* Reset the whole board as at power-on (done once the vCPUs are parked). */
	void (*reset)(void *opaque, const char *reason);
	void *opaque;
};

/* ACPI fixed hardware (devices/acpi_pm.c) */
#define ACPI_PM_BASE	   0x600
#define ACPI_PM1A_EVT_PORT ACPI_PM_BASE /* PM1_STS, PM1_EN: 2 + 2 bytes */
#define ACPI_PM1_EVT_LEN   4
#define ACPI_PM1A_CNT_PORT (ACPI_PM_BASE + 4) /* PM1_CNT: 2 bytes */
#define ACPI_PM1_CNT_LEN   2
#define ACPI_PM_LEN	   6
#define ACPI_SCI_IRQ	   9
#define ACPI_SLP_TYP_S5	   5 /* \_S5 in the DSDT: soft off */

/* 16550 COM1 (devices/serial.c) */
#define BOARD_COM1_BASE 0x3f8
#define BOARD_COM1_IRQ	4

/* The 8042 keyboard controller's command port: command 0xfe pulses the reset line. */
#define BOARD_KBC_CMD_PORT 0x64
#define BOARD_KBC_RESET	   0xfe

/* The PCI-style reset control register that the FADT names as RESET_REG. */
#define ACPI_RESET_PORT	 0xcf9
#define ACPI_RESET_VALUE 0x06 /* full reset | reset CPU */

#endif
