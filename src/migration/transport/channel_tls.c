// SPDX-License-Identifier: GPL-2.0-only
/*
 * TLS channels: a connected tcp: or unix: channel carrying a GnuTLS
 * session, with mutual x509 authentication.  docs/security.md says what
 * it protects, docs/channels.md how it behaves.
 *
 * The channel keeps the socket kinds' semantics: the socket stays
 * O_NONBLOCK, GnuTLS is called without blocking, and every wait is a
 * channel_poll() on {fd, cancel_fd} with the inactivity limit and the
 * channel's absolute deadline.  The cancel eventfd is the wrapped
 * socket channel's own, so channel_cancel() needs no TLS knowledge.
 *
 * Threads: as for sockets, one thread may write while another reads
 * (GnuTLS allows one sender and one receiver per session, and only a send
 * pushes: a key update the peer asks for is sent before our next record).
 * Fields are marked with the side that owns them.  Session tickets are off: a TLS
 * 1.3 ticket is a post-handshake message, and the session is never
 * resumed anyway.
 *
 * Writes gather the caller's vectors (a page batch is many 4 KiB
 * vectors) into up to 256 KiB, which GnuTLS encrypts as 16 KiB records
 * that go out together (tls_write_batch); with kernel TLS, one record at
 * a time through GnuTLS (tls_write_record).  Either way, what was
 * encrypted but not sent when the deadline or a timeout ended the wait
 * stays pending, and the next writev, which by the channel contract
 * starts with the same bytes, completes it (checked against our copy, so
 * a caller that breaks the contract gets an error, not a corrupt stream).
 * Reads take as much ciphertext as the socket has (tls_pull).
 *
 * Handshake: the server first peeks at the first byte, so that a
 * plaintext client is named as such instead of as a GnuTLS parse error.
 * In TLS 1.3 the client finishes its handshake before the server has
 * checked the client's certificate; so that a refusal reaches the client
 * as an error of its connect (and not as a reset in the middle of the
 * stream), the server's first application byte is TLS_ACCEPTED, and the
 * client waits for it.
 *
 * Kernel TLS: GnuTLS moves the record layer into the kernel after the
 * handshake when it was built with it, its configuration enables it
 * ("ktls = true" in [global]) and the kernel has the tls ULP; that
 * needs the socket as its transport, which is why the default socket
 * functions are used (with GNUTLS_NO_SIGNAL: no SIGPIPE).  Whether it
 * happened, and why not, is reported by channel_get_security().
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <gnutls/x509.h>

#include "common/clock.h"
#include "migration/transport/channel.h"
#include "migration/transport/channel_priv.h"
#include "migration/transport/channel_tls.h"

/* Plaintext bytes per record: TLS's maximum. */
#define TLS_RECORD 16384
/* As the socket kinds: a look at the cancel eventfd per MiB moved. */
#define TLS_CANCEL_CHECK (1u << 20)
/* The first byte of a TLS ClientHello (a handshake record). */
#define TLS_CONTENT_HANDSHAKE 0x16
/* The server's first application byte: it took the client's certificate. */
#define TLS_ACCEPTED 0x06
/* The handshake limit of an accept that would wait forever. */
#define TLS_HANDSHAKE_DEFAULT_MS 10000
/* Ciphertext read per recv(), plaintext encrypted per write, and room for
 * the records of a write (header, tag and padding of each). */
#define TLS_READ_BUF	 (256u << 10)
#define TLS_BATCH	 (256u << 10)
#define TLS_BATCH_CIPHER (TLS_BATCH + (TLS_BATCH / TLS_RECORD + 1) * 512)
#define TLS_ULP_LIST	 "/proc/sys/net/ipv4/tcp_available_ulp"

struct channel_tls_creds {
	_Atomic unsigned refs;
	bool server;
	bool direct; /* test only: GnuTLS's own socket I/O after the handshake */
	gnutls_certificate_credentials_t x509;
};

struct tls_channel {
	struct channel ch;		 /* first: ops get &ch and convert back */
	struct channel *inner;		 /* the socket; owned */
	struct channel_tls_creds *creds; /* a reference: the session points into it */
	gnutls_session_t sess;
	bool server;
	bool ready;		     /* handshake done: close sends close_notify */
	_Atomic bool shut;	     /* channel_shutdown() was called */
	_Atomic bool gone;	     /* the reader saw the peer go without close_notify */
	char hostname[256];	     /* client: what the server's certificate must name */
	struct channel_security sec; /* set once, after the handshake */
	/* writer only */
	size_t pending; /* wbuf bytes encrypted, not all sent yet (tls_writev) */
	size_t wr_unchecked;
	bool batched;	    /* our push function: no kernel TLS */
	size_t olen, osent; /* obuf[osent, olen): records not yet sent */
	uint8_t wbuf[TLS_BATCH];
	uint8_t obuf[TLS_BATCH_CIPHER];
	/* reader only */
	size_t rd_unchecked;
	size_t roff, rlen; /* rbuf[roff, rlen): received, not yet given to GnuTLS */
	uint8_t rbuf[TLS_READ_BUF];
};

