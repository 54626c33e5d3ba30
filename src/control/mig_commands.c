// SPDX-License-Identifier: GPL-2.0-only
#include "control/mig_commands.h"

#include <errno.h>
#include <limits.h>

#include "common/clock.h"

#include "vm/dirty_probe.h"
#include "migration/migration.h"
#include "migration/params.h"
#include "vm/vm.h"

static int reply(json_t **ret, json_t *v, struct qmp_error *qerr)
{
	if (!v)
		return qmp_error_set(qerr, NULL, -ENOMEM, "out of memory");
	*ret = v;
	return 0;
}

static json_t *params_json(const struct mig_params *p)
{
	json_t *o = json_object();

	for (const struct mig_param_desc *d = mig_param_table; o && d->name; d++) {
		if (d->type == MIG_PARAM_CAP)
			continue; /* query-migrate-capabilities */
		uint64_t v = mig_param_get(p, d);
		json_t *j = d->type == MIG_PARAM_STR	? qmp_json_string(mig_param_get_str(p, d))
			    : d->type == MIG_PARAM_ENUM ? json_string(d->names[v])
			    : d->type == MIG_PARAM_BOOL ? json_boolean(v)
							: json_integer((json_int_t)v);
		json_object_set_new(o, d->name, j);
	}
	return o;
}

static int qmp_query_migrate_parameters(void *opaque, json_t *args, json_t **ret,
					struct qmp_error *qerr)
{
	struct migration *m = opaque;
	struct mig_params p;

	pthread_mutex_lock(&m->lock);
	p = m->params;
	pthread_mutex_unlock(&m->lock);
	return reply(ret, params_json(&p), qerr);
}

/*
 * Arguments are the parameter table's names; all are checked before any is
 * applied, so a request either changes everything it names or nothing.
 */
static int qmp_migrate_set_parameters(void *opaque, json_t *args, json_t **ret,
				      struct qmp_error *qerr)
{
	struct migration *m = opaque;
	struct mig_params p;
	const char *key;
	json_t *val;
	int rc;

	pthread_mutex_lock(&m->lock);
	p = m->params;
	pthread_mutex_unlock(&m->lock);
	json_object_foreach(args, key, val)
	{
		const struct mig_param_desc *d = mig_param_find(key);
		uint64_t v;

		if (!d || d->type == MIG_PARAM_CAP)
			return qmp_error_set(qerr, NULL, -EINVAL, "Parameter '%s' is unexpected",
					     key);
		if (d->type == MIG_PARAM_STR) {
			if (!json_is_string(val))
				return qmp_error_set(qerr, NULL, -EINVAL,
						     "Invalid parameter type for '%s', expected: "
						     "string",
						     key);
			rc = mig_param_set_str(&p, d, json_string_value(val), &qerr->err);
			if (rc)
				return rc;
			continue;
		}
		if (d->type == MIG_PARAM_BOOL) {
			if (!json_is_boolean(val))
				return qmp_error_set(qerr, NULL, -EINVAL,
						     "Invalid parameter type for '%s', expected: "
						     "boolean",
						     key);
			v = json_is_true(val);
			rc = 0;
		} else if (d->type == MIG_PARAM_ENUM) {
			if (!json_is_string(val))
				return qmp_error_set(qerr, NULL, -EINVAL,
						     "Invalid parameter type for '%s', expected: "
						     "string",
						     key);
			rc = mig_param_enum_value(d, json_string_value(val), &v, &qerr->err);
		} else {
			if (!json_is_integer(val) || json_integer_value(val) < 0)
				return qmp_error_set(qerr, NULL, -EINVAL,
						     "Invalid parameter type for '%s', expected: "
						     "non-negative integer",
						     key);
			v = (uint64_t)json_integer_value(val);
			rc = 0;
		}
		if (!rc)
			rc = mig_param_set(&p, d, v, &qerr->err);
		if (rc)
			return rc;
	}
	rc = mig_params_check(&p, &qerr->err);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->params = p;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* QEMU's shape: [{"capability": "multifd", "state": true}, ...] */
static int qmp_query_migrate_capabilities(void *opaque, json_t *args, json_t **ret,
					  struct qmp_error *qerr)
{
	struct migration *m = opaque;
	struct mig_params p;
	json_t *a = json_array();

