/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Migration policy: what the source engine does next.
 *
 * A pure module: no I/O, no clock reads, no globals, no allocation.  The
 * engine measures, the policy decides, and the same code drives the real
 * engine, simulators and tests.  docs/policy.md is the full account; in
 * short, at the end of every pre-copy pass (and, for timeouts, during one)
 * the engine fills a struct policy_input and calls policy_decide(), which
 * answers CONTINUE, SWITCHOVER, POSTCOPY or ABORT with a reason.
 *
 * The guarantee: an unforced SWITCHOVER or POSTCOPY is returned only when
 * its predicted downtime plus the margin fits the downtime limit, and only
 * once a bandwidth has been measured.  Only on_timeout = FORCE produces a
 * forced switchover, whose downtime is not bounded.
 *
 * Units: times in nanoseconds, sizes in bytes, rates in bytes per second.
 */
#ifndef FERRY_MIGRATION_POLICY_H
#define FERRY_MIGRATION_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A time that is unknown or unbounded (no bandwidth, overflow). */
#define POLICY_NS_INF UINT64_MAX

/* Defaults of struct policy_params; docs/policy.md says why. */
#define POLICY_DEFAULT_DOWNTIME_LIMIT_NS 300000000ull	  /* 300 ms, as QEMU */
#define POLICY_MAX_DOWNTIME_LIMIT_NS	 2000000000000ull /* 2000 s */
#define POLICY_DEFAULT_MARGIN_PCT	 10
#define POLICY_DEFAULT_GAIN_PCT		 30
#define POLICY_DEFAULT_STALL_PASSES	 3
#define POLICY_DEFAULT_STALL_PCT	 10
#define POLICY_DEFAULT_MAX_PASSES	 30
#define POLICY_DEFAULT_MAX_ATTEMPTS	 3
/* Auto-converge, QEMU's defaults (cpu-throttle-initial, -increment, max-cpu-throttle). */
#define POLICY_DEFAULT_THROTTLE_INITIAL	  20
#define POLICY_DEFAULT_THROTTLE_INCREMENT 10
#define POLICY_DEFAULT_THROTTLE_MAX	  99
/* A learned penalty halves this often: a transient slowness must not block
 * every later attempt (docs/policy.md, rule 6). */
#define POLICY_PENALTY_HALF_LIFE_NS 1000000000ull

/* The learned penalty as it stands at @elapsed_ns. */
struct policy_history;
uint64_t policy_penalty_now(const struct policy_history *h, uint64_t elapsed_ns);

enum policy_action {
	POLICY_CONTINUE,   /* run another pre-copy pass (or go on with this one) */
	POLICY_SWITCHOVER, /* pause, send what is left and the state, hand over */
	POLICY_POSTCOPY,   /* pause, send the state, resume on the destination */
	POLICY_ABORT,	   /* give up; the guest keeps running on the source */
};

/* Same values as enum mig_on_timeout (migration/params.h): a cast converts. */
enum policy_on_timeout {
	POLICY_TIMEOUT_ABORT,	 /* give up */
	POLICY_TIMEOUT_POSTCOPY, /* start post-copy (if it can keep the limit) */
	POLICY_TIMEOUT_FORCE,	 /* switch over whatever the downtime */
};

/*
 * Why.  policy_reason_name() gives each a stable name for query-migrate and
 * events; docs/policy.md has the full table.
 */
enum policy_reason {
	POLICY_R_FIRST_PASS,		       /* "first-pass": nothing measured yet */
	POLICY_R_NO_BANDWIDTH,		       /* "no-bandwidth": the last pass measured 0 B/s */
	POLICY_R_PASS_IN_PROGRESS,	       /* "pass-in-progress": mid-pass, nothing due */
	POLICY_R_LIMIT_NOT_MET,		       /* "limit-not-met": over the limit, shrinking */
	POLICY_R_STILL_GAINING,		       /* "limit-met-still-gaining": a pass still pays */
	POLICY_R_CONVERGED,		       /* "converged": little RAM left to gain on */
	POLICY_R_NO_FURTHER_GAIN,	       /* "limit-met-no-further-gain": dirtying keeps up */
	POLICY_R_MAX_PASSES,		       /* "max-passes": fits; pass budget spent */
	POLICY_R_NOT_CONVERGING,	       /* "not-converging": over the limit, stalled */
	POLICY_R_LIMIT_UNREACHABLE,	       /* "limit-unreachable": fixed costs exceed it */
	POLICY_R_POSTCOPY_REQUESTED,	       /* "postcopy-requested": by the operator */
	POLICY_R_HYBRID_PASSES_DONE,	       /* "hybrid-passes-done": N passes, post-copy */
	POLICY_R_HYBRID_LIMIT_MET,	       /* "hybrid-limit-met": N passes, but it fits */
	POLICY_R_TIMEOUT_LIMIT_MET,	       /* "timeout-limit-met": timed out, but it fits */
	POLICY_R_TIMEOUT_ABORT,		       /* "timeout-abort" */
	POLICY_R_TIMEOUT_FORCE,		       /* "timeout-force": forced, downtime unbounded */
	POLICY_R_TIMEOUT_POSTCOPY,	       /* "timeout-postcopy" */
	POLICY_R_TIMEOUT_POSTCOPY_UNAVAILABLE, /* "timeout-postcopy-unavailable" */
	POLICY_R_TIMEOUT_POSTCOPY_OVER_LIMIT,  /* "timeout-postcopy-over-limit" */
	POLICY_R_ATTEMPTS_EXHAUSTED,	       /* "attempts-exhausted": too many overruns */
	POLICY_R_GUEST_RECOVERING,     /* "guest-recovering": runs as long as it was paused */
	POLICY_R_THROTTLING,	       /* "throttling": not converging, the throttle goes up */
	POLICY_R_THROTTLE_INEFFECTIVE, /* "throttle-ineffective": at its max it did not
					* help; lifted for the rest of the migration */
	POLICY_R_BAD_PARAMS,	       /* "bad-params": policy_params_check() fails */
	POLICY_R_COUNT
};

