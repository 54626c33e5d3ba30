// SPDX-License-Identifier: GPL-2.0-only
/*
 * ferry run: boot a VM and serve its control socket until it ends.
 * Init order: options, backends, VM, control socket, vCPUs, control
 * thread; teardown runs backwards.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/parse.h"
#include "common/trace.h"
#include "control/trace_commands.h"
#include "control/commands.h"
#include "control/events.h"
#include "cli/progress.h"
#include "control/mig_commands.h"
#include "migration/migration.h"
#include "control/qmp.h"
#include "devices/chardev.h"
#include "machine/machine.h"
#include "vm/vm.h"

struct run_opts {
	const char *kernel;
	const char *initrd;
	const char *append;
	const char *serial;
	const char *debugcon;
	const char *control;
	const char *name;
	const char *incoming; /* URI or "defer" */
	/* Migration parameters (NULL: not given). */
	const char *tls_creds, *tls_hostname;
	uint64_t memory;
	unsigned cpus;
	bool memory_given, cpus_given;
	bool prealloc;
};

void cli_run_usage(void)
{
	printf("usage: ferry run --kernel FILE [options]\n"
	       "\n"
	       "  --kernel FILE        multiboot (v1) ELF kernel, Linux bzImage (64-bit boot\n"
	       "                       protocol, docs/guests.md), or a 512-byte boot sector\n"
	       "  --initrd FILE        initial ramdisk for a Linux kernel\n"
	       "  --append CMDLINE     kernel command line (multiboot, Linux)\n"
	       "  --memory SIZE        guest RAM, K/M/G suffix (default 256M)\n"
	       "  --cpus N             vCPUs (default 1)\n"
	       "  --serial BACKEND     16550 UART at 0x3f8 (default stdio)\n"
	       "  --debugcon BACKEND   debug console port 0xe9 (default null)\n"
	       "  --control PATH       QMP-shaped control socket (docs/control-protocol.md)\n"
	       "  --name NAME          VM name reported by query-name\n"
	       "  --incoming URI       receive the VM instead of booting: file:PATH (restore a\n"
	       "                       snapshot), tcp:HOST:PORT, unix:PATH, or 'defer' to wait\n"
	       "                       for migrate-incoming.  Without --memory/--cpus, a file's\n"
	       "                       own sizes are used.  --kernel/--initrd/--append then\n"
	       "                       say what a guest reset boots (else a reset ends it)\n"
	       "  --prealloc           populate all guest RAM up front, in the background (an\n"
	       "                       incoming migration then writes into memory that exists)\n"
	       "  --tls-creds DIR      migrations in and out use TLS with mutual x509\n"
	       "                       authentication: DIR holds ca-cert.pem and server-*.pem\n"
	       "                       (incoming) or client-*.pem (outgoing); docs/security.md\n"
	       "  --tls-hostname NAME  outgoing: the name the destination's certificate must\n"
	       "                       carry (default: the host of a tcp: URI)\n"
	       "\n"
	       "BACKEND: stdio | null | file:PATH | unix:PATH (connects to a listening socket)\n"
	       "\n"
	       "Exit status: 0 after 'quit'; (V << 1) | 1 when the guest writes V to port 0xf4;\n"
	       "1 for a setup error; 2 when the VM failed (triple fault, KVM error); 4 when a\n"
	       "post-copy migration failed after the hand-over (the guest is lost).\n");
}

