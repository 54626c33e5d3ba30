// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fake transport: a link-time substitute for channel_sock.c,
 * channel_uri.c and channel_tls.c.  "hx:NAME" URIs connect to a listener
 * of that name in this process; a connection is two in-memory byte flows
 * (never blocking a writer, no socket queue: channel_unsent() is 0 and
 * channel_rtt_ns() unknown, so nothing the policy measures depends on the
 * scheduler).  Each flow parses the stream's framing (docs/stream-format.md:
 * a header on the migration stream, then records {type, flags, length,
 * payload, pad, checksum}) so that a fault strikes at the n-th record of a
 * type, at its first byte.  Timeouts are in virtual time (hx_clock.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness.h"
#include "migration/transport/channel.h"

#define HX_TYPES 32 /* counted by type: stream records 0x0..0xf, messages 0x8000..0x800f */

struct hx_flow {
	uint8_t *buf;
	size_t len, off, cap; /* [off, len) not yet read */
	bool closed;	      /* nothing more comes: end of stream after [off, len) */
	bool holding;	      /* HX_HOLD: the reader sees only [off, hold_at) */
	bool close_held;      /* closed by its writer while holding: after the held bytes */
	uint64_t release_at; /* HX_DELAY: the held bytes arrive then (virtual); 0: hx_net_release */
	size_t hold_at;
	int notify; /* eventfd: the reader looks again */
	/* the framing: 16 bytes to take in (header start or record header), then @skip */
	bool header_done;
	uint8_t head[16];
	unsigned head_len;
	uint64_t skip;
	size_t rec_start;     /* where in @buf the record being parsed begins */
	bool let_through;     /* the next record header was struck already */
	uint64_t stall_until; /* HX_STALL: the link carries nothing before this (virtual) */
	unsigned count[HX_TYPES];
};

struct hx_conn {
	pthread_mutex_t lock;
	struct hx_flow flow[2]; /* [HX_TO_DST], [HX_TO_SRC] */
	unsigned ends;
};

struct hx_end {
	struct channel ch;
	struct hx_conn *c;
	enum hx_dir rx, tx;
};

struct channel_listener {
	char uri[256];
	int cancel_fd, notify;
	struct hx_end *pending; /* under hx_net.lock */
};

static struct {
	pthread_mutex_t lock;
	struct channel_listener *listeners[4];
	struct migration *src, *dst;
	struct hx_fault faults[HX_MAX_FAULTS];
	unsigned nfaults, struck;
	int cancel_rc;
	struct hx_conn *conn; /* the latest connection, for hx_net_release() */
} hx_net = {.lock = PTHREAD_MUTEX_INITIALIZER};

void hx_net_reset(struct migration *src, struct migration *dst, const struct hx_fault *faults,
		  unsigned nfaults)
{
	pthread_mutex_lock(&hx_net.lock);
	hx_net.src = src;
	hx_net.dst = dst;
	if (nfaults)
		memcpy(hx_net.faults, faults, nfaults * sizeof(*faults));
	hx_net.nfaults = nfaults;
	hx_net.struck = 0;
	hx_net.cancel_rc = 0;
	hx_net.conn = NULL;
	pthread_mutex_unlock(&hx_net.lock);
}

unsigned hx_net_struck(void)
{
	pthread_mutex_lock(&hx_net.lock);
	unsigned n = hx_net.struck;
	pthread_mutex_unlock(&hx_net.lock);
	return n;
}

int hx_net_cancel_rc(void)
{
	pthread_mutex_lock(&hx_net.lock);
	int rc = hx_net.cancel_rc;
	pthread_mutex_unlock(&hx_net.lock);
	return rc;
}

static void hx_kick(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* saturated: readable anyway */
	}
}

static void hx_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* nothing pending */
	}
}

static bool hx_fd_set(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

void hx_net_release(void)
{
	pthread_mutex_lock(&hx_net.lock);
	struct hx_conn *c = hx_net.conn;
	if (c) {
		pthread_mutex_lock(&c->lock);
		for (int d = 0; d < 2; d++) {
			c->flow[d].holding = false;
			c->flow[d].closed |= c->flow[d].close_held;
			hx_kick(c->flow[d].notify);
		}
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&hx_net.lock);
}

/* ---- the flows ---- */

static int hx_append(struct hx_flow *f, const uint8_t *p, size_t n)
{
	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 65536;
		while (cap < f->len + n)
			cap *= 2;
		uint8_t *b = realloc(f->buf, cap);
		if (!b)
			return -ENOMEM;
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, p, n);
	f->len += n;
	return 0;
}

