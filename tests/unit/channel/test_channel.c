// SPDX-License-Identifier: GPL-2.0-only
/*
 * The tcp:, unix: and file: channels over real sockets and files: bulk
 * round trips, both directions at once, timeouts, cancellation from
 * another thread, peers that vanish, and the URIs operators get wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "migration/transport/channel.h"

#define BULK_LEN (64u << 20)
#define MS	 1000000ull

struct fixture {
	char dir[64]; /* a private temp dir for unix sockets and files */
};

static char *fixture_path(void **state, const char *name, char *buf, size_t len)
{
	struct fixture *f = *state;

	snprintf(buf, len, "%s/%s", f->dir, name);
	return buf;
}

/* Position-dependent content: any lost, doubled or reordered piece shows. */
static uint8_t *pattern(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len / 4; i++) {
		uint32_t v = (uint32_t)i * 0x9E3779B1u + seed;
		memcpy(p + 4 * i, &v, 4);
	}
	return p;
}

/* ---- threads moving data ---- */

struct job {
	struct channel *ch;
	const uint8_t *data; /* write: the source; read: what to expect */
	size_t len;
	int rc;
	struct ferr err;
	uint64_t done_ns;
};

/* All of @data as many vectors of irregular sizes, some empty, well past IOV_MAX. */
static void *writer(void *arg)
{
	struct job *j = arg;
	size_t cap = j->len / 1024 + 16, n = 0, off = 0;
	struct iovec *iov = calloc(cap, sizeof(*iov));
	uint32_t x = 12345;

	while (off < j->len && n < cap) {
		x = x * 1103515245u + 12345u;
		size_t piece = (x >> 8) % 4096 == 0 ? 0 : 1 + (x >> 8) % 8191;
		if (piece > j->len - off || n == cap - 1)
			piece = j->len - off;
		iov[n++] = (struct iovec){(void *)(j->data + off), piece};
		off += piece;
	}
	j->err = (struct ferr)FERR_INIT;
	j->rc = channel_writev_full(j->ch, iov, (int)n, &j->err);
	j->done_ns = clock_now_ns();
	free(iov);
	return NULL;
}

/* Reads in irregular chunk sizes and compares with @data. */
static void *reader(void *arg)
{
	struct job *j = arg;
	static const size_t chunks[] = {1, 7, 4096, 65536 + 3, 1u << 20, 3u << 20};
	uint8_t *buf = malloc(3u << 20);
	size_t off = 0;
	unsigned k = 0;

	j->err = (struct ferr)FERR_INIT;
	j->rc = 0;
	while (off < j->len && !j->rc) {
		size_t n = chunks[k++ % 6];
		if (n > j->len - off)
			n = j->len - off;
		j->rc = channel_read_full(j->ch, buf, n, &j->err);
		if (!j->rc && memcmp(buf, j->data + off, n))
			j->rc = ferr_set(&j->err, -EBADMSG, "content differs near offset %zu", off);
		off += n;
	}
	j->done_ns = clock_now_ns();
	free(buf);
	return NULL;
}

static void join_ok(pthread_t t, struct job *j)
{
	pthread_join(t, NULL);
	if (j->rc)
		print_error("job failed: %s\n", j->err.msg);
	assert_int_equal(j->rc, 0);
}

/* A connected pair: *c from channel_connect(), *s from channel_accept(). */
static void pair(const char *uri, struct channel **c, struct channel **s)
{
	struct ferr err = FERR_INIT;
	struct channel_listener *l;

	assert_int_equal(channel_listen(uri, &l, &err), 0);
	assert_int_equal(channel_connect(channel_listener_uri(l), 1000, c, &err), 0);
	assert_int_equal(channel_accept(l, 1000, s, &err), 0);
	channel_listener_close(l);
}

