// SPDX-License-Identifier: GPL-2.0-only
/*
 * What every channel kind shares: complete reads and writes over the
 * kind's ops, cancellation, shutdown, close.  Nothing here knows a kind.
 *
 * For implementers of a kind (channel_mem.c, channel_sock.c, ...):
 *  - ops->read/writev may transfer less than asked; these helpers loop.
 *  - These helpers count bytes_read/bytes_written; the ops must not.
 *  - A kind creates cancel_fd (an eventfd) and waits on it beside its fd;
 *    channel_cancel() only writes to it.
 *  - ops->close releases everything, the struct channel included.
 */
#include "migration/transport/channel.h"

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "migration/transport/channel_priv.h"

/* ---- waiting, for the socket kinds (channel_priv.h) ---- */

uint64_t channel_deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? CHANNEL_NO_DEADLINE
			      : clock_now_ns() + (uint64_t)timeout_ms * 1000000;
}

int channel_poll(int fd, short events, int cancel_fd, uint64_t deadline, uint64_t hard)
{
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};

	if (hard && hard < deadline)
		deadline = hard;
	for (;;) {
		int ms = -1;

		if (deadline != CHANNEL_NO_DEADLINE) {
			uint64_t now = clock_now_ns();
			uint64_t left = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		int n = poll(p, cancel_fd >= 0 ? 2 : 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (cancel_fd >= 0 && p[1].revents)
			return -ECANCELED;
		if (p[0].revents & POLLNVAL)
			return -EBADF;
		if (p[0].revents)
			return 0;
		if (ms >= 0 && clock_now_ns() >= deadline)
			return deadline == hard ? -ETIME : -ETIMEDOUT;
	}
}

bool channel_cancelled(int cancel_fd)
{
	struct pollfd p = {.fd = cancel_fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

int channel_wait_error(struct channel *ch, int rc, const char *stalled, struct ferr *err)
{
	if (rc == -ECANCELED)
		return ferr_set(err, rc, "%s: cancelled", ch->name);
	if (rc == -ETIMEDOUT)
		return ferr_set(err, rc, "%s: %s for %d ms", ch->name, stalled,
				strcmp(stalled, "no data") == 0 && ch->rd_timeout_ms
				    ? ch->rd_timeout_ms
				    : ch->timeout_ms);
	if (rc == -ETIME)
		return ferr_set(err, rc, "%s: the deadline passed (%s)", ch->name, stalled);
	return ferr_errno(err, rc, "%s: poll", ch->name);
}

/* ---- every kind ---- */

/* -ETIME with a message once @ch's deadline has passed; 0 before. */
static int deadline_check(struct channel *ch, struct ferr *err)
{
	uint64_t d = atomic_load(&ch->deadline_ns);

	if (d && clock_now_ns() >= d)
		return ferr_set(err, -ETIME, "%s: the deadline passed", ch->name);
	return 0;
}

void channel_set_deadline(struct channel *ch, uint64_t deadline_ns)
{
	atomic_store(&ch->deadline_ns, deadline_ns);
}

int channel_wait_input(struct channel *ch, struct ferr *err)
{
	int rc = deadline_check(ch, err);

	if (rc || !ch->ops->wait_input)
		return rc;
	return ch->ops->wait_input(ch, err);
}

int channel_read_full(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = ch->ops->read(ch, (char *)buf + done, len - done, err);
		if (n < 0)
			return ferr_errno(err, (int)n, "%s: read",
					  ch->name); /* unless ops said more */
		if (n == 0)
			return ferr_set(err, -EPIPE, "%s: stream ended after %zu of %zu bytes",
					ch->name, done, len);
		if ((size_t)n > len - done)
			return ferr_set(err, -EIO, "%s: read returned more than asked", ch->name);
		done += (size_t)n;
		atomic_fetch_add(&ch->bytes_read, (uint64_t)n);
	}
	return 0;
}

int channel_writev_sent(struct channel *ch, struct iovec *iov, int iovcnt, size_t *sent,
			struct ferr *err)
{
	*sent = 0;
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			iovcnt--;
			continue;
		}
		int rc = deadline_check(ch, err);
		if (rc)
			return rc;
		/* writev() refuses more than IOV_MAX vectors: send in slices. */
		ssize_t n = ch->ops->writev(ch, iov, iovcnt < IOV_MAX ? iovcnt : IOV_MAX, err);
		if (n < 0)
			return ferr_errno(err, (int)n, "%s: write", ch->name);
		if (n == 0)
			return ferr_set(err, -EIO, "%s: write made no progress", ch->name);
		atomic_fetch_add(&ch->bytes_written, (uint64_t)n);
		*sent += (size_t)n;
		size_t left = (size_t)n;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt == 0 && left)
			return ferr_set(err, -EIO, "%s: wrote more than asked", ch->name);
		if (left) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

int channel_writev_full(struct channel *ch, struct iovec *iov, int iovcnt, struct ferr *err)
{
	size_t sent;

	return channel_writev_sent(ch, iov, iovcnt, &sent, err);
}

int channel_write_full(struct channel *ch, const void *buf, size_t len, struct ferr *err)
{
	struct iovec iov = {(void *)buf, len};

	return channel_writev_full(ch, &iov, 1, err);
}

uint64_t channel_unsent(struct channel *ch)
{
	int n = 0;

	if (ch->fd < 0 || ioctl(ch->fd, SIOCOUTQ, &n) < 0 || n < 0)
		return 0; /* not a socket: nothing queued that could be mistaken for sent */
	return (uint64_t)n;
}

void channel_get_security(const struct channel *ch, struct channel_security *sec)
{
	memset(sec, 0, sizeof(*sec));
	if (ch->ops->security)
		ch->ops->security(ch, sec);
}

uint64_t channel_rtt_ns(struct channel *ch)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int domain;
	socklen_t dlen = sizeof(domain);

	if (ch->fd < 0 || getsockopt(ch->fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0)
		return UINT64_MAX;
	if (domain == AF_UNIX)
		return 0;
	if (getsockopt(ch->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || ti.tcpi_rtt == 0)
		return UINT64_MAX;
	return (uint64_t)ti.tcpi_rtt * 1000u;
}

void channel_cancel(struct channel *ch)
{
	uint64_t one = 1;

	/* An eventfd write is async-signal- and thread-safe; a counter that is
	 * already non-zero stays readable, so repeating it changes nothing. */
	if (ch->cancel_fd >= 0 && write(ch->cancel_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, which means cancelled anyway */
	}
}

void channel_shutdown(struct channel *ch)
{
	if (ch->ops->shutdown)
		ch->ops->shutdown(ch);
}

void channel_close(struct channel *ch)
{
	if (ch)
		ch->ops->close(ch);
}
