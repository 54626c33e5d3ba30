// SPDX-License-Identifier: GPL-2.0-only
/*
 * Socket channels (tcp:, unix:) and the URI front door: channel_connect(),
 * channel_listen(), channel_accept().  file: URIs are handed to
 * channel_file.c, and with tls-creds every socket is wrapped by
 * channel_tls.c before it is handed out.  docs/channels.md describes the
 * behaviour operators see.
 *
 * The I/O path is built for a stream that runs at memory-copy speed:
 * sockets are O_NONBLOCK, and read/writev try recv()/sendmsg() first,
 * straight from the caller's buffers, and only wait in poll() on
 * {fd, cancel_fd} when the kernel says EAGAIN.  A stream that keeps up
 * therefore costs one syscall per call.  A call that has to wait notices
 * channel_cancel() at once; one that keeps making progress looks at the
 * cancel eventfd once per SOCK_CANCEL_CHECK bytes, so it stops within a
 * megabyte instead of paying a second syscall on every call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/trace.h"
#include "migration/transport/channel.h"
#include "migration/transport/channel_priv.h"
#include "migration/transport/channel_tls.h"
#include "migration/transport/channel_uri.h"

#define SOCK_CANCEL_CHECK (1u << 20)
#define SOCK_BACKLOG	  16

/*
 * Keepalive finds a dead peer (crashed host, cut network) on an idle
 * connection, such as a destination waiting for the source's next round,
 * in 5 + 2 * 5 = 15 s; the blocked read then fails with ETIMEDOUT.  With data in
 * flight keepalive stays quiet, and the channel's inactivity timeout is
 * what ends the wait.  TCP_USER_TIMEOUT is deliberately not set: since
 * Linux 5.11 it also aborts a connection whose peer is alive and
 * acknowledging but not reading (a zero window), and how long a slow
 * destination may stall is timeout_ms's decision, reported as such.
 */
#define TCP_DEAD_IDLE_S	    5
#define TCP_DEAD_INTERVAL_S 2
#define TCP_DEAD_PROBES	    5

struct sock_channel {
	struct channel ch; /* first: ops get &ch and convert back */
	/* Bytes moved since the last look at cancel_fd.  One per direction:
	 * the reading and the writing thread never share a variable. */
	size_t rd_unchecked;
	size_t wr_unchecked;
	_Atomic bool shut; /* channel_shutdown() was called: EOF/EPIPE are ours */
};

struct channel_listener {
	int fd;			       /* the listening socket; -1 for file: */
	int cancel_fd;		       /* eventfd; readable once cancelled */
	bool tcp;		       /* accepted sockets get the TCP options */
	struct channel_tls_creds *tls; /* accepted sockets are wrapped in TLS */
	struct channel *file;	       /* file:, until accepted */
	bool file_accepted;
	dev_t sock_dev; /* unix: the socket file we created, */
	ino_t sock_ino; /* removed on close if still ours */
	char path[108]; /* unix: its path */
	char uri[];	/* as bound: tcp port 0 -> the real port */
};

/* ---- channel ops ---- */

static int sock_io_error(struct channel *ch, int code, const char *what, struct ferr *err)
{
	struct sock_channel *s = (struct sock_channel *)ch;

	if (atomic_load(&s->shut) && (code == -EPIPE || code == -ENOTCONN))
		return ferr_set(err, code, "%s: shut down", ch->name);
	switch (code) {
	case -EPIPE:
		return ferr_set(err, code, "%s: connection closed by peer", ch->name);
	case -ECONNRESET:
		return ferr_set(err, code, "%s: connection reset by peer", ch->name);
	case -ETIMEDOUT: /* keepalive or retransmissions gave up */
		return ferr_set(err, code, "%s: peer unreachable (TCP timed out)", ch->name);
	default:
		return ferr_errno(err, code, "%s: %s", ch->name, what);
	}
}

