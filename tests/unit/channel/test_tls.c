// SPDX-License-Identifier: GPL-2.0-only
/*
 * TLS channels over real tcp: and unix: sockets, with credentials made at
 * run time by scripts/tls-certs.sh (certtool): the handshake and what it
 * reports, bulk transfer both ways at once, the inactivity timeout,
 * cancellation, the absolute deadline (and resuming a write it cut
 * short), data buffered inside GnuTLS, and every kind of peer that must
 * be refused, with the words each side gets.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "migration/transport/channel.h"

#define MS	 1000000ull
#define BULK_LEN (32u << 20)

static char dir[64];	  /* the fixture's temporary directory */
static char good[128];	  /* CA, server and client certificates */
static char other[128];	  /* another CA and its own certificates */
static char foreign[128]; /* good's CA, but a client certificate of other's CA */
static char exp_srv[128]; /* good's CA; the server certificate expired */
static char exp_cli[128]; /* good's CA; the client certificate expired */

static const struct channel_opts good_opts = {.tls_creds = good};
/* GnuTLS's own socket I/O, the path kernel TLS takes (this host may lack it). */
static const struct channel_opts direct_opts = {.tls_creds = good, .x_tls_direct = true};

/* ---- helpers ---- */

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

/* An accept in another thread: a TLS handshake needs both ends moving. */
struct acceptor {
	struct channel_listener *l;
	int timeout_ms;
	struct channel *ch;
	int rc;
	struct ferr err;
	pthread_t t;
};

static void *accept_thread(void *arg)
{
	struct acceptor *a = arg;

	a->err = (struct ferr)FERR_INIT;
	a->rc = channel_accept(a->l, a->timeout_ms, &a->ch, &a->err);
	return NULL;
}

static void accept_start(struct acceptor *a, struct channel_listener *l, int timeout_ms)
{
	*a = (struct acceptor){.l = l, .timeout_ms = timeout_ms};
	assert_int_equal(pthread_create(&a->t, NULL, accept_thread, a), 0);
}

static void accept_join(struct acceptor *a)
{
	pthread_join(a->t, NULL);
}

/* A connected TLS pair over @uri, the client with @copts, the server with @sopts. */
static void tls_pair(const char *uri, const struct channel_opts *copts,
		     const struct channel_opts *sopts, struct channel **c, struct channel **s)
{
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	struct acceptor a;

	assert_int_equal(channel_listen_opts(uri, sopts, &l, &err), 0);
	accept_start(&a, l, 5000);
	int rc = channel_connect_opts(channel_listener_uri(l), 5000, copts, c, &err);
	accept_join(&a);
	if (rc || a.rc)
		print_error("client: %s\nserver: %s\n", err.msg, a.err.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(a.rc, 0);
	*s = a.ch;
	channel_listener_close(l);
}

static const char *unix_uri(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "unix:%s/%s", dir, name);
	return buf;
}

/* One connection attempt that must fail: both sides' messages. */
struct refusal {
	int client_rc, server_rc;
	struct ferr client, server;
};

static void attempt(const char *uri, const struct channel_opts *copts,
		    const struct channel_opts *sopts, struct refusal *r)
{
	struct channel_listener *l;
	struct channel *c = NULL;
	struct acceptor a;
	struct ferr err = FERR_INIT;

	assert_int_equal(channel_listen_opts(uri, sopts, &l, &err), 0);
	accept_start(&a, l, 5000);
	r->client = (struct ferr)FERR_INIT;
	r->client_rc = channel_connect_opts(channel_listener_uri(l), 5000, copts, &c, &r->client);
	/* A plaintext client starts its stream as ferry's would. */
	if (!r->client_rc && !copts)
		channel_write_full(c, "FERRYMIG\1\0\0\0", 12, &r->client);
	if (!r->client_rc) /* let the server see the end of it */
		channel_close(c);
	accept_join(&a);
	r->server_rc = a.rc;
	r->server = a.err;
	if (!a.rc)
		channel_close(a.ch);
	channel_listener_close(l);
	print_message("client: %d %s\nserver: %d %s\n", r->client_rc, r->client.msg, r->server_rc,
		      r->server.msg);
}