static uint64_t hx_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A record of @type begins in @dir: the fault that strikes there, if any. */
static const struct hx_fault *hx_fault_at(struct hx_flow *f, enum hx_dir dir, uint32_t type)
{
	unsigned idx = type < 0x8000 ? (type & 0xf) : 16 + (type & 0xf);
	unsigned n = ++f->count[idx];

	for (unsigned i = 0; i < hx_net.nfaults; i++) {
		const struct hx_fault *x = &hx_net.faults[i];
		if (x->dir == dir && x->type == type && x->nth == n) {
			hx_net.struck++;
			return x;
		}
	}
	return NULL;
}

/*
 * Take @n bytes written into @dir, parsing the framing.  Returns the fault
 * that struck (none of its record taken: *@taken stops before it, and the
 * record goes through untouched when offered again), or NULL once all are
 * taken.  A record header is never split across writes (the stream
 * writer puts it in one vector): a fault can strike before its first byte.
 */
static const struct hx_fault *hx_take(struct hx_conn *c, enum hx_dir dir, const uint8_t *p,
				      size_t n, size_t *taken)
{
	struct hx_flow *f = &c->flow[dir];
	size_t floor = f->len;

	*taken = 0;
	while (*taken < n) {
		size_t k = n - *taken;
		if (f->skip) {
			if (k > f->skip)
				k = f->skip;
			f->skip -= k;
		} else {
			if (f->head_len == 0)
				f->rec_start = f->len;
			if (k > 16 - f->head_len)
				k = 16 - f->head_len;
			memcpy(f->head + f->head_len, p + *taken, k);
			f->head_len += k;
		}
		if (hx_append(f, p + *taken, k))
			abort();
		*taken += k;
		if (f->skip || f->head_len < 16)
			continue;
		f->head_len = 0;
		if (dir == HX_TO_DST && !f->header_done) {
			/* The stream header: header_len at offset 12 (frozen for every version). */
			f->header_done = true;
			f->skip = hx_le(f->head + 12, 4) - 16;
			continue;
		}
		uint64_t len = hx_le(f->head + 8, 8);
		f->skip = len + (8 - len % 8) % 8 + 8;
		if (f->let_through) {
			f->let_through = false;
			continue;
		}
		const struct hx_fault *x = hx_fault_at(f, dir, (uint32_t)hx_le(f->head, 4));
		if (x) {
			if (f->rec_start < floor)
				abort(); /* a record header split across writes */
			*taken -= f->len - f->rec_start;
			f->len = f->rec_start;
			f->skip = 0;
			f->let_through = true;
			return x;
		}
	}
	return NULL;
}

/* The connection ends: an orderly close (the held bytes still arrive, then
 * the end) or a reset (HX_CLOSE: what was held is lost). */
static void hx_close_conn_locked(struct hx_conn *c, bool orderly)
{
	for (int d = 0; d < 2; d++) {
		if (orderly && c->flow[d].holding)
			c->flow[d].close_held = true;
		else
			c->flow[d].closed = true;
		hx_kick(c->flow[d].notify);
	}
}

/* After a fault struck, outside every lock: the cancels. */
static void hx_cancel(struct migration *m)
{
	struct ferr err = FERR_INIT;
	int rc = migration_cancel(m, &err);

	pthread_mutex_lock(&hx_net.lock);
	hx_net.cancel_rc = rc;
	pthread_mutex_unlock(&hx_net.lock);
}

static ssize_t hx_writev(struct channel *ch, const struct iovec *iov, int iovcnt, struct ferr *err)
{
	struct hx_end *e = (struct hx_end *)ch;
	struct hx_conn *c = e->c;
	struct hx_flow *f = &c->flow[e->tx];
	size_t total = 0;

	/* Like a socket with room in its buffer: a write never blocks, so a
	 * cancel does not stop it (the engine checks for one itself). */
	hx_clock_touch();
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		while (n) {
			struct hx_fault x = {0};
			size_t taken;

			/* A stalled link: nothing moves until the stall ends or the
			 * channel's deadline cuts the write (as channel_poll would). */
			uint64_t deadline = atomic_load(&ch->deadline_ns);
			if (clock_now_ns() < f->stall_until) {
				if (deadline && deadline < f->stall_until) {
					hx_clock_reach(deadline);
					if (total)
						return (ssize_t)total;
					return ferr_set(err, -ETIME, "%s: the deadline passed",
							ch->name);
				}
				hx_clock_reach(f->stall_until);
			}
			pthread_mutex_lock(&hx_net.lock);
			pthread_mutex_lock(&c->lock);
			if (f->closed) {
				pthread_mutex_unlock(&c->lock);
				pthread_mutex_unlock(&hx_net.lock);
				return ferr_set(err, -EPIPE, "%s: connection closed", ch->name);
			}
			const struct hx_fault *s = hx_take(c, e->tx, p, n, &taken);
			if (s)
				x = *s;
			p += taken;
			n -= taken;
			total += taken;
			if (s && x.action == HX_CLOSE)
				hx_close_conn_locked(c, false);
			if (s && x.action == HX_STALL)
				f->stall_until = clock_now_ns() + x.advance_ns;
			if (s && (x.action == HX_HOLD || x.action == HX_DELAY) && !f->holding) {
				f->holding = true;
				f->hold_at = f->len;
				f->release_at =
				    x.action == HX_DELAY ? clock_now_ns() + x.advance_ns : 0;
			}
			hx_kick(f->notify);
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_unlock(&hx_net.lock);
			if (!s)
				continue;
			if (x.action != HX_STALL && x.action != HX_DELAY)
				hx_clock_advance(x.advance_ns);
			if (x.action == HX_CLOSE)
				return ferr_set(err, -EPIPE, "%s: connection closed (fault)",
						ch->name);
			if (x.action == HX_CANCEL_SRC || x.action == HX_CANCEL_DST)
				hx_cancel(x.action == HX_CANCEL_SRC ? hx_net.src : hx_net.dst);
		}
	}
	return (ssize_t)total;
}

