/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ferry board: which devices a VM has and where (machine/board.h),
 * bound to the VM's port bus, interrupt lines and run state, and the
 * kernel loaded onto it.  vm/ knows no concrete device, devices/ know no
 * VM: this is the one place that knows both.
 *
 * Devices on the board: 16550 COM1 (IRQ 4), CMOS RTC, ACPI PM1 and reset
 * register, debugcon, debug-exit, port 0x92; the in-kernel irqchip and PIT
 * belong to the VM.  Migrated device sections: "serial0".
 */
#ifndef FERRY_MACHINE_MACHINE_H
#define FERRY_MACHINE_MACHINE_H

#include "common/err.h"

struct vm;
struct chardev;
struct machine;

struct machine_config {
	struct chardev *serial;	  /* COM1; owned by the caller */
	struct chardev *debugcon; /* port 0xe9; owned by the caller */
	const char *kernel;	  /* NULL: an incoming VM, whose memory comes from a stream */
	const char *initrd;	  /* may be NULL */
	const char *cmdline;	  /* may be NULL */
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