	pthread_mutex_lock(&m->lock);
	p = m->params;
	pthread_mutex_unlock(&m->lock);
	for (const struct mig_param_desc *d = mig_param_table; a && d->name; d++)
		if (d->type == MIG_PARAM_CAP)
			json_array_append_new(a, json_pack("{s:s, s:b}", "capability", d->name,
							   "state", (int)mig_param_get(&p, d)));
	return reply(ret, a, qerr);
}

/*
 * {"capabilities": [{"capability": NAME, "state": BOOL}, ...]}: all checked
 * before any is applied.  A migration already running keeps what it started
 * with; the next one uses the new set.
 */
static int qmp_migrate_set_capabilities(void *opaque, json_t *args, json_t **ret,
					struct qmp_error *qerr)
{
	struct migration *m = opaque;
	json_t *caps = json_object_get(args, "capabilities"), *c;
	struct mig_params p;
	size_t i;
	int rc;

	if (!json_is_array(caps))
		return qmp_error_set(qerr, NULL, -EINVAL,
				     "Invalid parameter type for 'capabilities', expected: array");
	pthread_mutex_lock(&m->lock);
	p = m->params;
	pthread_mutex_unlock(&m->lock);
	json_array_foreach(caps, i, c)
	{
		json_t *name = json_object_get(c, "capability"),
		       *state = json_object_get(c, "state");
		if (!json_is_string(name) || !json_is_boolean(state))
			return qmp_error_set(qerr, NULL, -EINVAL,
					     "capabilities[%zu]: expected {\"capability\": string, "
					     "\"state\": bool}",
					     i);
		const struct mig_param_desc *d = mig_param_find(json_string_value(name));
		if (!d || d->type != MIG_PARAM_CAP)
			return qmp_error_set(qerr, NULL, -EINVAL, "Capability '%s' is unknown",
					     json_string_value(name));
		rc = mig_param_set(&p, d, json_is_true(state) ? 1 : 0, &qerr->err);
		if (rc)
			return rc;
	}
	rc = mig_params_check(&p, &qerr->err);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->params = p;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static const struct qmp_arg dirty_log_args[] = {
    {"enable", QMP_ARG_BOOL, 0},
    {"interval-ms", QMP_ARG_U64, QMP_ARG_OPTIONAL},
    {0},
};

static json_t *probe_json(const struct dirty_probe_stats *st)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "syncs", (json_int_t)st->syncs, "dirty-pages",
			 (json_int_t)st->dirty_pages, "last-dirty-pages",
			 (json_int_t)st->last_dirty_pages, "sync-ns", (json_int_t)st->sync_ns,
			 "rearm-ns", (json_int_t)st->rearm_ns);
}

/*
 * Test/benchmark only: dirty logging with a periodic harvest, as migration
 * passes do, without migrating.  Refused while a migration runs.
 */
static int qmp_x_dirty_log(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct migration *m = opaque;
	bool enable = qmp_arg_bool(args, "enable", false);
	uint64_t interval = qmp_arg_u64(args, "interval-ms", 100);
	struct dirty_probe_stats st = {0};
	int rc;

	if (enable) {
		if (m->probe)
			return qmp_error_set(qerr, NULL, -EBUSY, "dirty logging is already on");
		pthread_mutex_lock(&m->lock);
		bool busy = m->status != MIG_NONE && m->status != MIG_COMPLETED &&
			    m->status != MIG_FAILED && m->status != MIG_CANCELLED;
		pthread_mutex_unlock(&m->lock);
		if (busy)
			return qmp_error_set(qerr, NULL, -EBUSY, "a migration is in progress");
		if (interval == 0 || interval > 60000)
			return qmp_error_set(qerr, NULL, -EINVAL,
					     "interval-ms must be between 1 and 60000");
		rc = dirty_probe_start(m->vm, interval * 1000000ull, &m->probe, &qerr->err);
		if (rc)
			return rc;
		return reply(ret, probe_json(&st), qerr);
	}
	if (!m->probe)
		return qmp_error_set(qerr, NULL, -EINVAL, "dirty logging is not on");
	dirty_probe_stop(m->probe, &st);
	m->probe = NULL;
	return reply(ret, probe_json(&st), qerr);
}

static int qmp_x_query_dirty_log(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct migration *m = opaque;
	struct dirty_probe_stats st = {0};

	if (!m->probe)
		return qmp_error_set(qerr, NULL, -EINVAL, "dirty logging is not on");
	dirty_probe_stats(m->probe, &st);
	return reply(ret, probe_json(&st), qerr);
}