#define POLICY_PASSES_OFF UINT32_MAX /* postcopy_after_passes: never */

/* Set by the operator (migrate-set-parameters / -capabilities). */
struct policy_params {
	uint64_t downtime_limit_ns;	   /* the guarantee; (0, 2000 s]; default 300 ms */
	uint64_t max_bandwidth;		   /* B/s cap on the stream; 0 = none (default) */
	uint64_t timeout_ns;		   /* since the start; 0 = none (default) */
	enum policy_on_timeout on_timeout; /* default ABORT */
	bool postcopy;			   /* post-copy allowed (postcopy-ram); default no */
	/* Hybrid: post-copy after N passes (0: from the start); default off. */
	uint32_t postcopy_after_passes;
	uint32_t margin_pct; /* safety margin, % of the limit (< 100); 10 */
	/* Another pass is worth it if it cuts the predicted downtime by more. */
	uint32_t gain_pct; /* % (<= 100); default 30 */
	/* Not converging: stall_passes pass ends in a row without the remaining
	 * set falling stall_pct below where it last fell that much. */
	uint32_t stall_passes; /* >= 1; default 3 */
	uint32_t stall_pct;    /* < 100; default 10 */
	uint32_t max_passes;   /* pre-copy pass budget, >= 1; default 30 */
	uint32_t max_attempts; /* failed switchovers before giving up, >= 1; default 3 */
	/*
	 * Auto-converge: slow the guest's vCPUs while pre-copy does not
	 * converge and post-copy is not taken (docs/policy.md, "Throttling").
	 * Percentages of vCPU time slept, each 1..99 when auto_converge is on.
	 */
	bool auto_converge;	     /* capability auto-converge; default off */
	uint32_t throttle_initial;   /* first level; default 20 */
	uint32_t throttle_increment; /* added per pass that still does not converge; 10 */
	uint32_t throttle_max;	     /* ceiling; default 99 */
	bool throttle_tailslow;	     /* smaller steps near the level that suffices */
};

/* Measured by the engine, for one call. */
struct policy_input {
	uint32_t passes;     /* pre-copy passes completed (0 during the first) */
	bool mid_pass;	     /* a call during a pass, not at its end */
	uint64_t elapsed_ns; /* since the migration started */
	uint64_t bandwidth;  /* B/s over the last pass (first: so far); 0 = none */
	uint64_t dirty_rate; /* B/s dirtied over the last completed pass */
	/* RAM a switchover now would send; at a pass end, the dirty set just
	 * harvested, i.e. the size of the next pass. */
	uint64_t remaining_bytes;
	uint64_t pass_left_bytes; /* of the current pass, not sent yet (progress) */
	uint64_t state_bytes;	  /* vCPU + device state sent in the window */
	uint64_t rtt_ns;	  /* round trip to the destination */
	uint64_t resume_ns;	  /* destination: last byte in to READY out */
	bool postcopy_available;  /* the destination can do post-copy now */
	bool postcopy_requested;  /* the operator ran migrate-start-postcopy */
	uint32_t failed_attempts; /* switchovers that overran and were rolled back */
	uint64_t last_attempt_ns; /* measured pause-to-READY of the last of them */
	/* The guest has run this long since the last of them ended (0: unknown). */
	uint64_t since_attempt_ns;
	/* The CPU throttle the guest ran under in the pass just ended (and is
	 * under now): the last decision's throttle_pct, once applied. */
	uint32_t throttle_pct;
};

/*
 * Owned by the caller, zeroed (policy_history_init) at migration start and
 * updated by policy_decide() only.  A few figures of recent passes suffice:
 * convergence is judged against an "anchor", the remaining set at the last
 * pass end that shrank it meaningfully.
 */