/* ---- credentials ---- */

static void creds_free(struct channel_tls_creds *c)
{
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	free(c);
}

void channel_tls_creds_put(struct channel_tls_creds *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		creds_free(c);
}

void channel_tls_creds_direct(struct channel_tls_creds *c, bool direct)
{
	c->direct = direct;
}

static struct channel_tls_creds *creds_get(struct channel_tls_creds *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

/* @dir/@name into @path; 0 when it is readable, 1 when optional and absent. */
static int creds_path(const char *dir, const char *name, bool optional, char *path, size_t len,
		      struct ferr *err)
{
	if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len)
		return ferr_set(err, -ENAMETOOLONG, "tls-creds %s: path too long", dir);
	if (access(path, R_OK) == 0)
		return 0;
	if (optional && errno == ENOENT)
		return 1;
	return ferr_errno(err, -errno, "tls-creds %s: cannot read %s", dir, name);
}

int channel_tls_creds_load(const char *dir, bool server, struct channel_tls_creds **out,
			   struct ferr *err)
{
	const char *cert = server ? "server-cert.pem" : "client-cert.pem";
	const char *key = server ? "server-key.pem" : "client-key.pem";
	char ca_path[4096], crl_path[4096], cert_path[4096], key_path[4096];
	struct channel_tls_creds *c;
	struct stat st;
	int rc;

	*out = NULL;
	if (stat(dir, &st) < 0)
		return ferr_errno(err, -errno, "tls-creds %s", dir);
	if (!S_ISDIR(st.st_mode))
		return ferr_set(err, -ENOTDIR,
				"tls-creds %s: not a directory (expected one holding ca-cert.pem, "
				"%s and %s)",
				dir, cert, key);
	if ((rc = creds_path(dir, "ca-cert.pem", false, ca_path, sizeof(ca_path), err)) ||
	    (rc = creds_path(dir, cert, false, cert_path, sizeof(cert_path), err)) ||
	    (rc = creds_path(dir, key, false, key_path, sizeof(key_path), err)))
		return rc;
	int crl = creds_path(dir, "ca-crl.pem", true, crl_path, sizeof(crl_path), err);
	if (crl < 0)
		return crl;

	c = calloc(1, sizeof(*c));
	if (!c)
		return ferr_set(err, -ENOMEM, "tls-creds %s: out of memory", dir);
	atomic_init(&c->refs, 1);
	c->server = server;
	rc = gnutls_certificate_allocate_credentials(&c->x509);
	if (rc < 0) {
		free(c);
		return ferr_set(err, -ENOMEM, "tls-creds %s: %s", dir, gnutls_strerror(rc));
	}
	rc = gnutls_certificate_set_x509_trust_file(c->x509, ca_path, GNUTLS_X509_FMT_PEM);
	if (rc <= 0) {
		creds_free(c);
		return ferr_set(err, -EINVAL, "tls-creds %s: ca-cert.pem: %s", dir,
				rc ? gnutls_strerror(rc) : "no certificate in it");
	}
	if (crl == 0) {
		rc = gnutls_certificate_set_x509_crl_file(c->x509, crl_path, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			creds_free(c);
			return ferr_set(err, -EINVAL, "tls-creds %s: ca-crl.pem: %s", dir,
					gnutls_strerror(rc));
		}
	}
	rc = gnutls_certificate_set_x509_key_file2(c->x509, cert_path, key_path,
						   GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		creds_free(c);
		return ferr_set(err, -EINVAL, "tls-creds %s: %s with %s: %s", dir, cert, key,
				gnutls_strerror(rc));
	}
	*out = c;
	return 0;
}

/* ---- messages ---- */