static const struct qmp_arg throttle_args[] = {
    {"percent", QMP_ARG_U64, QMP_ARG_OPTIONAL},
    {0},
};

/*
 * Test/benchmark only: set the VM's CPU throttle by hand (vcpu_throttle.c)
 * and read what it did.  Refused while a migration runs: auto-converge
 * owns the level then.
 */
static int qmp_x_throttle(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct migration *m = opaque;
	struct vm_throttle_stats st;
	int rc;

	if (json_object_get(args, "percent")) {
		pthread_mutex_lock(&m->lock);
		bool busy = m->status != MIG_NONE && m->status != MIG_COMPLETED &&
			    m->status != MIG_FAILED && m->status != MIG_CANCELLED;
		pthread_mutex_unlock(&m->lock);
		if (busy)
			return qmp_error_set(qerr, NULL, -EBUSY,
					     "a migration is in progress: auto-converge owns the "
					     "throttle");
		uint64_t pct = qmp_arg_u64(args, "percent", 0);
		rc = vm_set_throttle(m->vm, pct > UINT_MAX ? UINT_MAX : (unsigned)pct, &qerr->err);
		if (rc)
			return rc;
	}
	vm_throttle_stats(m->vm, &st);
	return reply(ret,
		     json_pack("{s:i, s:I, s:I}", "cpu-throttle-percentage", (int)st.pct,
			       "slept-ns", (json_int_t)st.slept_ns, "ran-ns",
			       (json_int_t)st.ran_ns),
		     qerr);
}

static const struct qmp_arg uri_args[] = {
    {"uri", QMP_ARG_STR, 0},
    {0},
};

static const struct qmp_arg migrate_args[] = {
    {"uri", QMP_ARG_STR, 0},
    {"resume", QMP_ARG_BOOL, QMP_ARG_OPTIONAL},
    {0},
};

/*
 * migrate {"uri"}: starts in the background; follow with query-migrate or
 * MIGRATION events.  With "resume": true, reconnects a paused post-copy
 * (docs/postcopy.md, "Recovery").
 */
static int qmp_migrate(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	const char *uri = qmp_arg_str(args, "uri", "");

	if (qmp_arg_bool(args, "resume", false))
		return migration_resume(opaque, uri, &qerr->err);
	return migration_start(opaque, uri, &qerr->err);
}

static int qmp_migrate_recover(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return migration_recover(opaque, qmp_arg_str(args, "uri", ""), &qerr->err);
}

static int qmp_migrate_pause(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return migration_pause(opaque, &qerr->err);
}

static int qmp_migrate_incoming(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return migration_incoming(opaque, qmp_arg_str(args, "uri", ""), &qerr->err);
}

static int qmp_migrate_cancel(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	return migration_cancel(opaque, &qerr->err);
}

static json_int_t ms(uint64_t ns)
{
	return (json_int_t)(ns / 1000000u);
}

static int qmp_migrate_start_postcopy(void *opaque, json_t *args, json_t **ret,
				      struct qmp_error *qerr)
{
	return migration_start_postcopy(opaque, &qerr->err);
}

/*
 * Post-copy figures: QEMU 10.1's names at the top level (blocked time in ms,
 * latency in ns, the distribution in power-of-two microsecond buckets) and
 * ferry's fuller set under ferry.postcopy (docs/control-protocol.md).
 */
