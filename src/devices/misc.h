/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The small fixed-function ports of the ferry PC:
 *   0xe9  debug console (QEMU isa-debugcon): bytes out to a backend, reads 0xe9
 *   0xf4  debug exit (QEMU isa-debug-exit): a write of V ends ferry with
 *         status (V << 1) | 1, so one harness reads ferry and QEMU alike
 *   0x92  system control port A: A20 gate (always on); bit 0 resets the VM
 *   0x64  8042 command port, only for its reset command (0xfe): resets the VM;
 *         reads 0 (nothing to wait for)
 * They carry no state worth migrating beyond port 0x92's A20 bit (always on).
 */
#ifndef FERRY_DEVICES_MISC_H
#define FERRY_DEVICES_MISC_H

#include "common/err.h"

struct board_ctl;
struct iobus;
struct chardev;

#define DEBUGCON_PORT  0xe9
#define DEBUGEXIT_PORT 0xf4
#define SYSCTL_A_PORT  0x92

/* @ctl must outlive the devices (the machine owns it). */
int misc_devices_init(const struct board_ctl *ctl, struct iobus *bus, struct chardev *debugcon,
		      struct ferr *err);

#endif
