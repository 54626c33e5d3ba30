// SPDX-License-Identifier: GPL-2.0-only
#include "devices/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int cd_stdio_open(struct chardev *cd, const char *arg, struct ferr *err)
{
	struct termios raw;

	cd->fd = dup(STDOUT_FILENO);
	if (cd->fd < 0)
		return ferr_errno(err, -errno, "stdio backend");
	/* Input only from a terminal ferry owns: never steal a script's stdin. */
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
		return 0;
	if (tcgetattr(STDIN_FILENO, &cd->saved) == 0) {
		raw = cd->saved;
		raw.c_lflag &= ~(ICANON | ECHO | ECHONL | IEXTEN);
		raw.c_iflag &= ~(ICRNL | INLCR | IXON);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			cd->termios_saved = true;
	}
	cd->in_fd = dup(STDIN_FILENO);
	if (cd->in_fd < 0)
		return ferr_errno(err, -errno, "stdio backend: standard input");
	return 0;
}

static int cd_file_open(struct chardev *cd, const char *path, struct ferr *err)
{
	if (!*path)
		return ferr_set(err, -EINVAL, "backend 'file:' needs a path");
	cd->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (cd->fd < 0)
		return ferr_errno(err, -errno, "backend file:%s", path);
	return 0;
}

static int cd_unix_open(struct chardev *cd, const char *path, struct ferr *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (!*path)
		return ferr_set(err, -EINVAL, "backend 'unix:' needs a socket path");
	if (strlen(path) >= sizeof(sa.sun_path))
		return ferr_set(err, -ENAMETOOLONG, "backend unix:%s: path longer than %zu bytes",
				path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	cd->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cd->fd < 0)
		return ferr_errno(err, -errno, "backend unix:%s: socket", path);
	if (connect(cd->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;
		close(cd->fd);
		cd->fd = -1;
		return ferr_errno(err, rc, "backend unix:%s: connect", path);
	}
	cd->in_fd = cd->fd;
	return 0;
}

static int cd_null_open(struct chardev *cd, const char *arg, struct ferr *err)
{
	cd->fd = -1;
	return 0;
}

static void cd_fd_close(struct chardev *cd)
{
	if (cd->termios_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &cd->saved);
	cd->termios_saved = false;
	if (cd->in_fd >= 0 && cd->in_fd != cd->fd)
		close(cd->in_fd);
	cd->in_fd = -1;
	if (cd->fd >= 0)
		close(cd->fd);
	cd->fd = -1;
}

static const struct chardev_ops chardev_backends[] = {
    {"stdio", cd_stdio_open, cd_fd_close},
    {"null", cd_null_open, cd_fd_close},
    {"file:", cd_file_open, cd_fd_close},
    {"unix:", cd_unix_open, cd_fd_close},
};

int chardev_open(const char *spec, struct chardev **out, struct ferr *err)
{
	const size_t n = sizeof(chardev_backends) / sizeof(chardev_backends[0]);
	struct chardev *cd;

	for (size_t i = 0; i < n; i++) {
		const struct chardev_ops *ops = &chardev_backends[i];
		size_t plen = strlen(ops->prefix);
		bool has_arg = ops->prefix[plen - 1] == ':';

		if (has_arg ? strncmp(spec, ops->prefix, plen) != 0
			    : strcmp(spec, ops->prefix) != 0)
			continue;
		cd = calloc(1, sizeof(*cd));
		if (!cd)
			return ferr_set(err, -ENOMEM, "out of memory");
		cd->ops = ops;
		cd->fd = -1;
		cd->in_fd = -1;
		snprintf(cd->spec, sizeof(cd->spec), "%s", spec);
		int rc = ops->open(cd, spec + (has_arg ? plen : 0), err);
		if (rc) {
			cd_fd_close(cd);
			free(cd);
			return rc;
		}
		*out = cd;
		return 0;
	}
	return ferr_set(err, -EINVAL,
			"unknown backend '%s' (expected stdio, null, file:PATH or unix:PATH)",
			spec);
}

void chardev_write(struct chardev *cd, const void *buf, size_t len)
{
	const char *p = buf;

	if (!cd || cd->fd < 0)
		return;
	while (len) {
		ssize_t n = write(cd->fd, p, len); /* main() ignores SIGPIPE */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* reader gone: the guest must not stall on it */
		p += n;
		len -= n;
	}
}

void chardev_close(struct chardev *cd)
{
	if (!cd)
		return;
	cd->ops->close(cd);
	free(cd);
}