/*
 * Wait for @what on @e's incoming flow, or a cancel, or virtual @deadline
 * (0: none), re-reading the virtual clock every millisecond while one is set.
 */
static int hx_wait(struct hx_end *e, uint64_t deadline)
{
	struct hx_flow *f = &e->c->flow[e->rx];
	uint64_t since = hx_real_ns();

	for (;;) {
		hx_drain(f->notify);
		pthread_mutex_lock(&e->c->lock);
		if (f->holding && f->release_at && clock_now_ns() >= f->release_at) {
			f->holding = false; /* HX_DELAY: its time came */
			f->closed |= f->close_held;
		}
		bool ready = f->closed || (f->holding ? f->hold_at : f->len) > f->off;
		uint64_t until = f->holding && f->release_at ? f->release_at : 0;
		pthread_mutex_unlock(&e->c->lock);
		if (deadline && (!until || deadline < until))
			until = deadline;
		int rc = ready ? 0 : hx_fd_set(e->ch.cancel_fd) ? -ECANCELED : 1;
		if (rc == 1 && until && hx_clock_passed(until, since))
			rc = deadline && clock_now_ns() >= deadline ? -ETIMEDOUT : 2;
		if (rc <= 0) {
			if (until)
				hx_clock_done();
			return rc;
		}
		if (rc == 2)
			continue; /* delayed bytes are due */
		struct pollfd p[2] = {{.fd = f->notify, .events = POLLIN},
				      {.fd = e->ch.cancel_fd, .events = POLLIN}};
		poll(p, 2, until ? 1 : -1);
	}
}

static ssize_t hx_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	struct hx_end *e = (struct hx_end *)ch;
	struct hx_flow *f = &e->c->flow[e->rx];
	int ms = ch->rd_timeout_ms ? ch->rd_timeout_ms : ch->timeout_ms;
	int rc = hx_wait(e, ms < 0 ? 0 : clock_now_ns() + (uint64_t)ms * HX_MS);

	if (rc == -ECANCELED)
		return ferr_set(err, rc, "%s: cancelled", ch->name);
	if (rc)
		return ferr_set(err, rc, "%s: no data for %d ms", ch->name, ms);
	pthread_mutex_lock(&e->c->lock);
	size_t avail = (f->holding ? f->hold_at : f->len) - f->off;
	if (avail > len)
		avail = len;
	memcpy(buf, f->buf + f->off, avail);
	f->off += avail;
	pthread_mutex_unlock(&e->c->lock);
	hx_clock_touch();
	return (ssize_t)avail; /* 0: closed, end of stream */
}

static void hx_shutdown(struct channel *ch)
{
	struct hx_end *e = (struct hx_end *)ch;

	pthread_mutex_lock(&e->c->lock);
	hx_close_conn_locked(e->c, true);
	pthread_mutex_unlock(&e->c->lock);
}

static void hx_close(struct channel *ch)
{
	struct hx_end *e = (struct hx_end *)ch;
	struct hx_conn *c = e->c;

	pthread_mutex_lock(&hx_net.lock);
	pthread_mutex_lock(&c->lock);
	hx_close_conn_locked(c, true);
	bool last = --c->ends == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		if (hx_net.conn == c)
			hx_net.conn = NULL;
		for (int d = 0; d < 2; d++) {
			free(c->flow[d].buf);
			close(c->flow[d].notify);
		}
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
	pthread_mutex_unlock(&hx_net.lock);
	close(ch->cancel_fd);
	free(e);
}

static const struct channel_ops hx_ops = {
    .kind = "hx",
    .read = hx_read,
    .writev = hx_writev,
    .shutdown = hx_shutdown,
    .close = hx_close,
};

static struct hx_end *hx_end_new(struct hx_conn *c, enum hx_dir rx, const char *uri)
{
	struct hx_end *e = calloc(1, sizeof(*e));

