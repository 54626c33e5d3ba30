/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ferry board: which devices a VM has and where (machine/board.h),
 * bound to the VM's port bus, interrupt lines and run state, and the
 * kernel loaded onto it.  vm/ knows no concrete device, devices/ know no
 * VM: this is the one place that knows both.
 *
 * Devices on the board: 16550 COM1 (IRQ 4), CMOS RTC, ACPI PM1 and reset
 * register, debugcon, debug-exit, port 0x92, the 8042's reset command; the
 * in-kernel irqchip and PIT belong to the VM.  Migrated device sections:
 * "serial0", "acpi-pm", "rtc0" (docs/stream-format.md).
 *
 * Reset (the reset register 0xcf9 that the FADT names, port 0x92 bit 0,
 * the 8042's command 0xfe, or KVM's reset system event): once every vCPU
 * is parked, the vCPUs (registers, MSRs, LAPIC, pending events, MP state:
 * the APs wait for INIT/SIPI again) and the in-kernel PICs, IOAPIC, PIT,
 * kvmclock and TSCs get the state they had at power-on (captured by
 * machine_create before anything ran); the UART and the ACPI PM block are
 * reset; the RTC keeps its time and CMOS RAM (battery-backed); and the
 * kernel, initrd and command line are read from their files and loaded
 * again, with fresh boot data and ACPI tables.  Other RAM keeps its
 * contents, as on a PC.  An incoming VM reloads the --kernel it was given
 * (QEMU's convention: the destination has the source's command line);
 * without one, a reset ends it with status 0.
 */
#ifndef FERRY_MACHINE_MACHINE_H
#define FERRY_MACHINE_MACHINE_H

#include <stdbool.h>

#include "common/err.h"

struct vm;
struct chardev;
struct machine;

struct machine_config {
	struct chardev *serial;	  /* COM1; owned by the caller */
	struct chardev *debugcon; /* port 0xe9; owned by the caller */
	const char *kernel;	  /* may be NULL for an incoming VM */
	const char *initrd;	  /* may be NULL */
	const char *cmdline;	  /* may be NULL */
	bool incoming; /* memory comes from a stream: @kernel is loaded at a reset only */
};

/* Create the board's devices on @vm (not started yet) and load the kernel. */
int machine_create(struct vm *vm, const struct machine_config *cfg, struct machine **out,
		   struct ferr *err);

/*
 * Stop the devices' own threads, destroy @vm (which joins its vCPUs, the
 * devices' other users), then free the devices.  @m may be NULL (then only
 * @vm is destroyed).
 */
void machine_destroy(struct machine *m, struct vm *vm);

#endif