/* ---- the handshake ---- */

static void test_handshake_reports(void **state)
{
	struct channel_security cs, ss;
	struct channel *c, *s;

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	assert_string_equal(c->ops->kind, "tls");
	assert_string_equal(s->ops->kind, "tls");
	channel_get_security(c, &cs);
	channel_get_security(s, &ss);
	assert_true(cs.tls && ss.tls);
	assert_string_equal(cs.protocol, "TLS1.3");
	assert_string_equal(cs.cipher, ss.cipher);
	/* Each side names the other's certificate. */
	assert_non_null(strstr(cs.peer, "CN=localhost"));
	assert_non_null(strstr(ss.peer, "CN=ferry-source"));
	/* kTLS is either on or says why not. */
	assert_true(cs.ktls ? strcmp(cs.ktls_note, "on") == 0
			    : strncmp(cs.ktls_note, "off: ", 5) == 0);
	print_message("%s %s, peer %s, kTLS %s\n", cs.protocol, cs.cipher, cs.peer, cs.ktls_note);
	/* The handshake is not counted as stream bytes. */
	assert_int_equal(atomic_load(&c->bytes_read), 0);
	assert_int_equal(atomic_load(&s->bytes_written), 0);
	/* A plaintext channel says so. */
	struct channel *m;
	struct ferr err = FERR_INIT;
	assert_int_equal(channel_mem_open("x", 1, &m, &err), 0);
	channel_get_security(m, &cs);
	assert_false(cs.tls);
	channel_close(m);
	channel_close(c);
	channel_close(s);
}

/* ---- moving data ---- */

struct job {
	struct channel *ch;
	const uint8_t *data;
	size_t len;
	int rc;
	struct ferr err;
};

/* @data as many vectors of irregular sizes (some empty, some page-sized). */
static void *writer(void *arg)
{
	struct job *j = arg;
	size_t cap = j->len / 1024 + 16, n = 0, off = 0;
	struct iovec *iov = calloc(cap, sizeof(*iov));
	uint32_t x = 777;

	while (off < j->len && n < cap) {
		x = x * 1103515245u + 12345u;
		size_t piece = (x >> 8) % 7 == 0 ? 0 : (x >> 8) % 3 ? 4096 : 1 + (x >> 8) % 70000;
		if (piece > j->len - off || n == cap - 1)
			piece = j->len - off;
		iov[n++] = (struct iovec){(void *)(j->data + off), piece};
		off += piece;
	}
	j->err = (struct ferr)FERR_INIT;
	j->rc = channel_writev_full(j->ch, iov, (int)n, &j->err);
	free(iov);
	return NULL;
}

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

static void bidirectional(const char *uri, const struct channel_opts *copts,
			  const struct channel_opts *sopts)
{
	uint8_t *down = pattern(BULK_LEN, 3), *up = pattern(BULK_LEN, 4);
	struct channel *c, *s;
	struct job jobs[4];
	pthread_t t[4];

	tls_pair(uri, copts, sopts, &c, &s);
	jobs[0] = (struct job){.ch = c, .data = down, .len = BULK_LEN};
	jobs[1] = (struct job){.ch = s, .data = down, .len = BULK_LEN};
	jobs[2] = (struct job){.ch = s, .data = up, .len = BULK_LEN};
	jobs[3] = (struct job){.ch = c, .data = up, .len = BULK_LEN};
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, i % 2 ? reader : writer, &jobs[i]);
	for (int i = 0; i < 4; i++)
		join_ok(t[i], &jobs[i]);
	assert_int_equal(atomic_load(&c->bytes_written), BULK_LEN);
	assert_int_equal(atomic_load(&c->bytes_read), BULK_LEN);
	assert_int_equal(atomic_load(&s->bytes_written), BULK_LEN);
	assert_int_equal(atomic_load(&s->bytes_read), BULK_LEN);
	/* Closing sends close_notify: the other side reads a clean end. */
	channel_close(c);
	char byte;
	struct ferr err = FERR_INIT;
	assert_int_equal(s->ops->read(s, &byte, 1, &err), 0);
	channel_close(s);
	free(down);
	free(up);
}

