// SPDX-License-Identifier: GPL-2.0-only
/* Migration URIs: tcp:HOST:PORT, unix:PATH, file:PATH (docs/channels.md). */
#include "migration/transport/channel_uri.h"
#include "migration/transport/channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* ---- URIs ---- */

static int uri_error(struct ferr *err, const char *uri, const char *why)
{
	return ferr_set(err, -EINVAL, "migration URI '%s': %s", uri, why);
}

static int uri_parse_port(const char *s, bool listening, char *out, size_t len)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535 || (v == 0 && !listening))
		return -EINVAL;
	snprintf(out, len, "%lu", v);
	return 0;
}

static int uri_parse_tcp(const char *uri, bool listening, struct uri *u, struct ferr *err)
{
	const char *hp = uri + 4, *host, *port;
	size_t hlen;

	if (*hp == '[') {
		const char *end = strchr(hp, ']');
		if (!end)
			return uri_error(err, uri, "missing ']' after the IPv6 address");
		if (end[1] != ':')
			return uri_error(err, uri, "expected ':PORT' after ']'");
		host = hp + 1;
		hlen = (size_t)(end - host);
		port = end + 2;
	} else {
		const char *colon = strrchr(hp, ':');
		if (!colon)
			return uri_error(err, uri, "missing port (expected tcp:HOST:PORT)");
		host = hp;
		hlen = (size_t)(colon - hp);
		if (memchr(host, ':', hlen))
			return uri_error(err, uri,
					 "an IPv6 address needs brackets: tcp:[ADDR]:PORT");
		port = colon + 1;
	}
	if (hlen == 0)
		return uri_error(err, uri, "missing host (expected tcp:HOST:PORT)");
	if (hlen >= sizeof(u->host))
		return uri_error(err, uri, "host name too long");
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	if (uri_parse_port(port, listening, u->port, sizeof(u->port)))
		return uri_error(err, uri,
				 listening ? "port must be a number from 0 to 65535"
					   : "port must be a number from 1 to 65535");
	u->kind = URI_TCP;
	return 0;
}

int uri_parse(const char *uri, bool listening, struct uri *u, struct ferr *err)
{
	if (!uri)
		return ferr_set(err, -EINVAL, "no migration URI");
	if (!strncmp(uri, "tcp:", 4))
		return uri_parse_tcp(uri, listening, u, err);
	if (!strncmp(uri, "unix:", 5)) {
		u->kind = URI_UNIX;
		u->path = uri + 5;
		if (strlen(u->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return uri_error(err, uri, "socket path longer than 107 bytes");
	} else if (!strncmp(uri, "file:", 5)) {
		u->kind = URI_FILE;
		u->path = uri + 5;
	} else {
		return uri_error(err, uri,
				 "unknown transport "
				 "(expected tcp:HOST:PORT, unix:PATH or file:PATH)");
	}
	if (!*u->path)
		return uri_error(err, uri, "missing path");
	return 0;
}

int channel_uri_check(const char *uri, bool listening, struct ferr *err)
{
	struct uri u;

	return uri_parse(uri, listening, &u, err);
}