static void bulk_roundtrip(const char *uri)
{
	uint8_t *data = pattern(BULK_LEN, 1);
	struct channel *c, *s;
	struct job w, r;
	pthread_t tw, tr;

	pair(uri, &c, &s);
	w = (struct job){.ch = c, .data = data, .len = BULK_LEN};
	r = (struct job){.ch = s, .data = data, .len = BULK_LEN};
	pthread_create(&tw, NULL, writer, &w);
	pthread_create(&tr, NULL, reader, &r);
	join_ok(tw, &w);
	join_ok(tr, &r);
	assert_int_equal(atomic_load(&c->bytes_written), BULK_LEN);
	assert_int_equal(atomic_load(&s->bytes_read), BULK_LEN);
	assert_int_equal(atomic_load(&c->bytes_read), 0);
	/* The writer closes: the reader sees a clean end of stream. */
	channel_close(c);
	char byte;
	struct ferr err = FERR_INIT;
	assert_int_equal(s->ops->read(s, &byte, 1, &err), 0);
	channel_close(s);
	free(data);
}

static void test_tcp_bulk(void **state)
{
	bulk_roundtrip("tcp:127.0.0.1:0");
}

static void test_unix_bulk(void **state)
{
	char path[128], uri[160];

	snprintf(uri, sizeof(uri), "unix:%s", fixture_path(state, "bulk.sock", path, sizeof(path)));
	bulk_roundtrip(uri);
}

static void test_file_bulk(void **state)
{
	uint8_t *data = pattern(BULK_LEN, 2);
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	struct channel *ch, *again;
	char path[128], uri[160];
	struct stat st;
	struct job j;

	snprintf(uri, sizeof(uri), "file:%s", fixture_path(state, "save.bin", path, sizeof(path)));
	assert_int_equal(channel_connect(uri, -1, &ch, &err), 0);
	assert_string_equal(ch->ops->kind, "file");
	j = (struct job){.ch = ch, .data = data, .len = BULK_LEN};
	writer(&j);
	assert_int_equal(j.rc, 0);
	assert_int_equal(atomic_load(&ch->bytes_written), BULK_LEN);
	/* Written only: reading is refused with a message naming the file. */
	char byte;
	assert_int_equal(ch->ops->read(ch, &byte, 1, &err), -EBADF);
	assert_non_null(strstr(err.msg, uri));
	channel_close(ch);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, BULK_LEN);
	assert_int_equal(st.st_mode & 0077, 0); /* a guest's memory is private */

	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_listen(uri, &l, &err), 0);
	assert_string_equal(channel_listener_uri(l), uri);
	assert_int_equal(channel_accept(l, 0, &ch, &err), 0);
	assert_int_equal(channel_accept(l, 0, &again, &err), -EINVAL);
	assert_null(again);
	j = (struct job){.ch = ch, .data = data, .len = BULK_LEN};
	reader(&j);
	assert_int_equal(j.rc, 0);
	assert_int_equal(atomic_load(&ch->bytes_read), BULK_LEN);
	/* Past the end: -EPIPE naming the file. */
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_read_full(ch, &byte, 1, &err), -EPIPE);
	assert_non_null(strstr(err.msg, uri));
	channel_close(ch);
	channel_listener_close(l);
	free(data);
}

static void test_file_cancel_and_errors(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	char path[128], uri[160];
	struct channel *ch;

	snprintf(uri, sizeof(uri), "file:%s", fixture_path(state, "c.bin", path, sizeof(path)));
	assert_int_equal(channel_connect(uri, -1, &ch, &err), 0);
	assert_int_equal(channel_write_full(ch, "abc", 3, &err), 0);
	channel_cancel(ch);
	assert_int_equal(channel_write_full(ch, "def", 3, &err), -ECANCELED);
	assert_non_null(strstr(err.msg, uri));
	channel_close(ch);

	snprintf(uri, sizeof(uri), "file:%s",
		 fixture_path(state, "missing.bin", path, sizeof(path)));
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_listen(uri, &l, &err), -ENOENT);
	assert_null(l);
	assert_non_null(strstr(err.msg, uri));

	err = (struct ferr)FERR_INIT;
	snprintf(uri, sizeof(uri), "file:%s", fixture_path(state, "", path, sizeof(path)));
	assert_int_equal(channel_listen(uri, &l, &err), -EISDIR);
}

