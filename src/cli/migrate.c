// SPDX-License-Identifier: GPL-2.0-only
/*
 * ferry migrate: drive a migration through the source ferry's control
 * socket, as an operator would by hand: set the parameters given, start,
 * and with --wait follow it to the end.
 *
 * All it knows about a migration comes from query-migrate.  Fields it
 * does not know are ignored and missing ones shown as "-", so it keeps
 * working while the engine reports more; the "ferry" object, where ferry's
 * own figures go, is printed key by key.
 *
 * tests/unit/cli includes this file to test its static helpers.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/qmp_client.h"
#include "common/clock.h"
#include "common/parse.h"
#include "migration/params.h"

#define MIGRATE_POLL_MS	  100
#define MIGRATE_PAGE_SIZE 4096.0 /* ram.dirty-pages-rate counts 4 KiB pages */
#define MIGRATE_EXIT_INT  130	 /* 128 + SIGINT, what a shell reports */

enum migrate_mode { MIGRATE_START, MIGRATE_CANCEL, MIGRATE_STATUS };

struct migrate_opts {
	enum migrate_mode mode;
	const char *control;
	const char *uri;
	bool wait, json;
	/* Sent only when given: the others keep the values ferry has now. */
	bool has_downtime_limit, has_max_bandwidth, has_timeout;
	uint64_t downtime_limit_ms, max_bandwidth, timeout_s;
	const char *on_timeout; /* NULL: not given */
};

void cli_migrate_usage(void)
{
	printf("usage: ferry migrate --control PATH [options] URI\n"
	       "       ferry migrate --control PATH --status | --cancel\n"
	       "\n"
	       "Migrate the VM of the ferry serving PATH to URI: tcp:HOST:PORT, unix:PATH, or\n"
	       "file:PATH (save a snapshot).\n"
	       "\n"
	       "  --control PATH        the source ferry's control socket (ferry run --control)\n"
	       "  --downtime-limit MS   longest pause of the guest at switchover, in ms (or with\n"
	       "                        a unit: 500ms, 1s); default 300\n"
	       "  --max-bandwidth RATE  bytes per second: 100M, 1G (binary K/M/G, '/s' optional);\n"
	       "                        0 or 'unlimited' (default)\n"
	       "  --timeout S           seconds after which --on-timeout decides; 0 (default) for\n"
	       "                        no timeout\n"
	       "  --on-timeout ACTION   abort: give up, the VM keeps running here (default);\n"
	       "                        postcopy: switch to post-copy; force: switch over now,\n"
	       "                        the downtime limit no longer holds\n"
	       "  --wait                follow the migration to its end: progress on a terminal,\n"
	       "                        then a summary; Ctrl-C cancels it (twice: stop waiting)\n"
	       "  --json                with --wait: print the final query-migrate result as JSON\n"
	       "  --status              print query-migrate as JSON\n"
	       "  --cancel              cancel the migration in progress\n"
	       "\n"
	       "Parameters not given keep the values ferry has (query-migrate-parameters).\n"
	       "\n"
	       "Exit status: 0 once started (with --wait: completed); 1 when the migration\n"
	       "failed or was cancelled, for a usage error, or when ferry cannot be reached;\n"
	       "130 after a second Ctrl-C.\n");
}

/* ---- options ------------------------------------------------------------ */

/* "100M", "1G", "512K/s", "0", "unlimited" -> bytes per second; 0 is unlimited. */
static int migrate_parse_rate(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	char num[32];

	if (strcmp(s, "unlimited") == 0) {
		*out = 0;
		return 0;
	}
	if (n > 2 && strcmp(s + n - 2, "/s") == 0) {
		if (n - 2 >= sizeof(num))
			return -ERANGE;
		memcpy(num, s, n - 2);
		num[n - 2] = '\0';
		s = num;
	}
	return parse_size(s, out);
}

/* A whole number of @unit_ns: a bare number counts in that unit, else "500ms", "2s", ... */
static int migrate_parse_duration(const char *s, uint64_t unit_ns, uint64_t *out)
{
	uint64_t ns;

	if (parse_u64(s, out) == 0)
		return 0;
	if (parse_duration_ns(s, &ns) || ns % unit_ns)
		return -EINVAL;
	*out = ns / unit_ns;
	return 0;
}

