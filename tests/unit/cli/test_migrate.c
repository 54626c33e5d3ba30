// SPDX-License-Identifier: GPL-2.0-only
/*
 * ferry migrate: option parsing, rates and durations, the progress line,
 * the summary, and whole runs of the command against a scripted ferry.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* The unit under test, static helpers included. */
#include "cli/migrate_opts.c"
#include "cli/migrate.c"

#include "fake_server.h"
#include "tests.h"

/* main.c's cli_error, keeping the message for the tests to look at. */
static char last_error[FERR_MSG_MAX + 64];

int cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return CLI_EXIT_SETUP;
}

/* ---- capturing stdout and stderr ---------------------------------------- */

struct capture {
	int fd, saved;
	FILE *tmp;
};

static void capture_start(struct capture *c, int fd)
{
	fflush(fd == 1 ? stdout : stderr);
	c->fd = fd;
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(fd);
	assert_true(dup2(fileno(c->tmp), fd) >= 0);
}

/* Restore the stream; returns what was written (caller frees). */
static char *capture_end(struct capture *c)
{
	char *text;
	long n;

	fflush(c->fd == 1 ? stdout : stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	fseek(c->tmp, 0, SEEK_END);
	n = ftell(c->tmp);
	rewind(c->tmp);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, c->tmp), (size_t)n);
	fclose(c->tmp);
	return text;
}

/* ---- options ------------------------------------------------------------- */

#define MAX_ARGS 24

/* migrate_parse() on "migrate ARGS..."; the list ends with NULL. */
static int parse_args(struct migrate_opts *o, int *status, ...)
{
	static char *argv[MAX_ARGS];
	const char *a;
	int argc = 0;
	va_list ap;

	argv[argc++] = "migrate";
	va_start(ap, status);
	while ((a = va_arg(ap, const char *)) && argc < MAX_ARGS - 1)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	last_error[0] = '\0';
	*status = -1;
	return migrate_parse(argc, argv, o, status);
}

#define PARSE(o, status, ...) parse_args(o, status, __VA_ARGS__, (const char *)NULL)

static void test_parse_all(void **state)
{
	struct migrate_opts o;
	int status;

	/* Options after the URI work too (GNU argument order). */
	assert_int_equal(PARSE(&o, &status, "--control", "/run/a.sock", "tcp:dst:4444",
			       "--downtime-limit", "50", "--max-bandwidth", "100M", "--timeout",
			       "600", "--on-timeout", "postcopy", "--wait", "--json"),
			 0);
	assert_int_equal(o.mode, MIGRATE_START);
	assert_string_equal(o.control, "/run/a.sock");
	assert_string_equal(o.uri, "tcp:dst:4444");
	assert_true(o.has_downtime_limit && o.downtime_limit_ms == 50);
	assert_true(o.has_max_bandwidth && o.max_bandwidth == 100ull << 20);
	assert_true(o.has_timeout && o.timeout_s == 600);
	assert_string_equal(o.on_timeout, "postcopy");
	assert_true(o.wait && o.json);

	assert_int_equal(PARSE(&o, &status, "--control", "/c", "file:/x"), 0);
	assert_false(o.has_downtime_limit || o.has_max_bandwidth || o.has_timeout || o.wait ||
		     o.json);
	assert_null(o.on_timeout);

	assert_int_equal(PARSE(&o, &status, "--control", "/c", "--cancel"), 0);
	assert_int_equal(o.mode, MIGRATE_CANCEL);
	assert_null(o.uri);
	assert_int_equal(PARSE(&o, &status, "--status", "--control", "/c"), 0);
	assert_int_equal(o.mode, MIGRATE_STATUS);
}

static void test_parse_units(void **state)
{
	struct migrate_opts o;
	int status;

	assert_int_equal(PARSE(&o, &status, "--control", "/c", "f:x", "--downtime-limit", "1s"), 0);
	assert_int_equal(o.downtime_limit_ms, 1000);
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "f:x", "--downtime-limit", "250ms"),
			 0);
	assert_int_equal(o.downtime_limit_ms, 250);
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "f:x", "--timeout", "10s"), 0);
	assert_int_equal(o.timeout_s, 10);
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "f:x", "--max-bandwidth", "0"), 0);
	assert_true(o.has_max_bandwidth);
	assert_int_equal(o.max_bandwidth, 0);
}