/* ---- both directions at once on one socket ---- */

static void bidirectional(const char *uri)
{
	size_t len = 16u << 20; /* far more than the socket buffers: needs concurrency */
	uint8_t *down = pattern(len, 3), *up = pattern(len, 4);
	struct channel *c, *s;
	struct job jobs[4];
	pthread_t t[4];

	pair(uri, &c, &s);
	jobs[0] = (struct job){.ch = c, .data = down, .len = len};
	jobs[1] = (struct job){.ch = s, .data = down, .len = len};
	jobs[2] = (struct job){.ch = s, .data = up, .len = len};
	jobs[3] = (struct job){.ch = c, .data = up, .len = len};
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, i % 2 ? reader : writer, &jobs[i]);
	for (int i = 0; i < 4; i++)
		join_ok(t[i], &jobs[i]);
	assert_int_equal(atomic_load(&c->bytes_written), len);
	assert_int_equal(atomic_load(&c->bytes_read), len);
	assert_int_equal(atomic_load(&s->bytes_written), len);
	assert_int_equal(atomic_load(&s->bytes_read), len);
	channel_close(c);
	channel_close(s);
	free(down);
	free(up);
}

static void test_tcp_bidirectional(void **state)
{
	bidirectional("tcp:127.0.0.1:0");
}

static void test_unix_bidirectional(void **state)
{
	char path[128], uri[160];

	snprintf(uri, sizeof(uri), "unix:%s", fixture_path(state, "bidi.sock", path, sizeof(path)));
	bidirectional(uri);
}

/* ---- accept ---- */

static void test_listener_uri(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	unsigned port;
	char rest;

	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, &err), 0);
	assert_int_equal(sscanf(channel_listener_uri(l), "tcp:127.0.0.1:%u%c", &port, &rest), 1);
	assert_true(port > 0 && port < 65536);
	channel_listener_close(l);

	/* IPv6 comes back in brackets, when the host has it. */
	if (channel_listen("tcp:[::1]:0", &l, &err) == 0) {
		assert_int_equal(sscanf(channel_listener_uri(l), "tcp:[::1]:%u%c", &port, &rest),
				 1);
		struct channel *c, *s;
		assert_int_equal(channel_connect(channel_listener_uri(l), 1000, &c, &err), 0);
		assert_int_equal(channel_accept(l, 1000, &s, &err), 0);
		assert_string_equal(s->ops->kind, "tcp");
		assert_non_null(strstr(s->name, " from [::1]:"));
		channel_close(c);
		channel_close(s);
		channel_listener_close(l);
	}
}

static int sockopt(struct channel *ch, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(ch->fd, level, name, &v, &len), 0);
	return v;
}

/* Both ends: no Nagle delay for small return-path messages, and a dead
 * peer is noticed in seconds; buffer sizes stay with autotuning. */
static void test_tcp_options(void **state)
{
	struct channel *ends[2];

	pair("tcp:127.0.0.1:0", &ends[0], &ends[1]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sockopt(ends[i], IPPROTO_TCP, TCP_NODELAY), 1);
		assert_int_equal(sockopt(ends[i], SOL_SOCKET, SO_KEEPALIVE), 1);
		assert_true(sockopt(ends[i], IPPROTO_TCP, TCP_KEEPIDLE) <= 10);
		assert_int_equal(sockopt(ends[i], IPPROTO_TCP, TCP_KEEPCNT), 5);
		/* It would abort a live peer with a zero window: timeout_ms's job. */
		assert_int_equal(sockopt(ends[i], IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
		assert_true(fcntl(ends[i]->fd, F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(ends[i]->fd, F_GETFD) & FD_CLOEXEC);
		channel_close(ends[i]);
	}
}

static void test_accept_timeout(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	struct channel *ch;

	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, &err), 0);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_accept(l, 100, &ch, &err), -ETIMEDOUT);
	uint64_t dt = clock_now_ns() - t0;
	assert_null(ch);
	assert_true(dt >= 99 * MS && dt < 1000 * MS);
	assert_non_null(strstr(err.msg, channel_listener_uri(l)));
	channel_listener_close(l);
}

