// SPDX-License-Identifier: GPL-2.0-only
/*
 * VM lifetime and run state.  Init order: /dev/kvm, VM fd, TSS and identity
 * map (VMX needs them below 4 GiB), irqchip, PIT, memory, CPUID, vCPUs;
 * teardown runs it backwards, once, from whatever point was reached.  The
 * board's devices and the kernel come from machine/ (machine_create()).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/parse.h"
#include "vm/vm_priv.h"

#define KVM_TSS_ADDR	      0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

/* Exit status when the guest crashed ferry's ability to run it (documented in docs/cli.md). */
#define VM_EXIT_STATUS_FAILED 2

void vm_emit(struct vm *vm, const struct vm_event *ev)
{
	if (vm->listener.event)
		vm->listener.event(vm->listener.opaque, ev);
}

static int vm_open_kvm(struct vm *vm, struct ferr *err)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int rc = -errno;
		if (rc == -ENOENT)
			return ferr_set(err, rc,
					"/dev/kvm does not exist: KVM is not available on "
					"this host (is the kvm module loaded?)");
		if (rc == -EACCES || rc == -EPERM)
			return ferr_set(err, rc,
					"/dev/kvm: permission denied (run as root or join "
					"the kvm group)");
		return ferr_errno(err, rc, "cannot open /dev/kvm");
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return ferr_set(err, -ENOTSUP, "/dev/kvm speaks API version %d, ferry needs %d",
				version, KVM_API_VERSION);
	return 0;
}

static int vm_check_config(struct vm *vm, const struct vm_config *cfg, struct ferr *err)
{
	struct sysinfo si;
	char a[32], b[32];
	int max_cpus;

	if (cfg->ncpus == 0)
		return ferr_set(err, -EINVAL, "--cpus must be at least 1");
	max_cpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_cpus <= 0)
		max_cpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_cpus <= 0 || max_cpus > VM_MAX_CPUS)
		max_cpus = VM_MAX_CPUS;
	if (cfg->ncpus > (unsigned)max_cpus)
		return ferr_set(err, -EINVAL, "--cpus %u is more than the %d this host supports",
				cfg->ncpus, max_cpus);
	if (cfg->mem_size < 2 * 1024 * 1024 || cfg->mem_size % GMEM_PAGE_SIZE)
		return ferr_set(
		    err, -EINVAL,
		    "--memory must be at least 2M and a multiple of 4K (got %llu bytes)",
		    (unsigned long long)cfg->mem_size);
	if (sysinfo(&si) == 0) {
		uint64_t host = (uint64_t)si.totalram * si.mem_unit;
		if (cfg->mem_size > host)
			return ferr_set(
			    err, -ENOMEM, "--memory %s is more than this host's %s of RAM",
			    fmt_size(cfg->mem_size, a, sizeof(a)), fmt_size(host, b, sizeof(b)));
	}
	return 0;
}

