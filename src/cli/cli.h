/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef FERRY_CLI_CLI_H
#define FERRY_CLI_CLI_H

/* A subcommand: "ferry NAME ARGS...".  Returns the process exit status. */
struct cli_command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
	void (*usage)(void);
};

int cli_run_main(int argc, char **argv);
void cli_run_usage(void);
int cli_migrate_main(int argc, char **argv);
void cli_migrate_usage(void);

/* Print "ferry: error: MSG" to stderr; returns the status for setup errors (1). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CLI_EXIT_SETUP 1
/* ferry run: a post-copy failed after the hand-over; neither side can run the guest */
#define CLI_EXIT_GUEST_LOST 4 /* = VM_EXIT_STATUS_LOST */

#endif
