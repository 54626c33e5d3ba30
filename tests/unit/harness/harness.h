/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The engine harness: the real migration engine (migration.c, engine/,
 * stream/, policy/, transport/channel.c) on both sides of a migration in
 * one process, without KVM and without timing (docs/testing.md).
 *
 * What it fakes, each a link-time substitute of the real module:
 *  - the clock (hx_clock.c): common/clock.h's FERRY_VIRTUAL_CLOCK seam.
 *    Virtual time moves only when something here moves it: the fake VM's
 *    costs, an engine sleep, a fault, or (opt-in) a wait nothing can end;
 *  - the VM (hx_vm.c): vm_* and sections over a plain mmap for guest RAM
 *    and fake sections with known bytes; the dirty tracker, whose dirty
 *    set the test scripts per sync;
 *  - the transport (hx_net.c): channel_connect/listen/accept over an
 *    in-memory connection whose two directions parse the stream's record
 *    framing, so that a fault can strike at the n-th record of a type.
 */
#ifndef FERRY_TESTS_HARNESS_H
#define FERRY_TESTS_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "migration/migration.h"
#include "vm/vm.h"

#define HX_MS 1000000ull
#define HX_S  1000000000ull

/* ---- the virtual clock (hx_clock.c) ---- */

void hx_clock_reset(void);
void hx_clock_advance(uint64_t ns);
void hx_clock_reach(uint64_t at_ns); /* to @at_ns unless past it */
/*
 * A wait that nothing in the test can end (the engine waiting for a peer
 * that will never speak, with the connection up) gets its deadline after
 * @real_ms of real time in it.  Off (0) by default: with it on, a slow
 * peer could be mistaken for a silent one, so only tests whose waits are
 * silent by construction turn it on.
 */
void hx_clock_idle_advance(unsigned real_ms);
#define HX_IDLE_MS 20 /* what the tests that need it use */
/* For waits in the harness: the virtual deadline @at_ns passed (moving the
 * clock there if idle advance applies to this waiter's @since_real_ns). */
bool hx_clock_passed(uint64_t at_ns, uint64_t since_real_ns);
uint64_t hx_real_ns(void);
/* A harness wait on a virtual deadline ended. */
void hx_clock_done(void);
/* Bytes moved: the harness is not idle. */
void hx_clock_touch(void);

/* ---- the fake VM (hx_vm.c) ---- */

#define HX_MAX_WRITES 16
#define HX_SEC_BYTES  96

/* At the tracker's @sync-th sync (1-based), the guest has written pages
 * [first, first + count) since the previous one, and @advance_ns passed. */
struct hx_write {
	unsigned sync;
	uint64_t first, count;
	uint64_t advance_ns;
};

/* Which call of a section op fails (0: none): the n-th over the VM's life. */
struct hx_vm_faults {
	unsigned save_fail;	 /* vm_section_save */
	unsigned load_fail;	 /* vm_section_load */
	unsigned post_load_fail; /* vm_section_post_load */
};

struct hx_vm_config {
	uint64_t pages;	      /* guest RAM in 4 KiB pages */
	uint64_t touched;     /* pages [0, touched) hold data at the start; the rest untouched */
	unsigned ncpus;	      /* sections: one per vCPU, the VM, one device */
	bool paused;	      /* the source guest starts paused (by the operator) */
	uint64_t ns_per_page; /* virtual time a running pass spends per page (rearm) */
	uint64_t save_ns;     /* ... each section save takes (inside the window) */
	struct hx_write writes[HX_MAX_WRITES];
	struct hx_vm_faults faults;
};

struct vm *hx_vm_create(const struct hx_vm_config *cfg, bool incoming);
void hx_vm_destroy(struct vm *vm);

/* What the fake VM saw. */
struct hx_vm_view {
	enum vm_runstate state;
	enum vm_owner owner;
	unsigned starts;  /* vm_start / vm_start_paused */
	unsigned holds;	  /* vm_hold */
	unsigned resumes; /* vm_release that ran it again */
	unsigned syncs;	  /* dirty tracker syncs */
	bool quiesced;	  /* a section is quiesced and not resumed */
	bool tracking;	  /* the dirty tracker is on */
	unsigned post_loads;
	unsigned throttle_pct;	/* vm_set_throttle: the level now */
	unsigned throttle_peak; /* ... the highest */
	unsigned throttle_sets; /* ... calls */
};
void hx_vm_view(struct vm *vm, struct hx_vm_view *out);
/* Guest RAM and section bytes of two VMs are the same. */
bool hx_vm_same_memory(struct vm *a, struct vm *b, uint64_t *first_diff);
bool hx_vm_same_sections(struct vm *a, struct vm *b);

/* ---- the transport (hx_net.c) ---- */

enum hx_dir { HX_TO_DST, HX_TO_SRC };

enum hx_action {
	HX_CLOSE,      /* the connection dies before this record: the writer gets -EPIPE */
	HX_STALL,      /* the link carries nothing for @advance_ns (a write with a deadline
			* before that ends at the deadline with -ETIME), then goes on */
	HX_DELAY,      /* the writer goes on; it and all after arrive @advance_ns later */
	HX_HOLD,       /* @advance_ns passes; it and all after wait for hx_net_release() */
	HX_CANCEL_SRC, /* migrate-cancel on the source (the result in hx_net_cancel_rc), then on */
	HX_CANCEL_DST, /* ... on the destination */
};

struct hx_fault {
	enum hx_dir dir;
	uint32_t type; /* record type (stream_format.h) */
	unsigned nth;  /* its n-th occurrence in that direction, 1-based */
	enum hx_action action;
	uint64_t advance_ns;
};

#define HX_MAX_FAULTS 4

void hx_net_reset(struct migration *src, struct migration *dst, const struct hx_fault *faults,
		  unsigned nfaults);
/* Deliver what HX_HOLD held back. */
void hx_net_release(void);
/* How many faults struck, and migration_cancel()'s result for the last cancel. */
unsigned hx_net_struck(void);
int hx_net_cancel_rc(void);

/* ---- a run (hx_run.c) ---- */

#define HX_MAX_EVENTS 512

struct hx;

struct hx_side {
	struct hx *h;
	struct migration m;
	struct vm *vm;
	/* events in order: "status:active", "pass:1", "note:MIGRATION_SWITCHOVER_ABORTED" */
	pthread_mutex_t ev_lock;
	char events[HX_MAX_EVENTS][48];
	unsigned nevents;
	enum mig_status final;
	struct mig_stats st;
	struct ferr err;
	/* migrate-cancel this side when it reaches this status (MIG_NONE: never) */
	enum mig_status cancel_at;
	int cancel_rc;
};

struct hx {
	struct hx_side src, dst;
	/* release held records when the source emits this note (NULL: never) */
	const char *release_on_note;
};

struct hx_params {
	uint64_t downtime_limit_ms; /* 0: the default */
	uint64_t max_attempts;	    /* 0: the default */
	uint64_t timeout_s;
	uint64_t on_timeout;
	bool auto_converge; /* the capability, on both sides (only the source acts on it) */
};

void hx_setup(struct hx *h, const struct hx_vm_config *vcfg, const struct hx_params *p);
/* Start both sides and wait (in real time, bounded) for both to end. */
void hx_run(struct hx *h, const struct hx_fault *faults, unsigned nfaults);
void hx_teardown(struct hx *h);

/* Whether @side emitted event @ev (exact text), and how many times. */
unsigned hx_count(const struct hx_side *side, const char *ev);
/* The guest runs on exactly one side: the source resumed it, or the destination started it. */
void hx_assert_one_owner(struct hx *h, bool on_dst);

#endif