/* Bounds and names come from the engine's parameter table, as on the control socket. */
static int migrate_check_param(const char *name, const char *value_name, uint64_t value)
{
	const struct mig_param_desc *d = mig_param_find(name);
	struct ferr err = FERR_INIT;
	struct mig_params scratch;

	if (!d)
		return 0;
	if (value_name && mig_param_enum_value(d, value_name, &value, &err))
		return cli_error("--%s: %s", name, err.msg);
	if (mig_param_set(&scratch, d, value, &err))
		return cli_error("--%s: %s", name, err.msg);
	return 0;
}

static int migrate_bad_value(const char *opt, const char *arg, const char *expected)
{
	return cli_error("--%s '%s': expected %s", opt, arg, expected);
}

/* Check the combination of options; an exit status, or 0. */
static int migrate_check(const struct migrate_opts *o, int nargs)
{
	bool params =
	    o->has_downtime_limit || o->has_max_bandwidth || o->has_timeout || o->on_timeout;

	if (!o->control || !*o->control)
		return cli_error("--control PATH is required (try 'ferry migrate --help')");
	if (o->mode != MIGRATE_START) {
		const char *mode = o->mode == MIGRATE_CANCEL ? "--cancel" : "--status";

		if (nargs)
			return cli_error("%s takes no URI", mode);
		if (params || o->wait)
			return cli_error("%s goes alone: it does not start a migration", mode);
		return 0;
	}
	if (nargs == 0)
		return cli_error("a destination URI is required: tcp:HOST:PORT, unix:PATH or "
				 "file:PATH (try 'ferry migrate --help')");
	if (o->json && !o->wait)
		return cli_error("--json prints the final result: use it with --wait");
	return 0;
}

enum { O_DOWNTIME = 256, O_BANDWIDTH, O_TIMEOUT, O_ON_TIMEOUT };

/* Apply option @c; 0, or the exit status to leave with. */
static int migrate_option(struct migrate_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'C':
		o->control = arg;
		return 0;
	case 'w':
		o->wait = true;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case O_DOWNTIME:
		if (migrate_parse_duration(arg, 1000000, &o->downtime_limit_ms))
			return migrate_bad_value("downtime-limit", arg,
						 "milliseconds such as 300, or 500ms, 1s");
		o->has_downtime_limit = true;
		return migrate_check_param("downtime-limit", NULL, o->downtime_limit_ms);
	case O_BANDWIDTH:
		/* The protocol's integers are signed 64-bit. */
		if (migrate_parse_rate(arg, &o->max_bandwidth) || o->max_bandwidth > INT64_MAX)
			return migrate_bad_value("max-bandwidth", arg,
						 "bytes per second such as 100M or 1G, or "
						 "'unlimited'");
		o->has_max_bandwidth = true;
		return 0;
	case O_TIMEOUT:
		if (migrate_parse_duration(arg, 1000000000, &o->timeout_s))
			return migrate_bad_value("timeout", arg, "seconds such as 600, or 10s");
		o->has_timeout = true;
		return migrate_check_param("timeout", NULL, o->timeout_s);
	case O_ON_TIMEOUT:
		o->on_timeout = arg;
		return migrate_check_param("on-timeout", arg, 0);
	case 'x':
	case 's':
		if (o->mode != MIGRATE_START)
			return cli_error("--cancel and --status exclude each other");
		o->mode = c == 'x' ? MIGRATE_CANCEL : MIGRATE_STATUS;
		return 0;
	}
	return cli_error("option %d not handled", c); /* a longopts entry without a case */
}

/* getopt_long() said '?' about @arg.  With no short options, optopt names a known option. */
static int migrate_bad_option(const char *arg)
{
	const char *why = "unknown option";

	if (optopt && strchr(arg, '='))
		why = "no value expected for";
	else if (optopt)
		why = "a value is needed for";
	return cli_error("%s '%s' (try 'ferry migrate --help')", why, arg);
}