struct parse_error {
	const char *args[8];
	const char *msg;
};

static void test_parse_errors(void **state)
{
	static const struct parse_error cases[] = {
	    {{"file:/x"}, "--control PATH is required"},
	    {{"--control", "/c"}, "a destination URI is required"},
	    {{"--control", "/c", "file:/x", "file:/y"}, "unexpected argument 'file:/y'"},
	    {{"--control", "/c", "--cancel", "file:/x"}, "--cancel takes no URI"},
	    {{"--control", "/c", "--status", "--wait"}, "--status goes alone"},
	    {{"--control", "/c", "--cancel", "--timeout", "5"}, "--cancel goes alone"},
	    {{"--control", "/c", "--cancel", "--status"}, "exclude each other"},
	    {{"--control", "/c", "file:/x", "--json"}, "use it with --wait"},
	    {{"--control", "/c", "file:/x", "--max-bandwidth", "fast"},
	     "--max-bandwidth 'fast': expected bytes per second"},
	    {{"--control", "/c", "file:/x", "--max-bandwidth", "1.5G"}, "--max-bandwidth '1.5G'"},
	    {{"--control", "/c", "file:/x", "--max-bandwidth", "9000000000G"},
	     "--max-bandwidth '9000000000G'"},
	    {{"--control", "/c", "file:/x", "--on-timeout", "retry"},
	     "takes one of: abort, postcopy, force (got 'retry')"},
	    {{"--control", "/c", "file:/x", "--downtime-limit", "0"},
	     "parameter 'downtime-limit' must be between 1 and"},
	    {{"--control", "/c", "file:/x", "--downtime-limit", "500us"},
	     "--downtime-limit '500us': expected milliseconds"},
	    {{"--control", "/c", "file:/x", "--downtime-limit", "-5"}, "--downtime-limit '-5'"},
	    {{"--control", "/c", "file:/x", "--timeout", "1500ms"}, "--timeout '1500ms'"},
	    {{"--control", "/c", "file:/x", "--timeout", "999999999"},
	     "parameter 'timeout' must be between 0 and 604800"},
	    {{"--control", "/c", "file:/x", "--bogus"}, "unknown option '--bogus'"},
	    {{"file:/x", "--control"}, "a value is needed for '--control'"},
	    {{"--control", "/c", "file:/x", "--wait=yes"}, "no value expected for '--wait=yes'"},
	    {{"--control=", "file:/x"}, "--control PATH is required"},
	    {{"--control", "/c", "tcp:h:1", "--tls-hostname", "a\tb"},
	     "--tls-hostname: parameter 'tls-hostname' contains a control character"},
	    {{"--control", "/c", "--cancel", "--tls-creds", "/d"}, "--cancel goes alone"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i].args;
		struct migrate_opts o;
		int status;

		assert_int_equal(PARSE(&o, &status, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]),
				 -1);
		if (status != 1 || !strstr(last_error, cases[i].msg))
			fail_msg("case %zu: status %d, error '%s', expected '%s'", i, status,
				 last_error, cases[i].msg);
	}
}

static void test_parse_help(void **state)
{
	struct migrate_opts o;
	struct capture cap;
	int status, rc;

	capture_start(&cap, 1);
	rc = PARSE(&o, &status, "--help");
	char *out = capture_end(&cap);
	assert_int_equal(rc, -1);
	assert_int_equal(status, 0);
	assert_non_null(strstr(out, "usage: ferry migrate --control PATH"));
	assert_non_null(strstr(out, "Exit status:"));
	free(out);
}

static void test_parse_rate(void **state)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} cases[] = {
	    {"100M", 0, 100ull << 20},
	    {"1G", 0, 1ull << 30},
	    {"1g", 0, 1ull << 30},
	    {"512K/s", 0, 512ull << 10},
	    {"1GiB/s", 0, 1ull << 30},
	    {"4096", 0, 4096},
	    {"0", 0, 0},
	    {"unlimited", 0, 0},
	    {"", -EINVAL, 0},
	    {"/s", -EINVAL, 0},
	    {"fast", -EINVAL, 0},
	    {"-1", -EINVAL, 0},
	    {"1.5G", -EINVAL, 0},
	    {"100Mbit", -EINVAL, 0},
	    {"100M/h", -EINVAL, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int rc = migrate_parse_rate(cases[i].s, &v);

		if (rc != cases[i].rc || (rc == 0 && v != cases[i].v))
			fail_msg("'%s': rc %d value %llu", cases[i].s, rc, (unsigned long long)v);
	}
}

