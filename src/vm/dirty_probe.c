// SPDX-License-Identifier: GPL-2.0-only
#include "vm/dirty_probe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "vm/dirty.h"

struct dirty_probe {
	struct dirty_tracker tracker; /* harvester thread */
	struct bitmap dirty;	      /* harvester thread */
	uint64_t interval_ns;
	pthread_t thread;
	pthread_mutex_t lock; /* guards stop and stats */
	pthread_cond_t cond;
	bool stop;
	struct dirty_probe_stats stats;
	struct ferr err; /* first harvest error, reported on stop */
};

static void *dirty_probe_thread(void *arg)
{
	struct dirty_probe *p = arg;
	struct dirty_tracker *t = &p->tracker;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		pthread_mutex_unlock(&p->lock);
		bitmap_zero(&p->dirty);
		int rc = t->ops->sync(t, &p->dirty, &p->err);
		if (!rc)
			rc = t->ops->rearm(t, &p->dirty, 0, t->npages, &p->err);
		uint64_t n = bitmap_count(&p->dirty);
		pthread_mutex_lock(&p->lock);
		if (rc)
			break;
		p->stats.syncs = t->syncs;
		p->stats.dirty_pages += n;
		p->stats.last_dirty_pages = n;
		p->stats.sync_ns = t->sync_ns;
		p->stats.rearm_ns = t->rearm_ns;
		next.tv_nsec += p->interval_ns % 1000000000;
		next.tv_sec += p->interval_ns / 1000000000 + next.tv_nsec / 1000000000;
		next.tv_nsec %= 1000000000;
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &next) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int dirty_probe_start(struct vm *vm, uint64_t interval_ns, struct dirty_probe **out,
		      struct ferr *err)
{
	struct dirty_probe *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	int rc;

	if (!p)
		return ferr_set(err, -ENOMEM, "out of memory");
	p->interval_ns = interval_ns;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = dirty_tracker_init(&p->tracker, vm, err);
	if (rc)
		goto err_free;
	if (bitmap_init(&p->dirty, p->tracker.npages)) {
		rc = ferr_set(err, -ENOMEM, "out of memory");
		goto err_tracker;
	}
	rc = p->tracker.ops->start(&p->tracker, err);
	if (rc)
		goto err_bitmap;
	rc = -pthread_create(&p->thread, NULL, dirty_probe_thread, p);
	if (rc) {
		ferr_errno(err, rc, "cannot start the harvester thread");
		p->tracker.ops->stop(&p->tracker);
		goto err_bitmap;
	}
	*out = p;
	return 0;
err_bitmap:
	bitmap_destroy(&p->dirty);
err_tracker:
	dirty_tracker_destroy(&p->tracker);
err_free:
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return rc;
}

void dirty_probe_stats(struct dirty_probe *p, struct dirty_probe_stats *st)
{
	pthread_mutex_lock(&p->lock);
	*st = p->stats;
	pthread_mutex_unlock(&p->lock);
}

void dirty_probe_stop(struct dirty_probe *p, struct dirty_probe_stats *st)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->tracker.ops->stop(&p->tracker);
	if (st)
		*st = p->stats;
	bitmap_destroy(&p->dirty);
	dirty_tracker_destroy(&p->tracker);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