static void test_tcp_bidirectional(void **state)
{
	bidirectional("tcp:127.0.0.1:0", &good_opts, &good_opts);
}

/* Either side may use either I/O path: the bytes on the wire are TLS. */
static void test_tcp_bidirectional_direct(void **state)
{
	bidirectional("tcp:127.0.0.1:0", &direct_opts, &direct_opts);
	bidirectional("tcp:127.0.0.1:0", &good_opts, &direct_opts);
	bidirectional("tcp:127.0.0.1:0", &direct_opts, &good_opts);
}

static void test_unix_bidirectional(void **state)
{
	struct channel_opts o = {.tls_creds = good, .tls_hostname = "localhost"};
	char uri[160];

	bidirectional(unix_uri("bidi.sock", uri, sizeof(uri)), &o, &good_opts);
}

/* Bytes GnuTLS decrypted but the caller has not read are input, though the
 * socket has nothing left: wait_input must not sleep on them. */
static void test_wait_input_sees_buffered_data(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	char buf[100];

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	assert_int_equal(channel_write_full(c, "0123456789abcdefghij", 20, &err), 0);
	assert_int_equal(channel_read_full(s, buf, 5, &err), 0);
	assert_memory_equal(buf, "01234", 5);
	s->timeout_ms = 2000;
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_wait_input(s, &err), 0);
	assert_true(clock_now_ns() - t0 < 100 * MS);
	assert_int_equal(channel_read_full(s, buf, 15, &err), 0);
	assert_memory_equal(buf, "56789abcdefghij", 15);
	/* Two records that arrive together: ferry's read buffer holds the second,
	 * still encrypted, once the first is read; that is input too. */
	assert_int_equal(channel_write_full(c, "first", 5, &err), 0);
	assert_int_equal(channel_write_full(c, "second", 6, &err), 0);
	usleep(50000);
	assert_int_equal(channel_read_full(s, buf, 5, &err), 0);
	assert_memory_equal(buf, "first", 5);
	t0 = clock_now_ns();
	s->timeout_ms = 2000;
	assert_int_equal(channel_wait_input(s, &err), 0);
	assert_true(clock_now_ns() - t0 < 100 * MS);
	assert_int_equal(channel_read_full(s, buf, 6, &err), 0);
	assert_memory_equal(buf, "second", 6);
	/* Now nothing is buffered anywhere: the wait times out. */
	s->timeout_ms = 100;
	assert_int_equal(channel_wait_input(s, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "no data for 100 ms"));
	channel_close(c);
	channel_close(s);
}

/* ---- timeouts, cancellation, the deadline ---- */

static void test_read_timeout(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	char byte;

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	s->timeout_ms = 150;
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_read_full(s, &byte, 1, &err), -ETIMEDOUT);
	uint64_t dt = clock_now_ns() - t0;
	assert_true(dt >= 149 * MS && dt < 1000 * MS);
	assert_non_null(strstr(err.msg, "no data for 150 ms"));
	assert_non_null(strstr(err.msg, s->name));
	channel_close(c);
	channel_close(s);
}

static void test_write_timeout(void **state)
{
	static uint8_t chunk[1 << 20];
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	int rc = 0;

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	c->timeout_ms = 150;
	/* Nobody reads: the socket buffers fill and the writer stalls. */
	for (int i = 0; i < 256 && !rc; i++)
		rc = channel_write_full(c, chunk, sizeof(chunk), &err);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "peer took no data for 150 ms"));
	channel_close(c);
	channel_close(s);
}

struct canceller {
	struct channel *ch;
	struct channel_listener *l;
	unsigned delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;

	usleep(k->delay_ms * 1000);
	if (k->l)
		channel_listener_cancel(k->l);
	else
		channel_cancel(k->ch);
	return NULL;
}