static int vm_create_irqchip(struct vm *vm, struct ferr *err)
{
	/* SPEAKER_DUMMY: KVM also serves port 0x61, whose PIT channel 2 gate and output guests use to calibrate their clocks. */
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0)
		return ferr_errno(err, -errno, "KVM_SET_TSS_ADDR");
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return ferr_errno(err, -errno, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return ferr_errno(err, -errno, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return ferr_errno(err, -errno, "KVM_CREATE_PIT2");
	return 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out, struct ferr *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int rc;

	if (!vm)
		return ferr_set(err, -ENOMEM, "out of memory");
	vm->kvm_fd = vm->vm_fd = -1;
	for (unsigned i = 0; i < VM_MAX_CPUS; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	/* Monotonic: the throttle's sleeps are timed waits on it. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&vm->dirty_lock, NULL);
	snprintf(vm->name, sizeof(vm->name), "%s", cfg->name ? cfg->name : "ferry");
	vm->listener = cfg->listener;
	vm->state = VM_RS_PRELAUNCH;

	rc = vm_open_kvm(vm, err);
	if (rc)
		goto err;
	rc = vm_check_config(vm, cfg, err);
	if (rc)
		goto err;
	vm->ncpus = cfg->ncpus;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		rc = ferr_errno(err, -errno, "KVM_CREATE_VM");
		goto err;
	}
	rc = vm_create_irqchip(vm, err);
	if (rc)
		goto err;
	rc = vm_dirty_init(vm, err);
	if (rc)
		goto err;
	rc = gmem_init(&vm->mem, vm->vm_fd, cfg->mem_size, err);
	if (rc)
		goto err;
	rc = cpuid_init(vm, err);
	if (rc)
		goto err;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		rc = vcpu_create(vm, i, err);
		if (rc)
			goto err;
	}
	rc = vcpu_state_probe(vm, err);
	if (rc)
		goto err;
	*out = vm;
	return 0;
err:
	vm_destroy(vm);
	return rc;
}

static void *vm_prealloc_thread(void *arg)
{
	struct vm *vm = arg;
	struct ferr err = FERR_INIT;

	if (gmem_prealloc(&vm->mem, &vm->prealloc_stop, &err))
		fprintf(stderr, "ferry: warning: %s\n", err.msg); /* a slower migration, no more */
	return NULL;
}

int vm_prealloc_start(struct vm *vm, struct ferr *err)
{
	int rc = -pthread_create(&vm->prealloc_thread, NULL, vm_prealloc_thread, vm);

	if (rc)
		return ferr_errno(err, rc, "cannot start the preallocation thread");
	vm->prealloc_started = true;
	return 0;
}

static void vm_set_owner_locked(struct vm *vm, enum vm_owner to, const char *why);

int vm_set_incoming(struct vm *vm, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_RS_PRELAUNCH) {
		vm->state = VM_RS_INMIGRATE;
		vm_set_owner_locked(vm, VM_OWNER_AWAY,
				    "the guest has not arrived yet: it starts here when the source "
				    "hands it over");
	} else if (vm->state != VM_RS_INMIGRATE)
		rc = ferr_set(err, -EBUSY, "the VM is %s, not fresh", vm_runstate_name(vm->state));
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

static int vm_start_threads(struct vm *vm, bool paused, struct ferr *err)
{
	sigset_t set, old;
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_RS_PRELAUNCH && vm->state != VM_RS_INMIGRATE)
		rc = ferr_set(err, -EBUSY, "the VM is %s and cannot be started",
			      vm_runstate_name(vm->state));
	pthread_mutex_unlock(&vm->lock);
	if (rc)
		return rc;

	/*
	 * Block the kick signal while creating threads so it is never
	 * delivered to a thread that is not a vCPU; vCPU threads unblock it.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = paused; /* the threads park before running guest code */
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];
		int e = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
		if (e) {
			rc = ferr_errno(err, -e, "cannot start vCPU %u thread", i);
			vm->quit = true;
			break;
		}
		vcpu->thread_started = true;
	}
	if (!rc) {
		vm->state = paused ? VM_RS_PAUSED : VM_RS_RUNNING;
		vm_set_owner_locked(vm, VM_OWNER_HERE, NULL); /* an incoming guest has arrived */
	}
	pthread_mutex_unlock(&vm->lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* As QEMU: RESUME whenever the guest starts running, after a migration too. */
	if (!rc && !paused) {
		struct vm_event ev = {.kind = VM_EVENT_RESUME};
		vm_emit(vm, &ev);
	}
	return rc;
}

int vm_start(struct vm *vm, struct ferr *err)
{
	return vm_start_threads(vm, false, err);
}

int vm_start_paused(struct vm *vm, struct ferr *err)
{
	return vm_start_threads(vm, true, err);
}

/* Park all vCPUs; with vm->lock held. */
void vm_pause_locked(struct vm *vm)
{
	unsigned running = 0;

	vm->pause_req = true;
	pthread_cond_broadcast(&vm->cond); /* a vCPU in a throttle sleep parks now */
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].thread_started) {
			vcpu_kick(&vm->vcpus[i]);
			running++;
		}
	}
	while (vm->npaused < running && !vm->quit)
		pthread_cond_wait(&vm->cond, &vm->lock);
}

enum vm_owner vm_owner(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	enum vm_owner o = vm->owner;
	pthread_mutex_unlock(&vm->lock);
	return o;
}

/* -EBUSY with the owner's reason unless HERE; vm->lock held. */
static int vm_check_owner_locked(struct vm *vm, const char *what, struct ferr *err)
{
	if (vm->owner == VM_OWNER_HERE)
		return 0;
	return ferr_set(err, -EBUSY, "cannot %s: %s", what, vm->owner_why);
}