static void test_params_json(void **state)
{
	struct migrate_opts o;
	int status;
	json_t *p, *want;

	assert_int_equal(PARSE(&o, &status, "--control", "/c", "file:/x"), 0);
	assert_null(migrate_params_json(&o));

	assert_int_equal(PARSE(&o, &status, "--control", "/c", "file:/x", "--max-bandwidth",
			       "unlimited", "--on-timeout", "force"),
			 0);
	p = migrate_params_json(&o);
	want = json_pack("{s:I, s:s}", "max-bandwidth", (json_int_t)0, "on-timeout", "force");
	assert_true(json_equal(p, want));
	json_decref(p);
	json_decref(want);

	assert_int_equal(PARSE(&o, &status, "--control", "/c", "file:/x", "--downtime-limit", "20",
			       "--timeout", "30"),
			 0);
	p = migrate_params_json(&o);
	want = json_pack("{s:I, s:I}", "downtime-limit", (json_int_t)20, "timeout", (json_int_t)30);
	assert_true(json_equal(p, want));
	json_decref(p);
	json_decref(want);

	/* Strings go as given; '' switches TLS off. */
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "unix:/m", "--tls-creds",
			       "/etc/ferry/tls", "--tls-hostname", "dst.example"),
			 0);
	p = migrate_params_json(&o);
	want =
	    json_pack("{s:s, s:s}", "tls-creds", "/etc/ferry/tls", "tls-hostname", "dst.example");
	assert_true(json_equal(p, want));
	json_decref(p);
	json_decref(want);
	/* The table bounds strings too: 255 bytes at most. */
	char longdir[300];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--tls-creds", longdir),
			 -1);
	assert_non_null(strstr(last_error, "parameter 'tls-creds' must be 0 to 255 bytes long"));
	longdir[255] = '\0';
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--tls-creds", longdir),
			 0);
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--tls-creds", ""), 0);
	p = migrate_params_json(&o);
	want = json_pack("{s:s}", "tls-creds", "");
	assert_true(json_equal(p, want));
	json_decref(p);
	json_decref(want);
	/* Auto-converge: the capability, and its levels when given (each implies it). */
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--auto-converge"), 0);
	assert_true(o.auto_converge);
	assert_null(migrate_params_json(&o));
	assert_int_equal(PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--max-cpu-throttle",
			       "80", "--cpu-throttle-initial", "30", "--cpu-throttle-increment",
			       "25", "--cpu-throttle-tailslow"),
			 0);
	assert_true(o.auto_converge);
	p = migrate_params_json(&o);
	want = json_pack("{s:I, s:I, s:I, s:b}", "cpu-throttle-initial", (json_int_t)30,
			 "cpu-throttle-increment", (json_int_t)25, "max-cpu-throttle",
			 (json_int_t)80, "cpu-throttle-tailslow", 1);
	assert_true(json_equal(p, want));
	json_decref(p);
	json_decref(want);
	assert_int_equal(
	    PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--cpu-throttle-initial", "0"), -1);
	assert_non_null(strstr(last_error, "expected a percentage of vCPU time, 1 to 99"));
	assert_int_equal(
	    PARSE(&o, &status, "--control", "/c", "tcp:h:1", "--max-cpu-throttle", "100"), -1);
	assert_non_null(
	    strstr(last_error, "parameter 'max-cpu-throttle' must be between 1 and 99"));
}

/* ---- progress and summary ------------------------------------------------ */

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (!v)
		fail_msg("bad JSON in the test: %s", jerr.text);
	return v;
}

static bool near(double a, double b)
{
	return a - b < 1e-6 * (b > 1 ? b : 1) && b - a < 1e-6 * (b > 1 ? b : 1);
}

static void test_eta(void **state)
{
	assert_true(migrate_eta_s(0, 1000) < 0);
	assert_true(migrate_eta_s(1000, 0) < 0);
	assert_true(near(migrate_eta_s(1000, 500), 2.0));
	assert_true(near(migrate_eta_s(256.0 * 1048576, 1073741824), 0.25));
}

