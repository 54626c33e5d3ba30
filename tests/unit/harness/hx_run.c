// SPDX-License-Identifier: GPL-2.0-only
/* One migration through the harness: both sides, their events, the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "vm/vm.h"

#define HX_URI		"hx:migration"
#define HX_REAL_LIMIT_S 20 /* a run that takes longer than this is hung */

static void hx_event(struct hx_side *side, const char *fmt, const char *what)
{
	pthread_mutex_lock(&side->ev_lock);
	if (side->nevents < HX_MAX_EVENTS)
		snprintf(side->events[side->nevents++], sizeof(side->events[0]), fmt, what);
	pthread_mutex_unlock(&side->ev_lock);
}

static void hx_on_status(void *opaque, enum mig_status s)
{
	struct hx_side *side = opaque;

	hx_event(side, "status:%s", mig_status_name(s));
	if (side->cancel_at != MIG_NONE && s == side->cancel_at) {
		struct ferr err = FERR_INIT;
		side->cancel_rc = migration_cancel(&side->m, &err);
	}
}

static void hx_on_pass(void *opaque, uint64_t pass)
{
	char n[24];

	snprintf(n, sizeof(n), "%llu", (unsigned long long)pass);
	hx_event(opaque, "pass:%s", n);
}

static void hx_on_note(void *opaque, const char *event, const char *reason, const char *detail)
{
	struct hx_side *side = opaque;

	hx_event(side, "note:%s", event);
	if (side->h->release_on_note && !strcmp(side->h->release_on_note, event))
		hx_net_release();
}

static void hx_side_init(struct hx *h, struct hx_side *side, const struct hx_vm_config *vcfg,
			 bool incoming, const struct hx_params *p)
{
	struct migration_events ev = {
	    .status = hx_on_status, .pass = hx_on_pass, .note = hx_on_note, .opaque = side};

	side->h = h;
	pthread_mutex_init(&side->ev_lock, NULL);
	side->vm = hx_vm_create(vcfg, incoming);
	migration_init(&side->m, side->vm, &ev);
	if (p->downtime_limit_ms)
		side->m.params.downtime_limit_ms = p->downtime_limit_ms;
	if (p->max_attempts)
		side->m.params.max_attempts = p->max_attempts;
	side->m.params.timeout_s = p->timeout_s;
	side->m.params.on_timeout = p->on_timeout;
	side->m.params.auto_converge = p->auto_converge;
}

void hx_setup(struct hx *h, const struct hx_vm_config *vcfg, const struct hx_params *p)
{
	memset(h, 0, sizeof(*h));
	hx_clock_reset();
	hx_side_init(h, &h->src, vcfg, false, p);
	hx_side_init(h, &h->dst, vcfg, true, p);
}

/* Wait, in real time and bounded, for @side's migration to end. */
static void hx_wait_end(struct hx_side *side)
{
	struct migration *m = &side->m;
	struct timespec until;
	enum mig_role role;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += HX_REAL_LIMIT_S;
	pthread_mutex_lock(&m->lock);
	while (m->status != MIG_COMPLETED && m->status != MIG_FAILED &&
	       m->status != MIG_CANCELLED) {
		if (pthread_cond_timedwait(&m->cond, &m->lock, &until)) {
			fprintf(stderr, "harness: the %s is stuck in status %s\n",
				m->role == MIG_ROLE_SOURCE ? "source" : "destination",
				mig_status_name(m->status));
			abort();
		}
	}
	/* Joined, the thread has done everything it does after its last status. */
	bool join = m->thread_joinable;
	m->thread_joinable = false;
	pthread_mutex_unlock(&m->lock);
	if (join)
		pthread_join(m->thread, NULL);
	migration_query(m, &side->final, &role, &side->st, &side->err);
}

void hx_run(struct hx *h, const struct hx_fault *faults, unsigned nfaults)
{
	struct ferr err = FERR_INIT;

	hx_net_reset(&h->src.m, &h->dst.m, faults, nfaults);
	assert_int_equal(migration_incoming(&h->dst.m, HX_URI, &err), 0);
	assert_int_equal(migration_start(&h->src.m, HX_URI, &err), 0);
	hx_wait_end(&h->src);
	hx_wait_end(&h->dst);
}

void hx_teardown(struct hx *h)
{
	migration_destroy(&h->src.m);
	migration_destroy(&h->dst.m);
	hx_vm_destroy(h->src.vm);
	hx_vm_destroy(h->dst.vm);
	pthread_mutex_destroy(&h->src.ev_lock);
	pthread_mutex_destroy(&h->dst.ev_lock);
}

unsigned hx_count(const struct hx_side *side, const char *ev)
{
	unsigned n = 0;

	for (unsigned i = 0; i < side->nevents; i++)
		n += !strcmp(side->events[i], ev);
	return n;
}

void hx_assert_one_owner(struct hx *h, bool on_dst)
{
	struct hx_vm_view s, d;

	hx_vm_view(h->src.vm, &s);
	hx_vm_view(h->dst.vm, &d);
	assert_false(s.tracking);
	if (on_dst) {
		assert_int_equal(d.owner, VM_OWNER_HERE);
		assert_int_equal(d.starts, 1);
		assert_int_equal(s.owner, VM_OWNER_AWAY);
		assert_int_equal(s.state, VM_RS_PAUSED);
	} else {
		/* Every section takes work again: the guest stays here. */
		assert_false(s.quiesced);
		assert_int_equal(s.owner, VM_OWNER_HERE);
		assert_int_equal(d.starts, 0);
		assert_int_equal(d.owner, VM_OWNER_AWAY);
		assert_int_equal(d.state, VM_RS_INMIGRATE);
	}
}