/* Parse "ferry run" options; returns 0, or an exit status to return at once. */
static int run_parse(int argc, char **argv, struct run_opts *o, int *status)
{
	/* One option per line reads better than packed columns. */
	/* clang-format off */
	static const struct option longopts[] = {
		{"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'r'},
		{"append", required_argument, NULL, 'a'},
		{"memory", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		{"serial", required_argument, NULL, 's'},
		{"debugcon", required_argument, NULL, 'd'},
		{"control", required_argument, NULL, 'C'},
		{"name", required_argument, NULL, 'n'},
		{"incoming", required_argument, NULL, 'i'},
		{"prealloc", no_argument, NULL, 'p'},
		{"tls-creds", required_argument, NULL, 'T'},
		{"tls-hostname", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	/* clang-format on */
	uint64_t v;
	int c;

	*o = (struct run_opts){
	    .memory = 256ull << 20, .cpus = 1, .serial = "stdio", .debugcon = "null", .append = ""};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o->kernel = optarg;
			break;
		case 'r':
			o->initrd = optarg;
			break;
		case 'a':
			o->append = optarg;
			break;
		case 's':
			o->serial = optarg;
			break;
		case 'd':
			o->debugcon = optarg;
			break;
		case 'C':
			o->control = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'i':
			o->incoming = optarg;
			break;
		case 'p':
			o->prealloc = true;
			break;
		case 'T':
			o->tls_creds = optarg;
			break;
		case 'H':
			o->tls_hostname = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o->memory))
				return *status = cli_error("--memory '%s': expected a size such as "
							   "512M or 2G",
							   optarg),
				       -1;
			o->memory_given = true;
			break;
		case 'c':
			if (parse_u64(optarg, &v) || v > 4096)
				return *status = cli_error(
					   "--cpus '%s': expected a number of vCPUs", optarg),
				       -1;
			o->cpus = v;
			o->cpus_given = true;
			break;
		case 'h':
			cli_run_usage();
			return *status = 0, -1;
		default:
			if (optopt)
				return *status =
					   cli_error("option '%s' needs a value or is unknown "
						     "(try 'ferry run --help')",
						     argv[optind - 1]),
				       -1;
			return *status = cli_error("unknown option '%s' (try 'ferry run --help')",
						   argv[optind - 1]),
			       -1;
		}
	}
	if (optind < argc)
		return *status = cli_error("unexpected argument '%s'", argv[optind]), -1;
	if (!o->kernel && !o->incoming)
		return *status = cli_error("--kernel FILE is required (try 'ferry run --help')"),
		       -1;
	if (o->initrd && !o->kernel)
		return *status = cli_error("--initrd needs --kernel"), -1;
	/* With --incoming, the kernel is what a guest reset boots (machine/machine.h). */
	if (o->incoming && o->kernel && access(o->kernel, R_OK) != 0)
		return *status = cli_error("--kernel %s: %s", o->kernel, strerror(errno)), -1;
	if (o->incoming && o->initrd && access(o->initrd, R_OK) != 0)
		return *status = cli_error("--initrd %s: %s", o->initrd, strerror(errno)), -1;
	return 0;
}

/* Wiring between the VM, the migration engine and the control server. */
struct run_ctx {
	struct qmp_server *qmp;
	struct vm *vm;
	struct migration *mig;
	struct progress progress;
	/* SIGINT/SIGTERM: blocked in every thread, taken by sig_thread */
	sigset_t sigs;
	pthread_t sig_thread;
	bool sig_started;
	volatile bool sig_stop; /* set before the teardown wakes sig_thread */
};

/*
 * ^C or a kill ends the VM like a "quit" (exit status 128 + the signal, as
 * a shell reports it), so that teardown runs: the terminal leaves raw mode
 * (devices/chardev.c), the control socket is removed.
 */
static void *run_sig_thread(void *arg)
{
	struct run_ctx *rc = arg;
	int sig;

	while (sigwait(&rc->sigs, &sig) != 0)
		;
	if (!rc->sig_stop)
		vm_request_quit(rc->vm, sig == SIGINT ? "host-sigint" : "host-sigterm", false,
				128 + sig);
	return NULL;
}

static void run_vm_event(void *opaque, const struct vm_event *ev)
{
	struct run_ctx *rc = opaque;

	qmp_vm_listener(rc->qmp, ev);
	if (ev->kind == VM_EVENT_SHUTDOWN && ev->guest && strcmp(ev->reason, "guest-exit") == 0)
		fprintf(stderr, "ferry: guest exited with status %d\n", ev->exit_status);
}