static void test_read_and_write_cancel(void **state)
{
	static uint8_t chunk[1 << 20];
	struct canceller k = {.delay_ms = 100};
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	pthread_t t;
	char byte;
	int rc = 0;

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	/* A reader waiting for data that never comes. */
	k.ch = s;
	pthread_create(&t, NULL, cancel_later, &k);
	uint64_t t0 = clock_now_ns();
	assert_int_equal(channel_read_full(s, &byte, 1, &err), -ECANCELED);
	assert_true(clock_now_ns() - t0 < 2000 * MS);
	assert_non_null(strstr(err.msg, "cancelled"));
	pthread_join(t, NULL);
	/* A writer whose peer takes nothing. */
	k.ch = c;
	err = (struct ferr)FERR_INIT;
	pthread_create(&t, NULL, cancel_later, &k);
	t0 = clock_now_ns();
	for (int i = 0; i < 256 && !rc; i++)
		rc = channel_write_full(c, chunk, sizeof(chunk), &err);
	assert_int_equal(rc, -ECANCELED);
	assert_true(clock_now_ns() - t0 < 2000 * MS);
	pthread_join(t, NULL);
	channel_close(c);
	channel_close(s);
}

/*
 * The deadline cuts a write short while the peer reads nothing; the
 * writer learns how much went, and after the deadline is lifted it
 * resumes from there (through the record GnuTLS kept) and the reader
 * gets every byte once, in order.
 */
static void deadline_then_resume(const struct channel_opts *o)
{
	size_t len = 16u << 20;
	uint8_t *data = pattern(len, 9);
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	size_t sent = 0;

	tls_pair("tcp:127.0.0.1:0", o, o, &c, &s);
	c->timeout_ms = 5000; /* longer than the deadline: it must not matter */
	uint64_t t0 = clock_now_ns();
	channel_set_deadline(c, t0 + 200 * MS);
	struct iovec iov = {data, len};
	assert_int_equal(channel_writev_sent(c, &iov, 1, &sent, &err), -ETIME);
	uint64_t dt = clock_now_ns() - t0;
	assert_true(dt >= 199 * MS && dt < 1000 * MS);
	assert_non_null(strstr(err.msg, "the deadline passed"));
	assert_true(sent < len);
	/* Past the deadline nothing moves, at once. */
	err = (struct ferr)FERR_INIT;
	struct iovec rest = {data + sent, len - sent};
	assert_int_equal(channel_writev_sent(c, &rest, 1, &sent, &err), -ETIME);
	assert_int_equal(sent, 0);
	size_t done = len - rest.iov_len;
	channel_set_deadline(c, 0);
	struct job r = {.ch = s, .data = data, .len = len};
	pthread_t t;
	pthread_create(&t, NULL, reader, &r);
	rest = (struct iovec){data + done, len - done};
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_writev_full(c, &rest, 1, &err), 0);
	join_ok(t, &r);
	assert_int_equal(atomic_load(&c->bytes_written), len);
	channel_close(c);
	channel_close(s);
	free(data);
}

/* A record GnuTLS holds must be resumed with the same bytes. */
static void test_deadline_then_resume(void **state)
{
	deadline_then_resume(&good_opts);
	deadline_then_resume(&direct_opts);
}

static void resume_with_other_bytes_refused(const struct channel_opts *o)
{
	size_t len = 16u << 20;
	uint8_t *data = pattern(len, 10), *wrong = pattern(len, 11);
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	size_t sent = 0;

	tls_pair("tcp:127.0.0.1:0", o, o, &c, &s);
	channel_set_deadline(c, clock_now_ns() + 100 * MS);
	struct iovec iov = {data, len};
	assert_int_equal(channel_writev_sent(c, &iov, 1, &sent, &err), -ETIME);
	channel_set_deadline(c, 0);
	/* The socket is full and GnuTLS keeps the record it could not send. */
	struct iovec bad = {wrong + sent, len - sent};
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_writev_full(c, &bad, 1, &err), -EIO);
	assert_non_null(strstr(err.msg, "not resumed with the same bytes"));
	channel_close(c);
	channel_close(s);
	free(data);
	free(wrong);
}

