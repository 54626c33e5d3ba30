// SPDX-License-Identifier: GPL-2.0-only
/*
 * The QMP server: the control thread, its poll() loop, clients and their
 * buffers, and the event queue.  Request semantics live in qmp_dispatch.c,
 * framing in qmp_framer.c, the socket path in qmp_socket.c.
 *
 * Sockets are non-blocking and every send() uses MSG_NOSIGNAL: a client
 * that stops reading or vanishes mid-reply costs at most its capped output
 * buffer and never a signal or a blocked thread.
 */
#include "control/qmp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "control/qmp_dispatch.h"
#include "control/qmp_framer.h"
#include "control/qmp_message.h"
#include "control/qmp_socket.h"

#define QMP_STOP_FLUSH_NS   (100 * 1000000ull) /* qmp_server_stop() output grace */
#define QMP_ACCEPT_RETRY_NS (100 * 1000000ull) /* pause after accept() hits fd limits */
#define QMP_READ_CHUNK	    4096

/* Bytes waiting to be sent: data[off, len). */
struct qmp_outbuf {
	char *data;
	size_t off, len, cap;
};

/* One connection.  Owned by the control thread. */
struct qmp_client {
	int fd;
	unsigned id; /* for log lines */
	struct qmp_session sess;
	struct qmp_framer in;
	struct qmp_outbuf out;
	bool eof;  /* peer shut down its sending side: close once output drains */
	bool dead; /* close at the end of this loop iteration */
};

struct qmp_event_msg {
	struct qmp_event_msg *next;
	char *line;
	size_t len;
};

struct qmp_server {
	/* Set up by qmp_server_open(); read-only while the control thread runs. */
	char *path;
	struct qmp_sockfile sockfile;
	int listen_fd;
	int wake_fd; /* eventfd: new events, stop request */
	struct qmp_registry reg;

	/* The owner's (main thread's) bookkeeping. */
	pthread_t thread;
	bool started, joined;

	/* The control thread's, once started. */
	struct qmp_client *clients[QMP_MAX_CLIENTS];
	unsigned next_client_id;
	uint64_t accept_resume_ns; /* non-zero: leave the listener alone until then */

	/* Shared with emitters, under @lock. */
	pthread_mutex_t lock;
	struct qmp_event_msg *ev_head, **ev_tail;
	size_t ev_bytes;
	bool stop_requested;
	bool events_closed; /* the control thread took its last batch */
};