struct canceller {
	struct channel_listener *l;
	struct channel *ch;
	uint64_t at_ns;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;

	usleep(100 * 1000);
	k->at_ns = clock_now_ns();
	if (k->l)
		channel_listener_cancel(k->l);
	else
		channel_cancel(k->ch);
	return NULL;
}

static void test_accept_cancel(void **state)
{
	struct ferr err = FERR_INIT;
	struct canceller k = {0};
	struct channel *ch;
	pthread_t t;

	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &k.l, &err), 0);
	pthread_create(&t, NULL, cancel_later, &k);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_accept(k.l, -1, &ch, &err), -ECANCELED);
	uint64_t end = clock_now_ns();
	pthread_join(t, NULL);
	assert_true(end - t0 < 1000 * MS);
	assert_true(end - k.at_ns < 500 * MS);
	assert_non_null(strstr(err.msg, "cancelled"));
	/* It stays cancelled, even with a connection waiting. */
	struct channel *c;
	assert_int_equal(channel_connect(channel_listener_uri(k.l), 1000, &c, &err), 0);
	assert_int_equal(channel_accept(k.l, -1, &ch, &err), -ECANCELED);
	channel_close(c);
	channel_listener_close(k.l);
}

/* ---- reads that wait ---- */

static void test_read_cancel(void **state)
{
	struct ferr err = FERR_INIT;
	struct canceller k = {0};
	struct channel *c, *s;
	char buf[16];
	pthread_t t;

	pair("tcp:127.0.0.1:0", &c, &s);
	k.ch = s;
	pthread_create(&t, NULL, cancel_later, &k);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_read_full(s, buf, sizeof(buf), &err), -ECANCELED);
	uint64_t end = clock_now_ns();
	pthread_join(t, NULL);
	assert_true(end - t0 < 1000 * MS);
	assert_non_null(strstr(err.msg, s->name));
	/* Later calls fail too, in either direction. */
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_write_full(s, "x", 1, &err), -ECANCELED);
	/* The other end was not cancelled. */
	assert_int_equal(channel_write_full(c, "x", 1, &err), 0);
	channel_close(c);
	channel_close(s);
}

/* A writer blocked on a peer that does not read. */
static void test_write_cancel(void **state)
{
	size_t len = 64u << 20;
	uint8_t *data = calloc(1, len);
	struct ferr err = FERR_INIT;
	struct canceller k = {0};
	struct channel *c, *s;
	pthread_t t;

	pair("tcp:127.0.0.1:0", &c, &s);
	c->timeout_ms = -1;
	k.ch = c;
	pthread_create(&t, NULL, cancel_later, &k);
	assert_int_equal(channel_write_full(c, data, len, &err), -ECANCELED);
	uint64_t end = clock_now_ns();
	pthread_join(t, NULL);
	assert_true(end - k.at_ns < 500 * MS);
	assert_true(atomic_load(&c->bytes_written) < len);
	channel_close(c);
	channel_close(s);
	free(data);
}

static void test_read_timeout(void **state)
{
	char path[128], uri[160], buf[16];
	struct ferr err = FERR_INIT;
	struct channel *c, *s;

	snprintf(uri, sizeof(uri), "unix:%s",
		 fixture_path(state, "silent.sock", path, sizeof(path)));
	pair(uri, &c, &s);
	s->timeout_ms = 150;
	/* Some progress first: the limit is on silence, not on the whole read. */
	assert_int_equal(channel_write_full(c, "abc", 3, &err), 0);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_read_full(s, buf, sizeof(buf), &err), -ETIMEDOUT);
	uint64_t dt = clock_now_ns() - t0;
	assert_true(dt >= 149 * MS && dt < 1000 * MS);
	assert_int_equal(atomic_load(&s->bytes_read), 3);
	char want[256];
	snprintf(want, sizeof(want), "%s: no data for 150 ms", uri);
	assert_string_equal(err.msg, want);
	channel_close(c);
	channel_close(s);
}