static void test_fmt_ms(void **state)
{
	char buf[FMT_LEN];

	assert_string_equal(fmt_ms(0, buf), "0 ms");
	assert_string_equal(fmt_ms(0.35, buf), "0.35 ms");
	assert_string_equal(fmt_ms(12.5, buf), "12.5 ms");
	assert_string_equal(fmt_ms(120, buf), "120 ms");
	assert_string_equal(fmt_ms(2345, buf), "2.3 s");
	assert_string_equal(fmt_ms(245000, buf), "4m05s");
	assert_string_equal(fmt_ms(3723000, buf), "1h02m");
}

static void test_progress_line(void **state)
{
	/* mbps 8589.934592 is 1 GiB/s; 256 MiB left at that rate is 250 ms. */
	json_t *info = load("{\"status\": \"active\", \"expected-downtime\": 120,"
			    " \"ram\": {\"transferred\": 1073741824, \"remaining\": 268435456,"
			    " \"mbps\": 8589.934592, \"dirty-pages-rate\": 1024, \"future\": 1},"
			    " \"ferry\": {\"passes\": 2}, \"unknown\": [1]}");
	char line[512];

	/* Two passes done, the third under way; ferry's rate wins over the one seen. */
	migrate_format_progress(info, 5.0, line, sizeof(line));
	assert_string_equal(line, "active  pass 3  sent 1.0 GiB  left 256.0 MiB  rate 1.0 GiB/s  "
				  "dirty 4.0 MiB/s  downtime ~120 ms  ETA 250 ms");
	json_decref(info);

	/* Rate 0 is "not measured yet": no rate, no ETA... */
	info = load("{\"status\": \"setup\", \"ram\": {\"transferred\": 0, \"remaining\": 100,"
		    " \"mbps\": 0.0, \"dirty-pages-rate\": 0}, \"ferry\": {\"passes\": 0}}");
	migrate_format_progress(info, 0, line, sizeof(line));
	assert_string_equal(line, "setup  pass 0  sent 0 B  left 100 B  rate -  dirty 0 B/s  "
				  "downtime -  ETA -");
	/* ...unless one was seen between polls. */
	migrate_format_progress(info, 50, line, sizeof(line));
	assert_string_equal(line, "setup  pass 0  sent 0 B  left 100 B  rate 50 B/s  dirty 0 B/s  "
				  "downtime -  ETA 2.0 s");
	json_decref(info);

	/* Auto-converge slowing the guest: said at the end of the line. */
	info = load("{\"status\": \"active\", \"cpu-throttle-percentage\": 30,"
		    " \"ram\": {\"transferred\": 0, \"remaining\": 100, \"mbps\": 0.0,"
		    " \"dirty-pages-rate\": 0}, \"ferry\": {\"passes\": 4}}");
	migrate_format_progress(info, 0, line, sizeof(line));
	assert_string_equal(line, "active  pass 5  sent 0 B  left 100 B  rate -  dirty 0 B/s  "
				  "downtime -  ETA -  throttle 30%");
	json_decref(info);

	/* Nothing known, wrong types: dashes, no crash. */
	info = load("{\"ram\": 7, \"ferry\": {\"passes\": \"many\"}}");
	migrate_format_progress(info, 0, line, sizeof(line));
	assert_string_equal(line, "-  pass -  sent -  left -  rate -  dirty -  downtime -  ETA -");
	json_decref(info);

	/* Stop-and-copy: the count as it is; the line is cut to the buffer. */
	info = load("{\"status\": \"device\", \"ferry\": {\"passes\": 4}}");
	migrate_format_progress(info, 0, line, 16);
	assert_string_equal(line, "device  pass 4 ");
	json_decref(info);
}

static void test_rate_meter(void **state)
{
	struct rate_meter m = {0};

	/* Nothing before the transfer starts: the setup would drag the first figure down. */
	assert_true(near(rate_meter_add(&m, 1000000000, 0), 0));
	assert_true(near(rate_meter_add(&m, 1100000000, 1e6), 0));
	assert_true(near(rate_meter_add(&m, 1200000000, 11e6), 100e6));
	/* Smoothed: 0.7 * 100 MB/s + 0.3 * 0 while a pass ends and nothing moves. */
	assert_true(near(rate_meter_add(&m, 1300000000, 11e6), 70e6));
	/* Fewer bytes than before: another migration, start over. */
	assert_true(near(rate_meter_add(&m, 1400000000, 1e6), 0));
	assert_true(near(rate_meter_add(&m, 1500000000, 2e6), 10e6));
}