static void test_resume_with_other_bytes_refused(void **state)
{
	resume_with_other_bytes_refused(&good_opts);
	resume_with_other_bytes_refused(&direct_opts);
}

static void test_read_and_wait_deadline(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	char byte;

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	s->timeout_ms = 5000;
	uint64_t t0 = clock_now_ns();
	channel_set_deadline(s, t0 + 100 * MS);
	assert_int_equal(channel_wait_input(s, &err), -ETIME);
	assert_true(clock_now_ns() - t0 < 1000 * MS);
	assert_non_null(strstr(err.msg, "the deadline passed"));
	/* Reads are not cut by it (a reader must never lose its place in a
	 * record): data that comes is read, with the deadline still set. */
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_write_full(c, "z", 1, &err), 0);
	assert_int_equal(channel_read_full(s, &byte, 1, &err), 0);
	assert_int_equal(byte, 'z');
	channel_set_deadline(s, 0);
	channel_close(c);
	channel_close(s);
}

/* The peer vanishes (no close_notify) mid-stream: the reader sees the end
 * of the stream, as on a plain socket; a writer gets the socket's words. */
static void test_peer_vanishes(void **state)
{
	static uint8_t chunk[1 << 16];
	struct ferr err = FERR_INIT;
	struct channel *c, *s;
	char byte;
	int rc = 0;

	tls_pair("tcp:127.0.0.1:0", &good_opts, &good_opts, &c, &s);
	channel_shutdown(c); /* no close_notify: as if the process died */
	s->timeout_ms = 2000;
	assert_int_equal(s->ops->read(s, &byte, 1, &err), 0);
	channel_close(c);
	for (int i = 0; i < 1000 && !rc; i++)
		rc = channel_write_full(s, chunk, sizeof(chunk), &err);
	print_message("writer: %d %s\n", rc, err.msg);
	assert_true(rc == -EPIPE || rc == -ECONNRESET);
	assert_non_null(strstr(err.msg, rc == -EPIPE ? "connection closed by peer"
						     : "connection reset by peer"));
	channel_close(s);
}

/* ---- accepting ---- */

/* A connection that never says anything: the handshake ends with the
 * accept's timeout, or at once when the listener is cancelled. */
static void test_accept_handshake_timeout_and_cancel(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel_listener *l;
	struct channel *c;
	struct acceptor a;

	assert_int_equal(channel_listen_opts("tcp:127.0.0.1:0", &good_opts, &l, &err), 0);
	accept_start(&a, l, 200);
	assert_int_equal(channel_connect(channel_listener_uri(l), 1000, &c, &err), 0);
	uint64_t t0 = clock_now_ns();
	accept_join(&a);
	assert_int_equal(a.rc, -ETIMEDOUT);
	assert_true(clock_now_ns() - t0 < 2000 * MS);
	assert_non_null(strstr(a.err.msg, "tls: the handshake did not complete in time"));
	channel_close(c);

	struct canceller k = {.l = l, .delay_ms = 100};
	pthread_t t;
	accept_start(&a, l, -1);
	assert_int_equal(channel_connect(channel_listener_uri(l), 1000, &c, &err), 0);
	pthread_create(&t, NULL, cancel_later, &k);
	accept_join(&a);
	pthread_join(t, NULL);
	assert_int_equal(a.rc, -ECANCELED);
	assert_non_null(strstr(a.err.msg, "cancelled"));
	channel_close(c);
	channel_listener_close(l);
}

/* ---- refusals ---- */

static void assert_has(const char *msg, const char *want)
{
	if (!strstr(msg, want))
		print_error("'%s' not in '%s'\n", want, msg);
	assert_non_null(strstr(msg, want));
}