static ssize_t sock_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	struct sock_channel *s = (struct sock_channel *)ch;
	uint64_t deadline = 0; /* from the first wait: the fast path reads no clock */

	if (s->rd_unchecked >= SOCK_CANCEL_CHECK) {
		if (channel_cancelled(ch->cancel_fd))
			return ferr_set(err, -ECANCELED, "%s: cancelled", ch->name);
		s->rd_unchecked = 0;
	}
	for (;;) {
		ssize_t n = recv(ch->fd, buf, len, 0);
		if (n >= 0) {
			s->rd_unchecked += (size_t)n;
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return sock_io_error(ch, -errno, "receive", err);
		if (!deadline)
			deadline = channel_deadline_after(ch->rd_timeout_ms ? ch->rd_timeout_ms
									    : ch->timeout_ms);
		uint64_t t0 = trace_on(ch->trace, TRACE_CHANNEL_STALL) ? clock_now_ns() : 0;
		/* Not the channel's deadline: a read cut mid-record could never resume. */
		int rc = channel_poll(ch->fd, POLLIN, ch->cancel_fd, deadline, 0);
		if (t0 && clock_now_ns() - t0 >= TRACE_STALL_NS)
			trace_channel_stall(ch->trace, ch->name, "receive", clock_now_ns() - t0);
		if (rc)
			return channel_wait_error(ch, rc, "no data", err);
		s->rd_unchecked = 0;
	}
}

static ssize_t sock_writev(struct channel *ch, const struct iovec *iov, int iovcnt,
			   struct ferr *err)
{
	struct sock_channel *s = (struct sock_channel *)ch;
	struct msghdr msg = {
	    .msg_iov = (struct iovec *)iov, /* sendmsg does not write to it */
	    .msg_iovlen = (size_t)(iovcnt < IOV_MAX ? iovcnt : IOV_MAX),
	};
	uint64_t deadline = 0;

	if (s->wr_unchecked >= SOCK_CANCEL_CHECK) {
		if (channel_cancelled(ch->cancel_fd))
			return ferr_set(err, -ECANCELED, "%s: cancelled", ch->name);
		s->wr_unchecked = 0;
	}
	for (;;) {
		/* MSG_NOSIGNAL: a vanished peer is an error to report, not SIGPIPE. */
		ssize_t n = sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
		if (n >= 0) {
			s->wr_unchecked += (size_t)n;
			return n;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return sock_io_error(ch, -errno, "send", err);
		if (!deadline)
			deadline = channel_deadline_after(ch->timeout_ms);
		uint64_t t0 = trace_on(ch->trace, TRACE_CHANNEL_STALL) ? clock_now_ns() : 0;
		int rc = channel_poll(ch->fd, POLLOUT, ch->cancel_fd, deadline,
				      atomic_load(&ch->deadline_ns));
		if (t0 && clock_now_ns() - t0 >= TRACE_STALL_NS)
			trace_channel_stall(ch->trace, ch->name, "send", clock_now_ns() - t0);
		if (rc)
			return channel_wait_error(ch, rc, "peer took no data", err);
		s->wr_unchecked = 0;
	}
}

static int sock_wait_input(struct channel *ch, struct ferr *err)
{
	int rc = channel_poll(ch->fd, POLLIN, ch->cancel_fd, channel_deadline_after(ch->timeout_ms),
			      atomic_load(&ch->deadline_ns));

	return rc ? channel_wait_error(ch, rc, "no data", err) : 0;
}

/* Both directions: the peer reads EOF, and our own reader blocked in
 * poll() on this fd wakes up and reads EOF too. */
static void sock_shutdown(struct channel *ch)
{
	struct sock_channel *s = (struct sock_channel *)ch;

	atomic_store(&s->shut, true);
	shutdown(ch->fd, SHUT_RDWR);
}

static void sock_close(struct channel *ch)
{
	close(ch->fd);
	close(ch->cancel_fd);
	free(ch);
}

static const struct channel_ops tcp_ops = {
    .kind = "tcp",
    .read = sock_read,
    .writev = sock_writev,
    .wait_input = sock_wait_input,
    .shutdown = sock_shutdown,
    .close = sock_close,
};

static const struct channel_ops unix_ops = {
    .kind = "unix",
    .read = sock_read,
    .writev = sock_writev,
    .wait_input = sock_wait_input,
    .shutdown = sock_shutdown,
    .close = sock_close,
};

/* Wrap a connected O_NONBLOCK socket; takes @fd, closing it on failure. */
static int sock_channel_new(int fd, bool tcp, const char *name, int timeout_ms,
			    struct channel **out, struct ferr *err)
{
	struct sock_channel *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		close(fd);
		return ferr_set(err, -ENOMEM, "%s: out of memory", name);
	}
	s->ch.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ch.cancel_fd < 0) {
		rc = -errno;
		close(fd);
		free(s);
		return ferr_errno(err, rc, "%s: eventfd", name);
	}
	s->ch.ops = tcp ? &tcp_ops : &unix_ops;
	s->ch.fd = fd;
	s->ch.timeout_ms = timeout_ms;
	snprintf(s->ch.name, sizeof(s->ch.name), "%s", name);
	/* A new channel may have been cancelled before its first call. */
	s->rd_unchecked = SOCK_CANCEL_CHECK;
	s->wr_unchecked = SOCK_CANCEL_CHECK;
	*out = &s->ch;
	return 0;
}

