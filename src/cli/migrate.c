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
	bool params = o->has_downtime_limit || o->has_max_bandwidth || o->has_timeout ||
		      o->on_timeout;

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

/* Parse "ferry migrate" options; returns 0, or -1 with the exit status in *@status. */
static int migrate_parse(int argc, char **argv, struct migrate_opts *o, int *status)
{
	enum { O_DOWNTIME = 256, O_BANDWIDTH, O_TIMEOUT, O_ON_TIMEOUT };
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
	opterr = 0;
	optind = 0; /* glibc: start over, also when called again (the tests do) */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'C': o->control = optarg; break;
		case 'w': o->wait = true; break;
		case 'j': o->json = true; break;
		case O_DOWNTIME:
			if (migrate_parse_duration(optarg, 1000000, &o->downtime_limit_ms))
				return *status = migrate_bad_value("downtime-limit", optarg,
								   "milliseconds such as 300, or "
								   "500ms, 1s"),
				       -1;
			if ((*status = migrate_check_param("downtime-limit", NULL,
							   o->downtime_limit_ms)))
				return -1;
			o->has_downtime_limit = true;
			break;
		case O_BANDWIDTH:
			/* The protocol's integers are signed 64-bit. */
			if (migrate_parse_rate(optarg, &o->max_bandwidth) ||
			    o->max_bandwidth > INT64_MAX)
				return *status = migrate_bad_value("max-bandwidth", optarg,
								   "bytes per second such as 100M "
								   "or 1G, or 'unlimited'"),
				       -1;
			o->has_max_bandwidth = true;
			break;
		case O_TIMEOUT:
			if (migrate_parse_duration(optarg, 1000000000, &o->timeout_s))
				return *status = migrate_bad_value("timeout", optarg,
								   "seconds such as 600, or 10s"),
				       -1;
			if ((*status = migrate_check_param("timeout", NULL, o->timeout_s)))
				return -1;
			o->has_timeout = true;
			break;
		case O_ON_TIMEOUT:
			if ((*status = migrate_check_param("on-timeout", optarg, 0)))
				return -1;
			o->on_timeout = optarg;
			break;
		case 'x':
		case 's':
			if (o->mode != MIGRATE_START)
				return *status = cli_error("--cancel and --status exclude each other"),
				       -1;
			o->mode = c == 'x' ? MIGRATE_CANCEL : MIGRATE_STATUS;
			break;
		case 'h':
			cli_migrate_usage();
			return *status = 0, -1;
		default:
			/* No short options: optopt names a known option used wrongly. */
			*status = cli_error("%s '%s' (try 'ferry migrate --help')",
					    !optopt ? "unknown option"
					    : strchr(argv[optind - 1], '=') ? "no value expected for"
									     : "a value is needed for",
					    argv[optind - 1]);
			return -1;
		}
	}
	if (argc - optind > 1)
		return *status = cli_error("unexpected argument '%s' (one URI only)",
					   argv[optind + 1]),
		       -1;
	if (optind < argc)
		o->uri = argv[optind];
	if ((*status = migrate_check(o, argc - optind)))
		return -1;
	return 0;
}