static void test_write_timeout(void **state)
{
	size_t len = 64u << 20;
	uint8_t *data = calloc(1, len);
	struct ferr err = FERR_INIT;
	struct channel *c, *s;

	pair("tcp:127.0.0.1:0", &c, &s);
	c->timeout_ms = 150;
	assert_int_equal(channel_write_full(c, data, len, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "peer took no data for 150 ms"));
	assert_true(atomic_load(&c->bytes_written) < len);
	channel_close(c);
	channel_close(s);
	free(data);
}

/*
 * The deadline is absolute: a peer that keeps taking data slowly (here:
 * a trickle of reads) does not extend it, as an inactivity timeout would.
 */
struct trickle {
	struct channel *s;
	_Atomic bool stop;
};

static void *trickle_reader(void *arg)
{
	struct trickle *t = arg;
	char buf[4096];
	struct ferr err = FERR_INIT;

	while (!atomic_load(&t->stop)) {
		if (t->s->ops->read(t->s, buf, sizeof(buf), &err) <= 0)
			break;
		usleep(2000);
	}
	return NULL;
}

static void test_write_deadline_on_slow_peer(void **state)
{
	size_t len = 64u << 20, sent = 0;
	uint8_t *data = calloc(1, len);
	struct ferr err = FERR_INIT;
	struct trickle t = {0};
	struct channel *c;
	pthread_t th;

	pair("tcp:127.0.0.1:0", &c, &t.s);
	c->timeout_ms = 1000; /* longer than the deadline: it must not matter */
	assert_int_equal(pthread_create(&th, NULL, trickle_reader, &t), 0);
	uint64_t t0 = clock_now_ns();
	channel_set_deadline(c, t0 + 300 * MS);
	struct iovec iov = {data, len};
	assert_int_equal(channel_writev_sent(c, &iov, 1, &sent, &err), -ETIME);
	uint64_t dt = clock_now_ns() - t0;
	assert_true(dt >= 299 * MS && dt < 400 * MS);
	assert_true(sent > 0 && sent < len);
	assert_int_equal(atomic_load(&c->bytes_written), sent);
	assert_non_null(strstr(err.msg, "the deadline passed"));
	/* Past the deadline, nothing more moves, at once. */
	ferr_clear(&err);
	t0 = clock_now_ns();
	assert_int_equal(channel_write_full(c, "x", 1, &err), -ETIME);
	assert_true(clock_now_ns() - t0 < 10 * MS);
	assert_int_equal(atomic_load(&c->bytes_written), sent);
	/* Cleared, the channel works again. */
	channel_set_deadline(c, 0);
	ferr_clear(&err);
	assert_int_equal(channel_write_full(c, "x", 1, &err), 0);
	atomic_store(&t.stop, true);
	channel_shutdown(t.s);
	pthread_join(th, NULL);
	channel_close(c);
	channel_close(t.s);
	free(data);
}

static void test_read_and_wait_deadline(void **state)
{
	char path[128], uri[160], buf[16];
	struct ferr err = FERR_INIT;
	struct channel *c, *s;

	snprintf(uri, sizeof(uri), "unix:%s",
		 fixture_path(state, "deadline.sock", path, sizeof(path)));
	pair(uri, &c, &s);
	s->timeout_ms = 5000;
	uint64_t t0 = clock_now_ns();
	channel_set_deadline(s, t0 + 100 * MS);
	assert_int_equal(channel_wait_input(s, &err), -ETIME);
	uint64_t dt = clock_now_ns() - t0;
	assert_true(dt >= 99 * MS && dt < 1000 * MS);
	ferr_clear(&err);
	assert_int_equal(channel_write_full(c, "abc", 3, &err), 0);
	/* Reads are not cut: a reader must never lose its place in a record. */
	assert_int_equal(channel_read_full(s, buf, 2, &err), 0);
	assert_memory_equal(buf, "ab", 2);
	ferr_clear(&err);
	assert_int_equal(channel_wait_input(s, &err), -ETIME); /* c is still there, but too late */
	channel_set_deadline(s, 0);
	ferr_clear(&err);
	assert_int_equal(channel_wait_input(s, &err), 0);
	assert_int_equal(channel_read_full(s, buf, 1, &err), 0);
	assert_memory_equal(buf, "c", 1);
	channel_close(c);
	channel_close(s);
}

