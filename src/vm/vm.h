/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The virtual machine: KVM VM fd, guest memory, vCPU threads, devices.
 *
 * Threads and ownership
 *  - The thread that calls vm_create() (main) owns the struct and is the only
 *    one that may call vm_destroy().
 *  - Each vCPU thread owns its struct vcpu and its kvm_run page.
 *  - Run state (vm->state) changes only through vm_set_state() under
 *    vm->lock; any thread may call vm_stop()/vm_cont()/vm_request_quit()
 *    (the control thread does, later the migration thread).
 *  - Guest memory is shared by everyone; ferry writes to it only through
 *    vm_mem_write() so that the write can be tracked as dirty.
 */
#ifndef FERRY_VM_VM_H
#define FERRY_VM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define VM_MAX_CPUS 64

/* QEMU's RunState names where the meaning is the same. */
enum vm_runstate {
	VM_RS_PRELAUNCH, /* created, vCPUs not started yet */
	VM_RS_INMIGRATE, /* created to receive an incoming migration */
	VM_RS_RUNNING,
	VM_RS_PAUSED,	      /* stopped by the operator ("stop") */
	VM_RS_SHUTDOWN,	      /* guest exited (debug-exit) or quit */
	VM_RS_INTERNAL_ERROR, /* KVM could not run a vCPU any further */
	VM_RS_GUEST_PANICKED, /* triple fault */
	VM_RS__COUNT,
};

const char *vm_runstate_name(enum vm_runstate rs);

enum vm_event_kind {
	VM_EVENT_STOP,	   /* vCPUs paused */
	VM_EVENT_RESUME,   /* vCPUs running again */
	VM_EVENT_SHUTDOWN, /* the VM has ended; see info->reason */
	VM_EVENT_RESET,	   /* the VM was reset (reason, guest as for SHUTDOWN) */
};

struct vm_event {
	enum vm_event_kind kind;
	const char *reason; /* SHUTDOWN: "host-qmp-quit", "guest-exit", "guest-triple-fault", ... */
	bool guest;	    /* SHUTDOWN: caused by the guest */
	int exit_status;    /* SHUTDOWN: process exit status ferry will use */
};

/*
 * Listener for run-state events.  Called from whichever thread caused the
 * change (a vCPU thread, the control thread), with no vm lock held.
 */
struct vm_listener {
	void (*event)(void *opaque, const struct vm_event *ev);
	void *opaque;
};

struct vm_config {
	const char *name;
	uint64_t mem_size; /* bytes, multiple of 4 KiB */
	unsigned ncpus;	   /* 1..VM_MAX_CPUS */
	struct vm_listener listener;
};

struct vm;

/* Open /dev/kvm, create the VM, memory, irqchip, PIT and vCPUs (devices: machine/). */
int vm_create(const struct vm_config *cfg, struct vm **out, struct ferr *err);

/*
 * For the machine that builds the board (before vm_start): the port bus
 * devices register on, guest memory and the vCPU fds for the loader, and
 * the table of devices with migrated state (in registration order; the
 * name is the section's and must stay valid).
 */
struct iobus;
struct gmem;
struct device_state_ops;
struct iobus *vm_iobus(struct vm *vm);
struct gmem *vm_guest_mem(struct vm *vm);
int vm_vcpu_fd(const struct vm *vm, unsigned i);
int vm_add_device(struct vm *vm, const char *name, const struct device_state_ops *ops, void *dev,
		  struct ferr *err);

/* Mark a fresh VM as waiting for an incoming migration: PRELAUNCH -> INMIGRATE. */
int vm_set_incoming(struct vm *vm, struct ferr *err);

/*
 * Populate all guest RAM in a background thread (contents unchanged), so
 * that an incoming migration writes into memory that is already there:
 * on hosts where a first touch is expensive this is most of the receive
 * cost, paid before the migration starts.  Joined by vm_destroy().
 */
int vm_prealloc_start(struct vm *vm, struct ferr *err);

/* Start the vCPU threads.  State goes PRELAUNCH or INMIGRATE -> RUNNING. */
int vm_start(struct vm *vm, struct ferr *err);

/* The same, but the VM starts PAUSED ("cont" runs it): an incoming guest that was paused. */
int vm_start_paused(struct vm *vm, struct ferr *err);

/*
 * Who owns the guest (DESIGN.md section 3).  Exactly one process may run
 * a guest; during a migration that changes hands, and the operator's
 * stop/cont/quit/migrate must not act on a guest this process does not
 * own, or one a switchover is handing over.  The owner changes together
 * with the run state, under the same lock, so that a command cannot slip
 * between a check and the engine's pause.
 */
enum vm_owner {
	VM_OWNER_HERE,	       /* this process owns the guest */
	VM_OWNER_HANDING_OVER, /* a migration holds it: only the engine stops or runs it */
	VM_OWNER_AWAY,	       /* it runs elsewhere now, or has not arrived yet */
};

const char *vm_owner_name(enum vm_owner o); /* "here", "handing-over", "away" */
enum vm_owner vm_owner(struct vm *vm);
/* 0 if the guest is HERE; else -EBUSY, "cannot @what: <the owner's reason>". */
int vm_check_owner(struct vm *vm, const char *what, struct ferr *err);

/*
 * The operator's commands.  vm_stop pauses every vCPU and returns once all
 * are outside KVM_RUN (so their state may be read): RUNNING -> PAUSED.
 * Both fail with -EBUSY and the owner's reason unless the guest is HERE.
 */
int vm_stop(struct vm *vm, struct ferr *err);

/* The operator's quit: refused while a switchover hands the guest over. */
int vm_quit_check(struct vm *vm, struct ferr *err);

