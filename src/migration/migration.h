/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The migration engine's context: one per VM, for either role.
 *
 *   source:       migrate(uri)          -> mig_source_thread (save/migrate)
 *   destination:  incoming(uri)         -> mig_dest_thread   (restore/receive)
 *
 * A snapshot is a migration whose channel is a file: the same source code
 * path pauses the VM first, sends one pass and the state, and ends.
 *
 * Status changes only through mig_set_status(), which checks the old
 * status and emits the MIGRATION event.  Threads and ownership:
 *  - control thread: starts/cancels migrations, reads stats and params;
 *  - migration thread (one at a time): owns the channel, the tracker, the
 *    bitmaps and the stream; publishes statistics under @lock;
 *  - everything under @lock may be read by any thread.
 */
#ifndef FERRY_MIGRATION_MIGRATION_H
#define FERRY_MIGRATION_MIGRATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migration/transport/channel.h"
#include "migration/params.h"

struct vm;
struct trace;
struct dirty_probe;
struct channel;
struct channel_listener;
struct pcd;

/* QEMU's MigrationStatus names. */
enum mig_status {
	MIG_NONE,
	MIG_SETUP,
	MIG_ACTIVE,
	MIG_DEVICE, /* stop-and-copy: VM paused, final pages and state going out */
	MIG_POSTCOPY_ACTIVE,
	MIG_POSTCOPY_PAUSED, /* post-copy's connection broke: both sides wait, keeping everything */
	MIG_POSTCOPY_RECOVER, /* ... and reconnect (migrate resume, migrate-recover) */
	MIG_COMPLETED,
	MIG_FAILED,
	MIG_CANCELLING,
	MIG_CANCELLED,
	MIG__COUNT,
};

const char *mig_status_name(enum mig_status s);

enum mig_role { MIG_ROLE_NONE, MIG_ROLE_SOURCE, MIG_ROLE_DEST };

#define MIG_PASS_HISTORY 64

/* One pre-copy pass, for the per-pass table in query-migrate. */
struct mig_pass_stats {
	uint32_t pass;
	uint64_t pages;	     /* sent with data */
	uint64_t zero_pages; /* sent as flags */
	uint64_t bytes;	     /* on the stream */
	uint64_t duration_ns;
	uint64_t dirty_pages;	    /* found dirty at its end: the next pass */
	uint64_t bandwidth;	    /* bytes/s over the pass */
	uint64_t dirty_rate;	    /* bytes/s dirtied over the pass */
	uint32_t throttle_pct;	    /* CPU throttle the guest ran under (auto-converge) */
	uint64_t throttle_slept_ns; /* vCPU time slept for it in the pass, all vCPUs */
	uint64_t throttle_ran_ns;   /* vCPU time run in the slices those sleeps paid for */
};

/* Where the downtime went (the last switchover attempt), in ns. */
struct mig_downtime_phases {
	uint64_t pause;	  /* stopping the vCPUs */
	uint64_t harvest; /* final dirty-log sync */
	uint64_t send;	  /* remaining pages and all state */
	uint64_t dest;	  /* END sent -> destination's ACK (its load, plus a round trip) */
	uint64_t go;	  /* sending GO */
};

#define MIG_ATTEMPT_HISTORY 16

enum mig_attempt_outcome {
	MIG_ATTEMPT_GO,		 /* handed over */
	MIG_ATTEMPT_ROLLED_BACK, /* out of time: the guest resumed on the source */
	MIG_ATTEMPT_FAILED,	 /* the migration failed in it */
};

/* One switchover attempt, for ferry.switchover-table in query-migrate. */
struct mig_attempt_stats {
	uint32_t attempt; /* 1, 2, ...; 0: slot unused */
	enum mig_attempt_outcome outcome;
	uint64_t paused_at_ns; /* CLOCK_MONOTONIC of t0, the first vCPU stopping */
	uint64_t paused_ns;    /* t0 to GO sent, or to the guest running again here */
	uint64_t bytes;	       /* put on the stream in the window: pages, state, END */
	struct mig_downtime_phases phases;
};

