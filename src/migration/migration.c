// SPDX-License-Identifier: GPL-2.0-only
/* Migration context: status machine, lifetime, cancellation. */
#include "migration/migration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

#include "migration/transport/channel.h"
#include "vm/dirty_probe.h"
#include "migration/engine/engine.h"
#include "migration/engine/postcopy.h"
#include "vm/vm.h"

static const char *const mig_status_names[MIG__COUNT] = {
    [MIG_NONE] = "none",
    [MIG_SETUP] = "setup",
    [MIG_ACTIVE] = "active",
    [MIG_DEVICE] = "device",
    [MIG_POSTCOPY_ACTIVE] = "postcopy-active",
    [MIG_POSTCOPY_PAUSED] = "postcopy-paused",
    [MIG_POSTCOPY_RECOVER] = "postcopy-recover",
    [MIG_COMPLETED] = "completed",
    [MIG_FAILED] = "failed",
    [MIG_CANCELLING] = "cancelling",
    [MIG_CANCELLED] = "cancelled",
};

const char *mig_status_name(enum mig_status s)
{
	return s < MIG__COUNT ? mig_status_names[s] : "unknown";
}

int migration_init(struct migration *m, struct vm *vm, const struct migration_events *ev)
{
	memset(m, 0, sizeof(*m));
	m->vm = vm;
	if (ev)
		m->events = *ev;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	mig_params_init(&m->params);
	return 0;
}

/*
 * Every status change there is: from -> the statuses it may go to.  A
 * change not in this table is a bug in the engine and is refused.
 */
#define TO(s) (1u << (s))
static const unsigned mig_transitions[MIG__COUNT] = {
    [MIG_NONE] = TO(MIG_SETUP),
    [MIG_SETUP] = TO(MIG_ACTIVE) | TO(MIG_FAILED) | TO(MIG_CANCELLED),
    [MIG_ACTIVE] = TO(MIG_DEVICE) | TO(MIG_POSTCOPY_ACTIVE) | TO(MIG_COMPLETED) | TO(MIG_FAILED) |
		   TO(MIG_CANCELLED),
    [MIG_DEVICE] = TO(MIG_ACTIVE) | TO(MIG_COMPLETED) | TO(MIG_FAILED) | TO(MIG_CANCELLED),
    /* The source stopped for post-copy: a switch rolled back before GO runs
     * pre-copy again, and a cancel before GO keeps the guest here. */
    [MIG_POSTCOPY_ACTIVE] = TO(MIG_ACTIVE) | TO(MIG_POSTCOPY_PAUSED) | TO(MIG_COMPLETED) |
			    TO(MIG_FAILED) | TO(MIG_CANCELLED),
    /* After GO the guest can only go forward: recover, or fail (lost). */
    [MIG_POSTCOPY_PAUSED] = TO(MIG_POSTCOPY_RECOVER) | TO(MIG_FAILED),
    [MIG_POSTCOPY_RECOVER] = TO(MIG_POSTCOPY_ACTIVE) | TO(MIG_POSTCOPY_PAUSED) | TO(MIG_FAILED),
    [MIG_COMPLETED] = TO(MIG_SETUP),
    [MIG_FAILED] = TO(MIG_SETUP),
    [MIG_CANCELLING] = TO(MIG_CANCELLED) | TO(MIG_FAILED),
    [MIG_CANCELLED] = TO(MIG_SETUP),
};
#undef TO

bool mig_status_allowed(enum mig_status from, enum mig_status to)
{
	return from < MIG__COUNT && to < MIG__COUNT && (mig_transitions[from] & (1u << to));
}

/* Move to @to if the table allows it from the current status and, if
 * @from is not MIG__COUNT, the current status is @from. */
