/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Character backends for the serial port and the debug console.
 *
 *   stdio        ferry's standard output; input from standard input when it
 *                is a terminal and ferry runs in its foreground (the terminal
 *                is then in raw mode, restored by chardev_close(); ^C still
 *                ends ferry)
 *   file:PATH    created or truncated; no input
 *   unix:PATH    connect to a listening UNIX stream socket; input from it too
 *   null         discard; no input
 *
 * Writes may come from any vCPU thread; each write() call is atomic with
 * respect to the others (one syscall), which is all a byte stream needs.
 */
#ifndef FERRY_DEVICES_CHARDEV_H
#define FERRY_DEVICES_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <termios.h>

#include "common/err.h"

struct chardev;

struct chardev_ops {
	const char *prefix; /* "file:", "stdio", ... */
	int (*open)(struct chardev *cd, const char *arg, struct ferr *err);
	void (*close)(struct chardev *cd);
};

struct chardev {
	const struct chardev_ops *ops;
	int fd;	   /* -1 for null */
	int in_fd; /* input, or -1; the same as fd for unix: (closed once) */
	bool termios_saved;
	struct termios saved; /* stdio: the terminal's mode before raw */
	char spec[256];
};

/* Parse a BACKEND spec and open it. */
int chardev_open(const char *spec, struct chardev **out, struct ferr *err);

/* Write all of @buf; EINTR (vCPU kicks) is retried.  Errors drop output. */
void chardev_write(struct chardev *cd, const void *buf, size_t len);

void chardev_close(struct chardev *cd);

#endif