/*
 * MIGRATION events go to the control socket.  An incoming migration that
 * fails ends this ferry with one line saying why: the VM it was to receive
 * never ran here, and keeps running on the source.
 */
static void run_mig_status(void *opaque, enum mig_status s)
{
	struct run_ctx *rc = opaque;
	enum mig_status now;
	enum mig_role role;
	struct mig_stats st;
	struct ferr error;

	qmp_mig_status_event(rc->qmp, s);
	if (s != MIG_FAILED && s != MIG_CANCELLED && s != MIG_POSTCOPY_PAUSED)
		return;
	migration_query(rc->mig, &now, &role, &st, &error);
	if (s == MIG_POSTCOPY_PAUSED) {
		/* Nothing is lost yet: one line, and the operator's next step. */
		fprintf(stderr,
			"ferry: post-copy paused: %s; %llu pages are not yet at the destination; "
			"waiting for %s\n",
			error.msg, (unsigned long long)st.postcopy.missing,
			role == MIG_ROLE_DEST
			    ? "migrate-recover here and migrate with resume on the source"
			    : "migrate with resume here and migrate-recover on the "
			      "destination");
		return;
	}
	/* After a post-copy hand-over neither side can run the guest alone. */
	if (s == MIG_FAILED && st.postcopy.active) {
		cli_error("the guest is lost: %s", error.msg);
		vm_request_quit(rc->vm, "postcopy-failed", false, CLI_EXIT_GUEST_LOST);
		return;
	}
	if (role != MIG_ROLE_DEST)
		return;
	cli_error("%s", ferr_is_set(&error) ? error.msg : "incoming migration cancelled");
	vm_request_quit(rc->vm, "incoming-failed", false, CLI_EXIT_SETUP);
}

static void run_mig_pass(void *opaque, uint64_t pass)
{
	struct run_ctx *rc = opaque;

	qmp_mig_pass_event(rc->qmp, pass);
}

static void run_mig_note(void *opaque, const char *event, const char *reason, const char *detail)
{
	struct run_ctx *rc = opaque;

	qmp_mig_note_event(rc->qmp, event, reason, detail);
}

static void run_mig_throttle(void *opaque, unsigned pct, const char *reason, const char *detail)
{
	struct run_ctx *rc = opaque;

	qmp_mig_throttle_event(rc->qmp, pct, reason, detail);
}

/* Sizes for an incoming snapshot when the operator gave none. */
static int run_incoming_sizes(struct run_opts *o, struct ferr *err)
{
	uint64_t mem;
	unsigned cpus;
	int rc;

	if (!o->incoming || strncmp(o->incoming, "file:", 5) != 0 ||
	    (o->memory_given && o->cpus_given))
		return 0;
	rc = migration_peek_file(o->incoming + 5, &mem, &cpus, err);
	if (rc) {
		/* Channel errors name the file already; the stream's do not. */
		if (strncmp(err->msg, o->incoming, strlen(o->incoming)) != 0)
			ferr_prefix(err, "%s: ", o->incoming);
		return rc;
	}
	if (!o->memory_given)
		o->memory = mem;
	if (!o->cpus_given)
		o->cpus = cpus;
	return 0;
}

/* Migration parameters given as options, through the engine's table (as
 * migrate-set-parameters would set them). */
static int run_mig_params(const struct run_opts *o, struct migration *mig, struct ferr *err)
{
	const char *const names[] = {"tls-creds", "tls-hostname"};
	const char *const values[] = {o->tls_creds, o->tls_hostname};
	int rc = 0;

	pthread_mutex_lock(&mig->lock);
	for (size_t i = 0; !rc && i < sizeof(names) / sizeof(names[0]); i++) {
		if (!values[i])
			continue;
		rc = mig_param_set_str(&mig->params, mig_param_find(names[i]), values[i], err);
		if (rc)
			ferr_prefix(err, "--%s: ", names[i]);
	}
	pthread_mutex_unlock(&mig->lock);
	return rc;
}