/*
 * The stream is bulk, but the return path (page requests in postcopy,
 * acks) is small messages where Nagle would add up to 40 ms each; the
 * stream writer hands whole records to one writev, so it does not send
 * runts either.  Buffer sizes are left alone on purpose: setting
 * SO_SNDBUF/SO_RCVBUF turns off the kernel's autotuning, which grows them
 * to tcp_wmem/tcp_rmem max (MiBs) as the bandwidth-delay product needs,
 * while an explicit value is capped by the much smaller wmem_max.
 * Best effort: the stream works without any of these.
 */
static void tcp_tune(int fd)
{
	static const struct {
		int level, name, value;
	} opts[] = {
	    {IPPROTO_TCP, TCP_NODELAY, 1},
	    {SOL_SOCKET, SO_KEEPALIVE, 1},
	    {IPPROTO_TCP, TCP_KEEPIDLE, TCP_DEAD_IDLE_S},
	    {IPPROTO_TCP, TCP_KEEPINTVL, TCP_DEAD_INTERVAL_S},
	    {IPPROTO_TCP, TCP_KEEPCNT, TCP_DEAD_PROBES},
	};

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		setsockopt(fd, opts[i].level, opts[i].name, &opts[i].value, sizeof(int));
}

/* ---- connect ---- */

static int gai_to_errno(int rc)
{
	switch (rc) {
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_NONAME:
	case EAI_NODATA:
		return -ENOENT;
	default:
		return -EINVAL;
	}
}

static int resolve(const char *uri, const struct uri *u, bool passive, struct addrinfo **res,
		   struct ferr *err)
{
	struct addrinfo hints = {
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
	};
	int rc = getaddrinfo(u->host, u->port, &hints, res);

	if (rc)
		return ferr_set(err, gai_to_errno(rc), "%s: cannot resolve '%s': %s", uri, u->host,
				gai_strerror(rc));
	return 0;
}

/* One address: 0 and *fdp, or -errno (-ETIMEDOUT when the deadline passed). */
static int tcp_connect_one(const struct addrinfo *ai, uint64_t deadline, int *fdp)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = 0, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = errno == EINPROGRESS ? channel_poll(fd, POLLOUT, -1, deadline, 0) : -errno;
		if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			rc = -errno;
		else if (!rc)
			rc = -soerr;
	}
	if (rc) {
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

static int tcp_connect(const char *uri, const struct uri *u, int timeout_ms, int *fdp,
		       struct ferr *err)
{
	uint64_t deadline = channel_deadline_after(timeout_ms);
	struct addrinfo *res, *ai;
	int rc = resolve(uri, u, false, &res, err);

	if (rc)
		return rc;
	/* Every address in turn (localhost: ::1, then 127.0.0.1), in the time
	 * given for all of them. */
	for (ai = res, rc = -ENOENT; ai; ai = ai->ai_next) {
		rc = tcp_connect_one(ai, deadline, fdp);
		if (!rc || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (rc == -ETIMEDOUT && timeout_ms >= 0)
		return ferr_set(err, rc, "%s: no answer within %d ms", uri, timeout_ms);
	if (rc == -ETIMEDOUT)
		return ferr_set(err, rc, "%s: no answer (the kernel gave up)", uri);
	if (rc == -ECONNREFUSED)
		return ferr_set(err, rc, "%s: connection refused (is the destination listening?)",
				uri);
	if (rc)
		return ferr_errno(err, rc, "%s: cannot connect", uri);
	tcp_tune(*fdp);
	return 0;
}

static void unix_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path)); /* length checked by uri_parse() */
}

/*
 * A UNIX connect only waits when the server's backlog is full, and then
 * it honours SO_SNDTIMEO (failing with EAGAIN), which spares us the
 * EINPROGRESS dance that TCP needs.
 */