static void test_peer_closes_mid_read(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	char buf[100];

	pair("tcp:127.0.0.1:0", &c, &s);
	assert_int_equal(channel_write_full(c, "0123456789", 10, &err), 0);
	channel_close(c);
	assert_int_equal(channel_read_full(s, buf, sizeof(buf), &err), -EPIPE);
	assert_non_null(strstr(err.msg, s->name));
	assert_non_null(strstr(err.msg, "after 10 of 100 bytes"));
	assert_int_equal(s->ops->read(s, buf, sizeof(buf), &err), 0);
	channel_close(s);
}

/* channel_shutdown() from one thread wakes a reader in another, and the
 * peer sees the end of the stream. */
static void *read_one(void *arg)
{
	struct job *j = arg;
	char byte;

	j->err = (struct ferr)FERR_INIT;
	j->rc = channel_read_full(j->ch, &byte, 1, &j->err);
	j->done_ns = clock_now_ns();
	return NULL;
}

static void shutdown_wakes(const char *uri)
{
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	struct job j;
	pthread_t t;
	char byte;

	pair(uri, &c, &s);
	j = (struct job){.ch = s};
	pthread_create(&t, NULL, read_one, &j);
	usleep(50 * 1000);
	uint64_t t0 = clock_now_ns();
	channel_shutdown(s);
	pthread_join(t, NULL);
	assert_int_equal(j.rc, -EPIPE);
	assert_true(j.done_ns - t0 < 500 * MS);
	assert_int_equal(c->ops->read(c, &byte, 1, &err), 0);
	err = (struct ferr)FERR_INIT;
	assert_true(channel_write_full(s, "x", 1, &err) < 0);
	assert_non_null(strstr(err.msg, "shut down"));
	channel_close(c);
	channel_close(s);
}

static void test_shutdown_wakes_reader(void **state)
{
	char path[128], uri[160];

	shutdown_wakes("tcp:127.0.0.1:0");
	snprintf(uri, sizeof(uri), "unix:%s", fixture_path(state, "shut.sock", path, sizeof(path)));
	shutdown_wakes(uri);
}

/* Writes to a vanished peer fail with an error; SIGPIPE keeps its default
 * action here, so a missing MSG_NOSIGNAL would kill the test. */
static void write_to_closed(const char *uri)
{
	static char chunk[64 << 10];
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	int rc = 0;

	pair(uri, &c, &s);
	channel_close(s);
	for (int i = 0; i < 1000 && !rc; i++)
		rc = channel_write_full(c, chunk, sizeof(chunk), &err);
	assert_true(rc == -EPIPE || rc == -ECONNRESET);
	assert_non_null(strstr(err.msg, c->name));
	assert_non_null(strstr(err.msg, rc == -EPIPE ? "connection closed by peer"
						     : "connection reset by peer"));
	channel_close(c);
}

static void test_no_sigpipe(void **state)
{
	char path[128], uri[160];

	assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	write_to_closed("tcp:127.0.0.1:0");
	snprintf(uri, sizeof(uri), "unix:%s", fixture_path(state, "pipe.sock", path, sizeof(path)));
	write_to_closed(uri);
}

/* ---- connecting ---- */