/* Parse "ferry migrate" options; returns 0, or -1 with the exit status in *@status. */
static int migrate_parse(int argc, char **argv, struct migrate_opts *o, int *status)
{
	static const struct option longopts[] = {
	    {"control", required_argument, NULL, 'C'},
	    {"downtime-limit", required_argument, NULL, O_DOWNTIME},
	    {"max-bandwidth", required_argument, NULL, O_BANDWIDTH},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"on-timeout", required_argument, NULL, O_ON_TIMEOUT},
	    {"wait", no_argument, NULL, 'w'},
	    {"json", no_argument, NULL, 'j'},
	    {"cancel", no_argument, NULL, 'x'},
	    {"status", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct migrate_opts){.mode = MIGRATE_START};
	*status = 0;
	opterr = 0;
	optind = 0; /* glibc: start over, also when called again (the tests do) */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'h') {
			cli_migrate_usage();
			return -1;
		}
		*status =
		    c == '?' ? migrate_bad_option(argv[optind - 1]) : migrate_option(o, c, optarg);
		if (*status)
			return -1;
	}
	if (argc - optind > 1)
		*status = cli_error("unexpected argument '%s' (one URI only)", argv[optind + 1]);
	else if (optind < argc)
		o->uri = argv[optind];
	if (!*status)
		*status = migrate_check(o, argc - optind);
	return *status ? -1 : 0;
}

/* migrate-set-parameters arguments: only the parameters given (NULL: none). */
static json_t *migrate_params_json(const struct migrate_opts *o)
{
	json_t *p = json_object();

	if (o->has_downtime_limit)
		json_object_set_new(p, "downtime-limit",
				    json_integer((json_int_t)o->downtime_limit_ms));
	if (o->has_max_bandwidth)
		json_object_set_new(p, "max-bandwidth", json_integer((json_int_t)o->max_bandwidth));
	if (o->has_timeout)
		json_object_set_new(p, "timeout", json_integer((json_int_t)o->timeout_s));
	if (o->on_timeout)
		json_object_set_new(p, "on-timeout", json_string(o->on_timeout));
	if (json_object_size(p) == 0) {
		json_decref(p);
		return NULL;
	}
	return p;
}

/* ---- reading query-migrate ---------------------------------------------- */

/* The member at @path ("ram.transferred") of @o, or NULL. */
static json_t *migrate_get(json_t *o, const char *path)
{
	char key[64];

	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key); /* NULL for a non-object */
		path += n + (dot != NULL);
	}
	return o;
}

/* The non-negative number at @path into *@v; false when absent or not one. */
static bool migrate_num(json_t *o, const char *path, double *v)
{
	json_t *j = migrate_get(o, path);

	if (!json_is_number(j) || json_number_value(j) < 0)
		return false;
	*v = json_number_value(j);
	return true;
}

static bool migrate_status_final(const char *s)
{
	return s && (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 ||
		     strcmp(s, "cancelled") == 0);
}

/* Bandwidth in bytes/s.  ram.mbps is QEMU's: 10^6 bits per second; 0 is "not measured yet". */
static bool migrate_rate(json_t *info, double *bytes_per_s)
{
	double mbps;

	if (!migrate_num(info, "ram.mbps", &mbps) || mbps <= 0)
		return false;
	*bytes_per_s = mbps * 1e6 / 8;
	return true;
}

/*
 * The pass a progress line is about: ferry.passes counts the completed ones
 * (0 during the first), so while pre-copy runs the one under way is next.
 */
static bool migrate_pass(json_t *info, double *n)
{
	const char *status = json_string_value(json_object_get(info, "status"));

	if (!migrate_num(info, "ferry.passes", n))
		return false;
	if (status && strcmp(status, "active") == 0)
		*n += 1;
	return true;
}

/*
 * Seconds to send @remaining bytes at @rate bytes/s, or -1 when either is
 * unknown (0).  What the guest dirties meanwhile is not counted: this is
 * the end of the current pass, a lower bound for the migration.
 */
static double migrate_eta_s(double remaining, double rate)
{
	if (remaining <= 0 || rate <= 0)
		return -1;
	return remaining / rate;
}

/*
 * The rate seen between polls, smoothed.  ram.mbps comes at the end of a
 * pass; a first pass over a large guest would go without any rate at all.
 */
struct rate_meter {
	uint64_t last_ns;
	double last_bytes;
	double rate; /* bytes/s, 0 until known */
};

static double rate_meter_add(struct rate_meter *m, uint64_t now_ns, double bytes)
{
	if (bytes < m->last_bytes) {
		m->rate = 0; /* another migration: start over */
	} else if (m->last_bytes > 0 && now_ns > m->last_ns) {
		/* Only between samples of a transfer under way: not across the setup. */
		double now_rate = (bytes - m->last_bytes) * 1e9 / (double)(now_ns - m->last_ns);

		m->rate = m->rate > 0 ? 0.7 * m->rate + 0.3 * now_rate : now_rate;
	}
	m->last_ns = now_ns;
	m->last_bytes = bytes;
	return m->rate;
}