static int unix_connect(const char *uri, const char *path, int timeout_ms, int *fdp,
			struct ferr *err)
{
	uint64_t deadline = channel_deadline_after(timeout_ms);
	struct sockaddr_un sa;
	int fd, rc;

	unix_addr(&sa, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ferr_errno(err, -errno, "%s: socket", uri);
	do {
		if (deadline != CHANNEL_NO_DEADLINE) {
			uint64_t now = clock_now_ns();
			uint64_t us = deadline > now ? (deadline - now) / 1000 : 0;
			/* 0 would mean "no limit": wait at least a microsecond. */
			struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000 ?: 1};
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		}
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	} while (rc == -EINTR);
	/* Sends are non-blocking from here, which makes SO_SNDTIMEO moot. */
	if (!rc && fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		rc = -errno;
	if (!rc) {
		*fdp = fd;
		return 0;
	}
	close(fd);
	switch (rc) {
	case -EAGAIN:
		return ferr_set(err, -ETIMEDOUT, "%s: not accepted within %d ms", uri, timeout_ms);
	case -ENOENT:
		return ferr_set(err, rc, "%s: no such socket (is the destination listening?)", uri);
	case -ECONNREFUSED:
		return ferr_set(err, rc, "%s: connection refused (stale socket, no server)", uri);
	default:
		return ferr_errno(err, rc, "%s: cannot connect", uri);
	}
}

/* ---- TLS settings ---- */

static bool opts_tls(const struct channel_opts *o)
{
	return o && o->tls_creds && o->tls_creds[0];
}

/*
 * The TLS side of @opts for @u: *creds loaded (NULL: plaintext) and, for
 * a client, the name to check the server's certificate against.
 */
static int tls_prepare(const char *uri, const struct uri *u, const struct channel_opts *o,
		       bool server, struct channel_tls_creds **creds, const char **hostname,
		       struct ferr *err)
{
	*creds = NULL;
	if (!opts_tls(o))
		return 0;
	if (u->kind == URI_FILE)
		return ferr_set(err, -EINVAL,
				"%s: tls-creds is set, but a file has no peer to authenticate "
				"(clear tls-creds to save or restore a snapshot)",
				uri);
	if (!server) {
		*hostname = o->tls_hostname && o->tls_hostname[0] ? o->tls_hostname
			    : u->kind == URI_TCP		  ? u->host
								  : NULL;
		if (!*hostname)
			return ferr_set(err, -EINVAL,
					"%s: TLS needs tls-hostname here: a unix: URI has no host "
					"name to check the destination's certificate against",
					uri);
	}
	int rc = channel_tls_creds_load(o->tls_creds, server, creds, err);
	if (!rc)
		channel_tls_creds_direct(*creds, o->x_tls_direct);
	return rc;
}

int channel_connect_check(const char *uri, const struct channel_opts *opts, struct ferr *err)
{
	struct channel_tls_creds *creds;
	const char *hostname;
	struct uri u;
	int rc = uri_parse(uri, false, &u, err);

	if (!rc)
		rc = tls_prepare(uri, &u, opts, false, &creds, &hostname, err);
	if (!rc)
		channel_tls_creds_put(creds);
	return rc;
}

int channel_connect_opts(const char *uri, int timeout_ms, const struct channel_opts *opts,
			 struct channel **out, struct ferr *err)
{
	uint64_t deadline = channel_deadline_after(timeout_ms);
	struct channel_tls_creds *creds = NULL;
	const char *hostname = NULL;
	struct channel *ch;
	struct uri u;
	int fd = -1, rc;

	*out = NULL;
	rc = uri_parse(uri, false, &u, err);
	if (!rc)
		rc = tls_prepare(uri, &u, opts, false, &creds, &hostname, err);
	if (rc)
		return rc;
	switch (u.kind) {
	case URI_FILE:
		return channel_file_open(u.path, true, out, err);
	case URI_TCP:
		rc = tcp_connect(uri, &u, timeout_ms, &fd, err);
		break;
	case URI_UNIX:
		rc = unix_connect(uri, u.path, timeout_ms, &fd, err);
		break;
	}
	if (!rc)
		rc = sock_channel_new(fd, u.kind == URI_TCP, uri, timeout_ms, &ch, err);
	/* The handshake shares the connect's time. */
	if (!rc && creds)
		rc = channel_tls_client(ch, creds, hostname, deadline, &ch, err);
	channel_tls_creds_put(creds);
	if (!rc)
		*out = ch;
	return rc;
}

int channel_connect(const char *uri, int timeout_ms, struct channel **out, struct ferr *err)
{
	return channel_connect_opts(uri, timeout_ms, NULL, out, err);
}

/* ---- listen ---- */

/* "tcp:127.0.0.1:41234" or "tcp:[::1]:41234" for a socket address. */
static void tcp_format(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, size, "tcp:?");
		return;
	}
	snprintf(out, size, sa->sa_family == AF_INET6 ? "tcp:[%s]:%s" : "tcp:%s:%s", host, port);
}