static const struct {
	unsigned bit;
	const char *text;
} verify_reasons[] = {
    {GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not found (not issued by the CA in ca-cert.pem)"},
    {GNUTLS_CERT_SIGNER_NOT_CA, "its signer is not a CA"},
    {GNUTLS_CERT_EXPIRED, "certificate expired"},
    {GNUTLS_CERT_NOT_ACTIVATED, "certificate not yet valid"},
    {GNUTLS_CERT_REVOKED, "certificate revoked (ca-crl.pem)"},
    {GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature"},
    {GNUTLS_CERT_INSECURE_ALGORITHM, "signed with an insecure algorithm"},
    {GNUTLS_CERT_UNEXPECTED_OWNER, "the certificate is not for"}, /* + the name */
    {GNUTLS_CERT_PURPOSE_MISMATCH, "not meant for this use (extended key usage)"},
    {GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "the signer's constraints forbid it"},
    {GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS, "unknown critical extensions"},
    {GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED, "ca-crl.pem is out of date"},
    {GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE, "ca-crl.pem is dated in the future"},
};

/* "signer not found (...), certificate expired" for a verification status. */
static void verify_describe(const struct tls_channel *t, unsigned status, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(verify_reasons) / sizeof(verify_reasons[0]); i++) {
		if (!(status & verify_reasons[i].bit) || n >= len)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
				      verify_reasons[i].text);
		if (verify_reasons[i].bit == GNUTLS_CERT_UNEXPECTED_OWNER && n < len)
			n +=
			    (size_t)snprintf(buf + n, len - n, " '%s' (tls-hostname)", t->hostname);
	}
	if (buf[0])
		return;
	gnutls_datum_t out = {NULL, 0};
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
		snprintf(buf, len, "%s", (const char *)out.data);
		gnutls_free(out.data);
	} else {
		snprintf(buf, len, "status 0x%x", status);
	}
}

/* The alert that tells the peer what is wrong with its certificate. */
static gnutls_alert_description_t verify_alert(unsigned status)
{
	if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		return GNUTLS_A_CERTIFICATE_EXPIRED;
	if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		return GNUTLS_A_UNKNOWN_CA;
	if (status & GNUTLS_CERT_REVOKED)
		return GNUTLS_A_CERTIFICATE_REVOKED;
	return GNUTLS_A_BAD_CERTIFICATE;
}

/* The peer ended the handshake with a fatal alert: say what it objected to. */
static int tls_refused(struct tls_channel *t, struct ferr *err)
{
	gnutls_alert_description_t a = gnutls_alert_get(t->sess);
	bool cert = a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_UNSUPPORTED_CERTIFICATE ||
		    a == GNUTLS_A_CERTIFICATE_REVOKED || a == GNUTLS_A_CERTIFICATE_EXPIRED ||
		    a == GNUTLS_A_CERTIFICATE_UNKNOWN || a == GNUTLS_A_UNKNOWN_CA ||
		    a == GNUTLS_A_CERTIFICATE_REQUIRED;

	return ferr_set(err, -EACCES, "%s: tls: the peer refused %s: %s", t->ch.name,
			cert ? "our certificate" : "the handshake", gnutls_alert_get_name(a));
}