static bool mig_change(struct migration *m, enum mig_status from, enum mig_status to)
{
	bool changed = false;

	pthread_mutex_lock(&m->lock);
	if ((from == MIG__COUNT || m->status == from) && mig_status_allowed(m->status, to)) {
		m->status = to;
		changed = true;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	/* Outside the lock: the listener may call back into query functions. */
	if (changed && m->events.status)
		m->events.status(m->events.opaque, to);
	return changed;
}

bool mig_set_status(struct migration *m, enum mig_status from, enum mig_status to)
{
	return mig_change(m, from, to);
}

bool mig_end_status(struct migration *m, enum mig_status to)
{
	return mig_change(m, MIG__COUNT, to);
}

static bool mig_status_final(enum mig_status s)
{
	return s == MIG_NONE || s == MIG_COMPLETED || s == MIG_FAILED || s == MIG_CANCELLED;
}

static void mig_cancel_locked(struct migration *m)
{
	m->cancel = true;
	if (m->ch)
		channel_cancel(m->ch);
	for (unsigned i = 0; i < m->ndata_ch; i++)
		channel_cancel(m->data_ch[i]);
	if (m->listener)
		channel_listener_cancel(m->listener);
}

int migration_cancel(struct migration *m, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->handed_over && m->role == MIG_ROLE_SOURCE)
		/* Cancelling now would resume a guest the destination may be running. */
		rc = ferr_set(err, -EBUSY,
			      "too late to cancel: the guest has been handed over to the "
			      "destination (%s)",
			      m->status == MIG_COMPLETED ? "the migration completed"
							 : "GO was sent");
	else if (m->role == MIG_ROLE_DEST &&
		 (m->status == MIG_POSTCOPY_ACTIVE || m->status == MIG_POSTCOPY_PAUSED ||
		  m->status == MIG_POSTCOPY_RECOVER))
		/* The guest runs here on pages that are still arriving. */
		rc = ferr_set(err, -EBUSY,
			      "too late to cancel: the guest runs here in post-copy and needs the "
			      "pages still on the source");
	else if (!mig_status_final(m->status))
		mig_cancel_locked(m);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int migration_start_postcopy(struct migration *m, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (!m->params.postcopy_ram)
		rc = ferr_set(err, -EINVAL,
			      "post-copy is not allowed: set the postcopy-ram capability before "
			      "migrate");
	else if (m->role != MIG_ROLE_SOURCE ||
		 (m->status != MIG_SETUP && m->status != MIG_ACTIVE && m->status != MIG_DEVICE))
		rc = ferr_set(err, -EINVAL, "no outgoing migration in pre-copy (status %s)",
			      mig_status_name(m->status));
	else
		m->postcopy_requested = true;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- post-copy recovery (docs/postcopy.md) ----------------------------- */

static int mig_check_paused(struct migration *m, enum mig_role role, const char *cmd,
			    struct ferr *err)
{
	if (m->role == role && m->status == MIG_POSTCOPY_PAUSED && !m->resume_requested)
		return 0;
	if (m->role == role && m->status == MIG_POSTCOPY_PAUSED)
		return ferr_set(err, -EBUSY, "%s: a recovery was already requested", cmd);
	return ferr_set(err, -EINVAL, "%s: no %s post-copy is paused (status %s%s)", cmd,
			role == MIG_ROLE_SOURCE ? "outgoing" : "incoming",
			mig_status_name(m->status),
			m->role == MIG_ROLE_NONE     ? ""
			: m->role == MIG_ROLE_SOURCE ? ", this is the source"
						     : ", this is the destination");
}

int migration_resume(struct migration *m, const char *uri, struct ferr *err)
{
	int rc = channel_uri_check(uri, false, err);

	if (rc)
		return rc;
	if (strncmp(uri, "file:", 5) == 0)
		return ferr_set(err, -EINVAL,
				"migrate resume: a post-copy resumes over a connection, "
				"not a file");
	if (strlen(uri) >= sizeof(m->resume_uri))
		return ferr_set(err, -ENAMETOOLONG, "migration URI is longer than %zu bytes",
				sizeof(m->resume_uri) - 1);
	pthread_mutex_lock(&m->lock);
	rc = mig_check_paused(m, MIG_ROLE_SOURCE, "migrate resume", err);
	if (!rc) {
		snprintf(m->resume_uri, sizeof(m->resume_uri), "%s", uri);
		m->resume_requested = true;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int migration_recover(struct migration *m, const char *uri, struct ferr *err)
{
	struct channel_listener *l = NULL;
	int rc;

	if (strlen(uri) >= sizeof(m->resume_uri))
		return ferr_set(err, -ENAMETOOLONG, "migration URI is longer than %zu bytes",
				sizeof(m->resume_uri) - 1);
	pthread_mutex_lock(&m->lock);
	rc = mig_check_paused(m, MIG_ROLE_DEST, "migrate-recover", err);
	struct mig_params p = m->params;
	pthread_mutex_unlock(&m->lock);
	if (rc)
		return rc;
	if (strncmp(uri, "file:", 5) == 0)
		return ferr_set(
		    err, -EINVAL,
		    "migrate-recover: a post-copy resumes over a connection, not a file");
	/* Listen here: a bad URI or an address in use is this command's error. */
	struct channel_opts lopts = {.tls_creds = p.tls_creds, .tls_hostname = p.tls_hostname};
	rc = channel_listen_opts(uri, &lopts, &l, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	rc = mig_check_paused(m, MIG_ROLE_DEST, "migrate-recover", err);
	if (!rc && !m->listener) {
		m->listener = l;
		l = NULL;
		snprintf(m->resume_uri, sizeof(m->resume_uri), "%s", uri);
		m->resume_requested = true;
		pthread_cond_broadcast(&m->cond);
	} else if (!rc) {
		rc = ferr_set(err, -EBUSY, "migrate-recover: already listening");
	}
	pthread_mutex_unlock(&m->lock);
	if (l)
		channel_listener_close(l);
	return rc;
}

int migration_pause(struct migration *m, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->status != MIG_POSTCOPY_ACTIVE && m->status != MIG_POSTCOPY_RECOVER) {
		rc = ferr_set(err, -EINVAL,
			      "migrate-pause: no post-copy is running (status %s); it pauses only "
			      "postcopy-active and postcopy-recover",
			      mig_status_name(m->status));
	} else if (m->role == MIG_ROLE_SOURCE && !m->handed_over) {
		/* Before GO a broken connection resumes the guest here: nothing to pause. */
		rc =
		    ferr_set(err, -EINVAL,
			     "migrate-pause: the switch to post-copy has not handed the guest over "
			     "yet (cancel it with migrate-cancel)");
	} else {
		m->pause_requested = true;
		if (m->ch)
			channel_cancel(m->ch);
		if (m->listener)
			channel_listener_cancel(m->listener);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

bool mig_pc_breakable(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	bool ok = !m->cancel || m->pause_requested;
	pthread_mutex_unlock(&m->lock);
	return ok;
}

int mig_pc_pause(struct migration *m, const struct ferr *why, char *uri, size_t len,
		 struct ferr *err)
{
	enum mig_status from;
	uint64_t limit_s, start = clock_now_ns();
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	m->pause_requested = false;
	m->resume_requested = false;
	m->error = *why; /* error-desc while paused: why */
	from = m->status;
	limit_s = m->params.postcopy_recover_timeout;
	pthread_mutex_unlock(&m->lock);
	if (!mig_set_status(m, from, MIG_POSTCOPY_PAUSED))
		return ferr_set(err, -EINVAL, "cannot pause post-copy from status %s",
				mig_status_name(from));
	pthread_mutex_lock(&m->lock);
	for (;;) {
		if (m->resume_requested || m->cancel)
			break;
		uint64_t now = clock_now_ns();
		if (limit_s && now - start >= limit_s * 1000000000ull)
			break;
		/* m->cond runs on CLOCK_REALTIME: short waits, the limit on the monotonic clock. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	}
	if (m->resume_requested) {
		snprintf(uri, len, "%s", m->resume_uri);
		m->resume_requested = false;
	} else if (m->cancel) {
		rc = ferr_set(err, -ECANCELED, "ferry is quitting");
		ferr_clear(&m->error); /* the failure's own words replace the pause's */
	} else {
		rc = ferr_set(err, -ETIMEDOUT,
			      "no recovery within postcopy-recover-timeout (%llu s)",
			      (unsigned long long)limit_s);
		ferr_clear(&m->error);
	}
	pthread_mutex_unlock(&m->lock);
	if (!rc)
		mig_set_status(m, MIG_POSTCOPY_PAUSED, MIG_POSTCOPY_RECOVER);
	return rc;
}

void mig_pc_resumed(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	ferr_clear(&m->error);
	pthread_mutex_unlock(&m->lock);
	mig_set_status(m, MIG_POSTCOPY_RECOVER, MIG_POSTCOPY_ACTIVE);
}

enum mig_status migration_wait(struct migration *m)
{
	enum mig_status s;

	pthread_mutex_lock(&m->lock);
	while (!mig_status_final(m->status))
		pthread_cond_wait(&m->cond, &m->lock);
	s = m->status;
	pthread_mutex_unlock(&m->lock);
	return s;
}

void migration_destroy(struct migration *m)
{
	bool join;

	pthread_mutex_lock(&m->lock);
	/* The process ends: whatever the owner, the thread must stop. */
	if (!mig_status_final(m->status))
		mig_cancel_locked(m);
	join = m->thread_joinable;
	m->thread_joinable = false;
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(m->thread, NULL);
	if (m->probe)
		dirty_probe_stop(m->probe, NULL);
	m->probe = NULL;
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
}

/* ---- used by the engine threads ---------------------------------------- */

void mig_publish(struct migration *m, const struct mig_stats *st)
{
	pthread_mutex_lock(&m->lock);
	m->stats = *st;
	pthread_mutex_unlock(&m->lock);
}

void mig_progress(struct migration *m, const char *what, uint64_t done, uint64_t total)
{
	if (m->events.progress)
		m->events.progress(m->events.progress_opaque, what, done, total);
}

bool mig_cancelled(struct migration *m)
{
	bool c;

	pthread_mutex_lock(&m->lock);
	c = m->cancel;
	pthread_mutex_unlock(&m->lock);
	return c;
}

int mig_hold_guest(struct migration *m, bool pause, const char *why, struct ferr *err)
{
	bool was_running;
	int rc = vm_hold(m->vm, pause, why, &was_running, err);

	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->vm_paused_by_us = pause && was_running;
	m->vm_held = true;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void mig_release_guest(struct migration *m, bool resume)
{
	bool held, paused_by_us;

	pthread_mutex_lock(&m->lock);
	held = m->vm_held;
	paused_by_us = m->vm_paused_by_us;
	if (held)
		m->handed_over = false; /* the hand-over did not happen */
	m->vm_held = m->vm_paused_by_us = false;
	pthread_mutex_unlock(&m->lock);
	if (held)
		vm_release(m->vm, VM_OWNER_HERE, resume && paused_by_us, NULL);
}

bool mig_hand_over(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	bool ok = !m->cancel; /* a cancel that came first wins: no GO */
	m->handed_over = ok;
	pthread_mutex_unlock(&m->lock);
	return ok;
}

void mig_guest_gone(struct migration *m, const char *why)
{
	pthread_mutex_lock(&m->lock);
	m->vm_held = m->vm_paused_by_us = false;
	pthread_mutex_unlock(&m->lock);
	vm_release(m->vm, VM_OWNER_AWAY, false, why);
}

void mig_fail(struct migration *m, const struct ferr *err)
{
	bool cancelled;

	pthread_mutex_lock(&m->lock);
	/* After a post-copy GO nothing was cancelled (migrate-cancel is refused
	 * then; only the end of the process sets the flag): it failed. */
	cancelled = m->cancel && m->status != MIG_POSTCOPY_ACTIVE &&
		    m->status != MIG_POSTCOPY_PAUSED && m->status != MIG_POSTCOPY_RECOVER;
	if (!ferr_is_set(&m->error) && err)
		m->error = *err;
	pthread_mutex_unlock(&m->lock);
	mig_end_status(m, cancelled ? MIG_CANCELLED : MIG_FAILED);
}

/* ---- starting ----------------------------------------------------------- */

static int mig_begin(struct migration *m, const char *uri, enum mig_role role, void *(*fn)(void *),
		     struct ferr *err)
{
	bool join = false;
	pthread_t old;
	int rc;

	if (strlen(uri) >= sizeof(m->uri))
		return ferr_set(err, -ENAMETOOLONG, "migration URI is longer than %zu bytes",
				sizeof(m->uri) - 1);
	pthread_mutex_lock(&m->lock);
	if (!mig_status_final(m->status)) {
		enum mig_status s = m->status;
		pthread_mutex_unlock(&m->lock);
		return ferr_set(err, -EBUSY, "a migration is already in progress (status %s)",
				mig_status_name(s));
	}
	if (m->probe) {
		pthread_mutex_unlock(&m->lock);
		return ferr_set(err, -EBUSY, "x-ferry-dirty-log is on: turn it off first");
	}
	if (m->thread_joinable) {
		old = m->thread;
		join = true;
		m->thread_joinable = false;
	}
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(old, NULL); /* the previous, finished migration's thread */

	pthread_mutex_lock(&m->lock);
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	m->role = role;
	m->cancel = false;
	m->postcopy_requested = false;
	m->pause_requested = m->resume_requested = false;
	m->vm_was_running = vm_runstate(m->vm) == VM_RS_RUNNING;
	m->vm_paused_by_us = m->vm_held = m->handed_over = false;
	ferr_clear(&m->error);
	memset(&m->stats, 0, sizeof(m->stats));
	pthread_mutex_unlock(&m->lock);
	mig_end_status(m, MIG_SETUP);

	rc = -pthread_create(&m->thread, NULL, fn, m);
	if (rc) {
		struct ferr e = FERR_INIT;
		ferr_errno(&e, rc, "cannot start the migration thread");
		mig_fail(m, &e);
		return ferr_errno(err, rc, "cannot start the migration thread");
	}
	pthread_mutex_lock(&m->lock);
	m->thread_joinable = true;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int migration_start(struct migration *m, const char *uri, struct ferr *err)
{
	enum vm_runstate rs = vm_runstate(m->vm);

	if (vm_check_owner(m->vm, "migrate", err))
		return -EBUSY;
	/* A malformed URI is this command's error, not a failure later. */
	int rc = channel_uri_check(uri, false, err);
	if (rc)
		return rc;
	if (rs != VM_RS_RUNNING && rs != VM_RS_PAUSED)
		return ferr_set(err, -EBUSY, "the VM is %s: nothing to migrate",
				vm_runstate_name(rs));

	pthread_mutex_lock(&m->lock);
	struct mig_params p = m->params;
	pthread_mutex_unlock(&m->lock);
	if (mig_params_check(&p, err))
		return -EOPNOTSUPP;
	/* TLS settings and files are this command's error, not a failed migration. */
	struct channel_opts copts = {.tls_creds = p.tls_creds, .tls_hostname = p.tls_hostname};
	rc = p.tls_creds[0] ? channel_connect_check(uri, &copts, err) : 0;
	if (rc)
		return rc;
	return mig_begin(m, uri, MIG_ROLE_SOURCE, mig_source_thread, err);
}

int migration_incoming(struct migration *m, const char *uri, struct ferr *err)
{
	enum vm_runstate rs = vm_runstate(m->vm);

	if (rs != VM_RS_PRELAUNCH && rs != VM_RS_INMIGRATE)
		return ferr_set(err, -EBUSY,
				"the VM has already run (%s): incoming migration needs a fresh "
				"VM (ferry run --incoming)",
				vm_runstate_name(rs));
	if (vm_set_incoming(m->vm, err))
		return -EBUSY;
	pthread_mutex_lock(&m->lock);
	bool busy = !mig_status_final(m->status);
	pthread_mutex_unlock(&m->lock);
	if (busy)
		return ferr_set(err, -EBUSY, "an incoming migration is already in progress");
	/*
	 * Listen here, not in the thread: when this returns the source can
	 * connect, and a bad URI or an address in use is this call's error.
	 */
	struct channel_listener *l;
	pthread_mutex_lock(&m->lock);
	struct mig_params p = m->params;
	pthread_mutex_unlock(&m->lock);
	/* With tls-creds every connection accepted is a TLS one (channel_tls.c). */
	struct channel_opts lopts = {.tls_creds = p.tls_creds, .tls_hostname = p.tls_hostname};
	int rc = channel_listen_opts(uri, &lopts, &l, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->listener = l;
	pthread_mutex_unlock(&m->lock);
	rc = mig_begin(m, uri, MIG_ROLE_DEST, mig_dest_thread, err);
	if (rc) {
		pthread_mutex_lock(&m->lock);
		m->listener = NULL;
		pthread_mutex_unlock(&m->lock);
		channel_listener_close(l);
	}
	return rc;
}

int migration_peek_file(const char *path, uint64_t *mem_size, unsigned *ncpus, struct ferr *err)
{
	struct stream_header h;
	int rc = mig_read_file_header(path, &h, err);

	if (rc)
		return rc;
	*mem_size = stream_header_ram(&h);
	*ncpus = h.vcpu_count;
	return 0;
}

void migration_query(struct migration *m, enum mig_status *status, enum mig_role *role,
		     struct mig_stats *st, struct ferr *error)
{
	pthread_mutex_lock(&m->lock);
	*status = m->status;
	*role = m->role;
	*st = m->stats;
	*error = m->error;
	if (m->pcd)
		pcd_stats(m->pcd, &st->postcopy);
	pthread_mutex_unlock(&m->lock);
}
