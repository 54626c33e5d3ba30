// SPDX-License-Identifier: GPL-2.0-only
/*
 * ferry run: boot a VM and serve its control socket until it ends.
 * Init order: options, backends, VM, control socket, vCPUs, control
 * thread; teardown runs backwards.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/parse.h"
#include "control/commands.h"
#include "control/events.h"
#include "control/qmp.h"
#include "devices/chardev.h"
#include "vm/vm.h"

struct run_opts {
	const char *kernel;
	const char *append;
	const char *serial;
	const char *debugcon;
	const char *control;
	const char *name;
	uint64_t memory;
	unsigned cpus;
};

void cli_run_usage(void)
{
	printf("usage: ferry run --kernel FILE [options]\n"
	       "\n"
	       "  --kernel FILE        multiboot (v1) ELF kernel, or a 512-byte boot sector\n"
	       "  --append CMDLINE     kernel command line (multiboot)\n"
	       "  --memory SIZE        guest RAM, K/M/G suffix (default 256M)\n"
	       "  --cpus N             vCPUs (default 1)\n"
	       "  --serial BACKEND     16550 UART at 0x3f8 (default stdio)\n"
	       "  --debugcon BACKEND   debug console port 0xe9 (default null)\n"
	       "  --control PATH       QMP-shaped control socket (docs/control-protocol.md)\n"
	       "  --name NAME          VM name reported by query-name\n"
	       "\n"
	       "BACKEND: stdio | null | file:PATH | unix:PATH (connects to a listening socket)\n"
	       "\n"
	       "Exit status: 0 after 'quit'; (V << 1) | 1 when the guest writes V to port 0xf4;\n"
	       "1 for a setup error; 2 when the VM failed (triple fault, KVM error).\n");
}

/* Parse "ferry run" options; returns 0, or an exit status to return at once. */
static int run_parse(int argc, char **argv, struct run_opts *o, int *status)
{
	static const struct option longopts[] = {
		{"kernel", required_argument, NULL, 'k'},
		{"append", required_argument, NULL, 'a'},
		{"memory", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		{"serial", required_argument, NULL, 's'},
		{"debugcon", required_argument, NULL, 'd'},
		{"control", required_argument, NULL, 'C'},
		{"name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	*o = (struct run_opts){.memory = 256ull << 20, .cpus = 1, .serial = "stdio",
			       .debugcon = "null", .append = ""};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->kernel = optarg; break;
		case 'a': o->append = optarg; break;
		case 's': o->serial = optarg; break;
		case 'd': o->debugcon = optarg; break;
		case 'C': o->control = optarg; break;
		case 'n': o->name = optarg; break;
		case 'm':
			if (parse_size(optarg, &o->memory))
				return *status = cli_error("--memory '%s': expected a size such as "
							   "512M or 2G", optarg), -1;
			break;
		case 'c':
			if (parse_u64(optarg, &v) || v > 4096)
				return *status = cli_error("--cpus '%s': expected a number of vCPUs",
							   optarg), -1;
			o->cpus = v;
			break;
		case 'h':
			cli_run_usage();
			return *status = 0, -1;
		default:
			if (optopt)
				return *status = cli_error("option '%s' needs a value or is unknown "
							   "(try 'ferry run --help')",
							   argv[optind - 1]), -1;
			return *status = cli_error("unknown option '%s' (try 'ferry run --help')",
						   argv[optind - 1]), -1;
		}
	}
	if (optind < argc)
		return *status = cli_error("unexpected argument '%s'", argv[optind]), -1;
	if (!o->kernel)
		return *status = cli_error("--kernel FILE is required (try 'ferry run --help')"),
		       -1;
	return 0;
}

/* Forwards VM events to the control server once it exists. */
struct run_events {
	struct qmp_server *qmp;
};

static void run_vm_event(void *opaque, const struct vm_event *ev)
{
	struct run_events *re = opaque;

	if (re->qmp)
		qmp_vm_listener(re->qmp, ev);
	if (ev->kind == VM_EVENT_SHUTDOWN && ev->guest && strcmp(ev->reason, "guest-exit") == 0)
		fprintf(stderr, "ferry: guest exited with status %d\n", ev->exit_status);
}

int cli_run_main(int argc, char **argv)
{
	struct ferr err = FERR_INIT;
	struct run_opts o;
	struct run_events re = {0};
	struct chardev *serial = NULL, *debugcon = NULL;
	struct vm *vm = NULL;
	int status = 0;

	if (run_parse(argc, argv, &o, &status))
		return status;

	struct vm_config cfg = {
		.name = o.name,
		.mem_size = o.memory,
		.ncpus = o.cpus,
		.kernel = o.kernel,
		.cmdline = o.append,
		.listener = {run_vm_event, &re},
	};
	if (chardev_open(o.serial, &serial, &err) || chardev_open(o.debugcon, &debugcon, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	cfg.serial = serial;
	cfg.debugcon = debugcon;
	if (vm_create(&cfg, &vm, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	if (o.control && qmp_server_open(o.control, qmp_vm_commands, vm, &re.qmp, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	if (vm_start(vm, &err) || (re.qmp && qmp_server_start(re.qmp, &err))) {
		status = cli_error("%s", err.msg);
		vm_request_quit(vm, "host-error", false, CLI_EXIT_SETUP);
	}
	status = vm_wait(vm);
out:
	if (re.qmp)
		qmp_server_stop(re.qmp);
	vm_destroy(vm);
	if (re.qmp)
		qmp_server_close(re.qmp);
	chardev_close(debugcon);
	chardev_close(serial);
	return status;
}