static void postcopy_json(json_t *o, json_t *f, const struct mig_postcopy_stats *pc)
{
	json_t *dist = json_array(), *vcpu = json_array();
	unsigned last = 0;

	for (unsigned k = 0; k < MIG_PC_HIST; k++)
		if (pc->lat_hist[k])
			last = k + 1;
	for (unsigned k = 0; dist && k < last; k++)
		json_array_append_new(dist, json_integer((json_int_t)pc->lat_hist[k]));
	for (unsigned v = 0; vcpu && v < pc->nvcpus && v < MIG_PC_VCPUS; v++)
		json_array_append_new(vcpu, json_integer(ms(pc->vcpu_blocktime_ns[v])));
	json_object_set_new(o, "postcopy-blocktime", json_integer(ms(pc->blocktime_ns)));
	json_object_set_new(o, "postcopy-vcpu-blocktime", vcpu);
	json_object_set_new(
	    o, "postcopy-latency",
	    json_integer((json_int_t)(pc->lat_count ? pc->lat_sum / pc->lat_count : 0)));
	json_object_set_new(o, "postcopy-latency-dist", dist ? json_incref(dist) : NULL);
	json_object_set_new(
	    f, "postcopy",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
		      "requests", (json_int_t)pc->requests, "discarded", (json_int_t)pc->discarded,
		      "missing", (json_int_t)pc->missing, "bytes-before",
		      (json_int_t)pc->bytes_before, "bytes-after", (json_int_t)pc->bytes_after,
		      "owned-ns", (json_int_t)pc->owned_ns, "faults", (json_int_t)pc->lat_count,
		      "latency-min-ns", (json_int_t)pc->lat_min, "latency-p50-ns",
		      (json_int_t)pc->lat_p50, "latency-p99-ns", (json_int_t)pc->lat_p99,
		      "latency-max-ns", (json_int_t)pc->lat_max, "blocktime-ns",
		      (json_int_t)pc->blocktime_ns, "latency-dist-us", dist ? dist : json_array()));
	json_t *fp = json_object_get(f, "postcopy");
	if (fp) {
		json_object_set_new(fp, "pauses", json_integer(pc->pauses));
		json_object_set_new(fp, "recoveries", json_integer(pc->recoveries));
		json_object_set_new(fp, "paused-ns", json_integer((json_int_t)pc->paused_ns));
	}
}

/* The share of vCPU time the throttle really took, in % with one decimal. */
static double slept_pct(uint64_t slept_ns, uint64_t ran_ns)
{
	uint64_t all = slept_ns + ran_ns;

	return all ? (double)(slept_ns * 1000 / all) / 10 : 0;
}

