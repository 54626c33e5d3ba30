/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Channels: byte transports for the migration stream, with an inactivity
 * timeout and cancellation.
 *
 *   tcp:HOST:PORT   TCP; listen with HOST 0.0.0.0 / [::] or an address
 *   unix:PATH       UNIX stream socket
 *   file:PATH       a file: written by the saving side, read by the loader
 *   mem             an in-memory buffer (unit tests, fuzzing)
 *
 * tcp: and unix: channels can be wrapped in TLS with mutual x509
 * authentication (channel_tls.c): channel_connect_opts() and
 * channel_listen_opts() with tls_creds set.  Every connection either makes
 * then goes through the handshake before it is handed out, so a caller
 * (the stream, the engine, any number of data channels) sees a normal
 * channel with the same timeouts, cancellation and deadline.
 *
 * Sockets are bidirectional: one thread may write the stream while another
 * reads the return path on the same channel.  Every blocking call waits in
 * poll() on the fd and on the channel's cancel eventfd, so channel_cancel()
 * from any thread makes blocked and future calls fail with -ECANCELED; a
 * call that sees no progress for timeout_ms fails with -ETIMEDOUT.
 *
 * A deadline (channel_set_deadline) is absolute and belongs to the
 * channel, not to a call: once it has passed, every write and every wait
 * (channel_wait_input) fails with -ETIME, however the link behaves
 * (stalled, slow, or slowing half-way).  Reads are not cut: a reader that
 * lost its place in a record could never resume, and the engine's waits
 * for an answer are bounded by the deadline instead.  The switchover sets it to the moment its downtime budget
 * runs out, so that no I/O can carry the guest's pause past the limit.
 * A call cut short by it may have moved part of what it was asked to:
 * channel_writev_sent() says how much, and the next write must begin with
 * the bytes that were not sent (a TLS channel may hold a record it has
 * already encrypted, and checks that they are the same).
 *
 * Ownership: the creator owns the channel and is the only one to close it,
 * after every thread using it has stopped.  bytes_read/bytes_written are
 * updated by the reading/writing thread and may be read by anyone.
 */
#ifndef FERRY_MIGRATION_CHANNEL_H
#define FERRY_MIGRATION_CHANNEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"

struct channel;

/* How a channel is protected: channel_get_security(). */
struct channel_security {
	bool tls;	     /* false: plaintext, and the rest is empty */
	char protocol[16];   /* "TLS1.3" */
	char cipher[32];     /* "AES-256-GCM" */
	char peer[192];	     /* the subject of the peer's certificate */
	bool ktls;	     /* the kernel encrypts and decrypts (both directions) */
	char ktls_note[232]; /* "on", or why it is off */
};

struct channel_ops {
	const char *kind; /* "tcp", "unix", "file", "mem", "tls" */
	/* Up to @len bytes: > 0 read, 0 at end of stream, < 0 -errno.  */
	ssize_t (*read)(struct channel *ch, void *buf, size_t len, struct ferr *err);
	/* Some of @iov: > 0 written, < 0 -errno. */
	ssize_t (*writev)(struct channel *ch, const struct iovec *iov, int iovcnt,
			  struct ferr *err);
	/* Until reading would not block: 0, -ETIME, -ETIMEDOUT, -ECANCELED (sockets;
	 * NULL: always ready). */
	int (*wait_input)(struct channel *ch, struct ferr *err);
	/* Stop both directions so that the peer sees end of stream (sockets). */
	void (*shutdown)(struct channel *ch);
	void (*close)(struct channel *ch);
	/* Fill @sec (NULL: plaintext). */
	void (*security)(const struct channel *ch, struct channel_security *sec);
};

struct channel {
	const struct channel_ops *ops;
	int fd;		   /* -1 for mem */
	int cancel_fd;	   /* eventfd; readable once cancelled */
	int timeout_ms;	   /* inactivity limit per call; < 0: none */
	int rd_timeout_ms; /* reads' own limit: 0 = timeout_ms, < 0: none (a reader thread) */
	/* CLOCK_MONOTONIC ns after which all I/O fails with -ETIME; 0: none.
	 * Set by the thread that owns the switchover, read by every thread. */
	_Atomic uint64_t deadline_ns;
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t bytes_written;
	char name[192];	     /* the URI, for messages */
	struct trace *trace; /* stalls are traced here (common/trace.h); NULL: not */
	void *priv;	     /* kind-specific */
};

/* A listening endpoint (tcp/unix), or a file to be read (file:). */
struct channel_listener;

/*
 * Whether @uri is a well-formed migration URI (tcp:HOST:PORT, unix:PATH,
 * file:PATH), without touching the network: commands check it at once.
 */
int channel_uri_check(const char *uri, bool listening, struct ferr *err);