/* ---- formatting ---------------------------------------------------------- */

#define FMT_LEN 64

/* A duration with the precision that matters at its scale: "0.35 ms", "12.5 ms", "2.3 s", "4m05s". */
static const char *fmt_ms(double ms, char *buf)
{
	if (ms == 0)
		snprintf(buf, FMT_LEN, "0 ms");
	else if (ms < 10)
		snprintf(buf, FMT_LEN, "%.2f ms", ms);
	else if (ms < 100)
		snprintf(buf, FMT_LEN, "%.1f ms", ms);
	else if (ms < 1000)
		snprintf(buf, FMT_LEN, "%.0f ms", ms);
	else if (ms < 60000)
		snprintf(buf, FMT_LEN, "%.1f s", ms / 1000);
	else if (ms < 3600000)
		snprintf(buf, FMT_LEN, "%um%02us", (unsigned)(ms / 60000),
			 (unsigned)(ms / 1000) % 60);
	else
		snprintf(buf, FMT_LEN, "%uh%02um", (unsigned)(ms / 3600000),
			 (unsigned)(ms / 60000) % 60);
	return buf;
}

/* Rates are computed in floating point: round, so that 1 GiB/s does not show as 1024.0 MiB/s. */
static uint64_t round_u64(double v)
{
	return v <= 0 ? 0 : (uint64_t)(v + 0.5);
}

static const char *fmt_bytes(double bytes, char *buf)
{
	return fmt_size(round_u64(bytes), buf, FMT_LEN);
}

static const char *fmt_rate(double bytes_per_s, char *buf)
{
	fmt_size(round_u64(bytes_per_s), buf, FMT_LEN - 2);
	strcat(buf, "/s");
	return buf;
}

/* The size at @path ("1.5 GiB"), or "-". */
static const char *show_bytes(json_t *o, const char *path, char *buf)
{
	double v;

	return migrate_num(o, path, &v) ? fmt_bytes(v, buf) : "-";
}

/* The count at @path, or "-". */
static const char *show_count(json_t *o, const char *path, char *buf)
{
	double v;

	if (!migrate_num(o, path, &v))
		return "-";
	snprintf(buf, FMT_LEN, "%.0f", v);
	return buf;
}

/*
 * The progress line, from a query-migrate result and the rate seen between
 * polls (0: none), for when ferry has not measured one yet:
 *   active  pass 3  sent 1.2 GiB  left 340.0 MiB  rate 812.0 MiB/s  dirty 64.0 MiB/s
 *   downtime ~120 ms  ETA 0.4 s                                   (one line)
 */
