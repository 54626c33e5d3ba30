/* SPDX-License-Identifier: GPL-2.0-only */
/* Migration URIs, parsed (private to the channel files). */
#ifndef FERRY_MIGRATION_CHANNEL_URI_H
#define FERRY_MIGRATION_CHANNEL_URI_H

#include <stdbool.h>

#include "common/err.h"

enum uri_kind { URI_TCP, URI_UNIX, URI_FILE };

struct uri {
	enum uri_kind kind;
	const char *path; /* unix:, file:; points into the URI */
	char host[256];	  /* tcp:, without brackets */
	char port[8];	  /* tcp:, canonical decimal */
};

/*
 * Parse tcp:HOST:PORT (HOST may be [v6]), unix:PATH or file:PATH.  Port 0
 * only when @listening.  Errors name the URI and what is wrong with it.
 */
int uri_parse(const char *uri, bool listening, struct uri *u, struct ferr *err);

#endif