static void test_tty_lines(void **state)
{
	json_t *info = load("{\"status\": \"active\", \"ram\": {\"transferred\": 1048576,"
			    " \"remaining\": 1048576}, \"ferry\": {\"passes\": 0}}");
	struct migrate_tty t = {0};
	struct capture cap;

	migrate_tty_on = true;
	capture_start(&cap, 2);
	migrate_tty_draw(&t, info);
	json_t *data = json_pack("{s:s, s:s}", "reason", "not-converging", "detail", "dirty > bw");
	migrate_tty_note(&t, "MIGRATION_NOT_CONVERGING", data);
	json_decref(data);
	migrate_tty_note(&t, "MIGRATION_SWITCHOVER_ABORTED", NULL);
	migrate_tty_clear(&t);
	char *err = capture_end(&cap);
	migrate_tty_on = false;

	/* Not a terminal here: 80 columns, the line cut at 79 so that it never wraps. */
	assert_string_equal(err,
			    "\ractive  pass 1  sent 1.0 MiB  left 1.0 MiB  rate -  dirty -  "
			    "downtime -  ETA -\033[K"
			    "\r\033[Kferry: migration not converging: not-converging (dirty > bw)\n"
			    "ferry: migration switchover aborted\n");
	free(err);
	json_decref(info);
}

static char *summary(json_t *info)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	migrate_print_summary(f, info);
	fclose(f);
	return text;
}

/* What src/control/mig_commands.c returns for a completed snapshot today. */
static void test_summary_completed(void **state)
{
	json_t *info = load(
	    "{\"status\": \"completed\", \"total-time\": 1234, \"setup-time\": 5,"
	    " \"downtime\": 1184, \"ram\": {\"transferred\": 1073741824, \"remaining\": 0,"
	    " \"total\": 268435456, \"duplicate\": 200, \"normal\": 100, \"normal-bytes\": 409600,"
	    " \"dirty-pages-rate\": 0, \"mbps\": 0.0, \"dirty-sync-count\": 0,"
	    " \"pages-per-second\": 0}, \"ferry\": {\"role\": \"source\", \"passes\": 1,"
	    " \"skipped-pages\": 300, \"state-bytes\": 12345, \"downtime-ns\": 1183913456}}");
	char *text = summary(info);

	assert_string_equal(text, "status:       completed\n"
				  "total time:   1.2 s (setup 5.00 ms)\n"
				  "downtime:     1.2 s (1183.913456 ms)\n"
				  "transferred:  1.0 GiB (1073741824 bytes)\n"
				  "pages:        100 sent, 200 zero, 300 skipped\n"
				  "passes:       1\n"
				  "throughput:   829.8 MiB/s average\n"
				  "role:         source\n"
				  "state-bytes:  12.1 KiB (12345 bytes)\n");
	free(text);
	json_decref(info);
}

static void test_summary_failed(void **state)
{
	json_t *info = load("{\"status\": \"failed\", \"error-desc\": \"tcp:dst:4444: Connection "
			    "refused\", \"ferry\": {\"downtime-ns\": 0}}");
	char *text = summary(info);

	assert_string_equal(text, "status:       failed\n"
				  "error:        tcp:dst:4444: Connection refused\n"
				  "total time:   -\n"
				  "downtime:     -\n"
				  "transferred:  -\n"
				  "pages:        - sent, - zero, - skipped\n"
				  "passes:       -\n"
				  "throughput:   -\n");
	free(text);
	json_decref(info);

	/* Not even a status, and "ferry" of the wrong type. */
	info = load("{\"ferry\": 3}");
	text = summary(info);
	assert_non_null(strstr(text, "status:       -\n"));
	assert_null(strstr(text, "error:"));
	free(text);
	json_decref(info);
}

