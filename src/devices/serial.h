/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef FERRY_DEVICES_SERIAL_H
#define FERRY_DEVICES_SERIAL_H

#include <stdint.h>

#include "common/err.h"
#include "devices/device.h"

struct board_ctl;
struct iobus;
struct chardev;

struct serial;

/* A 16550A UART at @base raising @irq, transmitting to @out and receiving its input. */
int serial_create(const struct board_ctl *ctl, struct iobus *bus, uint16_t base, unsigned irq,
		  struct chardev *out, struct serial **ret, struct ferr *err);
/* As at power-on: registers, an empty receive FIFO, the interrupt line low. */
void serial_reset(struct serial *s);
/* Stop the receive thread: after this the UART raises no interrupt on its own. */
void serial_stop_input(struct serial *s);
void serial_destroy(struct serial *s);

/* Registers (the receive FIFO's content is not carried: see serial.c). */
extern const struct device_state_ops serial_state_ops;

#endif
