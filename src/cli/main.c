// SPDX-License-Identifier: GPL-2.0-only
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command cli_commands[] = {
    {"run", "boot a VM", cli_run_main, cli_run_usage},
    {"migrate", "migrate or save a running VM", cli_migrate_main, cli_migrate_usage},
};

#define NCOMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))

int cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ferry: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_SETUP;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
	fprintf(f, "\n'ferry COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	/* A backend or control client that goes away must not kill the VM. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_SETUP;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ferry %s\n", FERRY_VERSION);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], cli_commands[i].name) == 0)
			return cli_commands[i].main(argc - 1, argv + 1);
	cli_error("unknown command '%s' (try 'ferry --help')", argv[1]);
	return CLI_EXIT_SETUP;
}