/* ferry's additions to query-migrate, documented in docs/control-protocol.md. */
static json_t *ferry_json(enum vm_owner owner, enum mig_role role, const struct mig_stats *st)
{
	json_t *f = json_object(), *passes = json_array();
	uint32_t n = st->passes < MIG_PASS_HISTORY ? (uint32_t)st->passes : MIG_PASS_HISTORY;

	if (!f || !passes) {
		json_decref(f);
		json_decref(passes);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct mig_pass_stats *p = &st->pass[i];
		if (!p->pass)
			continue;
		json_t *row = json_pack(
		    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "pass", (json_int_t)p->pass,
		    "pages", (json_int_t)p->pages, "zero-pages", (json_int_t)p->zero_pages, "bytes",
		    (json_int_t)p->bytes, "duration-ns", (json_int_t)p->duration_ns, "dirty-pages",
		    (json_int_t)p->dirty_pages, "bandwidth", (json_int_t)p->bandwidth, "dirty-rate",
		    (json_int_t)p->dirty_rate);
		if (row && st->auto_converge) {
			json_object_set_new(row, "cpu-throttle-percentage",
					    json_integer(p->throttle_pct));
			json_object_set_new(row, "throttle-slept-ns",
					    json_integer((json_int_t)p->throttle_slept_ns));
			json_object_set_new(
			    row, "throttle-slept-pct",
			    json_real(slept_pct(p->throttle_slept_ns, p->throttle_ran_ns)));
		}
		json_array_append_new(passes, row);
	}
	json_object_set_new(f, "role",
			    json_string(role == MIG_ROLE_DEST ? "destination" : "source"));
	json_object_set_new(f, "guest-owner", json_string(vm_owner_name(owner)));
	json_object_set_new(f, "passes", json_integer((json_int_t)st->passes));
	json_object_set_new(f, "pass-table", passes);
	json_object_set_new(f, "multifd-channels", json_integer((json_int_t)st->multifd_channels));
	json_object_set_new(f, "multifd-bytes", json_integer((json_int_t)st->multifd_bytes));
	json_object_set_new(f, "skipped-pages", json_integer((json_int_t)st->skipped));
	json_object_set_new(f, "state-bytes", json_integer((json_int_t)st->state_bytes));
	json_object_set_new(f, "downtime-ns", json_integer((json_int_t)st->downtime_ns));
	json_object_set_new(
	    f, "downtime-phases-ns",
	    json_pack("{s:I, s:I, s:I, s:I, s:I}", "pause", (json_int_t)st->phases.pause, "harvest",
		      (json_int_t)st->phases.harvest, "send", (json_int_t)st->phases.send,
		      "destination", (json_int_t)st->phases.dest, "go", (json_int_t)st->phases.go));
	json_t *attempts = json_array();
	for (uint32_t i = 0; attempts && i < MIG_ATTEMPT_HISTORY; i++) {
		static const char *const outcome[] = {
		    [MIG_ATTEMPT_GO] = "go",
		    [MIG_ATTEMPT_ROLLED_BACK] = "rolled-back",
		    [MIG_ATTEMPT_FAILED] = "failed",
		};
		const struct mig_attempt_stats *a = &st->attempt[i];
		if (!a->attempt)
			break;
		json_array_append_new(
		    attempts,
		    json_pack("{s:i, s:s, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}", "attempt",
			      (int)a->attempt, "outcome", outcome[a->outcome], "paused-at-ns",
			      (json_int_t)a->paused_at_ns, "paused-ns", (json_int_t)a->paused_ns,
			      "bytes", (json_int_t)a->bytes, "phases-ns", "pause",
			      (json_int_t)a->phases.pause, "harvest", (json_int_t)a->phases.harvest,
			      "send", (json_int_t)a->phases.send, "destination",
			      (json_int_t)a->phases.dest, "go", (json_int_t)a->phases.go));
	}
	if (attempts)
		json_object_set_new(f, "switchover-table", attempts);
	if (st->dest_resume_ns)
		json_object_set_new(f, "destination-resume-ns",
				    json_integer((json_int_t)st->dest_resume_ns));
	json_object_set_new(f, "switchover-attempts", json_integer(st->attempts));
	json_object_set_new(f, "aborted-attempts", json_integer(st->aborted_attempts));
	json_object_set_new(f, "forced", json_boolean(st->forced));
	json_object_set_new(f, "not-converging", json_boolean(st->not_converging));
	if (st->tls.tls)
		json_object_set_new(f, "tls",
				    json_pack("{s:o, s:o, s:o, s:o}", "protocol",
					      qmp_json_string(st->tls.protocol), "cipher",
					      qmp_json_string(st->tls.cipher), "peer",
					      qmp_json_string(st->tls.peer), "ktls",
					      qmp_json_string(st->tls.ktls_note)));
	if (st->auto_converge)
		json_object_set_new(
		    f, "throttle",
		    json_pack("{s:i, s:i, s:i, s:I, s:I, s:f}", "level", (int)st->throttle_pct,
			      "peak", (int)st->throttle_peak_pct, "changes",
			      (int)st->throttle_changes, "slept-ns",
			      (json_int_t)st->throttle_slept_ns, "ran-ns",
			      (json_int_t)st->throttle_ran_ns, "slept-pct",
			      slept_pct(st->throttle_slept_ns, st->throttle_ran_ns)));
	if (st->policy_reason[0]) {
		json_object_set_new(f, "policy-reason", json_string(st->policy_reason));
		json_object_set_new(f, "policy-detail", qmp_json_string(st->policy_detail));
	}
	return f;
}