int vm_check_owner(struct vm *vm, const char *what, struct ferr *err)
{
	pthread_mutex_lock(&vm->lock);
	int rc = vm_check_owner_locked(vm, what, err);
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

static void vm_set_owner_locked(struct vm *vm, enum vm_owner to, const char *why)
{
	vm->owner = to;
	snprintf(vm->owner_why, sizeof(vm->owner_why), "%s",
		 to == VM_OWNER_HERE ? ""
		 : why		     ? why
				     : vm_owner_name(to));
}

void vm_set_owner(struct vm *vm, enum vm_owner to, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	vm_set_owner_locked(vm, to, why);
	pthread_mutex_unlock(&vm->lock);
}

int vm_quit_check(struct vm *vm, struct ferr *err)
{
	pthread_mutex_lock(&vm->lock);
	int rc = vm->owner == VM_OWNER_HANDING_OVER ? vm_check_owner_locked(vm, "quit", err) : 0;
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

/* RUNNING -> PAUSED; vm->lock held; false if it was not running. */
static bool vm_stop_locked(struct vm *vm)
{
	if (vm->state != VM_RS_RUNNING)
		return false;
	vm_pause_locked(vm);
	vm->state = VM_RS_PAUSED;
	return true;
}

int vm_hold(struct vm *vm, bool pause, const char *why, bool *was_running, struct ferr *err)
{
	struct vm_event ev = {.kind = VM_EVENT_STOP};
	bool stopped = false;
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	while (vm->resetting)
		pthread_cond_wait(&vm->cond, &vm->lock);
	*was_running = vm->state == VM_RS_RUNNING;
	if (vm->owner != VM_OWNER_HERE)
		rc = ferr_set(err, -EBUSY, "the guest is not here to hand over: %s", vm->owner_why);
	else if (vm->quit)
		rc = ferr_set(err, -ESHUTDOWN, "the VM is shutting down");
	else if (vm->state != VM_RS_RUNNING && vm->state != VM_RS_PAUSED)
		rc = ferr_set(err, -EBUSY, "VM is %s: nothing to hand over",
			      vm_runstate_name(vm->state));
	if (!rc) {
		vm_set_owner_locked(vm, VM_OWNER_HANDING_OVER, why);
		if (pause)
			stopped = vm_stop_locked(vm);
	}
	pthread_mutex_unlock(&vm->lock);
	if (stopped)
		vm_emit(vm, &ev);
	return rc;
}

void vm_release(struct vm *vm, enum vm_owner to, bool resume, const char *why)
{
	struct vm_event ev = {.kind = VM_EVENT_RESUME};
	bool resumed = false;

	pthread_mutex_lock(&vm->lock);
	vm_set_owner_locked(vm, to, why);
	if (to == VM_OWNER_AWAY)
		vm->reset_req = false;	   /* the guest goes on elsewhere, past its reset request */
	pthread_cond_broadcast(&vm->cond); /* a reset waiting for the hold to end */
	if (resume && to == VM_OWNER_HERE && vm->state == VM_RS_PAUSED) {
		vm->pause_req = false;
		vm->state = VM_RS_RUNNING;
		pthread_cond_broadcast(&vm->cond);
		resumed = true;
	}
	pthread_mutex_unlock(&vm->lock);
	if (resumed)
		vm_emit(vm, &ev);
}

int vm_stop(struct vm *vm, struct ferr *err)
{
	struct vm_event ev = {.kind = VM_EVENT_STOP};

	pthread_mutex_lock(&vm->lock);
	while (vm->resetting)
		pthread_cond_wait(&vm->cond, &vm->lock);
	int rc = vm_check_owner_locked(vm, "stop", err);
	if (rc) {
		pthread_mutex_unlock(&vm->lock);
		return rc;
	}
	if (vm->state != VM_RS_RUNNING) {
		enum vm_runstate rs = vm->state;
		pthread_mutex_unlock(&vm->lock);
		if (rs == VM_RS_PAUSED)
			return 0; /* as QEMU: stopping a stopped VM is not an error */
		return ferr_set(err, -EBUSY, "VM is %s, not running", vm_runstate_name(rs));
	}
	vm_pause_locked(vm);
	vm->state = VM_RS_PAUSED;
	pthread_mutex_unlock(&vm->lock);
	vm_emit(vm, &ev);
	return 0;
}

uint64_t vm_pause_started_ns(struct vm *vm)
{
	uint64_t t;

	pthread_mutex_lock(&vm->lock);
	t = vm->first_park_ns;
	pthread_mutex_unlock(&vm->lock);
	return t;
}

int vm_cont(struct vm *vm, struct ferr *err)
{
	struct vm_event ev = {.kind = VM_EVENT_RESUME};

	pthread_mutex_lock(&vm->lock);
	while (vm->resetting)
		pthread_cond_wait(&vm->cond, &vm->lock);
	int rc = vm_check_owner_locked(vm, "continue", err);
	if (rc) {
		pthread_mutex_unlock(&vm->lock);
		return rc;
	}
	if (vm->state != VM_RS_PAUSED) {
		enum vm_runstate rs = vm->state;
		pthread_mutex_unlock(&vm->lock);
		if (rs == VM_RS_RUNNING)
			return 0;
		return ferr_set(err, -EBUSY, "VM is %s and cannot be resumed",
				vm_runstate_name(rs));
	}
	vm->pause_req = false;
	vm->state = VM_RS_RUNNING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	vm_emit(vm, &ev);
	return 0;
}

/* Move to a final state once; returns false if the VM had already ended. */
static bool vm_end(struct vm *vm, enum vm_runstate rs, int exit_status)
{
	bool first;

	pthread_mutex_lock(&vm->lock);
	first = !vm->quit;
	if (first) {
		vm->quit = true;
		vm->state = rs;
		vm->exit_status = exit_status;
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (vm->vcpus[i].thread_started)
				vcpu_kick(&vm->vcpus[i]);
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
	return first;
}

void vm_request_quit(struct vm *vm, const char *reason, bool guest, int exit_status)
{
	struct vm_event ev = {
	    .kind = VM_EVENT_SHUTDOWN,
	    .reason = reason,
	    .guest = guest,
	    .exit_status = exit_status,
	};

	if (vm_end(vm, VM_RS_SHUTDOWN, exit_status))
		vm_emit(vm, &ev);
}

void vm_fail(struct vm *vm, enum vm_runstate rs, const char *reason, const char *report)
{
	struct vm_event ev = {
	    .kind = VM_EVENT_SHUTDOWN,
	    .reason = reason,
	    .guest = rs == VM_RS_GUEST_PANICKED,
	    .exit_status = VM_EXIT_STATUS_FAILED,
	};

	if (!vm_end(vm, rs, VM_EXIT_STATUS_FAILED))
		return;
	fprintf(stderr, "ferry: VM stopped: %s\n%s\n", reason, report);
	vm_emit(vm, &ev);
}

int vm_wait(struct vm *vm)
{
	int status;

	pthread_mutex_lock(&vm->lock);
	while (!vm->quit) {
		if (vm->reset_req)
			vm_reset_if_requested(vm);
		else
			pthread_cond_wait(&vm->cond, &vm->lock);
	}
	status = vm->exit_status;
	pthread_mutex_unlock(&vm->lock);
	return status;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	pthread_mutex_lock(&vm->lock);
	vm->quit = true;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].thread_started && vm->vcpus[i].run)
			vcpu_kick(&vm->vcpus[i]);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < VM_MAX_CPUS; i++) {
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vcpu_destroy(&vm->vcpus[i]);
	}
	if (vm->prealloc_started) {
		vm->prealloc_stop = true;
		pthread_join(vm->prealloc_thread, NULL);
	}
	gmem_destroy(&vm->mem);
	vm_dirty_destroy(vm);
	free(vm->msr_index);
	free(vm->cpuid);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

enum vm_runstate vm_runstate(struct vm *vm)
{
	enum vm_runstate rs;

	pthread_mutex_lock(&vm->lock);
	rs = vm->state;
	pthread_mutex_unlock(&vm->lock);
	return rs;
}

const char *vm_name(const struct vm *vm)
{
	return vm->name;
}

uint64_t vm_mem_size(const struct vm *vm)
{
	return vm->mem.size;
}

unsigned vm_ncpus(const struct vm *vm)
{
	return vm->ncpus;
}

int vm_irq_line(struct vm *vm, unsigned irq, bool level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

struct iobus *vm_iobus(struct vm *vm)
{
	return &vm->io;
}

struct gmem *vm_guest_mem(struct vm *vm)
{
	return &vm->mem;
}

int vm_vcpu_fd(const struct vm *vm, unsigned i)
{
	return i < vm->ncpus ? vm->vcpus[i].fd : -1;
}

int vm_add_device(struct vm *vm, const char *name, const struct device_state_ops *ops, void *dev,
		  struct ferr *err)
{
	if (vm->ndevices == VM_MAX_DEVICES)
		return ferr_set(err, -ENOSPC, "more than %d devices with state", VM_MAX_DEVICES);
	vm->devices[vm->ndevices++] = (struct vm_device){name, ops, dev};
	return 0;
}
