/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ferry migrate's options (migrate_opts.c): what the operator asked for,
 * parsed and checked against the engine's parameter table before anything
 * is sent.
 */
#ifndef FERRY_CLI_MIGRATE_OPTS_H
#define FERRY_CLI_MIGRATE_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

enum migrate_mode {
	MIGRATE_START,
	MIGRATE_CANCEL,
	MIGRATE_STATUS,
	/* post-copy recovery (docs/postcopy.md) */
	MIGRATE_RESUME,	 /* source: migrate {uri, resume: true} */
	MIGRATE_RECOVER, /* destination: migrate-recover {uri} */
	MIGRATE_PAUSE,	 /* either: migrate-pause */
};

struct migrate_opts {
	enum migrate_mode mode;
	const char *control;
	const char *uri;
	bool wait, json;
	/* Sent only when given: the others keep the values ferry has now. */
	bool has_downtime_limit, has_max_bandwidth, has_timeout;
	uint64_t downtime_limit_ms, max_bandwidth, timeout_s;
	const char *on_timeout;	  /* NULL: not given */
	const char *tls_creds;	  /* NULL: not given; "": plaintext */
	const char *tls_hostname; /* NULL: not given */
	bool has_multifd;
	uint64_t multifd_channels; /* 0: capability off */
	bool postcopy;		   /* capability postcopy-ram on */
	bool has_postcopy_after;
	uint64_t postcopy_after_passes;
	bool auto_converge; /* capability auto-converge on */
	/* cpu-throttle-initial, cpu-throttle-increment, max-cpu-throttle; 0: not given */
	uint64_t throttle_initial, throttle_increment, throttle_max;
	bool throttle_tailslow;
};

/* Parse "ferry migrate" options; returns 0, or -1 with the exit status in *@status. */
int migrate_parse(int argc, char **argv, struct migrate_opts *o, int *status);
/* migrate-set-parameters' arguments for the parameters given; NULL: none. */
json_t *migrate_params_json(const struct migrate_opts *o);

#endif