/* Post-copy: how the destination came to own every page (docs/postcopy.md). */
#define MIG_PC_HIST  24 /* fault latency buckets: k holds [2^k, 2^(k+1)) us, 0 also < 1 us */
#define MIG_PC_VCPUS 64 /* vCPUs whose blocked time is reported one by one */
struct mig_postcopy_stats {
	bool active;	    /* the migration switched to post-copy (GO sent / received) */
	uint64_t start_ns;  /* CLOCK_MONOTONIC of GO */
	uint64_t owned_ns;  /* GO to the destination owning every page; 0: not yet */
	uint64_t discarded; /* pages not valid at the destination at the switch */
	uint64_t missing;   /* ... of which still missing now */
	uint64_t requests;  /* pages the destination asked for (postcopy-requests) */
	uint64_t bytes_before, bytes_after; /* stream bytes before / after the switch */
	/* Fault latency: the fault seen to its page installed, in ns. */
	uint64_t lat_count, lat_min, lat_max, lat_sum, lat_p50, lat_p99;
	uint64_t lat_hist[MIG_PC_HIST];
	/* Time vCPUs spent waiting for pages (postcopy-blocktime, per vCPU). */
	uint64_t blocktime_ns;
	uint64_t vcpu_blocktime_ns[MIG_PC_VCPUS];
	unsigned nvcpus;
	/* Recovery (docs/postcopy.md): breaks survived, and time spent paused. */
	uint32_t pauses, recoveries;
	uint64_t paused_ns;
};

/* Published statistics (under lock). Field names mirror query-migrate. */
struct mig_stats {
	uint64_t start_ns, setup_done_ns, end_ns;
	uint64_t total_bytes; /* ram.total: guest RAM */
	uint64_t transferred; /* ram.transferred: bytes on the channel */
	uint64_t remaining;   /* ram.remaining: dirty bytes not yet sent */
	uint64_t duplicate;   /* ram.duplicate: zero pages sent as flags */
	uint64_t skipped;     /* pages never touched, not sent at all */
	uint64_t normal;      /* ram.normal: pages sent with data */
	uint64_t normal_bytes;
	uint64_t dirty_sync_count; /* ram.dirty-sync-count */
	uint64_t passes;
	uint64_t multifd_channels; /* data channels in use (0: multifd off) */
	uint64_t multifd_bytes;	   /* ... bytes they carried, headers included */
	uint64_t downtime_ns;	   /* pause to resume (or end of save) */
	uint64_t state_bytes;	   /* vCPU + VM + device state */
	uint64_t pages_per_second; /* over the last pass */
	uint64_t mbps_x1000;	   /* ram.mbps * 1000, over the last pass */
	uint64_t dirty_pages_rate;
	uint64_t expected_downtime_ns; /* the policy's prediction now */
	/* ferry's additions */
	struct mig_pass_stats pass[MIG_PASS_HISTORY]; /* the first MIG_PASS_HISTORY passes */
	struct mig_downtime_phases phases;
	struct mig_attempt_stats attempt[MIG_ATTEMPT_HISTORY]; /* the first ones */
	uint64_t pause_at_ns;	   /* CLOCK_MONOTONIC when the last attempt paused the guest */
	uint64_t dest_resume_ns;   /* destination's resume time - pause_at_ns (same host only) */
	uint32_t attempts;	   /* switchovers tried */
	uint32_t aborted_attempts; /* ... rolled back because the limit would be missed */
	bool forced;		   /* switched over regardless of the limit (on-timeout force) */
	bool not_converging;
	char policy_reason[48];	 /* why the policy did what it did last */
	char policy_detail[256]; /* policy_describe() of that decision */
	/* How the connection is protected: ferry.tls in query-migrate. */
	struct channel_security tls;
	struct mig_postcopy_stats postcopy;
	/* Auto-converge (docs/policy.md, "Throttling"); source only. */
	bool auto_converge;	    /* the capability was on when the migration started */
	uint32_t throttle_pct;	    /* cpu-throttle-percentage: the level now */
	uint32_t throttle_peak_pct; /* the highest level applied */
	uint32_t throttle_changes;  /* times the level changed */
	uint64_t throttle_slept_ns; /* vCPU time slept for it, all vCPUs, this migration */
	uint64_t throttle_ran_ns;   /* vCPU time run in the slices those sleeps paid for */
};

struct migration_events {
	/* Progress of a long operation ("saving", "loading"): for a terminal. */
	void (*progress)(void *opaque, const char *what, uint64_t done, uint64_t total);
	void *progress_opaque;
	/* MIGRATION {status}, MIGRATION_PASS {pass}, and ferry's own. Any thread. */
	void (*status)(void *opaque, enum mig_status s);
	void (*pass)(void *opaque, uint64_t pass);
	/* ferry's events: MIGRATION_NOT_CONVERGING, MIGRATION_SWITCHOVER_ABORTED, ... */
	void (*note)(void *opaque, const char *event, const char *reason, const char *detail);
	/* MIGRATION_THROTTLE: the CPU throttle changed (NULL: told through note). */
	void (*throttle)(void *opaque, unsigned pct, const char *reason, const char *detail);
	void *opaque;
};