static int tls_handshake_error(struct tls_channel *t, int code, struct ferr *err)
{
	const char *name = t->ch.name;
	char why[400];

	/* Tell the peer why (GnuTLS leaves that to us), so that it can say so
	 * too; one try, without waiting. */
	if (code == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
		gnutls_alert_send(t->sess, GNUTLS_AL_FATAL,
				  verify_alert(gnutls_session_get_verify_cert_status(t->sess)));
	else if (code != GNUTLS_E_FATAL_ALERT_RECEIVED)
		gnutls_alert_send_appropriate(t->sess, code);

	switch (code) {
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
	case GNUTLS_E_CERTIFICATE_ERROR:
		verify_describe(t, gnutls_session_get_verify_cert_status(t->sess), why,
				sizeof(why));
		return ferr_set(err, -EACCES, "%s: tls: certificate verification failed: %s", name,
				why);
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_REQUIRED:
		return ferr_set(err, -EACCES, "%s: tls: the peer sent no certificate (%s)", name,
				t->server ? "a client certificate is required"
					  : "the server must present one");
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		return tls_refused(t, err);
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		if (!t->server)
			return ferr_set(err, -EPROTO,
					"%s: tls: the peer did not answer the TLS handshake "
					"(plaintext server?): %s",
					name, gnutls_strerror(code));
		return ferr_set(err, -EPROTO, "%s: tls: the handshake broke off: %s", name,
				gnutls_strerror(code));
	default:
		return ferr_set(err, -EPROTO, "%s: tls: handshake failed: %s", name,
				gnutls_strerror(code));
	}
}

static int tls_handshake_wait_error(struct tls_channel *t, int rc, struct ferr *err)
{
	if (rc == -ECANCELED)
		return ferr_set(err, rc, "%s: cancelled", t->ch.name);
	if (rc == -ETIMEDOUT)
		return ferr_set(err, rc, "%s: tls: the handshake did not complete in time",
				t->ch.name);
	return ferr_errno(err, rc, "%s: poll", t->ch.name);
}

/* An I/O error after the handshake, worded as the socket kinds word theirs. */
static int tls_io_error(struct tls_channel *t, int code, const char *what, struct ferr *err)
{
	const char *name = t->ch.name;
	int e = errno ? errno : EIO;

	switch (code) {
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
		if (atomic_load(&t->shut) && (e == EPIPE || e == ENOTCONN))
			return ferr_set(err, -e, "%s: shut down", name);
		if (e == EPIPE)
			return ferr_set(err, -e, "%s: connection closed by peer", name);
		if (e == ECONNRESET)
			return ferr_set(err, -e, "%s: connection reset by peer", name);
		if (e == ETIMEDOUT)
			return ferr_set(err, -e, "%s: peer unreachable (TCP timed out)", name);
		return ferr_errno(err, -e, "%s: %s", name, what);
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		return ferr_set(err, -ECONNABORTED, "%s: tls: the peer ended the session: %s", name,
				gnutls_alert_get_name(gnutls_alert_get(t->sess)));
	case GNUTLS_E_DECRYPTION_FAILED:
		return ferr_set(err, -EBADMSG,
				"%s: tls: a record failed its integrity check (altered on the way)",
				name);
	case GNUTLS_E_INVALID_SESSION: /* an earlier failure, in the other direction */
		if (atomic_load(&t->gone))
			return ferr_set(err, -EPIPE, "%s: connection closed by peer", name);
		return ferr_set(err, -EPIPE, "%s: tls: the session failed earlier", name);
	case GNUTLS_E_REHANDSHAKE:
		return ferr_set(err, -EPROTO,
				"%s: tls: the peer asked to renegotiate, which "
				"ferry does not do",
				name);
	default:
		return ferr_set(err, -EPROTO, "%s: tls: %s: %s", name, what, gnutls_strerror(code));
	}
}

/* ---- channel ops ---- */

/* Whether @iov starts with the @len bytes of @p. */
static bool iov_starts_with(const struct iovec *iov, int iovcnt, const uint8_t *p, size_t len)
{
	for (int i = 0; i < iovcnt && len; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
		if (memcmp(iov[i].iov_base, p, n))
			return false;
		p += n;
		len -= n;
	}
	return len == 0;
}

/* A socket error while flushing, worded as the socket kinds word theirs. */
static int tls_sock_error(struct tls_channel *t, int e, struct ferr *err)
{
	errno = e;
	return tls_io_error(t, GNUTLS_E_PUSH_ERROR, "send", err);
}

/*
 * Batched writes (no kernel TLS): GnuTLS encrypts up to TLS_BATCH of
 * plaintext into records that tls_push() collects in obuf, and obuf goes
 * out in as few send() calls as the socket allows, instead of one per
 * 16 KiB record.  The batch counts as written once all of it left; until
 * then it is pending (see tls_writev).  Writer thread only.
 */
static ssize_t tls_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct tls_channel *t = p;
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > sizeof(t->obuf) - t->olen) {
		errno = ENOBUFS; /* cannot happen: obuf holds a batch's records */
		return -1;
	}
	for (int i = 0; i < iovcnt; i++) {
		memcpy(t->obuf + t->olen, iov[i].iov_base, iov[i].iov_len);
		t->olen += iov[i].iov_len;
	}
	return (ssize_t)total;
}