static int tcp_listen(struct channel_listener *l, const char *uri, const struct uri *u,
		      size_t uri_size, struct ferr *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *res, *ai;
	int one = 1, fd = -1, rc = resolve(uri, u, true, &res, err);

	if (rc)
		return rc;
	/* The first address that works: one listening socket per channel. */
	for (ai = res, rc = -ENOENT; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		/* A restarted destination must not wait out TIME_WAIT of the last run. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOCK_BACKLOG) == 0)
			break;
		rc = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0 && rc == -EADDRINUSE)
		return ferr_set(err, rc, "%s: address already in use", uri);
	if (fd < 0 && rc == -EADDRNOTAVAIL)
		return ferr_set(err, rc, "%s: no such local address", uri);
	if (fd < 0)
		return ferr_errno(err, rc, "%s: cannot listen", uri);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = -errno;
		close(fd);
		return ferr_errno(err, rc, "%s: getsockname", uri);
	}
	tcp_format((struct sockaddr *)&ss, sl, l->uri, uri_size);
	l->fd = fd;
	l->tcp = true;
	return 0;
}

/*
 * bind() found @path taken.  A socket nobody answers on is left over from
 * a server that died: remove it (0).  A live server (one that accepts, or
 * whose backlog is full) keeps it, and so does anything that is not a
 * socket.  The probe shows the live server one empty connection.
 */
static int unix_reclaim(const char *uri, const char *path, struct ferr *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : ferr_errno(err, -errno, "%s: cannot stat", uri);
	if (!S_ISSOCK(st.st_mode))
		return ferr_set(err, -EEXIST, "%s: path exists and is not a socket", uri);
	unix_addr(&sa, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ferr_errno(err, -errno, "%s: socket", uri);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0 || rc == -EAGAIN)
		return ferr_set(err, -EADDRINUSE, "%s: in use by a running server", uri);
	if (rc != -ECONNREFUSED)
		return ferr_errno(err, rc, "%s: path in use and cannot be probed", uri);
	if (unlink(path) < 0 && errno != ENOENT)
		return ferr_errno(err, -errno, "%s: cannot remove the stale socket", uri);
	return 0;
}

static int unix_listen(struct channel_listener *l, const char *uri, const char *path,
		       struct ferr *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	unix_addr(&sa, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ferr_errno(err, -errno, "%s: socket", uri);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	if (rc == -EADDRINUSE) {
		rc = unix_reclaim(uri, path, err);
		if (!rc && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			rc = ferr_errno(err, -errno, "%s: cannot bind", uri);
	} else if (rc) {
		ferr_errno(err, rc, "%s: cannot bind", uri);
	}
	if (!rc && listen(fd, SOCK_BACKLOG) < 0)
		rc = ferr_errno(err, -errno, "%s: cannot listen", uri);
	if (rc) {
		close(fd);
		return rc;
	}
	/* Remember which file is ours, so that close never removes the
	 * socket of a server that replaced us at the same path. */
	if (stat(path, &st) == 0) {
		l->sock_dev = st.st_dev;
		l->sock_ino = st.st_ino;
		snprintf(l->path, sizeof(l->path), "%s", path);
	}
	l->fd = fd;
	return 0;
}

int channel_listen(const char *uri, struct channel_listener **out, struct ferr *err)
{
	return channel_listen_opts(uri, NULL, out, err);
}

int channel_listen_opts(const char *uri, const struct channel_opts *opts,
			struct channel_listener **out, struct ferr *err)
{
	struct channel_tls_creds *creds = NULL;
	struct channel_listener *l;
	const char *unused;
	size_t uri_size;
	struct uri u;
	int rc;

	*out = NULL;
	rc = uri_parse(uri, true, &u, err);
	if (!rc)
		rc = tls_prepare(uri, &u, opts, true, &creds, &unused, err);
	if (rc)
		return rc;
	/* Room for the URI as given or as bound ("tcp:[v6%scope]:65535"). */
	uri_size = strlen(uri) + 1 > 80 ? strlen(uri) + 1 : 80;
	l = calloc(1, sizeof(*l) + uri_size);
	if (!l) {
		channel_tls_creds_put(creds);
		return ferr_set(err, -ENOMEM, "%s: out of memory", uri);
	}
	l->tls = creds;
	l->fd = -1;
	memcpy(l->uri, uri, strlen(uri) + 1);
	l->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->cancel_fd < 0) {
		rc = ferr_errno(err, -errno, "%s: eventfd", uri);
		channel_tls_creds_put(l->tls);
		free(l);
		return rc;
	}
	switch (u.kind) {
	case URI_FILE:
		rc = channel_file_open(u.path, false, &l->file, err);
		break;
	case URI_TCP:
		rc = tcp_listen(l, uri, &u, uri_size, err);
		break;
	case URI_UNIX:
		rc = unix_listen(l, uri, u.path, err);
		break;
	}
	if (rc) {
		close(l->cancel_fd);
		channel_tls_creds_put(l->tls);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

const char *channel_listener_uri(const struct channel_listener *l)
{
	return l->uri;
}

/* ---- accept ---- */

static int accept_file(struct channel_listener *l, struct channel **out, struct ferr *err)
{
	if (channel_cancelled(l->cancel_fd))
		return ferr_set(err, -ECANCELED, "%s: cancelled", l->uri);
	if (l->file_accepted)
		return ferr_set(err, -EINVAL, "%s: already accepted (a file is read once)", l->uri);
	l->file_accepted = true;
	*out = l->file;
	l->file = NULL;
	return 0;
}

int channel_accept(struct channel_listener *l, int timeout_ms, struct channel **out,
		   struct ferr *err)
{
	uint64_t deadline = channel_deadline_after(timeout_ms);
	struct sockaddr_storage ss;
	socklen_t sl;
	char name[sizeof((*out)->name)];
	int fd;

	*out = NULL;
	if (l->fd < 0)
		return accept_file(l, out, err);
	for (;;) {
		/* Wait first: a cancelled listener must not hand out a queued peer. */
		int rc = channel_poll(l->fd, POLLIN, l->cancel_fd, deadline, 0);
		if (rc == -ECANCELED)
			return ferr_set(err, rc, "%s: cancelled", l->uri);
		if (rc == -ETIMEDOUT)
			return ferr_set(err, rc, "%s: no connection within %d ms", l->uri,
					timeout_ms);
		if (rc)
			return ferr_errno(err, rc, "%s: poll", l->uri);
		sl = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		/* Gone between poll and accept, or a signal: wait again. */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
		    errno != EINTR)
			return ferr_errno(err, -errno, "%s: accept", l->uri);
	}
	if (l->tcp) {
		char peer[80];
		tcp_format((struct sockaddr *)&ss, sl, peer, sizeof(peer));
		/* The operator's URI, and who came in: "tcp:0.0.0.0:4444 from 10.0.0.1:53422" */
		snprintf(name, sizeof(name), "%s from %s", l->uri, peer + 4);
		tcp_tune(fd);
	} else {
		snprintf(name, sizeof(name), "%s", l->uri);
	}
	struct channel *ch;
	int rc = sock_channel_new(fd, l->tcp, name, timeout_ms, &ch, err);
	/* The handshake gets the accept's time again (or its own when that is
	 * forever), and the listener's cancellation. */
	if (!rc && l->tls)
		rc = channel_tls_server(ch, l->tls, channel_deadline_after(timeout_ms),
					l->cancel_fd, &ch, err);
	if (!rc)
		*out = ch;
	return rc;
}

void channel_listener_cancel(struct channel_listener *l)
{
	uint64_t one = 1;

	/* Thread-safe: an eventfd write.  EAGAIN means saturated: cancelled. */
	if (write(l->cancel_fd, &one, sizeof(one)) < 0) {
		/* nothing to do */
	}
}

void channel_listener_close(struct channel_listener *l)
{
	struct stat st;

	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	if (l->path[0] && stat(l->path, &st) == 0 && st.st_dev == l->sock_dev &&
	    st.st_ino == l->sock_ino)
		unlink(l->path);
	if (l->file)
		channel_close(l->file);
	channel_tls_creds_put(l->tls);
	close(l->cancel_fd);
	free(l);
}