/*
 * The migration engine's side.  vm_hold() takes the guest from HERE to
 * HANDING_OVER (@why: what the operator is told) and, if @pause, pauses
 * it; *@was_running says whether it ran.  vm_release() ends a hold: back
 * to HERE (resumed if @resume), or, once the peer may have started it,
 * AWAY (@why again).  vm_set_owner() is for the destination's side.
 */
int vm_hold(struct vm *vm, bool pause, const char *why, bool *was_running, struct ferr *err);
void vm_release(struct vm *vm, enum vm_owner to, bool resume, const char *why);
void vm_set_owner(struct vm *vm, enum vm_owner to, const char *why);

/*
 * When the guest's pause began in the last vm_stop(): the first vCPU to
 * stop.  Stopping a busy vCPU takes a signal, which on some hosts takes
 * milliseconds to land; the guest runs on meanwhile, so downtime counts
 * from here, not from the vm_stop() call.
 */
uint64_t vm_pause_started_ns(struct vm *vm);

/* The operator's "cont": PAUSED -> RUNNING; refused unless the guest is HERE. */
int vm_cont(struct vm *vm, struct ferr *err);

/* A post-copy failed after the hand-over: neither side can run the guest
 * (the migration engine ends the VM with this status: even, unlike
 * the guest's debug-exit statuses, which are odd). */
#define VM_EXIT_STATUS_LOST 4

/* End the VM: vCPUs stop for good, state SHUTDOWN, vm_wait() returns. */
void vm_request_quit(struct vm *vm, const char *reason, bool guest, int exit_status);

/*
 * Reset (vm_reset.c).  The board says what a reset does: @reset runs with
 * every vCPU parked (none in KVM_RUN) and puts vCPUs, devices and memory
 * back as at boot; 0, or -errno with the reason (the VM then ends as an
 * internal error).  Without a handler a reset ends the VM (status 0).
 */
struct vm_reset_handler {
	int (*reset)(void *opaque, struct ferr *err);
	void *opaque;
};
void vm_set_reset_handler(struct vm *vm, const struct vm_reset_handler *h);

/*
 * Ask for a reset (any thread, a vCPU's device handler included: it
 * returns at once).  vm_wait() carries it out.  While a migration hands
 * the guest over, the reset waits; if the guest leaves this host, the
 * request goes with neither (docs/guests.md says what the guest sees).
 */
void vm_request_reset(struct vm *vm, const char *reason);

/*
 * Block until the VM has ended; returns the exit status ferry should use.
 * Carries out resets meanwhile, so the thread that waits is the one that
 * resets (the main thread).
 */
int vm_wait(struct vm *vm);

/* Join vCPU threads, close fds, unmap memory. */
void vm_destroy(struct vm *vm);

enum vm_runstate vm_runstate(struct vm *vm);
const char *vm_name(const struct vm *vm);
uint64_t vm_mem_size(const struct vm *vm);
unsigned vm_ncpus(const struct vm *vm);
/* Which vCPU runs on kernel thread @tid (post-copy's blocked time); -1: none. */
int vm_vcpu_of_tid(struct vm *vm, int tid);

/*
 * CPU throttle (vcpu_throttle.c), auto-converge's brake: at @pct percent
 * (0..VM_THROTTLE_MAX) every vCPU thread sleeps so that it runs (100 - pct)
 * percent of wall time, in run slices of about 10 ms followed by a sleep in
 * proportion; a timer per vCPU kicks a guest that never exits out of
 * KVM_RUN at each slice's end.  0 lifts it.  Any thread; takes effect at
 * once (sleepers re-time or end their sleep).  A pause (vm_stop, vm_hold)
 * or quit ends a throttle sleep at once, so it never lengthens a pause.
 * The level is the VM's, not a migration's: whoever sets it lifts it.
 */
#define VM_THROTTLE_MAX 99
int vm_set_throttle(struct vm *vm, unsigned pct, struct ferr *err);

/* What the throttle did, summed over vCPUs since the VM started. */
struct vm_throttle_stats {
	unsigned pct;	   /* the level now */
	uint64_t slept_ns; /* vCPU time slept for the throttle */
	uint64_t ran_ns;   /* vCPU time run in the slices those sleeps paid for */
};
void vm_throttle_stats(struct vm *vm, struct vm_throttle_stats *out);

/* Set an ISA interrupt line of the in-kernel PIC/IOAPIC (any thread). */
int vm_irq_line(struct vm *vm, unsigned irq, bool level);

/* Copy guest-physical [gpa, gpa+size) to a new file at @path. */
int vm_pmemsave(struct vm *vm, uint64_t gpa, uint64_t size, const char *path, struct ferr *err);

/*
 * Guest-physical memory access for ferry's own writes (device emulation,
 * loaders, tests).  Bounds-checked; writes are tracked as dirty.
 */
int vm_mem_read(struct vm *vm, uint64_t gpa, void *buf, size_t len, struct ferr *err);
int vm_mem_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len, struct ferr *err);

/*
 * For dirty tracking (src/migration/dirty*.c).  Guest RAM layout and the
 * VM fd; dirty logging on all slots; pages ferry itself wrote while
 * logging was on (ORed into @dirty in RAM order and forgotten).
 */
struct gmem;
struct bitmap;
const struct gmem *vm_gmem(const struct vm *vm);
int vm_kvm_vm_fd(const struct vm *vm);
uint64_t vm_dirty_log_manual_flags(const struct vm *vm);
int vm_dirty_log_enable(struct vm *vm, bool on, struct ferr *err);
void vm_take_self_dirty(struct vm *vm, struct bitmap *dirty);

#endif
