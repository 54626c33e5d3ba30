/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Trace points on the migration engine's hot decisions, off by default and
 * one relaxed atomic load when off.  docs/tracing.md lists the events.
 *
 * A struct trace is created by main() and handed to whoever traces (the
 * migration context, its channels); NULL means "no tracing" everywhere.
 * Events are switched on at start from $FERRY_TRACE (comma-separated
 * patterns, '*' matches any run of characters: "pass_*,switchover_*") or
 * at run time with the control command trace-event-set-state.  Each event
 * is one line on the sink (stderr by default):
 *
 *   ferry-trace: 1234.567890 pass_end pass=3 pages=514 bytes=2109624 ns=15212259 dirty=514
 *
 * The time is CLOCK_MONOTONIC in seconds, comparable with the figures in
 * query-migrate (paused-at-ns) and other processes on the same host.
 *
 * Events are typed: each has its own function below with its own
 * arguments, and the format is checked by the compiler.
 */
#ifndef FERRY_COMMON_TRACE_H
#define FERRY_COMMON_TRACE_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

enum trace_event {
	TRACE_PASS_START,
	TRACE_PASS_END,
	TRACE_POLICY_DECISION,
	TRACE_SWITCHOVER_PHASE,
	TRACE_SWITCHOVER_END,
	TRACE_CHANNEL_STALL,
	TRACE__COUNT,
};

struct trace {
	_Atomic uint64_t on; /* bit per enum trace_event */
	FILE *sink;	     /* stderr unless set */
};

/* Every event's name ("pass_end"), NULL past the end. */
const char *trace_event_name(enum trace_event e);

/* @t ready with the events $FERRY_TRACE names on; a bad pattern is an error. */
int trace_init(struct trace *t, const char *env, struct ferr *err);

/* Switch every event matching @pattern; returns how many matched. */
unsigned trace_set(struct trace *t, const char *pattern, bool on);

static inline bool trace_on(const struct trace *t, enum trace_event e)
{
	return t && (atomic_load_explicit(&t->on, memory_order_relaxed) & (1ull << e));
}

void trace_emit(struct trace *t, enum trace_event e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the events ---- */

static inline void trace_pass_start(struct trace *t, uint32_t pass, uint64_t pages)
{
	if (trace_on(t, TRACE_PASS_START))
		trace_emit(t, TRACE_PASS_START, "pass=%" PRIu32 " pages=%" PRIu64, pass, pages);
}

static inline void trace_pass_end(struct trace *t, uint32_t pass, uint64_t pages, uint64_t bytes,
				  uint64_t ns, uint64_t dirty)
{
	if (trace_on(t, TRACE_PASS_END))
		trace_emit(t, TRACE_PASS_END,
			   "pass=%" PRIu32 " pages=%" PRIu64 " bytes=%" PRIu64 " ns=%" PRIu64
			   " dirty=%" PRIu64,
			   pass, pages, bytes, ns, dirty);
}

static inline void trace_policy_decision(struct trace *t, uint32_t pass, const char *action,
					 const char *reason, uint64_t predicted_ns,
					 uint64_t bandwidth, uint64_t dirty_rate)
{
	if (trace_on(t, TRACE_POLICY_DECISION))
		trace_emit(t, TRACE_POLICY_DECISION,
			   "pass=%" PRIu32 " action=%s reason=%s predicted_ns=%" PRIu64
			   " bandwidth=%" PRIu64 " dirty_rate=%" PRIu64,
			   pass, action, reason, predicted_ns, bandwidth, dirty_rate);
}

/* @phase: "paused", "harvested", "sent", "acked", "go", "rolled-back", "failed". */
static inline void trace_switchover_phase(struct trace *t, uint32_t attempt, const char *phase,
					  uint64_t since_t0_ns)
{
	if (trace_on(t, TRACE_SWITCHOVER_PHASE))
		trace_emit(t, TRACE_SWITCHOVER_PHASE,
			   "attempt=%" PRIu32 " phase=%s since_t0_ns=%" PRIu64, attempt, phase,
			   since_t0_ns);
}

static inline void trace_switchover_end(struct trace *t, uint32_t attempt, const char *outcome,
					uint64_t paused_ns, uint64_t deadline_ns)
{
	if (trace_on(t, TRACE_SWITCHOVER_END))
		trace_emit(t, TRACE_SWITCHOVER_END,
			   "attempt=%" PRIu32 " outcome=%s paused_ns=%" PRIu64
			   " budget_ns=%" PRIu64,
			   attempt, outcome, paused_ns, deadline_ns);
}

/* A channel call that waited at least TRACE_STALL_NS for its peer. */
#define TRACE_STALL_NS 10000000ull
static inline void trace_channel_stall(struct trace *t, const char *channel, const char *dir,
				       uint64_t waited_ns)
{
	if (trace_on(t, TRACE_CHANNEL_STALL))
		trace_emit(t, TRACE_CHANNEL_STALL, "channel=%s dir=%s waited_ns=%" PRIu64, channel,
			   dir, waited_ns);
}

#endif
