/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ferry migrate's view of query-migrate: reading its fields, the one-line
 * progress display and the closing summary.  Pure formatting over a JSON
 * object, so it is unit-tested without a ferry (tests/unit/cli).
 */
#ifndef FERRY_CLI_MIGRATE_SHOW_H
#define FERRY_CLI_MIGRATE_SHOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define FMT_LEN		  64	 /* buffer size for the fmt_*() helpers */
#define MIGRATE_PAGE_SIZE 4096.0 /* ram.dirty-pages-rate counts 4 KiB pages */

/* The transfer rate seen between polls, when ferry reports none yet. */
struct rate_meter {
	uint64_t last_ns;
	double last_bytes;
	double rate; /* bytes/s, 0 until known */
};

double rate_meter_add(struct rate_meter *m, uint64_t now_ns, double bytes);

/* A number at a dotted @path ("ram.transferred"); false if absent. */
bool migrate_num(json_t *o, const char *path, double *v);
bool migrate_status_final(const char *s);
/* Seconds to send @remaining bytes at @rate bytes/s; < 0 if unknown. */
double migrate_eta_s(double remaining, double rate);
/* "1.5 s", "300 ms", ... into @buf (FMT_LEN bytes). */
const char *fmt_ms(double ms, char *buf);

/* The progress line (no newline) for a terminal. */
void migrate_format_progress(json_t *info, double seen_rate, char *buf, size_t len);
/* The closing summary block, every field of query-migrate's "ferry" object included. */
void migrate_print_summary(FILE *f, json_t *info);

#endif