static void test_connect_refused(void **state)
{
	char path[128], uri[160], want[256];
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	struct channel *ch;

	/* A port that was free a moment ago. */
	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, &err), 0);
	snprintf(uri, sizeof(uri), "%s", channel_listener_uri(l));
	channel_listener_close(l);
	assert_int_equal(channel_connect(uri, 1000, &ch, &err), -ECONNREFUSED);
	assert_null(ch);
	snprintf(want, sizeof(want), "%s: connection refused (is the destination listening?)", uri);
	assert_string_equal(err.msg, want);

	snprintf(uri, sizeof(uri), "unix:%s",
		 fixture_path(state, "nobody.sock", path, sizeof(path)));
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_connect(uri, 1000, &ch, &err), -ENOENT);
	assert_non_null(strstr(err.msg, uri));

	err = (struct ferr)FERR_INIT;
	assert_true(channel_connect("tcp:nosuchhost.invalid:4444", 1000, &ch, &err) < 0);
	assert_non_null(strstr(err.msg, "tcp:nosuchhost.invalid:4444: cannot resolve"));
}

/* A listener that accepts nobody: once its backlog is full, SYNs are
 * dropped and connect() has to give up at the deadline. */
static void test_connect_timeout(void **state)
{
	struct channel *held[64] = {0};
	struct channel_listener *l;
	struct ferr err = FERR_INIT;
	uint64_t dt = 0;
	int rc = 0, n;

	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, &err), 0);
	for (n = 0; n < 64; n++) {
		err = (struct ferr)FERR_INIT;
		uint64_t t0 = clock_now_ns();
		rc = channel_connect(channel_listener_uri(l), 100, &held[n], &err);
		dt = clock_now_ns() - t0;
		if (rc)
			break;
	}
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(dt >= 99 * MS && dt < 1000 * MS);
	assert_non_null(strstr(err.msg, "no answer within 100 ms"));
	for (int i = 0; i < n; i++)
		channel_close(held[i]);
	channel_listener_close(l);
}

struct bad_uri {
	const char *uri;
	bool listen;
	const char *why;
};