static void test_plaintext_client_refused(void **state)
{
	struct refusal r;

	attempt("tcp:127.0.0.1:0", NULL, &good_opts, &r);
	assert_int_equal(r.server_rc, -EPROTO);
	assert_has(r.server.msg, "tls: the peer did not start a TLS handshake (plaintext client?)");
	assert_has(r.server.msg, " from 127.0.0.1:"); /* who it was */
}

/* A plaintext server: it reads the ClientHello as a stream and closes. */
struct plain_server {
	struct channel_listener *l;
	pthread_t t;
};

static void *plain_serve(void *arg)
{
	struct plain_server *p = arg;
	struct ferr err = FERR_INIT;
	struct channel *ch;
	char buf[64];

	if (channel_accept(p->l, 5000, &ch, &err) == 0) {
		channel_read_full(ch, buf, 8, &err);
		channel_write_full(ch, "ERROR: bad magic\n", 17, &err);
		channel_close(ch);
	}
	return NULL;
}

static void test_tls_client_against_plaintext_server(void **state)
{
	struct plain_server p;
	struct ferr err = FERR_INIT;
	struct channel *c = NULL;

	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &p.l, &err), 0);
	pthread_create(&p.t, NULL, plain_serve, &p);
	int rc = channel_connect_opts(channel_listener_uri(p.l), 5000, &good_opts, &c, &err);
	pthread_join(p.t, NULL);
	print_message("client: %s\n", err.msg);
	assert_int_equal(rc, -EPROTO);
	assert_null(c);
	assert_has(err.msg, "tls: the peer did not answer the TLS handshake (plaintext server?)");
	channel_listener_close(p.l);
}

static void test_wrong_ca_refused(void **state)
{
	struct channel_opts o = {.tls_creds = other};
	struct refusal r;

	/* The client trusts another CA: it refuses the server. */
	attempt("tcp:127.0.0.1:0", &o, &good_opts, &r);
	assert_int_equal(r.client_rc, -EACCES);
	assert_has(r.client.msg, "tls: certificate verification failed: signer not found");
	assert_true(r.server_rc < 0);
	assert_has(r.server.msg, "tls: the peer refused our certificate: CA is unknown");

	/* The client's certificate is from another CA: the server refuses it. */
	o.tls_creds = foreign;
	attempt("tcp:127.0.0.1:0", &o, &good_opts, &r);
	assert_int_equal(r.server_rc, -EACCES);
	assert_has(r.server.msg, "tls: certificate verification failed: signer not found");
	assert_int_equal(r.client_rc, -EACCES);
	assert_has(r.client.msg, "tls: the peer refused our certificate: CA is unknown");
}

static void test_expired_refused(void **state)
{
	struct channel_opts srv = {.tls_creds = exp_srv}, cli = {.tls_creds = exp_cli};
	struct refusal r;

	attempt("tcp:127.0.0.1:0", &good_opts, &srv, &r);
	assert_int_equal(r.client_rc, -EACCES);
	assert_has(r.client.msg, "tls: certificate verification failed: certificate expired");
	assert_true(r.server_rc < 0);

	attempt("tcp:127.0.0.1:0", &cli, &good_opts, &r);
	assert_int_equal(r.server_rc, -EACCES);
	assert_has(r.server.msg, "tls: certificate verification failed: certificate expired");
	assert_int_equal(r.client_rc, -EACCES);
	assert_has(r.client.msg, "tls: the peer refused our certificate: Certificate is expired");
}

static void test_hostname_checked(void **state)
{
	struct channel_opts o = {.tls_creds = good, .tls_hostname = "db.example"};
	struct refusal r;
	char uri[160];

	attempt("tcp:127.0.0.1:0", &o, &good_opts, &r);
	assert_int_equal(r.client_rc, -EACCES);
	assert_has(r.client.msg, "the certificate is not for 'db.example'");
	/* Over unix: there is no host in the URI: the name must be given... */
	struct channel *c;
	struct ferr err = FERR_INIT;
	assert_int_equal(
	    channel_connect_opts(unix_uri("h.sock", uri, sizeof(uri)), 1000, &good_opts, &c, &err),
	    -EINVAL);
	assert_has(err.msg, "TLS needs tls-hostname");
	/* ... and it is checked. */
	attempt(uri, &o, &good_opts, &r);
	assert_int_equal(r.client_rc, -EACCES);
	assert_has(r.client.msg, "is not for 'db.example'");
	o.tls_hostname = "localhost";
	attempt(uri, &o, &good_opts, &r);
	assert_int_equal(r.client_rc, 0);
	assert_int_equal(r.server_rc, 0);
}

