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
#include "cli/migrate_show.h"
#include "cli/qmp_client.h"
#include "common/clock.h"
#include "common/parse.h"
#include "migration/params.h"

#define MIGRATE_POLL_MS	 100
#define MIGRATE_EXIT_INT 130 /* 128 + SIGINT, what a shell reports */

#include "cli/migrate_opts.h"

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

/*
 * migrate with @args (taken); without --wait print @started (with the URI),
 * else follow it to its end and report: the exit status.
 */
static int migrate_go(struct qmp_conn *c, const struct migrate_opts *o, json_t *args,
		      const char *started)
{
	struct ferr err = FERR_INIT;
	json_t *final = NULL;
	int status;

	/* From here on a Ctrl-C means "cancel", even before the reply to migrate. */
	if (o->wait) {
		migrate_tty_on = isatty(STDERR_FILENO);
		migrate_catch_sigint();
	}
	if (migrate_exec(c, "migrate", args, NULL, &err))
		return cli_error("%s", err.msg);
	if (!o->wait) {
		printf(started, o->uri);
		return 0;
	}
	status = migrate_follow(c, &final);
	if (!status)
		status = migrate_report(final, o->json);
	json_decref(final);
	return status;
}

static int migrate_start(struct qmp_conn *c, const struct migrate_opts *o)
{
	struct ferr err = FERR_INIT;
	json_t *params = migrate_params_json(o);

	/* Capabilities first: parameters such as postcopy-after-passes need them. */
	json_t *caps = json_array();
	if (o->has_multifd)
		json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "multifd",
						      "state", o->multifd_channels != 0));
	if (o->postcopy)
		json_array_append_new(
		    caps, json_pack("{s:s, s:b}", "capability", "postcopy-ram", "state", 1));
	if (o->auto_converge)
		json_array_append_new(
		    caps, json_pack("{s:s, s:b}", "capability", "auto-converge", "state", 1));
	if (!json_array_size(caps))
		json_decref(caps); /* nothing to set */
	else if (migrate_exec(c, "migrate-set-capabilities",
			      json_pack("{s:o}", "capabilities", caps), NULL, &err)) {
		json_decref(params);
		return cli_error("%s", err.msg);
	}
	if (params && migrate_exec(c, "migrate-set-parameters", params, NULL, &err))
		return cli_error("%s", err.msg);
	return migrate_go(c, o, json_pack("{s:s}", "uri", o->uri), "migration to %s started\n");
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

/* Post-copy recovery: --resume (then, with --wait, to the end), --recover, --pause. */
static int migrate_recovery(struct qmp_conn *c, const struct migrate_opts *o)
{
	struct ferr err = FERR_INIT;

	switch (o->mode) {
	case MIGRATE_PAUSE:
		if (migrate_exec(c, "migrate-pause", NULL, NULL, &err))
			return cli_error("%s", err.msg);
		printf("post-copy paused\n");
		return 0;
	case MIGRATE_RECOVER:
		if (migrate_exec(c, "migrate-recover", json_pack("{s:s}", "uri", o->uri), NULL,
				 &err))
			return cli_error("%s", err.msg);
		printf("listening on %s for the source's --resume\n", o->uri);
		return 0;
	default:
		break;
	}
	return migrate_go(c, o, json_pack("{s:s, s:b}", "uri", o->uri, "resume", 1),
			  "post-copy resuming to %s\n");
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
	else if (o.mode != MIGRATE_START)
		status = migrate_recovery(&c, &o);
	else
		status = migrate_start(&c, &o);
	qmp_conn_close(&c);
	return status;
}