static void migrate_format_progress(json_t *info, double seen_rate, char *buf, size_t len)
{
	char pass[FMT_LEN] = "-", sent[FMT_LEN], left[FMT_LEN], rate[FMT_LEN] = "-";
	char dirty[FMT_LEN] = "-", down[FMT_LEN + 1] = "-", eta[FMT_LEN] = "-";
	const char *status = json_string_value(json_object_get(info, "status"));
	double v, bps = seen_rate, remaining = 0, secs;

	if (migrate_pass(info, &v))
		snprintf(pass, sizeof(pass), "%.0f", v);
	migrate_rate(info, &bps);
	if (bps > 0)
		fmt_rate(bps, rate);
	if (migrate_num(info, "ram.dirty-pages-rate", &v))
		fmt_rate(v * MIGRATE_PAGE_SIZE, dirty);
	if (migrate_num(info, "expected-downtime", &v)) {
		down[0] = '~';
		fmt_ms(v, down + 1);
	}
	migrate_num(info, "ram.remaining", &remaining);
	secs = migrate_eta_s(remaining, bps);
	if (secs >= 0)
		fmt_ms(secs * 1000, eta);
	snprintf(buf, len, "%s  pass %s  sent %s  left %s  rate %s  dirty %s  downtime %s  ETA %s",
		 status ? status : "-", pass, show_bytes(info, "ram.transferred", sent),
		 show_bytes(info, "ram.remaining", left), rate, dirty, down, eta);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* What a number in the "ferry" object measures, by the convention of its name. */
enum unit { UNIT_NONE, UNIT_BYTES, UNIT_NS, UNIT_MS, UNIT_RATE };

static enum unit unit_of(const char *key)
{
	if (strcmp(key, "bytes") == 0 || ends_with(key, "-bytes"))
		return UNIT_BYTES;
	if (ends_with(key, "-ns"))
		return UNIT_NS;
	if (ends_with(key, "-ms"))
		return UNIT_MS;
	/* ferry's rates are bytes per second (the "ram" ones are QEMU's) */
	if (strcmp(key, "bandwidth") == 0 || strcmp(key, "dirty-rate") == 0)
		return UNIT_RATE;
	return UNIT_NONE;
}

/*
 * A value of the "ferry" object for a person.  @exact adds the byte count
 * to a size.  Arrays and objects come out as compact JSON.
 */
static const char *fmt_value(enum unit u, json_t *v, bool exact, char *buf, size_t len)
{
	char t[FMT_LEN];

	if (!v || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	if (json_is_number(v) && json_number_value(v) >= 0 && u != UNIT_NONE) {
		double d = json_number_value(v);

		if (u == UNIT_BYTES && exact)
			snprintf(buf, len, "%s (%.0f bytes)", fmt_bytes(d, t), d);
		else if (u == UNIT_BYTES)
			snprintf(buf, len, "%s", fmt_bytes(d, t));
		else if (u == UNIT_RATE)
			snprintf(buf, len, "%s", fmt_rate(d, t));
		else
			snprintf(buf, len, "%s", fmt_ms(u == UNIT_NS ? d / 1e6 : d, t));
		return buf;
	}
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
	return buf;
}

#define SUMMARY_LABEL	  14 /* "transferred:" and two spaces */
#define SUMMARY_LABEL_MAX 28 /* longer labels push their value to the right */

static void summary_line(FILE *f, int width, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void summary_line(FILE *f, int width, const char *label, const char *fmt, ...)
{
	int len = (int)strlen(label);
	va_list ap;

	fprintf(f, "%-*s", len + 1 > width ? len + 1 : width, label);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* An array of objects, such as ferry.pass-table. */
static bool is_table(json_t *v)
{
	size_t i;
	json_t *row;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	json_array_foreach(v, i, row) if (!json_is_object(row)) return false;
	return true;
}

#define TABLE_MAX_COLS 16

/* Columns from the first row's keys, right-aligned, "-" for what a row lacks. */
static void print_table(FILE *f, json_t *rows)
{
	const char *cols[TABLE_MAX_COLS];
	int width[TABLE_MAX_COLS];
	size_t ncols = 0, i, k;
	char cell[FMT_LEN];
	const char *key;
	json_t *row, *v;

	json_object_foreach(json_array_get(rows, 0), key, v)
	{
		if (ncols == TABLE_MAX_COLS)
			break;
		cols[ncols] = key;
		width[ncols++] = (int)strlen(key);
	}
	json_array_foreach(rows, i, row)
	{
		for (k = 0; k < ncols; k++) {
			v = json_object_get(row, cols[k]);
			int w =
			    (int)strlen(fmt_value(unit_of(cols[k]), v, false, cell, sizeof(cell)));
			if (w > width[k])
				width[k] = w;
		}
	}
	fputs(" ", f);
	for (k = 0; k < ncols; k++)
		fprintf(f, "  %*s", width[k], cols[k]);
	fputc('\n', f);
	json_array_foreach(rows, i, row)
	{
		fputs(" ", f);
		for (k = 0; k < ncols; k++)
			fprintf(f, "  %*s", width[k],
				fmt_value(unit_of(cols[k]), json_object_get(row, cols[k]), false,
					  cell, sizeof(cell)));
		fputc('\n', f);
	}
}

/* Keys of "ferry" that the summary's own lines show. */
static bool summary_shown(const char *key)
{
	static const char *const shown[] = {"passes", "pass-table", "skipped-pages", "downtime-ns",
					    NULL};

	for (const char *const *s = shown; *s; s++)
		if (strcmp(*s, key) == 0)
			return true;
	return false;
}

/* An object on one line, its members in the unit of its name: "pause 1.50 ms, go 0.25 ms". */
static const char *fmt_members(json_t *obj, enum unit parent, char *buf, size_t len)
{
	size_t n = 0;
	const char *key;
	char t[FMT_LEN];
	json_t *v;

	buf[0] = '\0';
	json_object_foreach(obj, key, v)
	{
		enum unit u = unit_of(key) != UNIT_NONE ? unit_of(key) : parent;

		n += (size_t)snprintf(buf + n, len - n, "%s%s %s", n ? ", " : "", key,
				      fmt_value(u, v, false, t, sizeof(t)));
		if (n >= len)
			break;
	}
	return buf;
}

/* Every other member of "ferry", one line each, whatever the engine reports. */
static void summary_members(FILE *f, int width, json_t *ferry)
{
	const char *key;
	char label[128], buf[512];
	json_t *v;

	json_object_foreach(ferry, key, v)
	{
		if (summary_shown(key))
			continue;
		snprintf(label, sizeof(label), "%s:", key);
		if (is_table(v)) {
			fprintf(f, "%s\n", label);
			print_table(f, v);
		} else if (json_is_object(v)) {
			summary_line(f, width, label, "%s",
				     fmt_members(v, unit_of(key), buf, sizeof(buf)));
		} else {
			summary_line(f, width, label, "%s",
				     fmt_value(unit_of(key), v, true, buf, sizeof(buf)));
		}
	}
}

/* One column for the values, wide enough for ferry's names ("switchover-attempts:"). */
static int summary_width(json_t *ferry)
{
	int width = SUMMARY_LABEL;
	const char *key;
	json_t *v;

	json_object_foreach(ferry, key, v)
	{
		int w = (int)strlen(key) + 2;

		if (!summary_shown(key) && !is_table(v) && w > width && w <= SUMMARY_LABEL_MAX)
			width = w;
	}
	return width;
}

/* The block printed when a migration ends; "-" for what ferry did not report. */
static void migrate_print_summary(FILE *f, json_t *info)
{
	const char *status = json_string_value(json_object_get(info, "status"));
	const char *desc = json_string_value(json_object_get(info, "error-desc"));
	json_t *ferry = json_object_get(info, "ferry");
	char a[FMT_LEN], b[FMT_LEN], c[FMT_LEN];
	double ms = 0, setup, down, down_ns, bytes = 0;
	bool has_ms = migrate_num(info, "total-time", &ms);
	bool has_bytes = migrate_num(info, "ram.transferred", &bytes);
	bool has_down = migrate_num(info, "downtime", &down);
	int w = summary_width(ferry);

	summary_line(f, w, "status:", "%s", status ? status : "-");
	if (desc)
		summary_line(f, w, "error:", "%s", desc);

	if (!has_ms)
		summary_line(f, w, "total time:", "-");
	else if (migrate_num(info, "setup-time", &setup))
		summary_line(f, w, "total time:", "%s (setup %s)", fmt_ms(ms, a), fmt_ms(setup, b));
	else
		summary_line(f, w, "total time:", "%s", fmt_ms(ms, a));

	/* QEMU's "downtime" is whole ms; ferry's own figure has the detail. */
	if (migrate_num(info, "ferry.downtime-ns", &down_ns) && (has_down || down_ns > 0))
		summary_line(f, w, "downtime:", "%s (%.6f ms)", has_down ? fmt_ms(down, a) : "-",
			     down_ns / 1e6);
	else
		summary_line(f, w, "downtime:", "%s", has_down ? fmt_ms(down, a) : "-");

	if (has_bytes)
		summary_line(f, w, "transferred:", "%s (%.0f bytes)", fmt_bytes(bytes, a), bytes);
	else
		summary_line(f, w, "transferred:", "-");
	summary_line(f, w, "pages:", "%s sent, %s zero, %s skipped",
		     show_count(info, "ram.normal", a), show_count(info, "ram.duplicate", b),
		     show_count(info, "ferry.skipped-pages", c));

	summary_line(f, w, "passes:", "%s", show_count(info, "ferry.passes", a));
	if (is_table(json_object_get(ferry, "pass-table")))
		print_table(f, json_object_get(ferry, "pass-table"));

	if (has_bytes && has_ms && ms > 0)
		summary_line(f, w, "throughput:", "%s average", fmt_rate(bytes / (ms / 1000), a));
	else
		summary_line(f, w, "throughput:", "-");

	summary_members(f, w, ferry);
}

/* ---- following a migration ----------------------------------------------- */

static volatile sig_atomic_t migrate_interrupts;
static bool migrate_tty_on; /* stderr is a terminal: progress is drawn there */

static void migrate_on_sigint(int sig)
{
	static const char nl = '\n';

	/* Once to cancel; twice means the operator will not wait for the cancellation. */
	if (migrate_interrupts++) {
		if (migrate_tty_on) {
			ssize_t r = write(STDERR_FILENO, &nl, 1);
			(void)r;
		}
		_exit(MIGRATE_EXIT_INT);
	}
}

static void migrate_catch_sigint(void)
{
	struct sigaction sa = {.sa_handler = migrate_on_sigint};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

/* The progress line on a terminal; nothing at all otherwise. */
struct migrate_tty {
	bool drawn; /* a progress line is on the screen */
	struct rate_meter meter;
};

static void migrate_tty_draw(struct migrate_tty *t, json_t *info)
{
	struct winsize ws;
	char line[512];
	size_t cols = 80;
	double sent = 0;

	if (!migrate_tty_on)
		return;
	migrate_num(info, "ram.transferred", &sent);
	double seen = rate_meter_add(&t->meter, clock_now_ns(), sent);
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		cols = ws.ws_col < sizeof(line) ? ws.ws_col : sizeof(line);
	migrate_format_progress(info, seen, line, sizeof(line));
	/* Narrower than the terminal: a line that wraps cannot be redrawn with \r. */
	line[cols - 1] = '\0';
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	t->drawn = true;
}

static void migrate_tty_clear(struct migrate_tty *t)
{
	if (t->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	t->drawn = false;
}

/*
 * ferry's own MIGRATION_* events (MIGRATION_NOT_CONVERGING, ...) as one
 * line above the progress: "ferry: migration not converging: REASON (DETAIL)".
 */
static void migrate_tty_note(struct migrate_tty *t, const char *name, json_t *data)
{
	const char *reason = json_string_value(json_object_get(data, "reason"));
	const char *detail = json_string_value(json_object_get(data, "detail"));
	char what[64];
	size_t i;

	if (!migrate_tty_on)
		return;
	for (i = 0; name[i] && i < sizeof(what) - 1; i++)
		what[i] = name[i] == '_' ? ' ' : (char)tolower((unsigned char)name[i]);
	what[i] = '\0';
	migrate_tty_clear(t);
	fprintf(stderr, "ferry: %s%s%s%s%s%s\n", what, reason ? ": " : "", reason ? reason : "",
		detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
}

/* Run @cmd; ferry's refusals are prefixed with the command ("migrate: ..."). */
static int migrate_exec(struct qmp_conn *c, const char *cmd, json_t *args, json_t **ret,
			struct ferr *err)
{
	int rc = qmp_conn_execute(c, cmd, args, ret, err);

	if (rc == -EREMOTEIO)
		ferr_prefix(err, "%s: ", cmd);
	return rc;
}

/*
 * Sleep until the next poll, on the socket: a MIGRATION event with a final
 * status ends the sleep at once (and is kept in @ended), and so does a
 * Ctrl-C, so that the cancel goes out before a second one could come.
 */
static int migrate_sleep(struct qmp_conn *c, struct migrate_tty *t, char *ended, size_t len,
			 struct ferr *err)
{
	uint64_t until = clock_now_ns() + MIGRATE_POLL_MS * 1000000ull;
	sig_atomic_t interrupts = migrate_interrupts;

	for (;;) {
		uint64_t now = clock_now_ns();
		json_t *ev;

		if (now >= until || migrate_interrupts != interrupts)
			return 0;
		int rc = qmp_conn_next_event(c, (int)((until - now + 999999) / 1000000), &ev, err);
		if (rc || !ev)
			return rc;
		const char *name = json_string_value(json_object_get(ev, "event"));
		json_t *data = json_object_get(ev, "data");
		const char *st = json_string_value(json_object_get(data, "status"));
		bool done = name && strcmp(name, "MIGRATION") == 0 && migrate_status_final(st);

		if (done)
			snprintf(ended, len, "%s", st);
		else if (name && strncmp(name, "MIGRATION_", 10) == 0 &&
			 strcmp(name, "MIGRATION_PASS") != 0)
			migrate_tty_note(t, name, data);
		json_decref(ev);
		if (done)
			return 0;
	}
}

/*
 * Poll query-migrate until the migration ends; 0 and its last result in
 * *@final, or an exit status.  The first Ctrl-C sends migrate-cancel and
 * the wait goes on: the final status says whether it took.
 */
static int migrate_follow(struct qmp_conn *c, json_t **final)
{
	struct migrate_tty tty = {0};
	struct ferr err = FERR_INIT;
	bool cancel_sent = false;
	char ended[32] = "";
	json_t *info = NULL;
	int rc;

	for (;;) {
		if (migrate_interrupts && !cancel_sent) {
			migrate_tty_clear(&tty);
			fprintf(stderr, "ferry: cancelling the migration (Ctrl-C again to stop "
					"waiting)\n");
			cancel_sent = true;
			rc = migrate_exec(c, "migrate-cancel", NULL, NULL, &err);
			if (rc)
				break;
		}
		rc = migrate_exec(c, "query-migrate", NULL, &info, &err);
		if (rc)
			break;
		const char *status = json_string_value(json_object_get(info, "status"));
		if (!status) {
			/* {} comes only before the first migration: not the one just started. */
			rc = ferr_set(&err, -ESRCH, "query-migrate reports no migration");
			break;
		}
		if (migrate_status_final(status))
			break;
		migrate_tty_draw(&tty, info);
		json_decref(info);
		info = NULL;
		rc = migrate_sleep(c, &tty, ended, sizeof(ended), &err);
		if (rc)
			break;
	}
	migrate_tty_clear(&tty);
	if (rc && ended[0] && rc != -EREMOTEIO) {
		/* ferry went away after announcing the end (it may quit once migrated). */
		*final = json_pack("{s:s}", "status", ended);
		return 0;
	}
	if (rc) {
		json_decref(info);
		return cli_error("%s", err.msg);
	}
	*final = info;
	return 0;
}

static void print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	putchar('\n');
}

/* Print how it ended; the exit status. */
static int migrate_report(json_t *info, bool json)
{
	const char *status = json_string_value(json_object_get(info, "status"));
	const char *desc = json_string_value(json_object_get(info, "error-desc"));

	if (json)
		print_json(info);
	else
		migrate_print_summary(stdout, info);
	fflush(stdout);
	if (status && strcmp(status, "completed") == 0)
		return 0;
	if (status && strcmp(status, "cancelled") == 0)
		return cli_error("migration cancelled");
	return cli_error("migration failed: %s", desc ? desc : "no reason given");
}

static int migrate_start(struct qmp_conn *c, const struct migrate_opts *o)
{
	struct ferr err = FERR_INIT;
	json_t *params = migrate_params_json(o), *final = NULL;
	int status;

	if (params && migrate_exec(c, "migrate-set-parameters", params, NULL, &err))
		return cli_error("%s", err.msg);
	/* From here on a Ctrl-C means "cancel", even before the reply to migrate. */
	if (o->wait) {
		migrate_tty_on = isatty(STDERR_FILENO);
		migrate_catch_sigint();
	}
	if (migrate_exec(c, "migrate", json_pack("{s:s}", "uri", o->uri), NULL, &err))
		return cli_error("%s", err.msg);
	if (!o->wait) {
		printf("migration to %s started\n", o->uri);
		return 0;
	}
	status = migrate_follow(c, &final);
	if (!status)
		status = migrate_report(final, o->json);
	json_decref(final);
	return status;
}

static int migrate_show_status(struct qmp_conn *c)
{
	struct ferr err = FERR_INIT;
	json_t *info;

	if (migrate_exec(c, "query-migrate", NULL, &info, &err))
		return cli_error("%s", err.msg);
	print_json(info);
	json_decref(info);
	return 0;
}

static int migrate_cancel(struct qmp_conn *c)
{
	struct ferr err = FERR_INIT;
	json_t *info;

	if (migrate_exec(c, "query-migrate", NULL, &info, &err))
		return cli_error("%s", err.msg);
	const char *status = json_string_value(json_object_get(info, "status"));
	bool active = status && !migrate_status_final(status);
	json_decref(info);
	if (!active) {
		printf("no migration in progress\n");
		return 0;
	}
	if (migrate_exec(c, "migrate-cancel", NULL, NULL, &err))
		return cli_error("%s", err.msg);
	printf("migration cancel requested\n");
	return 0;
}

int cli_migrate_main(int argc, char **argv)
{
	struct ferr err = FERR_INIT;
	struct migrate_opts o;
	struct qmp_conn c;
	int status;

	if (migrate_parse(argc, argv, &o, &status))
		return status;
	if (qmp_conn_open(&c, o.control, QMP_CONN_TIMEOUT_MS, &err))
		return cli_error("%s", err.msg);
	if (o.mode == MIGRATE_STATUS)
		status = migrate_show_status(&c);
	else if (o.mode == MIGRATE_CANCEL)
		status = migrate_cancel(&c);
	else
		status = migrate_start(&c, &o);
	qmp_conn_close(&c);
	return status;
}