static int qmp_query_migrate(void *opaque, json_t *args, json_t **ret, struct qmp_error *qerr)
{
	struct migration *m = opaque;
	enum mig_status status;
	enum mig_role role;
	struct mig_stats st;
	struct ferr error;
	json_t *o;

	migration_query(m, &status, &role, &st, &error);
	if (status == MIG_NONE)
		return 0; /* as QEMU: {} before any migration */
	uint64_t end = st.end_ns ? st.end_ns : clock_now_ns();
	o = json_pack("{s:s}", "status", mig_status_name(status));
	if (!o)
		return reply(ret, NULL, qerr);
	if (st.start_ns) {
		json_object_set_new(o, "total-time", json_integer(ms(end - st.start_ns)));
		if (st.setup_done_ns)
			json_object_set_new(o, "setup-time",
					    json_integer(ms(st.setup_done_ns - st.start_ns)));
	}
	if (status == MIG_COMPLETED && role == MIG_ROLE_SOURCE)
		json_object_set_new(o, "downtime", json_integer(ms(st.downtime_ns)));
	json_object_set_new(
	    o, "ram",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "transferred",
		      (json_int_t)st.transferred, "remaining", (json_int_t)st.remaining, "total",
		      (json_int_t)st.total_bytes, "duplicate", (json_int_t)st.duplicate, "normal",
		      (json_int_t)st.normal, "normal-bytes", (json_int_t)st.normal_bytes,
		      "dirty-pages-rate", (json_int_t)st.dirty_pages_rate, "mbps",
		      st.mbps_x1000 / 1000.0, "dirty-sync-count", (json_int_t)st.dirty_sync_count,
		      "pages-per-second", (json_int_t)st.pages_per_second));
	/* From the moment the status says post-copy, its figures are there
	 * (zeros until GO), so a client need not special-case the switch. */
	bool pc = st.postcopy.active || status == MIG_POSTCOPY_ACTIVE ||
		  status == MIG_POSTCOPY_PAUSED || status == MIG_POSTCOPY_RECOVER;
	if (pc)
		json_object_set_new(json_object_get(o, "ram"), "postcopy-requests",
				    json_integer((json_int_t)st.postcopy.requests));
	if (ferr_is_set(&error))
		json_object_set_new(o, "error-desc", qmp_json_string(error.msg));
	if (st.expected_downtime_ns && role == MIG_ROLE_SOURCE)
		json_object_set_new(o, "expected-downtime",
				    json_integer(ms(st.expected_downtime_ns)));
	/*
	 * As QEMU: the level in force now, while auto-converge is on.  It is
	 * the VM's own figure, so a destination (never throttled) shows 0 and
	 * a source shows 0 again once the migration ended, whatever it did.
	 */
	struct vm_throttle_stats thr;
	vm_throttle_stats(m->vm, &thr);
	pthread_mutex_lock(&m->lock);
	bool auto_converge = m->params.auto_converge != 0;
	pthread_mutex_unlock(&m->lock);
	if (auto_converge || st.auto_converge || thr.pct)
		json_object_set_new(o, "cpu-throttle-percentage", json_integer(thr.pct));
	json_t *f = ferry_json(vm_owner(m->vm), role, &st);
	if (pc && f)
		postcopy_json(o, f, &st.postcopy);
	json_object_set_new(o, "ferry", f);
	return reply(ret, o, qerr);
}

void qmp_mig_status_event(struct qmp_server *s, enum mig_status status)
{
	qmp_server_emit(s, "MIGRATION", json_pack("{s:s}", "status", mig_status_name(status)));
}

void qmp_mig_note_event(struct qmp_server *s, const char *event, const char *reason,
			const char *detail)
{
	qmp_server_emit(s, event,
			json_pack("{s:o, s:o}", "reason", qmp_json_string(reason), "detail",
				  qmp_json_string(detail)));
}

void qmp_mig_throttle_event(struct qmp_server *s, unsigned pct, const char *reason,
			    const char *detail)
{
	qmp_server_emit(s, "MIGRATION_THROTTLE",
			json_pack("{s:i, s:o, s:o}", "cpu-throttle-percentage", (int)pct, "reason",
				  qmp_json_string(reason), "detail", qmp_json_string(detail)));
}

void qmp_mig_pass_event(struct qmp_server *s, uint64_t pass)
{
	qmp_server_emit(s, "MIGRATION_PASS", json_pack("{s:I}", "pass", (json_int_t)pass));
}

const struct qmp_command qmp_mig_commands[] = {
    {"migrate", qmp_migrate, migrate_args, NULL},
    {"migrate-recover", qmp_migrate_recover, uri_args, NULL},
    {"migrate-pause", qmp_migrate_pause, NULL, NULL},
    {"migrate-incoming", qmp_migrate_incoming, uri_args, NULL},
    {"migrate-cancel", qmp_migrate_cancel, NULL, NULL},
    {"migrate-start-postcopy", qmp_migrate_start_postcopy, NULL, NULL},
    {"query-migrate", qmp_query_migrate, NULL, NULL},
    {"query-migrate-parameters", qmp_query_migrate_parameters, NULL, NULL},
    /* arguments are checked against the parameter table by the handler */
    {"migrate-set-parameters", qmp_migrate_set_parameters, QMP_ARGS_ANY, NULL},
    {"query-migrate-capabilities", qmp_query_migrate_capabilities, NULL, NULL},
    {"migrate-set-capabilities", qmp_migrate_set_capabilities, QMP_ARGS_ANY, NULL},
    {"x-ferry-dirty-log", qmp_x_dirty_log, dirty_log_args, NULL},
    {"x-ferry-query-dirty-log", qmp_x_query_dirty_log, NULL, NULL},
    {"x-ferry-throttle", qmp_x_throttle, throttle_args, NULL},
    {0},
};