static ssize_t tls_write_batch(struct tls_channel *t, size_t len, struct ferr *err)
{
	struct channel *ch = &t->ch;
	uint64_t deadline = 0;

	if (!t->pending) {
		for (size_t off = 0; off < len;) {
			size_t n = len - off < TLS_RECORD ? len - off : TLS_RECORD;
			errno = 0;
			ssize_t r = gnutls_record_send(t->sess, t->wbuf + off, n);
			if (r <= 0)
				return tls_io_error(t, r ? (int)r : GNUTLS_E_INTERNAL_ERROR, "send",
						    err);
			off += (size_t)r;
		}
		t->pending = len;
	}
	while (t->osent < t->olen) {
		ssize_t n = send(ch->fd, t->obuf + t->osent, t->olen - t->osent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			t->osent += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return tls_sock_error(t, errno, err);
		if (!deadline)
			deadline = channel_deadline_after(ch->timeout_ms);
		int rc = channel_poll(ch->fd, POLLOUT, ch->cancel_fd, deadline,
				      atomic_load(&ch->deadline_ns));
		if (rc)
			return channel_wait_error(ch, rc, "peer took no data", err);
		t->wr_unchecked = 0;
	}
	size_t done = t->pending;
	t->pending = t->olen = t->osent = 0;
	t->wr_unchecked += done;
	return (ssize_t)done;
}

/* Kernel TLS: GnuTLS writes to the socket itself, one record per call; a
 * record it could not send whole stays inside it, and a retry (NULL, 0)
 * finishes it. */
static ssize_t tls_write_record(struct tls_channel *t, size_t len, struct ferr *err)
{
	struct channel *ch = &t->ch;
	const void *data = t->pending ? NULL : t->wbuf;
	uint64_t deadline = 0;

	for (;;) {
		errno = 0;
		ssize_t n = gnutls_record_send(t->sess, data, data ? len : 0);
		if (n > 0) {
			t->pending = 0;
			t->wr_unchecked += (size_t)n;
			return n;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if (data) {
				t->pending = len;
				data = NULL;
			}
			if (n == GNUTLS_E_INTERRUPTED)
				continue;
			if (!deadline)
				deadline = channel_deadline_after(ch->timeout_ms);
			int rc = channel_poll(ch->fd, POLLOUT, ch->cancel_fd, deadline,
					      atomic_load(&ch->deadline_ns));
			if (rc)
				return channel_wait_error(ch, rc, "peer took no data", err);
			t->wr_unchecked = 0;
			continue;
		}
		return tls_io_error(t, n ? (int)n : GNUTLS_E_INTERNAL_ERROR, "send", err);
	}
}

/*
 * Plaintext accepted but not yet all on the wire (t->pending bytes of
 * wbuf: a batch, or a record GnuTLS holds) is what a write cut short by
 * the deadline or a timeout leaves; the next write must start with the
 * same bytes (the channel contract), which is checked, and completes it.
 */
static ssize_t tls_writev(struct channel *ch, const struct iovec *iov, int iovcnt, struct ferr *err)
{
	struct tls_channel *t = (struct tls_channel *)ch;
	size_t max = t->batched ? TLS_BATCH : TLS_RECORD, len = 0;

	if (t->wr_unchecked >= TLS_CANCEL_CHECK) {
		if (channel_cancelled(ch->cancel_fd))
			return ferr_set(err, -ECANCELED, "%s: cancelled", ch->name);
		t->wr_unchecked = 0;
	}
	if (t->pending) {
		if (!iov_starts_with(iov, iovcnt, t->wbuf, t->pending))
			return ferr_set(err, -EIO,
					"%s: tls: a write cut short is not resumed with the same "
					"bytes",
					ch->name);
		len = t->pending;
	} else {
		for (int i = 0; i < iovcnt && len < max; i++) {
			size_t n = iov[i].iov_len < max - len ? iov[i].iov_len : max - len;
			memcpy(t->wbuf + len, iov[i].iov_base, n);
			len += n;
		}
	}
	return t->batched ? tls_write_batch(t, len, err) : tls_write_record(t, len, err);
}

static ssize_t tls_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	struct tls_channel *t = (struct tls_channel *)ch;
	uint64_t deadline = 0;

	if (t->rd_unchecked >= TLS_CANCEL_CHECK) {
		if (channel_cancelled(ch->cancel_fd))
			return ferr_set(err, -ECANCELED, "%s: cancelled", ch->name);
		t->rd_unchecked = 0;
	}
	for (;;) {
		errno = 0;
		ssize_t n = gnutls_record_recv(t->sess, buf, len);
		if (n >= 0) {
			t->rd_unchecked += (size_t)n;
			return n;
		}
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		/* The peer went away without close_notify: to the stream, whose own
		 * end record tells a complete stream from a cut one, that is the
		 * end of the stream, as on a plain socket. */
		if (n == GNUTLS_E_PREMATURE_TERMINATION) {
			atomic_store(&t->gone, true);
			return 0;
		}
		if (n != GNUTLS_E_AGAIN)
			return tls_io_error(t, (int)n, "receive", err);
		if (!deadline)
			deadline = channel_deadline_after(ch->rd_timeout_ms ? ch->rd_timeout_ms
									    : ch->timeout_ms);
		/* Not the channel's deadline: a read cut mid-record could never resume. */
		int rc = channel_poll(ch->fd, POLLIN, ch->cancel_fd, deadline, 0);
		if (rc)
			return channel_wait_error(ch, rc, "no data", err);
		t->rd_unchecked = 0;
	}
}