static void test_bad_settings(void **state)
{
	struct channel_opts missing = {.tls_creds = "/nonexistent/creds"};
	struct channel_opts empty = {.tls_creds = dir}; /* a directory without the files */
	struct channel_listener *l;
	struct ferr err = FERR_INIT;
	char uri[160];

	assert_int_equal(channel_listen_opts("tcp:127.0.0.1:0", &missing, &l, &err), -ENOENT);
	assert_has(err.msg, "tls-creds /nonexistent/creds: No such file or directory");
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_connect_check("tcp:127.0.0.1:1", &empty, &err), -ENOENT);
	assert_has(err.msg, "cannot read ca-cert.pem");
	/* A file has no peer: TLS there is refused, not ignored. */
	snprintf(uri, sizeof(uri), "file:%s/snap", dir);
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_connect_check(uri, &good_opts, &err), -EINVAL);
	assert_has(err.msg, "a file has no peer to authenticate");
	err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_connect_check("tcp:127.0.0.1:1", &good_opts, &err), 0);
	assert_int_equal(channel_connect_check("tcp:127.0.0.1:1", NULL, &err), 0);
}

/* ---- fixture ---- */

static void make_creds(const char *args)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "%s %s", TLS_CERTS_SCRIPT, args);
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

static int setup(void **state)
{
	char cmd[1024];

	snprintf(dir, sizeof(dir), "/tmp/ferry-tls-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(good, sizeof(good), "%s/good", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(foreign, sizeof(foreign), "%s/foreign", dir);
	snprintf(exp_srv, sizeof(exp_srv), "%s/exp-srv", dir);
	snprintf(exp_cli, sizeof(exp_cli), "%s/exp-cli", dir);
	snprintf(cmd, sizeof(cmd), "%s", good);
	make_creds(cmd);
	snprintf(cmd, sizeof(cmd), "--cn-prefix other %s", other);
	make_creds(cmd);
	snprintf(cmd, sizeof(cmd), "--ca-from %s --expired server %s", good, exp_srv);
	make_creds(cmd);
	snprintf(cmd, sizeof(cmd), "--ca-from %s --expired client %s", good, exp_cli);
	make_creds(cmd);
	/* good's CA (to check the server) with other's client certificate */
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s && cp %s/ca-cert.pem %s/ && cp %s/client-cert.pem %s/client-key.pem "
		 "%s/",
		 foreign, good, foreign, other, other, foreign);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_reports),
	    cmocka_unit_test(test_tcp_bidirectional),
	    cmocka_unit_test(test_unix_bidirectional),
	    cmocka_unit_test(test_tcp_bidirectional_direct),
	    cmocka_unit_test(test_wait_input_sees_buffered_data),
	    cmocka_unit_test(test_read_timeout),
	    cmocka_unit_test(test_write_timeout),
	    cmocka_unit_test(test_read_and_write_cancel),
	    cmocka_unit_test(test_deadline_then_resume),
	    cmocka_unit_test(test_resume_with_other_bytes_refused),
	    cmocka_unit_test(test_read_and_wait_deadline),
	    cmocka_unit_test(test_peer_vanishes),
	    cmocka_unit_test(test_accept_handshake_timeout_and_cancel),
	    cmocka_unit_test(test_plaintext_client_refused),
	    cmocka_unit_test(test_tls_client_against_plaintext_server),
	    cmocka_unit_test(test_wrong_ca_refused),
	    cmocka_unit_test(test_expired_refused),
	    cmocka_unit_test(test_hostname_checked),
	    cmocka_unit_test(test_bad_settings),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
