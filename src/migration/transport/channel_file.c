// SPDX-License-Identifier: GPL-2.0-only
/*
 * The file: channel.  The saving side writes the stream to a file, the
 * loading side reads it back; one direction each.
 *
 * Plain blocking I/O: a regular file never waits for a peer, so there is
 * nothing for poll() to wait on and timeout_ms does not apply.  What must
 * still work is channel_cancel() while gigabytes go to a slow disk, so one
 * call moves at most FILE_CHUNK bytes and checks the cancel eventfd first.
 * A FIFO or terminal would block without that check ever running: stream
 * to another process with unix: instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration/transport/channel.h"

/* Large enough that the syscall and cancel check cost nothing next to the
 * copy, small enough that a cancelled save stops within a disk's second. */
#define FILE_CHUNK (8u << 20)

struct file_channel {
	struct channel ch; /* first: ops get &ch and convert back */
	bool writing;
};

static int file_check(struct channel *ch, bool writing, bool want_write, struct ferr *err)
{
	struct pollfd p = {.fd = ch->cancel_fd, .events = POLLIN};

	if (writing != want_write)
		return ferr_set(err, -EBADF, "%s: opened for %s only", ch->name,
				writing ? "writing" : "reading");
	if (poll(&p, 1, 0) > 0)
		return ferr_set(err, -ECANCELED, "%s: cancelled", ch->name);
	return 0;
}

static ssize_t file_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	struct file_channel *f = (struct file_channel *)ch;
	int rc = file_check(ch, f->writing, false, err);

	if (rc)
		return rc;
	for (;;) {
		ssize_t n = read(ch->fd, buf, len < FILE_CHUNK ? len : FILE_CHUNK);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return ferr_errno(err, -errno, "%s: read", ch->name);
	}
}

static ssize_t file_writev(struct channel *ch, const struct iovec *iov, int iovcnt,
			   struct ferr *err)
{
	struct file_channel *f = (struct file_channel *)ch;
	size_t total = 0;
	ssize_t n;
	int cnt = 0;
	int rc = file_check(ch, f->writing, true, err);

	if (rc)
		return rc;
	/* At most FILE_CHUNK of the caller's vectors, without copying them: a
	 * prefix of whole vectors, or else the start of the first one (past
	 * any empty ones) that is larger on its own. */
	while (cnt < iovcnt && cnt < IOV_MAX && total + iov[cnt].iov_len <= FILE_CHUNK)
		total += iov[cnt++].iov_len;
	if (total == 0 && cnt == iovcnt)
		return 0;
	do {
		if (total)
			n = writev(ch->fd, iov, cnt);
		else
			n = write(ch->fd, iov[cnt].iov_base,
				  iov[cnt].iov_len < FILE_CHUNK ? iov[cnt].iov_len : FILE_CHUNK);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return ferr_errno(err, -errno, "%s: write", ch->name);
	return n;
}

static void file_close(struct channel *ch)
{
	close(ch->fd);
	close(ch->cancel_fd);
	free(ch);
}

static const struct channel_ops file_ops = {
    .kind = "file",
    .read = file_read,
    .writev = file_writev,
    .close = file_close,
};

int channel_file_open(const char *path, bool for_write, struct channel **out, struct ferr *err)
{
	int flags = for_write ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY;
	struct file_channel *f;
	struct stat st;
	int fd, rc;

	*out = NULL;
	fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferr_errno(err, -errno, "file:%s: cannot open for %s", path,
				  for_write ? "writing" : "reading");
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return ferr_set(err, -EISDIR, "file:%s: is a directory", path);
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return ferr_set(err, -ENOMEM, "file:%s: out of memory", path);
	}
	f->ch.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->ch.cancel_fd < 0) {
		rc = -errno;
		close(fd);
		free(f);
		return ferr_errno(err, rc, "file:%s: eventfd", path);
	}
	f->ch.ops = &file_ops;
	f->ch.fd = fd;
	f->ch.timeout_ms = -1;
	snprintf(f->ch.name, sizeof(f->ch.name), "file:%s", path);
	f->writing = for_write;
	*out = &f->ch;
	return 0;
}