/* The "ferry" object as the live engine fills it, and what may come. */
static void test_summary_ferry_members(void **state)
{
	json_t *info =
	    load("{\"status\": \"completed\", \"downtime\": 12,"
		 " \"ferry\": {\"role\": \"source\", \"passes\": 2,"
		 " \"pass-table\": [{\"pass\": 1, \"pages\": 256, \"bytes\": 1048576,"
		 "  \"duration-ns\": 2000000, \"bandwidth\": 524288000, \"dirty-rate\": 1024},"
		 "  {\"pass\": 2, \"pages\": 1, \"bytes\": 2048, \"duration-ns\": 350000}],"
		 " \"downtime-ns\": 12345678,"
		 " \"downtime-phases-ns\": {\"pause\": 1500000, \"go\": 250000},"
		 " \"switchover-attempts\": 1, \"forced\": false,"
		 " \"policy-reason\": \"limit-met\", \"ratio\": 0.5, \"list\": [1, 2],"
		 " \"later\": {\"wait-ms\": 3, \"nested\": {\"deep\": null}}}}");
	char *text = summary(info);

	/* One column for all values, wide enough for "switchover-attempts:". */
	assert_string_equal(text, "status:              completed\n"
				  "total time:          -\n"
				  "downtime:            12.0 ms (12.345678 ms)\n"
				  "transferred:         -\n"
				  "pages:               - sent, - zero, - skipped\n"
				  "passes:              2\n"
				  "   pass  pages    bytes  duration-ns    bandwidth  dirty-rate\n"
				  "      1    256  1.0 MiB      2.00 ms  500.0 MiB/s   1.0 KiB/s\n"
				  "      2      1  2.0 KiB      0.35 ms            -           -\n"
				  "throughput:          -\n"
				  "role:                source\n"
				  "downtime-phases-ns:  pause 1.50 ms, go 0.25 ms\n"
				  "switchover-attempts: 1\n"
				  "forced:              false\n"
				  "policy-reason:       limit-met\n"
				  "ratio:               0.5\n"
				  "list:                [1,2]\n"
				  "later:               wait-ms 3.00 ms, nested {\"deep\":null}\n");
	free(text);
	json_decref(info);
}

/* ---- whole runs against a scripted ferry ---------------------------------- */

/* cli_migrate_main() on "migrate --control PATH ARGS..."; stdout and stderr captured. */
struct run {
	int status;
	char *out, *err;
};

static void run_migrate(struct run *r, struct fake *f, ...)
{
	char *argv[MAX_ARGS];
	struct capture out, err;
	const char *a;
	int argc = 0;
	va_list ap;

	argv[argc++] = "migrate";
	argv[argc++] = "--control";
	argv[argc++] = f->path;
	va_start(ap, f);
	while ((a = va_arg(ap, const char *)) && argc < MAX_ARGS - 1)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	last_error[0] = '\0';
	capture_start(&out, 1);
	capture_start(&err, 2);
	r->status = cli_migrate_main(argc, argv);
	r->err = capture_end(&err);
	r->out = capture_end(&out);
	fake_finish(f);
}

#define RUN(r, f, ...) run_migrate(r, f, __VA_ARGS__, (const char *)NULL)

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void script_start(struct fake *f)
{
	fake_greet(f);
	json_t *req = fake_expect(f, "migrate-set-parameters");
	json_t *want = json_pack("{s:I, s:I}", "downtime-limit", (json_int_t)50, "max-bandwidth",
				 (json_int_t)(1ll << 30));
	if (!json_equal(json_object_get(req, "arguments"), want))
		fake_fail(f, "migrate-set-parameters: not the parameters given");
	fake_reply(f, req, "{}");
	json_decref(want);
	json_decref(req);
	req = fake_expect(f, "migrate");
	const char *uri =
	    json_string_value(json_object_get(json_object_get(req, "arguments"), "uri"));
	if (!uri || strcmp(uri, "tcp:dst:4444") != 0)
		fake_fail(f, "migrate: not the URI given");
	fake_reply(f, req, "{}");
	json_decref(req);
	if (!fake_wait_eof(f, FAKE_TIMEOUT_MS))
		fake_fail(f, "the client kept the connection open");
}

static void test_run_start(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_start, NULL);
	RUN(&r, &f, "tcp:dst:4444", "--downtime-limit", "50", "--max-bandwidth", "1G");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "migration to tcp:dst:4444 started\n");
	assert_string_equal(r.err, "");
	run_free(&r);
}

/* No parameters given: none are set, the first command is migrate. */
static void script_refused(struct fake *f)
{
	fake_greet(f);
	json_t *req = fake_expect(f, "migrate");
	fake_reply_error(f, req, "a migration is already in progress (status active)");
	json_decref(req);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_run_refused(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_refused, NULL);
	RUN(&r, &f, "file:/tmp/x");
	assert_int_equal(r.status, 1);
	assert_string_equal(last_error,
			    "migrate: a migration is already in progress (status active)");
	assert_string_equal(r.out, "");
	run_free(&r);
}

