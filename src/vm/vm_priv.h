/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Inside of struct vm, shared by the files of src/vm/ only.
 */
#ifndef FERRY_VM_VM_PRIV_H
#define FERRY_VM_VM_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "common/bitmap.h"
#include "vm/iobus.h"
#include "vm/memory.h"
#include "vm/vm.h"

struct serial;

#define VM_MAX_DEVICES 8

/* Makes KVM_RUN return -EINTR: pause requests and the throttle's slice timer. */
#define VCPU_KICK_SIGNAL SIGUSR1

/* A device whose state is saved: see devices/device.h. */
struct vm_device {
	const char *name;
	const struct device_state_ops *ops;
	void *dev;
};

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run; /* mmap of the vCPU fd; owned by the vCPU thread */
	size_t run_size;
	pthread_t thread;
	_Atomic int tid;     /* the vCPU thread's kernel id, set by it (0 before) */
	bool thread_started; /* set by main before vm_start returns */
	bool paused;	     /* under vm->lock: parked at the pause point */

	/*
	 * Throttle (vcpu_throttle.c).  The timer and the slice are the vCPU
	 * thread's own; the sums and thr_sleep_start are written by it under
	 * vm->lock and read under vm->lock by vm_throttle_stats().
	 */
	timer_t thr_timer;	  /* kicks this thread out of KVM_RUN every slice */
	bool thr_timer_made;	  /* timer_create() succeeded */
	bool thr_timer_armed;	  /* ... and it ticks */
	bool thr_timer_failed;	  /* it could not be made: said once on stderr */
	uint64_t thr_slice_start; /* CLOCK_MONOTONIC when the current run slice began */
	uint64_t thr_slept_ns;	  /* slept for the throttle, since the VM started */
	uint64_t thr_ran_ns;	  /* ran in the slices that ended in those sleeps */
	uint64_t thr_sleep_start; /* when the sleep under way began; 0: none */
};

struct vm {
	/* Set at creation, read-only afterwards: any thread may read. */
	char name[64];
	int kvm_fd;
	int vm_fd;
	unsigned ncpus;
	struct gmem mem;
	struct iobus io;
	struct kvm_cpuid2 *cpuid; /* as given to the guest */
	struct vm_listener listener;

	/* Dirty logging: manual_flags fixed at creation; self_dirty under dirty_lock. */
	uint64_t dirty_manual_flags;
	pthread_mutex_t dirty_lock; /* serialises turning logging on and off only */
	_Atomic bool dirty_logging;
	/*
	 * Pages written by ferry itself (vm_mem_write: device emulation, DMA)
	 * while logging.  Allocated before logging first turns on, freed with
	 * the VM; its words are updated with atomic OR and exchange, so that a
	 * device thread marking a page never takes a lock.
	 */
	struct bitmap self_dirty;

	/* Devices: created before the vCPUs start; each locks itself. */
	struct serial *serial;
	unsigned ndevices;
	struct vm_device devices[VM_MAX_DEVICES];

	/* What vCPU state consists of on this host (fixed at creation). */
	uint32_t *msr_index; /* MSRs that KVM saves and we could read */
	unsigned nmsrs;
	uint32_t xsave_size; /* KVM_CAP_XSAVE2 size, or 4096 */
	bool has_sregs2;
	bool has_tsc_offset; /* the KVM_VCPU_TSC_OFFSET vCPU attribute (Linux >= 5.16) */

	/* Run state, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled on any change below */
	enum vm_runstate state;
	bool pause_req;		/* vCPUs must park */
	bool quit;		/* vCPUs must exit their threads */
	enum vm_owner owner;	/* see vm.h; changes with the run state */
	char owner_why[160];	/* why the operator may not act, when not HERE */
	unsigned npaused;	/* vCPUs parked */
	uint64_t first_park_ns; /* CLOCK_MONOTONIC when the first vCPU parked, last stop */
	int exit_status;	/* for vm_wait() */
	bool reset_req;		/* a reset asked for, not yet carried out */
	bool resetting;		/* vm_wait() resets: stop/cont/hold wait for it */
	const char *reset_reason;
	struct vm_reset_handler reset;
	unsigned throttle_pct; /* vm_set_throttle(): % of time each vCPU sleeps, 0..99 */

	/* Background preallocation (vm_prealloc_start); stop read by that thread. */
	pthread_t prealloc_thread;
	bool prealloc_started;
	volatile bool prealloc_stop;

	struct vcpu vcpus[VM_MAX_CPUS];
};

/* vcpu.c */
int vcpu_create(struct vm *vm, unsigned index, struct ferr *err);
void vcpu_destroy(struct vcpu *vcpu);
void *vcpu_thread(void *arg);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_dump_regs(struct vcpu *vcpu, char *buf, size_t len);

/*
 * vcpu_throttle.c, called by the vCPU thread with vm->lock held.
 * vcpu_throttle_point(): sleep off the slice that just ended, if the VM is
 * throttled and one has; returns at once when a pause or quit is asked
 * for (the lock is released while it sleeps).  vcpu_throttle_restart():
 * the vCPU ran no guest code for a while (parked): a new slice begins.
 * vcpu_throttle_exit(): the thread ends (its timer goes).
 */
void vcpu_throttle_point(struct vcpu *vcpu);
void vcpu_throttle_restart(struct vcpu *vcpu);
void vcpu_throttle_exit(struct vcpu *vcpu);

/* cpuid.c */
int cpuid_init(struct vm *vm, struct ferr *err);
int cpuid_set_vcpu(struct vm *vm, struct vcpu *vcpu, struct ferr *err);

/* vcpu_state.c: probe what vCPU state this host has (MSR list, xsave size). */
int vcpu_state_probe(struct vm *vm, struct ferr *err);

/* vm_dirty.c */
int vm_dirty_init(struct vm *vm, struct ferr *err);
void vm_dirty_destroy(struct vm *vm);
void vm_mark_self_dirty(struct vm *vm, uint64_t gpa, uint64_t len);

/* vm.c: a vCPU reports a fatal condition; the VM stops with a report. */
void vm_fail(struct vm *vm, enum vm_runstate rs, const char *reason, const char *report);
/* vm.c: park all vCPUs (vm->lock held); listeners' events. */
void vm_pause_locked(struct vm *vm);
void vm_emit(struct vm *vm, const struct vm_event *ev);

/* vm_reset.c: with vm->lock held, in vm_wait(): a requested reset, if one is due. */
void vm_reset_if_requested(struct vm *vm);

#endif
