// SPDX-License-Identifier: GPL-2.0-only
/*
 * ferry migrate's options (migrate_opts.h): the usage text, parsing, the
 * checks (values through the engine's own parameter table, so that a bad
 * value is a usage error and nothing reaches ferry), and the parameters to
 * send.  tests/unit/cli includes this file to test its static helpers.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/migrate_opts.h"
#include "common/parse.h"
#include "migration/params.h"

static const char *const migrate_mode_opt[] = {
    [MIGRATE_START] = "",	   [MIGRATE_CANCEL] = "--cancel",   [MIGRATE_STATUS] = "--status",
    [MIGRATE_RESUME] = "--resume", [MIGRATE_RECOVER] = "--recover", [MIGRATE_PAUSE] = "--pause"};

void cli_migrate_usage(void)
{
	printf(
	    "usage: ferry migrate --control PATH [options] URI\n"
	    "       ferry migrate --control PATH --status | --cancel | --pause\n"
	    "       ferry migrate --control PATH --resume [--wait [--json]] URI\n"
	    "       ferry migrate --control PATH --recover URI\n"
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
	    "  --tls-creds DIR       TLS with mutual x509 authentication: DIR holds\n"
	    "                        ca-cert.pem, client-cert.pem and client-key.pem\n"
	    "                        (docs/security.md); '' for plaintext (default)\n"
	    "  --tls-hostname NAME   the name the destination's certificate must carry;\n"
	    "                        default: the HOST of a tcp: URI (unix: needs it)\n"
	    "  --multifd-channels N  send pages over N parallel connections (1..16) besides\n"
	    "                        the main one (capability multifd); 0 turns it off\n"
	    "  --postcopy            allow post-copy (capability postcopy-ram): the guest\n"
	    "                        may start on the destination before every page is\n"
	    "                        there (migrate-start-postcopy, --on-timeout postcopy,\n"
	    "                        or when pre-copy does not converge)\n"
	    "  --postcopy-after-passes N\n"
	    "                        switch to post-copy after N pre-copy passes (0: from\n"
	    "                        the start); implies --postcopy\n"
	    "  --auto-converge       slow the guest's vCPUs down while pre-copy does not\n"
	    "                        converge and post-copy is not taken (capability\n"
	    "                        auto-converge; docs/policy.md, \"Throttling\")\n"
	    "  --cpu-throttle-initial PCT, --cpu-throttle-increment PCT, --max-cpu-throttle PCT\n"
	    "                        its first level (20), step per pass that still does\n"
	    "                        not converge (10) and ceiling (99), 1..99; each\n"
	    "                        implies --auto-converge\n"
	    "  --cpu-throttle-tailslow\n"
	    "                        smaller steps near the level that suffices; implies\n"
	    "                        --auto-converge\n"
	    "  --wait                follow the migration to its end: progress on a terminal,\n"
	    "                        then a summary; Ctrl-C cancels it (twice: stop waiting)\n"
	    "  --json                with --wait: print the final query-migrate result as JSON\n"
	    "  --status              print query-migrate as JSON\n"
	    "  --cancel              cancel the migration in progress\n"
	    "  --pause               break a post-copy's connections on purpose (a hung\n"
	    "                        network): both sides wait in postcopy-paused\n"
	    "  --recover URI         destination, postcopy-paused: listen on URI for the\n"
	    "                        source's --resume (migrate-recover)\n"
	    "  --resume URI          source, postcopy-paused: reconnect to the destination's\n"
	    "                        --recover URI and finish (migrate with resume)\n"
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
	if (d->type == MIG_PARAM_STR) {
		if (mig_param_set_str(&scratch, d, value_name, &err))
			return cli_error("--%s: %s", name, err.msg);
		return 0;
	}
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
		      o->on_timeout || o->tls_creds || o->tls_hostname || o->auto_converge;

	if (!o->control || !*o->control)
		return cli_error("--control PATH is required (try 'ferry migrate --help')");
	params = params || o->has_multifd || o->postcopy;
	if (o->mode == MIGRATE_RESUME || o->mode == MIGRATE_RECOVER) {
		const char *mode = migrate_mode_opt[o->mode];

		if (nargs == 0)
			return cli_error("%s needs the URI to reconnect on", mode);
		if (params)
			return cli_error(
			    "%s takes no parameters: the paused migration keeps its own", mode);
		if (o->mode == MIGRATE_RECOVER && o->wait)
			return cli_error("--recover does not wait: follow it with --status");
		if (o->json && !o->wait)
			return cli_error("--json prints the final result: use it with --wait");
		return 0;
	}
	if (o->mode != MIGRATE_START) {
		const char *mode = migrate_mode_opt[o->mode];

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

enum {
	O_DOWNTIME = 256,
	O_BANDWIDTH,
	O_TIMEOUT,
	O_ON_TIMEOUT,
	O_TLS_CREDS,
	O_TLS_HOSTNAME,
	O_MULTIFD,
	O_POSTCOPY,
	O_POSTCOPY_AFTER,
	O_RESUME,
	O_RECOVER,
	O_PAUSE,
	O_AUTO_CONVERGE,
	O_THROTTLE_INITIAL,
	O_THROTTLE_INCREMENT,
	O_THROTTLE_MAX,
	O_THROTTLE_TAILSLOW,
};

/* --cpu-throttle-initial and the others: a percentage the parameter table accepts. */
static int migrate_throttle_option(const char *name, const char *arg, uint64_t *out)
{
	if (parse_u64(arg, out) || *out == 0)
		return migrate_bad_value(name, arg, "a percentage of vCPU time, 1 to 99");
	return migrate_check_param(name, NULL, *out);
}

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
	case O_TLS_CREDS:
		o->tls_creds = arg;
		return migrate_check_param("tls-creds", arg, 0);
	case O_TLS_HOSTNAME:
		o->tls_hostname = arg;
		return migrate_check_param("tls-hostname", arg, 0);
	case O_MULTIFD:
		if (parse_u64(arg, &o->multifd_channels))
			return migrate_bad_value(
			    "multifd-channels", arg,
			    "a number of data channels, 1 to 16, or 0 for none");
		o->has_multifd = true;
		return o->multifd_channels
			   ? migrate_check_param("multifd-channels", NULL, o->multifd_channels)
			   : 0;
	case O_POSTCOPY:
		o->postcopy = true;
		return 0;
	case O_POSTCOPY_AFTER:
		if (parse_u64(arg, &o->postcopy_after_passes) ||
		    o->postcopy_after_passes >= 0xffffffffull)
			return migrate_bad_value(
			    "postcopy-after-passes", arg,
			    "a number of pre-copy passes, 0 for post-copy from "
			    "the start");
		o->postcopy = o->has_postcopy_after = true;
		return 0;
	case O_AUTO_CONVERGE:
		o->auto_converge = true;
		return 0;
	case O_THROTTLE_INITIAL:
		o->auto_converge = true;
		return migrate_throttle_option("cpu-throttle-initial", arg, &o->throttle_initial);
	case O_THROTTLE_INCREMENT:
		o->auto_converge = true;
		return migrate_throttle_option("cpu-throttle-increment", arg,
					       &o->throttle_increment);
	case O_THROTTLE_MAX:
		o->auto_converge = true;
		return migrate_throttle_option("max-cpu-throttle", arg, &o->throttle_max);
	case O_THROTTLE_TAILSLOW:
		o->auto_converge = o->throttle_tailslow = true;
		return 0;
	case 'x':
	case 's':
	case O_RESUME:
	case O_RECOVER:
	case O_PAUSE: {
		enum migrate_mode m = c == 'x'	       ? MIGRATE_CANCEL
				      : c == 's'       ? MIGRATE_STATUS
				      : c == O_RESUME  ? MIGRATE_RESUME
				      : c == O_RECOVER ? MIGRATE_RECOVER
						       : MIGRATE_PAUSE;
		if (o->mode != MIGRATE_START && o->mode != m)
			return cli_error("%s and %s exclude each other", migrate_mode_opt[o->mode],
					 migrate_mode_opt[m]);
		o->mode = m;
		return 0;
	}
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
int migrate_parse(int argc, char **argv, struct migrate_opts *o, int *status)
{
	static const struct option longopts[] = {
	    {"control", required_argument, NULL, 'C'},
	    {"downtime-limit", required_argument, NULL, O_DOWNTIME},
	    {"max-bandwidth", required_argument, NULL, O_BANDWIDTH},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"on-timeout", required_argument, NULL, O_ON_TIMEOUT},
	    {"tls-creds", required_argument, NULL, O_TLS_CREDS},
	    {"tls-hostname", required_argument, NULL, O_TLS_HOSTNAME},
	    {"multifd-channels", required_argument, NULL, O_MULTIFD},
	    {"postcopy", no_argument, NULL, O_POSTCOPY},
	    {"postcopy-after-passes", required_argument, NULL, O_POSTCOPY_AFTER},
	    {"auto-converge", no_argument, NULL, O_AUTO_CONVERGE},
	    {"cpu-throttle-initial", required_argument, NULL, O_THROTTLE_INITIAL},
	    {"cpu-throttle-increment", required_argument, NULL, O_THROTTLE_INCREMENT},
	    {"max-cpu-throttle", required_argument, NULL, O_THROTTLE_MAX},
	    {"cpu-throttle-tailslow", no_argument, NULL, O_THROTTLE_TAILSLOW},
	    {"wait", no_argument, NULL, 'w'},
	    {"json", no_argument, NULL, 'j'},
	    {"cancel", no_argument, NULL, 'x'},
	    {"status", no_argument, NULL, 's'},
	    {"resume", no_argument, NULL, O_RESUME},
	    {"recover", no_argument, NULL, O_RECOVER},
	    {"pause", no_argument, NULL, O_PAUSE},
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
json_t *migrate_params_json(const struct migrate_opts *o)
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
	if (o->tls_creds)
		json_object_set_new(p, "tls-creds", json_string(o->tls_creds));
	if (o->tls_hostname)
		json_object_set_new(p, "tls-hostname", json_string(o->tls_hostname));
	if (o->has_multifd && o->multifd_channels)
		json_object_set_new(p, "multifd-channels",
				    json_integer((json_int_t)o->multifd_channels));
	if (o->has_postcopy_after)
		json_object_set_new(p, "postcopy-after-passes",
				    json_integer((json_int_t)o->postcopy_after_passes));
	if (o->throttle_initial)
		json_object_set_new(p, "cpu-throttle-initial",
				    json_integer((json_int_t)o->throttle_initial));
	if (o->throttle_increment)
		json_object_set_new(p, "cpu-throttle-increment",
				    json_integer((json_int_t)o->throttle_increment));
	if (o->throttle_max)
		json_object_set_new(p, "max-cpu-throttle",
				    json_integer((json_int_t)o->throttle_max));
	if (o->throttle_tailslow)
		json_object_set_new(p, "cpu-throttle-tailslow", json_true());
	if (json_object_size(p) == 0) {
		json_decref(p);
		return NULL;
	}
	return p;
}