/* Same context as the request, but not a reply: a line on stderr. */
static void qmp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void qmp_log(const char *fmt, ...)
{
	char msg[FERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ferry: qmp: %s\n", msg);
}

static void qmp_wake(struct qmp_server *s)
{
	uint64_t one = 1;
	ssize_t n;

	/* EAGAIN would mean the counter is saturated: the loop is awake anyway. */
	do
		n = write(s->wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

static void qmp_wake_drain(struct qmp_server *s)
{
	uint64_t count;
	ssize_t n;

	do
		n = read(s->wake_fd, &count, sizeof(count));
	while (n < 0 && errno == EINTR);
}

/* ---- per-client output ------------------------------------------------ */

static size_t qmp_client_pending(const struct qmp_client *c)
{
	return c->out.len - c->out.off;
}

/* Send what the socket takes now; the poll loop waits for POLLOUT otherwise. */
static void qmp_client_flush(struct qmp_client *c)
{
	struct qmp_outbuf *b = &c->out;

	while (!c->dead && b->off < b->len) {
		ssize_t n = send(c->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true; /* EPIPE, ECONNRESET: the client left */
			break;
		}
		b->off += (size_t)n;
	}
	if (b->off == b->len) {
		b->off = 0;
		b->len = 0;
	}
}

static void qmp_client_queue(struct qmp_client *c, const char *data, size_t len)
{
	struct qmp_outbuf *b = &c->out;

	if (c->dead)
		return;
	if (qmp_client_pending(c) + len > QMP_MAX_CLIENT_OUT) {
		qmp_log("client %u is not reading its replies and events (over %d bytes queued); "
			"disconnecting it",
			c->id, QMP_MAX_CLIENT_OUT);
		c->dead = true;
		return;
	}
	if (b->len + len > b->cap && b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		char *grown = realloc(b->data, cap);
		if (!grown) {
			qmp_log("client %u: out of memory for output; disconnecting it", c->id);
			c->dead = true;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* Queue @msg (stolen) as one line and try to send it at once. */
static void qmp_client_send(struct qmp_client *c, json_t *msg)
{
	/* Never leave a client waiting for a reply that could not be built. */
	static const char oom[] =
	    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"out of memory\"}}\r\n";
	size_t len;
	char *line = qmp_message_line(msg, &len);

	if (line)
		qmp_client_queue(c, line, len);
	else
		qmp_client_queue(c, oom, sizeof(oom) - 1);
	free(line);
	qmp_client_flush(c);
}

/* ---- events ------------------------------------------------------------ */

static void qmp_event_free_list(struct qmp_event_msg *m)
{
	while (m) {
		struct qmp_event_msg *next = m->next;
		free(m->line);
		free(m);
		m = next;
	}
}

/*
 * Hand queued events to every negotiated client.  With @closing, a pending
 * stop request also closes the queue, so that nothing emitted from now on
 * is left behind undelivered.  Returns whether a stop was requested.
 */
static bool qmp_deliver_events(struct qmp_server *s, bool closing)
{
	pthread_mutex_lock(&s->lock);
	struct qmp_event_msg *batch = s->ev_head;
	bool stop = s->stop_requested;
	s->ev_head = NULL;
	s->ev_tail = &s->ev_head;
	s->ev_bytes = 0;
	if (stop && closing)
		s->events_closed = true;
	pthread_mutex_unlock(&s->lock);

	if (!batch)
		return stop;
	for (struct qmp_event_msg *m = batch; m; m = m->next) {
		for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
			struct qmp_client *c = s->clients[i];
			if (c && c->sess.negotiated)
				qmp_client_queue(c, m->line, m->len);
		}
	}
	qmp_event_free_list(batch);
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
		if (s->clients[i])
			qmp_client_flush(s->clients[i]);
	return stop;
}

void qmp_server_emit(struct qmp_server *s, const char *event, json_t *data)
{
	if (!s) {
		json_decref(data);
		return;
	}

	/* Serialize here, on the emitter's thread, with the emitter's timestamp. */
	struct qmp_event_msg *m = calloc(1, sizeof(*m));
	if (m)
		m->line = qmp_message_line(qmp_event(event, data), &m->len);
	else
		json_decref(data);
	if (!m || !m->line) {
		free(m);
		qmp_log("out of memory: dropping event %s", event);
		return;
	}

	bool queued = false, full = false;
	pthread_mutex_lock(&s->lock);
	if (s->events_closed) {
		/* Stopped: nobody is left to deliver it. */
	} else if (s->ev_bytes + m->len > QMP_MAX_EVENT_QUEUE) {
		full = true;
	} else {
		*s->ev_tail = m;
		s->ev_tail = &m->next;
		s->ev_bytes += m->len;
		queued = true;
	}
	pthread_mutex_unlock(&s->lock);

	if (queued) {
		qmp_wake(s);
		return;
	}
	if (full)
		qmp_log("event queue full (is a command handler stuck?); dropping event %s", event);
	qmp_event_free_list(m);
}

/* ---- requests ---------------------------------------------------------- */

struct qmp_request_ctx {
	struct qmp_server *s;
	struct qmp_client *c;
};

/* qmp_frame_fn: one complete request (or an over-long one) from a client. */
static bool qmp_on_request(void *opaque, const char *text, size_t len)
{
	struct qmp_request_ctx *ctx = opaque;
	struct qmp_client *c = ctx->c;
	struct qmp_deferred after = {NULL, NULL};
	bool negotiating = !c->sess.negotiated;
	json_t *reply;

	if (c->dead)
		return false;
	/*
	 * A client sees the events emitted after it negotiated, and the
	 * capabilities reply is the first thing it gets after the greeting:
	 * hand out what is queued before it can become negotiated.
	 */
	if (negotiating)
		qmp_deliver_events(ctx->s, false);
	if (text) {
		reply = qmp_dispatch_text(&ctx->s->reg, &c->sess, text, len, &after);
	} else {
		char desc[128];
		snprintf(desc, sizeof(desc),
			 "JSON parse error, request longer than %d bytes; discarded",
			 QMP_MAX_REQUEST);
		reply = qmp_error_reply(QMP_ERROR_GENERIC, desc, NULL);
	}

	/* Otherwise, as QEMU, events raised while the command ran ("stop": STOP) precede its reply. */
	if (!negotiating)
		qmp_deliver_events(ctx->s, false);
	qmp_client_send(c, reply);

	if (after.fn)
		after.fn(after.opaque);
	return !c->dead;
}

static void qmp_client_read(struct qmp_server *s, struct qmp_client *c)
{
	char chunk[QMP_READ_CHUNK];
	ssize_t n;

	do
		n = recv(c->fd, chunk, sizeof(chunk), 0);
	while (n < 0 && errno == EINTR);

	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->dead = true;
		return;
	}
	if (n == 0) {
		/* Half-close ("socat" after stdin EOF): still owed its replies. */
		c->eof = true;
		return;
	}

	struct qmp_request_ctx ctx = {s, c};
	if (qmp_framer_feed(&c->in, chunk, (size_t)n, qmp_on_request, &ctx) < 0) {
		qmp_log("client %u: out of memory for input; disconnecting it", c->id);
		c->dead = true;
	}
}

/* ---- connections ------------------------------------------------------- */

static void qmp_client_free(struct qmp_client *c)
{
	close(c->fd);
	qmp_framer_fini(&c->in);
	free(c->out.data);
	free(c);
}

static void qmp_refuse(int fd)
{
	static const char msg[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": "
				  "\"too many QMP clients connected\"}}\r\n";
	ssize_t n;

	do
		n = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	close(fd);
}

static void qmp_accept(struct qmp_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/*
			 * EMFILE and friends: the connection stays in the backlog
			 * and poll() would report it again at once.  Back off
			 * instead of spinning.
			 */
			qmp_log("accept on %s: %s; retrying shortly", s->path, strerror(errno));
			s->accept_resume_ns = clock_now_ns() + QMP_ACCEPT_RETRY_NS;
			return;
		}

		unsigned slot = 0;
		while (slot < QMP_MAX_CLIENTS && s->clients[slot])
			slot++;
		struct qmp_client *c = slot < QMP_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			qmp_log("refusing a connection on %s: %s", s->path,
				slot < QMP_MAX_CLIENTS ? "out of memory" : "too many clients");
			qmp_refuse(fd);
			continue;
		}
		c->fd = fd;
		c->id = ++s->next_client_id;
		qmp_framer_init(&c->in, QMP_MAX_REQUEST);
		s->clients[slot] = c;
		qmp_client_send(c, qmp_greeting());
	}
}

/* Close clients that are gone, failed, or half-closed with nothing left to send. */
static void qmp_reap(struct qmp_server *s)
{
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
		struct qmp_client *c = s->clients[i];
		if (c && (c->dead || (c->eof && qmp_client_pending(c) == 0))) {
			qmp_client_free(c);
			s->clients[i] = NULL;
		}
	}
}

/* ---- the control thread ------------------------------------------------ */

/* Last words: offer pending output for a bounded time, then hang up. */
static void qmp_final_flush(struct qmp_server *s)
{
	uint64_t deadline = clock_now_ns() + QMP_STOP_FLUSH_NS;
	struct pollfd pfd[QMP_MAX_CLIENTS];
	struct qmp_client *who[QMP_MAX_CLIENTS];

	for (;;) {
		nfds_t n = 0;
		for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
			struct qmp_client *c = s->clients[i];
			if (c && !c->dead && qmp_client_pending(c)) {
				who[n] = c;
				pfd[n++] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
			}
		}
		uint64_t now = clock_now_ns();
		if (n == 0 || now >= deadline)
			break;
		int timeout = (int)((deadline - now + 999999) / 1000000);
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			break;
		for (nfds_t i = 0; i < n; i++)
			if (pfd[i].revents)
				qmp_client_flush(who[i]);
	}
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
		if (s->clients[i]) {
			qmp_client_free(s->clients[i]);
			s->clients[i] = NULL;
		}
	}
}