	if (!e)
		abort();
	e->c = c;
	e->rx = rx;
	e->tx = rx == HX_TO_DST ? HX_TO_SRC : HX_TO_DST;
	e->ch.ops = &hx_ops;
	e->ch.fd = -1;
	e->ch.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e->ch.timeout_ms = -1;
	snprintf(e->ch.name, sizeof(e->ch.name), "%s", uri);
	return e;
}

/* ---- what channel_sock.c and channel_uri.c would provide ---- */

int channel_uri_check(const char *uri, bool listening, struct ferr *err)
{
	if (strncmp(uri, "hx:", 3) || !uri[3])
		return ferr_set(err, -EINVAL, "migration URI '%s': the harness knows hx:NAME only",
				uri);
	return 0;
}

int channel_connect_check(const char *uri, const struct channel_opts *opts, struct ferr *err)
{
	return channel_uri_check(uri, false, err);
}

static struct channel_listener **hx_find(const char *uri)
{
	for (unsigned i = 0; i < 4; i++)
		if (hx_net.listeners[i] && !strcmp(hx_net.listeners[i]->uri, uri))
			return &hx_net.listeners[i];
	return NULL;
}

int channel_connect_opts(const char *uri, int timeout_ms, const struct channel_opts *opts,
			 struct channel **out, struct ferr *err)
{
	int rc = channel_uri_check(uri, false, err);

	if (rc)
		return rc;
	pthread_mutex_lock(&hx_net.lock);
	struct channel_listener **lp = hx_find(uri);
	if (!lp || (*lp)->pending) {
		pthread_mutex_unlock(&hx_net.lock);
		return ferr_set(err, -ECONNREFUSED, "%s: connection refused", uri);
	}
	struct hx_conn *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	pthread_mutex_init(&c->lock, NULL);
	for (int d = 0; d < 2; d++)
		c->flow[d].notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->ends = 2;
	(*lp)->pending = hx_end_new(c, HX_TO_DST, uri);
	hx_kick((*lp)->notify);
	hx_net.conn = c;
	pthread_mutex_unlock(&hx_net.lock);
	*out = &hx_end_new(c, HX_TO_SRC, uri)->ch;
	return 0;
}

int channel_connect(const char *uri, int timeout_ms, struct channel **out, struct ferr *err)
{
	return channel_connect_opts(uri, timeout_ms, NULL, out, err);
}

int channel_listen_opts(const char *uri, const struct channel_opts *opts,
			struct channel_listener **out, struct ferr *err)
{
	int rc = channel_uri_check(uri, true, err);

	if (rc)
		return rc;
	pthread_mutex_lock(&hx_net.lock);
	struct channel_listener **slot = NULL;
	for (unsigned i = 0; !hx_find(uri) && !slot && i < 4; i++)
		if (!hx_net.listeners[i])
			slot = &hx_net.listeners[i];
	if (!slot) {
		pthread_mutex_unlock(&hx_net.lock);
		return ferr_set(err, -EADDRINUSE, "%s: address in use", uri);
	}
	struct channel_listener *l = calloc(1, sizeof(*l));
	if (!l)
		abort();
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	l->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*slot = l;
	pthread_mutex_unlock(&hx_net.lock);
	*out = l;
	return 0;
}

int channel_listen(const char *uri, struct channel_listener **out, struct ferr *err)
{
	return channel_listen_opts(uri, NULL, out, err);
}

const char *channel_listener_uri(const struct channel_listener *l)
{
	return l->uri;
}

int channel_accept(struct channel_listener *l, int timeout_ms, struct channel **out,
		   struct ferr *err)
{
	for (;;) {
		hx_drain(l->notify);
		pthread_mutex_lock(&hx_net.lock);
		struct hx_end *e = l->pending;
		l->pending = NULL;
		pthread_mutex_unlock(&hx_net.lock);
		if (e) {
			*out = &e->ch;
			return 0;
		}
		if (hx_fd_set(l->cancel_fd))
			return ferr_set(err, -ECANCELED, "%s: cancelled", l->uri);
		struct pollfd p[2] = {{.fd = l->notify, .events = POLLIN},
				      {.fd = l->cancel_fd, .events = POLLIN}};
		poll(p, 2, -1);
	}
}

void channel_listener_cancel(struct channel_listener *l)
{
	hx_kick(l->cancel_fd);
}

void channel_listener_close(struct channel_listener *l)
{
	pthread_mutex_lock(&hx_net.lock);
	struct channel_listener **lp = hx_find(l->uri);
	if (lp && *lp == l)
		*lp = NULL;
	struct hx_end *e = l->pending;
	pthread_mutex_unlock(&hx_net.lock);
	if (e)
		hx_close(&e->ch);
	close(l->cancel_fd);
	close(l->notify);
	free(l);
}