static const char completed_json[] =
    "{\"status\": \"completed\", \"total-time\": 2000, \"downtime\": 20,"
    " \"ram\": {\"transferred\": 2097152, \"normal\": 512, \"duplicate\": 10},"
    " \"ferry\": {\"passes\": 4, \"skipped-pages\": 7, \"downtime-ns\": 20000000}}";

static void script_wait(struct fake *f)
{
	fake_greet(f);
	fake_answer(f, "migrate", "{}");
	fake_answer(f, "query-migrate", "{\"status\": \"setup\"}");
	fake_answer(f, "query-migrate", "{\"status\": \"active\", \"ram\": {\"remaining\": 5}}");
	/* The event ends the client's sleep: it asks again at once. */
	fake_event(f, "MIGRATION", "{\"status\": \"completed\"}");
	uint64_t t0 = clock_now_ns();
	fake_answer(f, "query-migrate", f->opaque);
	if (clock_now_ns() - t0 > MIGRATE_POLL_MS * 900000ull) /* 90% of a poll interval */
		fake_fail(f, "the MIGRATION event did not end the wait");
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_run_wait_completed(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_wait, (void *)completed_json);
	RUN(&r, &f, "unix:/tmp/dst.sock", "--wait");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "status:       completed\n"
				   "total time:   2.0 s\n"
				   "downtime:     20.0 ms (20.000000 ms)\n"
				   "transferred:  2.0 MiB (2097152 bytes)\n"
				   "pages:        512 sent, 10 zero, 7 skipped\n"
				   "passes:       4\n"
				   "throughput:   1.0 MiB/s average\n");
	/* Not a terminal: nothing drawn while waiting. */
	assert_string_equal(r.err, "");
	run_free(&r);
}

static const char failed_json[] = "{\"status\": \"failed\", \"error-desc\": \"dst: disk full\"}";

static void test_run_wait_failed_json(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_wait, (void *)failed_json);
	RUN(&r, &f, "--wait", "--json", "file:/tmp/x");
	assert_int_equal(r.status, 1);
	assert_string_equal(last_error, "migration failed: dst: disk full");
	json_t *out = load(r.out);
	json_t *want = load(failed_json);
	assert_true(json_equal(out, want));
	assert_non_null(strstr(r.out, "\n  \"status\": \"failed\""));
	json_decref(out);
	json_decref(want);
	run_free(&r);
}

/* ferry announces the end and goes away before the client asks. */
static void script_gone(struct fake *f)
{
	fake_greet(f);
	fake_answer(f, "migrate", "{}");
	fake_answer(f, "query-migrate", "{\"status\": \"active\"}");
	if (f->opaque)
		fake_event(f, "MIGRATION", "{\"status\": \"completed\"}");
}

static void test_run_connection_lost(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_gone, (void *)1);
	RUN(&r, &f, "file:/tmp/x", "--wait");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "status:       completed\n"));
	assert_non_null(strstr(r.out, "transferred:  -\n"));
	run_free(&r);

	fake_init(&f);
	fake_start(&f, script_gone, NULL);
	RUN(&r, &f, "file:/tmp/x", "--wait");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(last_error, "ferry closed the connection"));
	run_free(&r);
}

/* Ctrl-C: migrate-cancel once, then the wait goes on to the final status. */
static void script_sigint(struct fake *f)
{
	fake_greet(f);
	fake_answer(f, "migrate", "{}");
	fake_answer(f, "query-migrate", "{\"status\": \"active\"}");
	kill(getpid(), SIGINT);
	fake_answer(f, "migrate-cancel", "{}");
	fake_answer(f, "query-migrate", "{\"status\": \"cancelling\"}");
	fake_answer(f, "query-migrate",
		    "{\"status\": \"cancelled\", \"error-desc\": \"migration "
		    "cancelled\"}");
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_run_sigint(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_sigint, NULL);
	RUN(&r, &f, "file:/tmp/x", "--wait");
	signal(SIGINT, SIG_DFL);
	migrate_interrupts = 0;
	assert_int_equal(r.status, 1);
	assert_string_equal(last_error, "migration cancelled");
	assert_non_null(strstr(r.err, "cancelling the migration (Ctrl-C again to stop waiting)"));
	assert_non_null(strstr(r.out, "status:       cancelled\n"));
	run_free(&r);
}