struct policy_history {
	uint32_t recorded;	      /* pass ends recorded */
	uint32_t passes;	      /* the last one's pass number */
	uint64_t remaining;	      /* remaining bytes at that pass end */
	uint64_t prev_remaining;      /* ... and at the one before */
	uint64_t bandwidth;	      /* measured at that pass end */
	uint64_t prev_bandwidth;      /* ... and at the one before */
	uint64_t anchor;	      /* remaining at the last meaningful decrease */
	uint32_t stalled;	      /* pass ends since the anchor */
	uint32_t attempts_seen;	      /* failed attempts already learned from */
	uint64_t penalty_ns;	      /* worst underestimate seen, added to predictions */
	uint64_t penalty_at_ns;	      /* elapsed_ns when it was learned: it halves
				       * every POLICY_PENALTY_HALF_LIFE_NS after */
	uint32_t switches;	      /* unforced SWITCHOVER/POSTCOPY decisions made */
	uint64_t switch_predicted_ns; /* formula's prediction (no penalty) for the last */
	/* Auto-converge (policy_throttle.c), judged once per pass end. */
	uint32_t thr_pass;	     /* the last pass end judged */
	uint32_t thr_raised_at;	     /* pass end of the last raise */
	uint64_t thr_rate_before;    /* dirty rate measured under the level before it */
	uint32_t thr_stalled_at_max; /* pass ends in a row at the max without progress */
	bool thr_no_effect;	     /* the last raise did not cut the dirty rate */
	bool thr_off;		     /* ineffective at its max: not applied again */
};

struct policy_decision {
	enum policy_action action;
	enum policy_reason reason;
	bool forced;	     /* downtime unbounded: tell the operator */
	bool not_converging; /* over the limit and stalled (also with CONTINUE) */
	/* Downtime of the switch ordered, or of a pre-copy switchover now,
	 * learned penalty included; POLICY_NS_INF if unknown. */
	uint64_t predicted_ns;
	/* Margin applied; the engine's READY deadline is pause + limit - this. */
	uint64_t margin_ns;
	uint64_t bandwidth;  /* B/s the prediction used */
	uint64_t dirty_rate; /* B/s, copied from the input for the event */
	/* The CPU throttle to apply from now on (0: none); the engine sets it
	 * and reports it back in the next input.  Changes only at pass ends. */
	uint32_t throttle_pct;
	uint32_t prev_throttle_pct; /* the input's, for the event */
	bool throttle_no_effect;    /* the last raise did not reduce the dirty rate */
};

/* For progress display (query-migrate, the terminal); unknown: POLICY_NS_INF. */
struct policy_estimate {
	uint64_t downtime_ns;	       /* pre-copy switchover now, as policy_decide() */
	uint64_t pass_eta_ns;	       /* until the current pass is sent */
	uint64_t converge_eta_ns;      /* until the limit should be met; 0 = now */
	uint32_t converge_passes;      /* passes that takes */
	uint64_t converge_downtime_ns; /* predicted downtime then */
};

void policy_params_default(struct policy_params *p);
/* 0, or -EINVAL with a message naming the parameter. */
int policy_params_check(const struct policy_params *p, struct ferr *err);

void policy_history_init(struct policy_history *h);

/*
 * Decide.  Never fails: parameters that do not pass policy_params_check()
 * give ABORT "bad-params".  @h is read and updated; calling twice for the
 * same pass end records the pass once.
 */
void policy_decide(const struct policy_params *p, const struct policy_input *in,
		   struct policy_history *h, struct policy_decision *out);

/*
 * (remaining + state) / bandwidth + rtt + resume, rounded up, saturating:
 * the time from pausing the guest to READY reaching the source.
 * POLICY_NS_INF if @bandwidth is 0 or the result does not fit.
 */
uint64_t policy_predict_downtime(uint64_t remaining_bytes, uint64_t state_bytes, uint64_t bandwidth,
				 uint64_t rtt_ns, uint64_t resume_ns);

/* Expected downtime and ETAs from the same figures; @h is not changed. */
void policy_estimate(const struct policy_params *p, const struct policy_input *in,
		     const struct policy_history *h, struct policy_estimate *est);

const char *policy_action_name(enum policy_action a);	      /* "continue", ... */
const char *policy_reason_name(enum policy_reason r);	      /* "converged", ... */
const char *policy_on_timeout_name(enum policy_on_timeout t); /* "abort", ... */

/*
 * One line for an event or a log, e.g. "continue not-converging: predicted
 * downtime 4210.0 ms (limit 300.0 ms, margin 30.0 ms), bandwidth 953.7 MiB/s,
 * dirty rate 1144.4 MiB/s, not converging".  Returns what snprintf() returns.
 */
int policy_describe(const struct policy_params *p, const struct policy_decision *d, char *buf,
		    size_t len);

#endif