/* Data GnuTLS already decrypted and buffered is input the socket no longer shows. */
static int tls_wait_input(struct channel *ch, struct ferr *err)
{
	struct tls_channel *t = (struct tls_channel *)ch;

	if (gnutls_record_check_pending(t->sess) > 0 || t->roff < t->rlen)
		return 0;
	int rc = channel_poll(ch->fd, POLLIN, ch->cancel_fd, channel_deadline_after(ch->timeout_ms),
			      atomic_load(&ch->deadline_ns));
	return rc ? channel_wait_error(ch, rc, "no data", err) : 0;
}

/* As for sockets: both directions, our own blocked reader included.  No
 * close_notify: another thread may be sending on the session. */
static void tls_shutdown(struct channel *ch)
{
	struct tls_channel *t = (struct tls_channel *)ch;

	atomic_store(&t->shut, true);
	channel_shutdown(t->inner);
}

static void tls_free(struct tls_channel *t)
{
	if (t->sess)
		gnutls_deinit(t->sess);
	channel_tls_creds_put(t->creds);
	channel_close(t->inner);
	free(t);
}

static void tls_close(struct channel *ch)
{
	struct tls_channel *t = (struct tls_channel *)ch;

	/* One try, without waiting: the peer then reads a clean end of stream. */
	if (t->ready && !atomic_load(&t->shut) && !t->pending) {
		gnutls_bye(t->sess, GNUTLS_SHUT_WR);
		if (t->batched && t->olen &&
		    send(ch->fd, t->obuf, t->olen, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* the peer gets no close_notify: it sees the end anyway */
		}
	}
	tls_free(t);
}

static void tls_security(const struct channel *ch, struct channel_security *sec)
{
	*sec = ((const struct tls_channel *)ch)->sec;
}

static const struct channel_ops tls_ops = {
    .kind = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .wait_input = tls_wait_input,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .security = tls_security,
};

/*
 * GnuTLS reads a record as two recv() calls, its header and then its
 * body: 130000 system calls per GiB.  After the handshake (when kernel
 * TLS did not take over, which needs GnuTLS's own socket functions), it
 * reads through this instead: as much as the socket has, up to
 * TLS_READ_BUF, in one call.  The reader thread only.
 */
static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tls_channel *t = p;

	if (t->roff == t->rlen) {
		ssize_t n = recv(t->ch.fd, t->rbuf, sizeof(t->rbuf), 0);
		if (n <= 0)
			return n; /* errno says why: EAGAIN is waited for by tls_read */
		t->roff = 0;
		t->rlen = (size_t)n;
	}
	size_t n = len < t->rlen - t->roff ? len : t->rlen - t->roff;
	memcpy(buf, t->rbuf + t->roff, n);
	t->roff += n;
	return (ssize_t)n;
}

/* After the handshake: our buffered reads and batched writes, unless the
 * kernel does the records (which needs GnuTLS's own socket functions). */
static void tls_tune(struct tls_channel *t)
{
	if (gnutls_transport_is_ktls_enabled(t->sess) || t->creds->direct)
		return;
	gnutls_transport_set_ptr(t->sess, t);
	gnutls_transport_set_pull_function(t->sess, tls_pull);
	gnutls_transport_set_vec_push_function(t->sess, tls_push);
	t->batched = true;
}

/* ---- setting up ---- */

/* Why GnuTLS did not hand the record layer to the kernel. */
static void ktls_why_not(char *buf, size_t len)
{
	char ulps[256] = "";
	FILE *f = fopen(TLS_ULP_LIST, "re");
	bool tls = false;

	if (f) {
		if (fgets(ulps, sizeof(ulps), f))
			for (char *w = strtok(ulps, " \n"); w; w = strtok(NULL, " \n"))
				tls |= strcmp(w, "tls") == 0;
		fclose(f);
	}
	if (!tls)
		snprintf(buf, len,
			 "off: the kernel offers no TLS offload (no 'tls' in %s: load the tls "
			 "module, or the kernel lacks CONFIG_TLS)",
			 TLS_ULP_LIST);
	else
		snprintf(buf, len,
			 "off: GnuTLS did not enable it (it needs 'ktls = true' in the "
			 "[global] section of %s)",
			 gnutls_get_system_config_file());
}

