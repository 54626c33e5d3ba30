/* SPDX-License-Identifier: GPL-2.0-only */
/* The listening UNIX socket: claiming its path safely, and giving it back. */
#ifndef FERRY_CONTROL_QMP_SOCKET_H
#define FERRY_CONTROL_QMP_SOCKET_H

#include <sys/types.h>

#include "common/err.h"

/* Identity of the socket file we created, so that we only ever unlink ours. */
struct qmp_sockfile {
	dev_t dev;
	ino_t ino;
};

/*
 * Bind and listen on @path (non-blocking, close-on-exec, mode 0600).  An
 * existing socket file is replaced only if nothing accepts connections on
 * it; any other existing file is left alone and refused.
 */
int qmp_socket_listen(const char *path, int *fd_out, struct qmp_sockfile *file, struct ferr *err);

/* Unlink @path if it is still the socket file described by @file. */
void qmp_socket_unlink(const char *path, const struct qmp_sockfile *file);

#endif