/*
 * How connections are made.  tls_creds: a directory of x509 files
 * (docs/security.md); NULL or "" for plaintext.  tls_hostname: the name
 * the client checks the server's certificate against; NULL or "": the
 * HOST of a tcp: URI (a unix: URI has none, so TLS over unix: needs it).
 * A file: URI with tls_creds is refused: a file has no peer.
 */
struct channel_opts {
	const char *tls_creds;
	const char *tls_hostname;
	/* Test only: GnuTLS's own socket I/O, one record per system call, as
	 * with kernel TLS (which this host may lack), instead of ferry's
	 * batched reads and writes. */
	bool x_tls_direct;
};

/* Connect to @uri (tcp/unix), or create file:PATH for writing. */
int channel_connect(const char *uri, int timeout_ms, struct channel **out, struct ferr *err);
/*
 * The same with @opts (NULL: plaintext).  With TLS the handshake is part
 * of the connect and shares its @timeout_ms; the credentials are read
 * before anything connects.
 */
int channel_connect_opts(const char *uri, int timeout_ms, const struct channel_opts *opts,
			 struct channel **out, struct ferr *err);
/* What channel_connect_opts() would refuse before connecting: the URI, the
 * TLS settings and files. */
int channel_connect_check(const char *uri, const struct channel_opts *opts, struct ferr *err);

/* Listen on @uri (tcp/unix), or open file:PATH for reading. */
int channel_listen(const char *uri, struct channel_listener **out, struct ferr *err);
/*
 * The same with @opts (NULL: plaintext); with TLS the server credentials
 * are loaded here, and every channel_accept() runs the handshake (within
 * its timeout, or 10 s when it has none; cancellable) before returning:
 * a peer that is not a TLS client with a certificate from the CA fails
 * that accept with a message saying why.
 */
int channel_listen_opts(const char *uri, const struct channel_opts *opts,
			struct channel_listener **out, struct ferr *err);
/* The address actually bound (tcp port 0 -> the chosen port), as a URI. */
const char *channel_listener_uri(const struct channel_listener *l);
/* Accept one connection (file: returns the opened file); cancellable. */
int channel_accept(struct channel_listener *l, int timeout_ms, struct channel **out,
		   struct ferr *err);
void channel_listener_cancel(struct channel_listener *l);
void channel_listener_close(struct channel_listener *l);

/* In-memory channel over a copy of @data (reads), or growing buffer (writes). */
int channel_mem_open(const void *data, size_t len, struct channel **out, struct ferr *err);
/* The bytes written so far to a mem channel. */
const void *channel_mem_data(const struct channel *ch, size_t *len);

/* file:PATH (channel_file.c) for the URI parser: created or truncated for
 * writing (mode 0600), or opened for reading.  Use channel_connect/listen. */
int channel_file_open(const char *path, bool for_write, struct channel **out, struct ferr *err);

/* Exactly @len bytes; end of stream before that is -EPIPE with a message. */
int channel_read_full(struct channel *ch, void *buf, size_t len, struct ferr *err);
/* All of @iov (the array is consumed/modified). */
int channel_writev_full(struct channel *ch, struct iovec *iov, int iovcnt, struct ferr *err);
/* The same, and the bytes that did go out (all of them on success). */
int channel_writev_sent(struct channel *ch, struct iovec *iov, int iovcnt, size_t *sent,
			struct ferr *err);

/* The absolute deadline for all I/O on @ch (CLOCK_MONOTONIC ns; 0: none). */
void channel_set_deadline(struct channel *ch, uint64_t deadline_ns);
/*
 * Wait until a read would not block (data, end of stream or an error to
 * report): 0, or -ETIME (deadline), -ETIMEDOUT (timeout_ms without data),
 * -ECANCELED.  Channels without a descriptor to wait on return 0.
 */
int channel_wait_input(struct channel *ch, struct ferr *err);
int channel_write_full(struct channel *ch, const void *buf, size_t len, struct ferr *err);

/*
 * Bytes written but not yet taken by the peer (the socket's send queue,
 * SIOCOUTQ), so that a sender can tell what left the host from what the
 * kernel merely buffered.  0 for channels without a queue.
 */
uint64_t channel_unsent(struct channel *ch);

/*
 * The round trip to the peer as the kernel measures it (TCP's smoothed
 * RTT), in ns: 0 for a UNIX socket (no network between), UINT64_MAX when
 * unknown (not a socket).  Unlike timing an answer, it does not include
 * the time the peer took to answer.
 */
uint64_t channel_rtt_ns(struct channel *ch);

/* How @ch is protected (plaintext: sec->tls false). */
void channel_get_security(const struct channel *ch, struct channel_security *sec);

void channel_cancel(struct channel *ch); /* thread-safe, idempotent */
void channel_shutdown(struct channel *ch);
void channel_close(struct channel *ch);

#endif