/* A second Ctrl-C leaves at once with 130; in a child, since it _exit()s. */
static atomic_int sigint_child;

static void script_sigint_twice(struct fake *f)
{
	fake_greet(f);
	fake_answer(f, "migrate", "{}");
	fake_answer(f, "query-migrate", "{\"status\": \"active\"}");
	kill(sigint_child, SIGINT);
	fake_answer(f, "migrate-cancel", "{}");
	fake_answer(f, "query-migrate", "{\"status\": \"cancelling\"}");
	kill(sigint_child, SIGINT);
	if (!fake_wait_eof(f, FAKE_TIMEOUT_MS))
		fake_fail(f, "the client did not leave after the second Ctrl-C");
}

static void test_run_sigint_twice(void **state)
{
	struct fake f;
	int wstatus;

	fake_init(&f);
	fake_start(&f, script_sigint_twice, NULL);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"migrate", "--control", f.path, "--wait", "file:/tmp/x", NULL};
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 1);
		dup2(devnull, 2);
		_exit(cli_migrate_main(5, argv));
	}
	sigint_child = pid;
	fake_finish(&f);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 130);
}

static void script_status(struct fake *f)
{
	fake_greet(f);
	fake_answer(f, "query-migrate", f->opaque);
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_run_status(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_status, (void *)completed_json);
	RUN(&r, &f, "--status");
	assert_int_equal(r.status, 0);
	json_t *out = load(r.out);
	json_t *want = load(completed_json);
	assert_true(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	run_free(&r);

	/* Before any migration ferry answers {} (as QEMU). */
	fake_init(&f);
	fake_start(&f, script_status, "{}");
	RUN(&r, &f, "--status");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "{}\n");
	run_free(&r);
}

static void script_cancel(struct fake *f)
{
	fake_greet(f);
	fake_answer(f, "query-migrate", f->opaque);
	if (strstr(f->opaque, "active"))
		fake_answer(f, "migrate-cancel", "{}");
	fake_wait_eof(f, FAKE_TIMEOUT_MS);
}

static void test_run_cancel(void **state)
{
	struct fake f;
	struct run r;

	fake_init(&f);
	fake_start(&f, script_cancel, "{\"status\": \"active\"}");
	RUN(&r, &f, "--cancel");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "migration cancel requested\n");
	run_free(&r);

	fake_init(&f);
	fake_start(&f, script_cancel, "{\"status\": \"completed\"}");
	RUN(&r, &f, "--cancel");
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "no migration in progress\n");
	run_free(&r);
}

static void test_run_unreachable(void **state)
{
	char *argv[] = {"migrate", "--control", "/nonexistent/ferry.sock", "--status", NULL};

	last_error[0] = '\0';
	assert_int_equal(cli_migrate_main(4, argv), 1);
	assert_string_equal(last_error, "control socket /nonexistent/ferry.sock: no such file (is "
					"ferry running with --control /nonexistent/ferry.sock?)");
}

int run_migrate_tests(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_all),
	    cmocka_unit_test(test_parse_units),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_help),
	    cmocka_unit_test(test_parse_rate),
	    cmocka_unit_test(test_params_json),
	    cmocka_unit_test(test_eta),
	    cmocka_unit_test(test_fmt_ms),
	    cmocka_unit_test(test_progress_line),
	    cmocka_unit_test(test_rate_meter),
	    cmocka_unit_test(test_tty_lines),
	    cmocka_unit_test(test_summary_completed),
	    cmocka_unit_test(test_summary_failed),
	    cmocka_unit_test(test_summary_ferry_members),
	    cmocka_unit_test(test_run_start),
	    cmocka_unit_test(test_run_refused),
	    cmocka_unit_test(test_run_wait_completed),
	    cmocka_unit_test(test_run_wait_failed_json),
	    cmocka_unit_test(test_run_connection_lost),
	    cmocka_unit_test(test_run_sigint),
	    cmocka_unit_test(test_run_sigint_twice),
	    cmocka_unit_test(test_run_status),
	    cmocka_unit_test(test_run_cancel),
	    cmocka_unit_test(test_run_unreachable),
	};
	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
