// SPDX-License-Identifier: GPL-2.0-only
/*
 * CPU throttle: auto-converge's brake (docs/policy.md, "Throttling").
 *
 * At p % every vCPU thread sleeps p / (100 - p) of the time it ran: after a
 * run slice of r ns (about VM_THROTTLE_SLICE_NS) it sleeps r * p / (100 - p),
 * so that it runs (100 - p) % of wall time, as QEMU's cpu-throttle does with
 * its 10 ms slices.  The sleep is proportional to what the slice really was,
 * not to its nominal length: a slice that ran long (a kick that landed just
 * before KVM_RUN, a slow exit) is paid for in full, so the fraction holds.
 *
 * A guest that never exits to ferry (a loop writing memory) is not left
 * alone: while throttled each vCPU thread has a POSIX timer of its own that
 * sends it the kick signal every slice, which makes KVM_RUN return.
 *
 * Who owns what:
 *  - vm->throttle_pct: under vm->lock; set by vm_set_throttle() (any thread),
 *    read by the vCPU threads at their throttle point, which they pass with
 *    the lock held.
 *  - vcpu->thr_timer*, thr_slice_start: the vCPU thread's alone.
 *  - vcpu->thr_slept_ns, thr_ran_ns, thr_sleep_start: written by the vCPU
 *    thread with vm->lock held (the wait releases it only while
 *    thr_sleep_start says a sleep is under way), read under it by
 *    vm_throttle_stats().
 *
 * The sleep is a timed wait on vm->cond with vm->lock released: a pause,
 * a quit or a lift broadcasts vm->cond, so none of them waits for a
 * sleep to end (switchover downtime does not grow by a throttle sleep).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "vm/vm_priv.h"

/* A run slice: QEMU's CPU_THROTTLE_TIMESLICE_NS. */
#define VM_THROTTLE_SLICE_NS 10000000ull
/* The longest slice paid for at once: a vCPU that was away from its
 * throttle point longer (a long exit) does not then sleep for seconds. */
#define VM_THROTTLE_SLICE_MAX_NS (10 * VM_THROTTLE_SLICE_NS)

/* glibc < 2.41 does not name the thread id of a SIGEV_THREAD_ID event. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

int vm_set_throttle(struct vm *vm, unsigned pct, struct ferr *err)
{
	if (pct > VM_THROTTLE_MAX)
		return ferr_set(err, -ERANGE, "CPU throttle %u%% is above %u%%", pct,
				VM_THROTTLE_MAX);
	pthread_mutex_lock(&vm->lock);
	if (vm->throttle_pct != pct) {
		vm->throttle_pct = pct;
		/* Sleepers recompute their sleep (or end it: 0); runners arm or
		 * disarm their timers at once, a guest that never exits too. */
		pthread_cond_broadcast(&vm->cond);
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (vm->vcpus[i].thread_started && !vm->vcpus[i].paused)
				vcpu_kick(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_throttle_stats(struct vm *vm, struct vm_throttle_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&vm->lock);
	uint64_t now = clock_now_ns();
	out->pct = vm->throttle_pct;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct vcpu *v = &vm->vcpus[i];

		/* A sleep under way counts up to now: at 99 % one lasts ~1 s. */
		out->slept_ns +=
		    v->thr_slept_ns + (v->thr_sleep_start ? now - v->thr_sleep_start : 0);
		out->ran_ns += v->thr_ran_ns;
	}
	pthread_mutex_unlock(&vm->lock);
}

/* The slice timer ticks while the VM is throttled, and only then. */
static void vcpu_throttle_timer(struct vcpu *vcpu, bool on)
{
	struct itimerspec its = {0};

	if (on == vcpu->thr_timer_armed || (on && vcpu->thr_timer_failed))
		return;
	if (on && !vcpu->thr_timer_made) {
		struct sigevent sev = {
		    .sigev_notify = SIGEV_THREAD_ID,
		    .sigev_signo = VCPU_KICK_SIGNAL,
		};
		sev.sigev_notify_thread_id = (pid_t)gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &vcpu->thr_timer) < 0) {
			/* Exits still reach the throttle point; a guest that does
			 * not exit is not slowed, and the measured figure shows it. */
			vcpu->thr_timer_failed = true;
			fprintf(stderr,
				"ferry: vCPU %u: no throttle timer (%s): a guest that does not "
				"exit to ferry is not slowed down\n",
				vcpu->index, strerror(errno));
			return;
		}
		vcpu->thr_timer_made = true;
	}
	if (on)
		its.it_value = its.it_interval = (struct timespec){0, VM_THROTTLE_SLICE_NS};
	if (timer_settime(vcpu->thr_timer, 0, &its, NULL) == 0)
		vcpu->thr_timer_armed = on;
}

void vcpu_throttle_restart(struct vcpu *vcpu)
{
	vcpu->thr_slice_start = clock_now_ns();
}

void vcpu_throttle_point(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	unsigned pct = vm->throttle_pct;

	vcpu_throttle_timer(vcpu, pct != 0);
	if (pct == 0) {
		vcpu->thr_slice_start = 0;
		return;
	}
	uint64_t now = clock_now_ns();
	if (vcpu->thr_slice_start == 0) {
		vcpu->thr_slice_start = now; /* throttled from here on */
		return;
	}
	uint64_t ran = now - vcpu->thr_slice_start;
	if (ran < VM_THROTTLE_SLICE_NS || vm->pause_req || vm->quit)
		return;
	if (ran > VM_THROTTLE_SLICE_MAX_NS)
		ran = VM_THROTTLE_SLICE_MAX_NS;

	/* The level may change while we sleep: the sleep follows it. */
	uint64_t t = now;
	vcpu->thr_ran_ns += ran;
	vcpu->thr_sleep_start = now; /* vm_throttle_stats() counts a sleep under way */
	while (!vm->pause_req && !vm->quit && vm->throttle_pct) {
		pct = vm->throttle_pct;
		uint64_t until = now + ran * pct / (100 - pct);
		if (t >= until)
			break;
		struct timespec ts = clock_abstime(until);
		pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
		t = clock_now_ns();
	}
	vcpu->thr_sleep_start = 0;
	vcpu->thr_slept_ns += t - now;
	vcpu->thr_slice_start = t;
}

void vcpu_throttle_exit(struct vcpu *vcpu)
{
	if (vcpu->thr_timer_made)
		timer_delete(vcpu->thr_timer);
	vcpu->thr_timer_made = vcpu->thr_timer_armed = false;
}