static void *qmp_thread(void *opaque)
{
	struct qmp_server *s = opaque;
	struct pollfd pfd[2 + QMP_MAX_CLIENTS];
	struct qmp_client *who[2 + QMP_MAX_CLIENTS];

	for (;;) {
		int timeout = -1;
		nfds_t n = 0;

		who[n] = NULL;
		pfd[n++] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
		if (s->accept_resume_ns) {
			uint64_t now = clock_now_ns();
			if (now >= s->accept_resume_ns)
				s->accept_resume_ns = 0;
			else
				timeout = (int)((s->accept_resume_ns - now + 999999) / 1000000);
		}
		if (!s->accept_resume_ns) {
			who[n] = NULL;
			pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		}
		for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
			struct qmp_client *c = s->clients[i];
			if (!c)
				continue;
			who[n] = c;
			pfd[n].fd = c->fd;
			pfd[n].events =
			    (c->eof ? 0 : POLLIN) | (qmp_client_pending(c) ? POLLOUT : 0);
			n++;
		}

		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			qmp_log("poll: %s; control socket %s no longer served", strerror(errno),
				s->path);
			break;
		}

		if (pfd[0].revents)
			qmp_wake_drain(s);
		if (qmp_deliver_events(s, true))
			break;

		for (nfds_t i = 1; i < n; i++) {
			struct qmp_client *c = who[i];
			short rev = pfd[i].revents;

			if (!rev)
				continue;
			if (!c) {
				qmp_accept(s);
				continue;
			}
			if (rev & POLLOUT)
				qmp_client_flush(c);
			/* POLLHUP/POLLERR: recv() tells EOF from error. */
			if (!c->dead && !c->eof && (rev & (POLLIN | POLLHUP | POLLERR)))
				qmp_client_read(s, c);
			else if (c->eof && (rev & (POLLHUP | POLLERR)))
				c->dead = true; /* fully closed, output undeliverable */
		}
		qmp_reap(s);
	}

	/* Also after a poll() failure: emitters must not queue for nobody. */
	pthread_mutex_lock(&s->lock);
	s->events_closed = true;
	pthread_mutex_unlock(&s->lock);
	qmp_final_flush(s);
	return NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

