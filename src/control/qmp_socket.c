// SPDX-License-Identifier: GPL-2.0-only
#include "control/qmp_socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define QMP_LISTEN_BACKLOG 16

/*
 * bind() found @path taken.  Decide whether it is ours to take: a socket
 * that refuses connections is left over from a process that died, and is
 * removed; a live socket or any other kind of file is not touched.
 *
 * Between the probe and the unlink another process could start listening
 * on the same path; two ferry instances racing for one socket path is an
 * operator error we do not try to arbitrate.
 */
static int qmp_socket_reclaim(const char *path, const struct sockaddr_un *sa, struct ferr *err)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0; /* vanished meanwhile: just retry */
		return ferr_errno(err, -errno, "control socket %s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return ferr_set(
		    err, -EEXIST,
		    "control socket %s exists and is not a socket; refusing to replace it", path);

	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return ferr_errno(err, -errno, "control socket %s: socket", path);
	int ret = connect(probe, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(probe);

	/* EAGAIN: a listener whose backlog is full, still a listener. */
	if (ret == 0 || e == EAGAIN)
		return ferr_set(err, -EADDRINUSE, "control socket %s is in use by another process",
				path);
	if (e != ECONNREFUSED)
		return ferr_errno(err, -e, "control socket %s: probing the existing socket", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return ferr_errno(err, -errno, "control socket %s: removing stale socket", path);
	return 0;
}

int qmp_socket_listen(const char *path, int *fd_out, struct qmp_sockfile *file, struct ferr *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	size_t len = path ? strlen(path) : 0;
	int ret;

	if (len == 0)
		return ferr_set(err, -EINVAL, "control socket path is empty");
	if (len >= sizeof(sa.sun_path))
		return ferr_set(err, -ENAMETOOLONG,
				"control socket path %s is too long (%zu bytes, the limit is %zu)",
				path, len, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, len + 1);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return ferr_errno(err, -errno, "control socket %s: socket", path);

	for (int attempt = 0;; attempt++) {
		if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		ret = -errno;
		if (ret != -EADDRINUSE || attempt > 0) {
			ferr_errno(err, ret, "control socket %s: bind", path);
			goto fail_close;
		}
		ret = qmp_socket_reclaim(path, &sa, err);
		if (ret < 0)
			goto fail_close;
	}

	/*
	 * The socket grants full control of the VM, including writing files as
	 * this user (pmemsave): owner only.  Nobody can connect before listen(),
	 * so the window with the umask's mode is harmless.
	 */
	if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
		ret = ferr_errno(err, -errno, "control socket %s", path);
		goto fail_unlink;
	}
	file->dev = st.st_dev;
	file->ino = st.st_ino;

	if (listen(fd, QMP_LISTEN_BACKLOG) < 0) {
		ret = ferr_errno(err, -errno, "control socket %s: listen", path);
		goto fail_unlink;
	}
	*fd_out = fd;
	return 0;

fail_unlink:
	unlink(path);
fail_close:
	close(fd);
	return ret;
}

void qmp_socket_unlink(const char *path, const struct qmp_sockfile *file)
{
	struct stat st;

	/* Someone may have replaced the path since (another instance): leave theirs. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file->dev &&
	    st.st_ino == file->ino)
		unlink(path);
}
