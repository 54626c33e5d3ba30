// SPDX-License-Identifier: GPL-2.0-only
/*
 * vCPU threads and their run loop.
 *
 * Pausing: vm_stop() sets vm->pause_req under vm->lock, then for each vCPU
 * sets kvm_run.immediate_exit and sends VCPU_KICK_SIGNAL.  A vCPU clears
 * immediate_exit only under the same lock and only after checking
 * pause_req, so a kick can never be lost between the check and KVM_RUN.
 * A parked vCPU has completed any pending I/O (see vcpu_park), so its
 * register state is final and may be read by another thread.
 *
 * Throttling (vcpu_throttle.c): each pass through the loop, with the lock
 * held, first sleeps off a run slice if the VM is throttled; a pause
 * request ends that sleep, and the vCPU parks as usual.
 */
#include <errno.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/clock.h"
#include "vm/vm_priv.h"

int vcpu_create(struct vm *vm, unsigned index, struct ferr *err)
{
	struct vcpu *vcpu = &vm->vcpus[index];
	int mmap_size;

	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0)
		return ferr_errno(err, -errno, "KVM_CREATE_VCPU %u", index);
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return ferr_errno(err, mmap_size < 0 ? -errno : -EINVAL, "KVM_GET_VCPU_MMAP_SIZE");
	vcpu->run_size = mmap_size;
	vcpu->run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return ferr_errno(err, -errno, "vCPU %u: mmap kvm_run", index);
	}
	return cpuid_set_vcpu(vm, vcpu, err);
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

/* Called with vm->lock held. */
void vcpu_kick(struct vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return -EINTR */
}

void vcpu_dump_regs(struct vcpu *vcpu, char *buf, size_t len)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(buf, len, "vCPU %u: registers unavailable: %s", vcpu->index,
			 strerror(errno));
		return;
	}
	snprintf(buf, len,
		 "vCPU %u registers:\n"
		 "  RIP=%016llx RFLAGS=%08llx CPL=%u\n"
		 "  RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n"
		 "  RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n"
		 "  R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n"
		 "  R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n"
		 "  CS=%04x(base %llx) SS=%04x DS=%04x\n"
		 "  CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx EFER=%08llx\n"
		 "  GDT=%016llx/%x IDT=%016llx/%x",
		 vcpu->index, r.rip, r.rflags, s.cs.dpl, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
		 r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector,
		 s.cs.base, s.ss.selector, s.ds.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer,
		 s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;

	/* String I/O (rep outsb) arrives as count items in one exit. */
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			uint32_t v = 0;
			memcpy(&v, data, size);
			iobus_out(&vcpu->vm->io, run->io.port, size, v);
		} else {
			uint32_t v = iobus_in(&vcpu->vm->io, run->io.port, size);
			memcpy(data, &v, size);
		}
	}
}

/* Report the vCPU's state and stop the VM: the operator gets registers, not a hang. */
static void vcpu_fatal(struct vcpu *vcpu, enum vm_runstate rs, const char *reason, const char *what)
{
	char regs[2048], report[2560];

	vcpu_dump_regs(vcpu, regs, sizeof(regs));
	snprintf(report, sizeof(report), "vCPU %u: %s\n%s", vcpu->index, what, regs);
	vm_fail(vcpu->vm, rs, reason, report);
}

/*
 * SVM's shutdown intercept resets the vCPU (the VMCB is undefined after a
 * shutdown) before KVM returns KVM_EXIT_SHUTDOWN: the state is then the
 * reset vector, which would send whoever reads the report to look for a
 * stray INIT.
 */
static bool vcpu_at_reset_vector(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	return ioctl(vcpu->fd, KVM_GET_REGS, &r) == 0 && ioctl(vcpu->fd, KVM_GET_SREGS, &s) == 0 &&
	       r.rip == 0xfff0 && s.cs.selector == 0xf000;
}

/* Returns false when the vCPU cannot go on. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[256];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		/* Nothing is mapped there: reads float high, writes vanish, as on a PC. */
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fatal(vcpu, VM_RS_GUEST_PANICKED, "guest-triple-fault",
			   vcpu_at_reset_vector(vcpu)
			       ? "triple fault (KVM_EXIT_SHUTDOWN); KVM on AMD SVM re-initialises "
				 "the vCPU before reporting a shutdown, so these are its "
				 "registers after INIT, not where it faulted"
			       : "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			vm_request_reset(vcpu->vm, "guest-reset");
			return true; /* parked by the reset, then runs from the reset state */
		}
		vm_request_quit(vcpu->vm, "guest-shutdown", true, 0);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
			     ? " (instruction KVM cannot emulate)"
			     : "");
		vcpu_fatal(vcpu, VM_RS_INTERNAL_ERROR, "internal-error", what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason %#llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fatal(vcpu, VM_RS_INTERNAL_ERROR, "internal-error", what);
		return false;
	default:
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
		vcpu_fatal(vcpu, VM_RS_INTERNAL_ERROR, "internal-error", what);
		return false;
	}
}

/*
 * Park at the pause point.  First re-enter KVM_RUN with immediate_exit set:
 * KVM then completes a pending I/O or MMIO read (writing the result into
 * the registers) and returns -EINTR without running guest code, so the
 * state another thread reads while we are parked is complete.
 */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	vcpu->run->immediate_exit = 1;
	pthread_mutex_unlock(&vm->lock);
	ioctl(vcpu->fd, KVM_RUN, 0);
	pthread_mutex_lock(&vm->lock);

	vcpu->paused = true;
	if (vm->npaused++ == 0)
		vm->first_park_ns = clock_now_ns(); /* the guest's pause starts here */
	pthread_cond_broadcast(&vm->cond);
	while (vm->pause_req && !vm->quit)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->npaused--;
	vcpu->paused = false;
	vcpu_throttle_restart(vcpu); /* parked time is no run time */
}

void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct sigaction sa = {.sa_handler = vcpu_kick_handler};
	sigset_t set;

	atomic_store(&vcpu->tid, (int)gettid());
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL); /* no SA_RESTART: KVM_RUN must return */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	for (;;) {
		pthread_mutex_lock(&vm->lock);
		vcpu_throttle_point(vcpu);
		while (vm->pause_req && !vm->quit)
			vcpu_park(vcpu);
		if (vm->quit) {
			pthread_mutex_unlock(&vm->lock);
			break;
		}
		vcpu->run->immediate_exit = 0;
		pthread_mutex_unlock(&vm->lock);

		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			char what[128];
			snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
			vcpu_fatal(vcpu, VM_RS_INTERNAL_ERROR, "internal-error", what);
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	vcpu_throttle_exit(vcpu);
	return NULL;
}

int vm_vcpu_of_tid(struct vm *vm, int tid)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (atomic_load(&vm->vcpus[i].tid) == tid)
			return (int)i;
	return -1;
}
