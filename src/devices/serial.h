/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef FERRY_DEVICES_SERIAL_H
#define FERRY_DEVICES_SERIAL_H

#include <stdint.h>

#include "common/err.h"
#include "devices/device.h"

struct vm;
struct iobus;
struct chardev;

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ	 4

struct serial;

/* A 16550A UART at @base raising @irq, transmitting to @out and receiving its input. */
int serial_create(struct vm *vm, struct iobus *bus, uint16_t base, unsigned irq,
		  struct chardev *out, struct serial **ret, struct ferr *err);
void serial_destroy(struct serial *s);

/* Registers (the receive FIFO's content is not carried: see serial.c). */
extern const struct device_state_ops serial_state_ops;

#endif