struct migration {
	struct vm *vm;
	struct migration_events events;
	struct trace *trace; /* trace points (common/trace.h); NULL: none; set before use */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* status changes */
	enum mig_status status;
	enum mig_role role;
	struct mig_params params;
	struct mig_stats stats;
	char uri[256];
	struct ferr error;	 /* why the last migration failed */
	bool cancel;		 /* cancel requested */
	bool vm_was_running;	 /* when the migration started */
	bool vm_held;		 /* the engine holds the guest (vm_hold) */
	bool vm_paused_by_us;	 /* ... and paused it: resume on failure */
	bool handed_over;	 /* GO is going out: cancel may no longer resume it here */
	bool postcopy_requested; /* migrate-start-postcopy: the source switches when it can */
	/* Post-copy recovery: the operator's requests, taken by the migration thread. */
	bool pause_requested;  /* migrate-pause: a break now is a pause, not a failure */
	bool resume_requested; /* migrate resume / migrate-recover: reconnect at @resume_uri */
	char resume_uri[256];

	/* The one migration thread (under lock). */
	pthread_t thread;
	bool thread_joinable;
	struct channel *ch; /* while the thread runs */
	/* the source's multifd data channels, while its senders run: a cancel
	 * cancels them too (a sender may be blocked in a write) */
	struct channel *data_ch[16];
	unsigned ndata_ch;
	struct channel_listener *listener; /* destination, while waiting */
	/* destination, while post-copy's state exists: query-migrate reads its
	 * figures live (the loop publishes only per record, which a slow
	 * background stream makes rare) */
	struct pcd *pcd;

	/* Test-only dirty-log harvester (x-ferry-dirty-log), control thread only. */
	struct dirty_probe *probe;
};

int migration_init(struct migration *m, struct vm *vm, const struct migration_events *ev);
void migration_destroy(struct migration *m); /* cancels and joins */

/*
 * The only ways the status changes, each checked against one transition
 * table (migration.c) and emitting the MIGRATION event: mig_set_status()
 * from exactly @from; mig_end_status() from whatever the status is, for
 * the ends (completed, failed, cancelled) and the start (setup).
 */
bool mig_set_status(struct migration *m, enum mig_status from, enum mig_status to);
bool mig_end_status(struct migration *m, enum mig_status to);
bool mig_status_allowed(enum mig_status from, enum mig_status to);

/* Start saving/migrating to @uri in the migration thread. */
int migration_start(struct migration *m, const char *uri, struct ferr *err);
/* Start receiving from @uri (already listening: see ferry run --incoming). */
int migration_incoming(struct migration *m, const char *uri, struct ferr *err);
/* Memory size and vCPU count recorded in a saved file's header. */
int migration_peek_file(const char *path, uint64_t *mem_size, unsigned *ncpus, struct ferr *err);
/* A consistent copy of the status, role, statistics, parameters and error. */
void migration_query(struct migration *m, enum mig_status *status, enum mig_role *role,
		     struct mig_stats *st, struct ferr *error);
/*
 * migrate-cancel: stops a migration in progress (the guest stays here).
 * Refused once the guest has been handed over (GO sent): resuming it here
 * then could run it twice.  Nothing to cancel is not an error (as QEMU).
 */
int migration_cancel(struct migration *m, struct ferr *err);
/*
 * migrate-start-postcopy: the running pre-copy switches to post-copy at its
 * next decision.  Refused without the postcopy-ram capability or when no
 * outgoing migration is in pre-copy.
 */
int migration_start_postcopy(struct migration *m, struct ferr *err);
/*
 * Post-copy recovery (docs/postcopy.md, "Recovery"), in postcopy-paused:
 * migration_resume() on the source (migrate with resume: true) reconnects
 * to @uri; migration_recover() on the destination (migrate-recover)
 * listens on @uri for it.  migration_pause() (migrate-pause) breaks a
 * post-copy's connections on purpose, e.g. when the network hangs without
 * an error: both sides then pause at once instead of after their timeouts.
 */
int migration_resume(struct migration *m, const char *uri, struct ferr *err);
int migration_recover(struct migration *m, const char *uri, struct ferr *err);
int migration_pause(struct migration *m, struct ferr *err);
/* Wait until the current migration ends; returns its final status. */
enum mig_status migration_wait(struct migration *m);

#endif