static void tls_describe(struct tls_channel *t)
{
	struct channel_security *s = &t->sec;
	unsigned int n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(t->sess, &n);
	gnutls_transport_ktls_enable_flags_t k = gnutls_transport_is_ktls_enabled(t->sess);
	const char *proto = gnutls_protocol_get_name(gnutls_protocol_get_version(t->sess));
	const char *cipher = gnutls_cipher_get_name(gnutls_cipher_get(t->sess));

	s->tls = true;
	snprintf(s->protocol, sizeof(s->protocol), "%s", proto ? proto : "?");
	snprintf(s->cipher, sizeof(s->cipher), "%s", cipher ? cipher : "?");
	if (peers && n) {
		gnutls_x509_crt_t crt;
		gnutls_datum_t dn = {NULL, 0};
		if (gnutls_x509_crt_init(&crt) == 0) {
			if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0 &&
			    gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
				snprintf(s->peer, sizeof(s->peer), "%s", (const char *)dn.data);
				gnutls_free(dn.data);
			}
			gnutls_x509_crt_deinit(crt);
		}
	}
	s->ktls = (k & GNUTLS_KTLS_DUPLEX) == GNUTLS_KTLS_DUPLEX;
	if (s->ktls)
		snprintf(s->ktls_note, sizeof(s->ktls_note), "on");
	else if (k & GNUTLS_KTLS_SEND)
		snprintf(s->ktls_note, sizeof(s->ktls_note), "send only");
	else if (k & GNUTLS_KTLS_RECV)
		snprintf(s->ktls_note, sizeof(s->ktls_note), "receive only");
	else
		ktls_why_not(s->ktls_note, sizeof(s->ktls_note));
}

/* A TLS channel around @inner (taken: closed on failure), its session not started. */
static int tls_new(struct channel *inner, struct channel_tls_creds *c, const char *hostname,
		   struct tls_channel **out, struct ferr *err)
{
	struct tls_channel *t = calloc(1, sizeof(*t));
	unsigned flags = GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS;
	int rc;

	if (!t) {
		rc = ferr_set(err, -ENOMEM, "%s: out of memory", inner->name);
		channel_close(inner);
		return rc;
	}
	t->ch.ops = &tls_ops;
	t->ch.fd = inner->fd;
	t->ch.cancel_fd = inner->cancel_fd; /* the socket channel's: it closes it */
	t->ch.timeout_ms = inner->timeout_ms;
	memcpy(t->ch.name, inner->name, sizeof(t->ch.name));
	t->inner = inner;
	t->creds = creds_get(c);
	t->server = c->server;
	/* A new channel may have been cancelled before its first call. */
	t->rd_unchecked = TLS_CANCEL_CHECK;
	t->wr_unchecked = TLS_CANCEL_CHECK;
	if (hostname)
		snprintf(t->hostname, sizeof(t->hostname), "%s", hostname);

	rc = gnutls_init(&t->sess, flags | (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT));
	if (rc >= 0)
		rc = gnutls_set_default_priority(t->sess);
	if (rc >= 0)
		rc = gnutls_credentials_set(t->sess, GNUTLS_CRD_CERTIFICATE, c->x509);
	if (rc < 0) {
		ferr_set(err, -ENOMEM, "%s: tls: %s", inner->name, gnutls_strerror(rc));
		tls_free(t);
		return -ENOMEM;
	}
	if (c->server) {
		gnutls_certificate_server_set_request(t->sess, GNUTLS_CERT_REQUIRE);
		/* No list of acceptable CAs in the request: a client then sends
		 * the certificate it has rather than none, and a certificate from
		 * the wrong CA is reported as that, on both sides. */
		gnutls_certificate_send_x509_rdn_sequence(t->sess, 1);
	}
	/* The CA, validity, key purpose and (client) the name, during the handshake.
	 * The session keeps a pointer to the name: ours lives as long. */
	gnutls_session_set_verify_cert(t->sess, c->server ? NULL : t->hostname, 0);
	gnutls_transport_set_int(t->sess, inner->fd);
	gnutls_handshake_set_timeout(t->sess, 0); /* ours: the deadline */
	*out = t;
	return 0;
}

static int tls_handshake(struct tls_channel *t, uint64_t deadline, int cancel_fd, struct ferr *err)
{
	for (;;) {
		int r = gnutls_handshake(t->sess);
		if (r == GNUTLS_E_SUCCESS)
			return 0;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			short ev = gnutls_record_get_direction(t->sess) ? POLLOUT : POLLIN;
			int rc = channel_poll(t->ch.fd, ev, cancel_fd, deadline, 0);
			if (rc)
				return tls_handshake_wait_error(t, rc, err);
			continue;
		}
		if (!gnutls_error_is_fatal(r))
			continue; /* a warning alert */
		return tls_handshake_error(t, r, err);
	}
}