static void test_bad_uris(void **state)
{
	static const struct bad_uri cases[] = {
	    {"tpc:x", false, "unknown transport (expected tcp:HOST:PORT, unix:PATH or file:PATH)"},
	    {"", false, "unknown transport"},
	    {"mem", false, "unknown transport"},
	    {"TCP:h:1", false, "unknown transport"},
	    {"tcp", false, "unknown transport"},
	    {"tcp:", false, "missing port"},
	    {"tcp:host", false, "missing port"},
	    {"tcp::4444", true, "missing host"},
	    {"tcp:host:", false, "port must be a number from 1 to 65535"},
	    {"tcp:host:0", false, "port must be a number from 1 to 65535"},
	    {"tcp:host:65536", false, "from 1 to 65535"},
	    {"tcp:host:99999999999999999999", false, "from 1 to 65535"},
	    {"tcp:host:-1", false, "from 1 to 65535"},
	    {"tcp:host:+80", false, "from 1 to 65535"},
	    {"tcp:host:80x", false, "from 1 to 65535"},
	    {"tcp:host: 80", false, "from 1 to 65535"},
	    {"tcp:host:70000", true, "port must be a number from 0 to 65535"},
	    {"tcp:::1:4444", false, "an IPv6 address needs brackets"},
	    {"tcp:[::1:4444", false, "missing ']'"},
	    {"tcp:[::1]4444", false, "expected ':PORT' after ']'"},
	    {"tcp:[]:4444", false, "missing host"},
	    {"unix:", true, "missing path"},
	    {"file:", false, "missing path"},
	    {"unix:/tmp/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.sock",
	     false, "socket path longer than 107 bytes"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_uri *c = &cases[i];
		struct ferr err = FERR_INIT;
		struct channel_listener *l = (void *)1;
		struct channel *ch = (void *)1;
		char want[300];
		int rc;

		rc = c->listen ? channel_listen(c->uri, &l, &err)
			       : channel_connect(c->uri, 100, &ch, &err);
		snprintf(want, sizeof(want), "migration URI '%s': ", c->uri);
		if (rc != -EINVAL || strncmp(err.msg, want, strlen(want)) ||
		    !strstr(err.msg, c->why))
			fail_msg("'%s': rc %d, message \"%s\"", c->uri, rc, err.msg);
		assert_null(c->listen ? (void *)l : (void *)ch);
	}
	/* Port 0 picks one when listening, and is the right error when connecting. */
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	assert_int_equal(channel_listen("tcp:127.0.0.1:00000", &l, &err), 0);
	channel_listener_close(l);
}

/* ---- unix socket paths ---- */

static void test_unix_paths(void **state)
{
	char path[128], uri[160];
	struct ferr err = FERR_INIT;
	struct channel_listener *l, *l2;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	/* In use by a live server: refused, and the server keeps its socket. */
	snprintf(uri, sizeof(uri), "unix:%s", fixture_path(state, "live.sock", path, sizeof(path)));
	assert_int_equal(channel_listen(uri, &l, &err), 0);
	assert_int_equal(channel_listen(uri, &l2, &err), -EADDRINUSE);
	assert_null(l2);
	char want[256];
	snprintf(want, sizeof(want), "%s: in use by a running server", uri);
	assert_string_equal(err.msg, want);
	struct channel *c, *s;
	assert_int_equal(channel_connect(uri, 1000, &c, &err), 0);
	channel_close(c);
	/* Closing removes the socket file it created. */
	channel_listener_close(l);
	assert_int_equal(stat(path, &st), -1);

	/* Stale: a socket file whose server is gone is reused. */
	snprintf(uri, sizeof(uri), "unix:%s",
		 fixture_path(state, "stale.sock", path, sizeof(path)));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_listen(uri, &l, &err), 0);
	assert_int_equal(channel_connect(uri, 1000, &c, &err), 0);
	assert_int_equal(channel_accept(l, 1000, &s, &err), 0);
	assert_string_equal(s->ops->kind, "unix");
	assert_string_equal(s->name, uri);
	channel_close(c);
	channel_close(s);
	channel_listener_close(l);

	/* Anything else at the path is never deleted. */
	snprintf(uri, sizeof(uri), "unix:%s", fixture_path(state, "precious", path, sizeof(path)));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("keep me", f);
	fclose(f);
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_listen(uri, &l, &err), -EEXIST);
	snprintf(want, sizeof(want), "%s: path exists and is not a socket", uri);
	assert_string_equal(err.msg, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 7);
	unlink(path);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-channel-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {"bulk.sock",   "bidi.sock", "save.bin",  "c.bin",
					    "silent.sock", "shut.sock", "pipe.sock", "stale.sock",
					    "live.sock",   "precious"};
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_uris),
	    cmocka_unit_test(test_listener_uri),
	    cmocka_unit_test(test_tcp_options),
	    cmocka_unit_test(test_tcp_bulk),
	    cmocka_unit_test(test_unix_bulk),
	    cmocka_unit_test(test_file_bulk),
	    cmocka_unit_test(test_file_cancel_and_errors),
	    cmocka_unit_test(test_tcp_bidirectional),
	    cmocka_unit_test(test_unix_bidirectional),
	    cmocka_unit_test(test_accept_timeout),
	    cmocka_unit_test(test_accept_cancel),
	    cmocka_unit_test(test_read_cancel),
	    cmocka_unit_test(test_write_cancel),
	    cmocka_unit_test(test_read_timeout),
	    cmocka_unit_test(test_write_timeout),
	    cmocka_unit_test(test_write_deadline_on_slow_peer),
	    cmocka_unit_test(test_read_and_wait_deadline),
	    cmocka_unit_test(test_peer_closes_mid_read),
	    cmocka_unit_test(test_shutdown_wakes_reader),
	    cmocka_unit_test(test_no_sigpipe),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test(test_connect_timeout),
	    cmocka_unit_test(test_unix_paths),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