int qmp_server_open(const char *path, const struct qmp_command *table, void *opaque,
		    struct qmp_server **out, struct ferr *err)
{
	struct qmp_server *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return ferr_set(err, -ENOMEM, "control socket: out of memory");
	s->listen_fd = -1;
	s->ev_tail = &s->ev_head;
	pthread_mutex_init(&s->lock, NULL);

	ret = qmp_registry_add(&s->reg, table, opaque, err);
	if (ret < 0)
		goto fail;
	s->path = strdup(path ? path : "");
	if (!s->path) {
		ret = ferr_set(err, -ENOMEM, "control socket: out of memory");
		goto fail;
	}
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		ret = ferr_errno(err, -errno, "control socket %s: eventfd", s->path);
		goto fail;
	}
	ret = qmp_socket_listen(path, &s->listen_fd, &s->sockfile, err);
	if (ret < 0)
		goto fail_wake;
	*out = s;
	return 0;

fail_wake:
	close(s->wake_fd);
fail:
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
	return ret;
}

int qmp_server_add_commands(struct qmp_server *s, const struct qmp_command *table, void *opaque,
			    struct ferr *err)
{
	if (s->started)
		return ferr_set(err, -EBUSY,
				"QMP commands must be registered before the server starts");
	return qmp_registry_add(&s->reg, table, opaque, err);
}

int qmp_server_start(struct qmp_server *s, struct ferr *err)
{
	sigset_t all, old;
	int ret;

	if (s->started)
		return ferr_set(err, -EBUSY, "control socket %s: server already started", s->path);

	/*
	 * Signals are for the main thread (SIGINT, SIGTERM); the control thread
	 * starts with all of them blocked so none interrupts it by surprise.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&s->thread, NULL, qmp_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0)
		return ferr_errno(err, ret, "control socket %s: starting the control thread",
				  s->path);
	s->started = true;
	return 0;
}

void qmp_server_stop(struct qmp_server *s)
{
	if (!s || s->joined)
		return;
	if (s->started && pthread_equal(pthread_self(), s->thread)) {
		qmp_log("qmp_server_stop() called on the control thread; ignored");
		return;
	}

	pthread_mutex_lock(&s->lock);
	s->stop_requested = true;
	if (!s->started)
		s->events_closed = true; /* no thread will ever deliver them */
	pthread_mutex_unlock(&s->lock);

	if (s->started) {
		qmp_wake(s);
		pthread_join(s->thread, NULL);
	}
	s->joined = true;
}

void qmp_server_close(struct qmp_server *s)
{
	if (!s)
		return;
	qmp_server_stop(s);
	/* The control thread closed its clients on the way out. */
	close(s->listen_fd);
	qmp_socket_unlink(s->path, &s->sockfile);
	close(s->wake_fd);
	qmp_event_free_list(s->ev_head);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}