/* Boot, or get ready to receive: the VM's first steps. */
static int run_begin(const struct run_opts *o, struct vm *vm, struct migration *mig,
		     struct ferr *err)
{
	if (o->prealloc && vm_prealloc_start(vm, err))
		return -1;
	if (!o->incoming)
		return vm_start(vm, err);
	if (strcmp(o->incoming, "defer") == 0)
		return vm_set_incoming(vm, err);
	return migration_incoming(mig, o->incoming, err);
}

int cli_run_main(int argc, char **argv)
{
	struct ferr err = FERR_INIT;
	struct run_opts o;
	struct run_ctx rc = {0};
	struct chardev *serial = NULL, *debugcon = NULL;
	struct vm *vm = NULL;
	struct machine *machine = NULL;
	struct migration mig;
	bool mig_ready = false;
	int status = 0;

	if (run_parse(argc, argv, &o, &status))
		return status;
	/* Before any thread exists, so that every thread inherits the mask. */
	sigemptyset(&rc.sigs);
	sigaddset(&rc.sigs, SIGINT);
	sigaddset(&rc.sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &rc.sigs, NULL);
	/* Trace points (docs/tracing.md): $FERRY_TRACE at start, trace-event-set-state later. */
	struct trace trace;
	if (trace_init(&trace, getenv("FERRY_TRACE"), &err))
		return cli_error("%s", err.msg);
	progress_init(&rc.progress);
	if (run_incoming_sizes(&o, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}

	struct vm_config cfg = {
	    .name = o.name,
	    .mem_size = o.memory,
	    .ncpus = o.cpus,
	    .listener = {run_vm_event, &rc},
	};
	struct machine_config mcfg = {
	    .kernel = o.kernel,
	    .initrd = o.initrd,
	    .cmdline = o.append,
	    .incoming = o.incoming != NULL,
	};
	if (chardev_open(o.serial, &serial, &err) || chardev_open(o.debugcon, &debugcon, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	mcfg.serial = serial;
	mcfg.debugcon = debugcon;
	if (vm_create(&cfg, &vm, &err) || machine_create(vm, &mcfg, &machine, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	rc.vm = vm;
	rc.mig = &mig;
	if (pthread_create(&rc.sig_thread, NULL, run_sig_thread, &rc) == 0)
		rc.sig_started = true;
	struct migration_events mev = {
	    .status = run_mig_status,
	    .pass = run_mig_pass,
	    .note = run_mig_note,
	    .throttle = run_mig_throttle,
	    .opaque = &rc,
	    .progress = progress_update,
	    .progress_opaque = &rc.progress,
	};
	migration_init(&mig, vm, &mev);
	mig_ready = true;
	mig.trace = &trace;
	if (run_mig_params(&o, &mig, &err)) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	if (o.control && (qmp_server_open(o.control, qmp_vm_commands, vm, &rc.qmp, &err) ||
			  qmp_server_add_commands(rc.qmp, qmp_mig_commands, &mig, &err) ||
			  qmp_server_add_commands(rc.qmp, qmp_trace_commands, &trace, &err))) {
		status = cli_error("%s", err.msg);
		goto out;
	}
	if (run_begin(&o, vm, &mig, &err) || (rc.qmp && qmp_server_start(rc.qmp, &err))) {
		status = cli_error("%s", err.msg);
		vm_request_quit(vm, "host-error", false, CLI_EXIT_SETUP);
	}
	status = vm_wait(vm);
out:
	if (rc.sig_started) {
		rc.sig_stop = true;
		pthread_kill(rc.sig_thread, SIGTERM);
		pthread_join(rc.sig_thread, NULL);
	}
	if (rc.qmp)
		qmp_server_stop(rc.qmp);
	if (mig_ready)
		migration_destroy(&mig);
	machine_destroy(machine, vm);
	if (rc.qmp)
		qmp_server_close(rc.qmp);
	chardev_close(debugcon);
	chardev_close(serial);
	progress_destroy(&rc.progress);
	return status;
}