/* Server: the first byte of a TLS client is a handshake record's type. */
static int tls_expect_hello(struct tls_channel *t, uint64_t deadline, int cancel_fd,
			    struct ferr *err)
{
	for (;;) {
		uint8_t b;
		ssize_t n = recv(t->ch.fd, &b, 1, MSG_PEEK);
		if (n == 1 && b == TLS_CONTENT_HANDSHAKE)
			return 0;
		if (n == 1)
			return ferr_set(err, -EPROTO,
					"%s: tls: the peer did not start a TLS handshake "
					"(plaintext client?)",
					t->ch.name);
		if (n == 0)
			return ferr_set(err, -EPIPE,
					"%s: tls: the peer closed the connection before the "
					"handshake",
					t->ch.name);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return ferr_errno(err, -errno, "%s: tls: receive", t->ch.name);
		int rc = channel_poll(t->ch.fd, POLLIN, cancel_fd, deadline, 0);
		if (rc)
			return tls_handshake_wait_error(t, rc, err);
	}
}

/* Server: tell the client its certificate was accepted (one byte). */
static int tls_confirm(struct tls_channel *t, uint64_t deadline, int cancel_fd, struct ferr *err)
{
	static const uint8_t ok = TLS_ACCEPTED;
	const void *data = &ok;

	for (;;) {
		errno = 0;
		ssize_t n = gnutls_record_send(t->sess, data, data ? 1 : 0);
		if (n > 0)
			return 0;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			return tls_io_error(t, (int)n, "send", err);
		data = NULL; /* GnuTLS holds the record: retry */
		int rc = channel_poll(t->ch.fd, POLLOUT, cancel_fd, deadline, 0);
		if (rc)
			return tls_handshake_wait_error(t, rc, err);
	}
}

/* Client: wait for the server's verdict on our certificate. */
static int tls_await_confirm(struct tls_channel *t, uint64_t deadline, struct ferr *err)
{
	for (;;) {
		uint8_t b;
		errno = 0;
		ssize_t n = gnutls_record_recv(t->sess, &b, 1);
		if (n == 1 && b == TLS_ACCEPTED)
			return 0;
		if (n == 1)
			return ferr_set(err, -EPROTO,
					"%s: tls: the peer sent 0x%02x where ferry confirms the "
					"handshake (not a ferry?)",
					t->ch.name, b);
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PULL_ERROR)
			return ferr_set(err, -EPIPE,
					"%s: tls: the peer closed the connection after the "
					"handshake (did it refuse our certificate?)",
					t->ch.name);
		if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
			return tls_refused(t, err);
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			return tls_io_error(t, (int)n, "receive", err);
		int rc = channel_poll(t->ch.fd, POLLIN, -1, deadline, 0);
		if (rc)
			return tls_handshake_wait_error(t, rc, err);
	}
}

int channel_tls_client(struct channel *inner, struct channel_tls_creds *c, const char *hostname,
		       uint64_t deadline, struct channel **out, struct ferr *err)
{
	struct tls_channel *t;
	int rc = tls_new(inner, c, hostname, &t, err);

	*out = NULL;
	if (rc)
		return rc;
	rc = tls_handshake(t, deadline, -1, err);
	if (!rc)
		rc = tls_await_confirm(t, deadline, err);
	if (rc) {
		tls_free(t);
		return rc;
	}
	t->ready = true;
	tls_tune(t);
	tls_describe(t);
	*out = &t->ch;
	return 0;
}

int channel_tls_server(struct channel *inner, struct channel_tls_creds *c, uint64_t deadline,
		       int cancel_fd, struct channel **out, struct ferr *err)
{
	struct tls_channel *t;
	int rc;

	*out = NULL;
	if (deadline == CHANNEL_NO_DEADLINE)
		deadline = channel_deadline_after(TLS_HANDSHAKE_DEFAULT_MS);
	rc = tls_new(inner, c, NULL, &t, err);
	if (rc)
		return rc;
	rc = tls_expect_hello(t, deadline, cancel_fd, err);
	if (!rc)
		rc = tls_handshake(t, deadline, cancel_fd, err);
	if (!rc)
		rc = tls_confirm(t, deadline, cancel_fd, err);
	if (rc) {
		tls_free(t);
		return rc;
	}
	t->ready = true;
	tls_tune(t);
	tls_describe(t);
	*out = &t->ch;
	return 0;
}
