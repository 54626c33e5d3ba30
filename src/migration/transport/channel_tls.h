/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TLS over a connected socket channel (channel_tls.c), for the URI front
 * door in channel_sock.c: every connection that channel_connect_opts() or
 * channel_accept() makes with tls-creds goes through here.  Private to
 * the channel files.
 */
#ifndef FERRY_MIGRATION_CHANNEL_TLS_H
#define FERRY_MIGRATION_CHANNEL_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/transport/channel.h"

/* One side's x509 credentials, loaded from a tls-creds directory; shared
 * by reference between a listener and the channels it accepted. */
struct channel_tls_creds;

/*
 * Load @dir's ca-cert.pem (and ca-crl.pem if present) with
 * server-cert.pem/server-key.pem (@server) or client-cert.pem/
 * client-key.pem.  Messages name the directory and the file.
 */
int channel_tls_creds_load(const char *dir, bool server, struct channel_tls_creds **out,
			   struct ferr *err);
void channel_tls_creds_put(struct channel_tls_creds *c);
/* Channels made with @c leave the socket I/O to GnuTLS (channel_opts.x_tls_direct). */
void channel_tls_creds_direct(struct channel_tls_creds *c, bool direct);

/*
 * Make @inner (a connected tcp: or unix: channel; taken, and closed on
 * failure) the transport of a TLS session, and run the handshake until
 * @deadline (CLOCK_MONOTONIC ns; CHANNEL_NO_DEADLINE: none) or, for the
 * server, until @cancel_fd (the listener's, or -1) is readable.
 *
 * The client checks the server's certificate against the CA and
 * @hostname; the server requires a client certificate signed by the CA.
 * Neither returns before the server has accepted the client's
 * certificate, so that a refusal is an error of this call on both sides.
 */
int channel_tls_client(struct channel *inner, struct channel_tls_creds *c, const char *hostname,
		       uint64_t deadline, struct channel **out, struct ferr *err);
int channel_tls_server(struct channel *inner, struct channel_tls_creds *c, uint64_t deadline,
		       int cancel_fd, struct channel **out, struct ferr *err);

#endif