/* migrate-set-parameters arguments: only the parameters given (NULL: none). */
static json_t *migrate_params_json(const struct migrate_opts *o)
{
	json_t *p = json_object();

	if (o->has_downtime_limit)
		json_object_set_new(p, "downtime-limit", json_integer((json_int_t)o->downtime_limit_ms));
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

/* Passes so far: ferry.passes is a count, or a table with one entry per pass. */
static bool migrate_passes(json_t *info, double *n)
{
	json_t *p = migrate_get(info, "ferry.passes");

	if (json_is_array(p)) {
		*n = (double)json_array_size(p);
		return true;
	}
	return migrate_num(info, "ferry.passes", n);
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

	if (!migrate_num(o, path, &v))
		return "-";
	return fmt_size((uint64_t)v, buf, FMT_LEN);
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
 * The progress line, from a query-migrate result:
 *   active  pass 3  sent 1.2 GiB  left 340.0 MiB  rate 812.0 MiB/s  dirty 64.0 MiB/s
 *   downtime ~120 ms  ETA 0.4 s                                   (one line)
 */
static void migrate_format_progress(json_t *info, char *buf, size_t len)
{
	char pass[FMT_LEN] = "-", sent[FMT_LEN], left[FMT_LEN], rate[FMT_LEN] = "-";
	char dirty[FMT_LEN] = "-", down[FMT_LEN + 1] = "-", eta[FMT_LEN] = "-", t[FMT_LEN];
	const char *status = json_string_value(json_object_get(info, "status"));
	double v, bps = 0, remaining = 0, secs;

	if (migrate_passes(info, &v))
		snprintf(pass, sizeof(pass), "%.0f", v);
	if (migrate_rate(info, &bps))
		fmt_rate(bps, rate);
	if (migrate_num(info, "ram.dirty-pages-rate", &v))
		fmt_rate(v * MIGRATE_PAGE_SIZE, dirty);
	if (migrate_num(info, "expected-downtime", &v))
		snprintf(down, sizeof(down), "~%s", fmt_ms(v, t));
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

/*
 * A value of the "ferry" object for a person, by the convention of its
 * names: "-bytes" are sizes, "-ns" and "-ms" durations.  @exact adds the
 * raw byte count.  Arrays and objects come out as compact JSON.
 */
static const char *fmt_value(const char *key, json_t *v, bool exact, char *buf, size_t len)
{
	char t[FMT_LEN];

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	if (json_is_null(v) || !v)
		return "-";
	if (json_is_number(v)) {
		double d = json_number_value(v);

		if (ends_with(key, "-bytes") && d >= 0 && exact)
			snprintf(buf, len, "%s (%.0f bytes)", fmt_size((uint64_t)d, t, sizeof(t)), d);
		else if (ends_with(key, "-bytes") && d >= 0)
			fmt_size((uint64_t)d, buf, len);
		else if (ends_with(key, "-ns") && d >= 0)
			snprintf(buf, len, "%s", fmt_ms(d / 1e6, t));
		else if (ends_with(key, "-ms") && d >= 0)
			snprintf(buf, len, "%s", fmt_ms(d, t));
		else if (json_is_integer(v))
			snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		else
			snprintf(buf, len, "%g", d);
		return buf;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
	return buf;
}

#define SUMMARY_LABEL 14 /* "transferred:" and two spaces */

static void summary_line(FILE *f, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void summary_line(FILE *f, const char *label, const char *fmt, ...)
{
	int pad = (int)strlen(label) + 1 > SUMMARY_LABEL ? (int)strlen(label) + 1 : SUMMARY_LABEL;
	va_list ap;

	fprintf(f, "%-*s", pad, label);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* An array of objects, such as a table of passes. */
static bool is_table(json_t *v)
{
	size_t i;
	json_t *row;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	json_array_foreach(v, i, row)
		if (!json_is_object(row))
			return false;
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

	json_object_foreach(json_array_get(rows, 0), key, v) {
		if (ncols == TABLE_MAX_COLS)
			break;
		cols[ncols] = key;
		width[ncols++] = (int)strlen(key);
	}
	json_array_foreach(rows, i, row) {
		for (k = 0; k < ncols; k++) {
			v = json_object_get(row, cols[k]);
			int w = (int)strlen(fmt_value(cols[k], v, false, cell, sizeof(cell)));
			if (w > width[k])
				width[k] = w;
		}
	}
	fputs(" ", f);
	for (k = 0; k < ncols; k++)
		fprintf(f, "  %*s", width[k], cols[k]);
	fputc('\n', f);
	json_array_foreach(rows, i, row) {
		fputs(" ", f);
		for (k = 0; k < ncols; k++)
			fprintf(f, "  %*s", width[k],
				fmt_value(cols[k], json_object_get(row, cols[k]), false, cell,
					  sizeof(cell)));
		fputc('\n', f);
	}
}

/* Keys of "ferry" that the summary's own lines show. */
static bool summary_shown(const char *key)
{
	static const char *const shown[] = {"passes", "skipped-pages", "downtime-ns", NULL};

	for (const char *const *s = shown; *s; s++)
		if (strcmp(*s, key) == 0)
			return true;
	return false;
}

/* Every other member of "ferry", nested objects flattened to "a.b". */
static void summary_members(FILE *f, json_t *obj, const char *prefix, int depth)
{
	char label[128], buf[256];
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (depth == 0 && summary_shown(key))
			continue;
		if (json_is_object(v) && depth < 3) {
			snprintf(label, sizeof(label), "%s%s.", prefix, key);
			summary_members(f, v, label, depth + 1);
			continue;
		}
		snprintf(label, sizeof(label), "%s%s:", prefix, key);
		if (is_table(v)) {
			fprintf(f, "%s\n", label);
			print_table(f, v);
		} else {
			summary_line(f, label, "%s", fmt_value(key, v, true, buf, sizeof(buf)));
		}
	}
}

/* The block printed when a migration ends; "-" for what ferry did not report. */
static void migrate_print_summary(FILE *f, json_t *info)
{
	const char *status = json_string_value(json_object_get(info, "status"));
	const char *desc = json_string_value(json_object_get(info, "error-desc"));
	char a[FMT_LEN], b[FMT_LEN], c[FMT_LEN];
	double ms = 0, setup, down, down_ns, bytes = 0, passes;
	bool has_ms = migrate_num(info, "total-time", &ms);
	bool has_bytes = migrate_num(info, "ram.transferred", &bytes);

	summary_line(f, "status:", "%s", status ? status : "-");
	if (desc)
		summary_line(f, "error:", "%s", desc);

	if (!has_ms)
		summary_line(f, "total time:", "-");
	else if (migrate_num(info, "setup-time", &setup))
		summary_line(f, "total time:", "%s (setup %s)", fmt_ms(ms, a), fmt_ms(setup, b));
	else
		summary_line(f, "total time:", "%s", fmt_ms(ms, a));

	/* QEMU's "downtime" is whole ms; ferry's own figure has the detail. */
	bool has_down = migrate_num(info, "downtime", &down);
	if (migrate_num(info, "ferry.downtime-ns", &down_ns) && (has_down || down_ns > 0))
		summary_line(f, "downtime:", "%s (%.6f ms)", has_down ? fmt_ms(down, a) : "-",
			     down_ns / 1e6);
	else
		summary_line(f, "downtime:", "%s", has_down ? fmt_ms(down, a) : "-");

	if (has_bytes)
		summary_line(f, "transferred:", "%s (%.0f bytes)", fmt_size((uint64_t)bytes, a, FMT_LEN),
			     bytes);
	else
		summary_line(f, "transferred:", "-");
	summary_line(f, "pages:", "%s sent, %s zero, %s skipped", show_count(info, "ram.normal", a),
		     show_count(info, "ram.duplicate", b), show_count(info, "ferry.skipped-pages", c));

	if (migrate_passes(info, &passes))
		summary_line(f, "passes:", "%.0f", passes);
	else
		summary_line(f, "passes:", "-");
	if (is_table(migrate_get(info, "ferry.passes")))
		print_table(f, migrate_get(info, "ferry.passes"));

	if (has_bytes && has_ms && ms > 0)
		summary_line(f, "throughput:", "%s average", fmt_rate(bytes / (ms / 1000), a));
	else
		summary_line(f, "throughput:", "-");

	summary_members(f, json_object_get(info, "ferry"), "", 0);
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

struct migrate_tty {
	bool drawn; /* a progress line is on the screen */
};

static void migrate_tty_draw(struct migrate_tty *t, json_t *info)
{
	struct winsize ws;
	char line[512];
	size_t cols = 80;

	if (!migrate_tty_on)
		return;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		cols = ws.ws_col < sizeof(line) ? ws.ws_col : sizeof(line);
	migrate_format_progress(info, line, sizeof(line));
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
 * status ends the sleep at once (and is kept in @ended).
 */
static int migrate_sleep(struct qmp_conn *c, char *ended, size_t len, struct ferr *err)
{
	uint64_t until = clock_now_ns() + MIGRATE_POLL_MS * 1000000ull;

	for (;;) {
		uint64_t now = clock_now_ns();
		json_t *ev;

		if (now >= until)
			return 0;
		int rc = qmp_conn_next_event(c, (int)((until - now + 999999) / 1000000), &ev, err);
		if (rc || !ev)
			return rc;
		const char *name = json_string_value(json_object_get(ev, "event"));
		const char *st = json_string_value(migrate_get(ev, "data.status"));
		bool done = name && strcmp(name, "MIGRATION") == 0 && migrate_status_final(st);
		if (done)
			snprintf(ended, len, "%s", st);
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
			/* {}: this ferry has no migration, so someone else's reset it. */
			rc = ferr_set(&err, -ESRCH, "query-migrate reports no migration");
			break;
		}
		if (migrate_status_final(status))
			break;
		migrate_tty_draw(&tty, info);
		json_decref(info);
		info = NULL;
		rc = migrate_sleep(c, ended, sizeof(ended), &err);
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
