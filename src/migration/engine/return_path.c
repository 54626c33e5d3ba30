// SPDX-License-Identifier: GPL-2.0-only
/* The source's return-path thread (return_path.h). */
#include "migration/engine/return_path.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "migration/engine/ram.h"
#include "migration/transport/channel.h"

static void rp_post(struct return_path *rp, const struct stream_msg *m)
{
	pthread_mutex_lock(&rp->lock);
	if (m->type == STREAM_MSG_POSTCOPY_PAGE_REQUEST) {
		for (uint32_t i = 0; i < m->page_request.count; i++) {
			rp->urgent_requested++;
			if (rp->ucount == RP_URGENT) {
				/* The sender is behind: the bulk stream carries it anyway. */
				rp->urgent_dropped++;
				continue;
			}
			rp->urgent[(rp->uhead + rp->ucount++) % RP_URGENT] = m->page_request.gfn[i];
		}
	} else if (m->type == STREAM_MSG_POSTCOPY_MISSING && rp->missing) {
		/* The decoder checked every frame against the regions. */
		const struct stream_discard *d = &m->discard;
		for (uint32_t w = 0; w < d->nwords; w++)
			for (uint64_t b = d->bits[w]; b; b &= b - 1) {
				uint64_t i = ram_gfn_page(
				    rp->mem, d->first + 64ull * w + (uint64_t)__builtin_ctzll(b));
				if (!bitmap_test(rp->missing, i)) {
					bitmap_set(rp->missing, i);
					rp->nmissing++;
				}
			}
	} else if (m->type == STREAM_MSG_ERROR || m->type == STREAM_MSG_ABORT) {
		if (!rp->peer_said) {
			rp->peer_said = true;
			if (m->type == STREAM_MSG_ERROR)
				ferr_set(&rp->peer, m->error.code < 0 ? m->error.code : -EPROTO,
					 "the destination failed: %s", m->error.text);
			else
				ferr_set(&rp->peer, -ECONNABORTED,
					 "the destination aborted (reason %u)", m->abort.reason);
		}
	} else if (rp->count < RP_QUEUE) {
		rp->msgs[(rp->head + rp->count++) % RP_QUEUE] = *m;
	} else {
		/* A destination that floods the return path is broken. */
		ferr_set(&rp->why, -EPROTO, "the destination sent more than %d messages unasked",
			 RP_QUEUE);
		rp->ended = true;
	}
	rp->last_rx_ns = clock_now_ns();
	pthread_cond_broadcast(&rp->cond);
	pthread_mutex_unlock(&rp->lock);
}

static void *rp_thread(void *arg)
{
	struct return_path *rp = arg;
	struct stream_record rec;
	struct stream_msg m;
	struct ferr err = FERR_INIT;

	for (;;) {
		int rc = stream_next_record(&rp->r, &rec, &err);
		if (!rc)
			rc = stream_read_msg(&rp->r, &m, &err);
		if (rc)
			break;
		rp_post(rp, &m);
		pthread_mutex_lock(&rp->lock);
		bool ended = rp->ended;
		pthread_mutex_unlock(&rp->lock);
		if (ended)
			return NULL;
	}
	pthread_mutex_lock(&rp->lock);
	if (!rp->ended) {
		rp->ended = true;
		rp->why = err;
	}
	pthread_cond_broadcast(&rp->cond);
	pthread_mutex_unlock(&rp->lock);
	return NULL;
}

int rp_start(struct return_path *rp, struct channel *ch, const struct stream_header *h,
	     struct ferr *err)
{
	return rp_start_resume(rp, ch, h, NULL, NULL, err);
}

int rp_start_resume(struct return_path *rp, struct channel *ch, const struct stream_header *h,
		    struct bitmap *missing, const struct gmem *mem, struct ferr *err)
{
	int rc;

	memset(rp, 0, sizeof(*rp));
	rp->missing = missing;
	rp->mem = mem;
	rc = stream_reader_init(&rp->r, ch, STREAM_RETURN, err);
	if (!rc)
		rc = stream_reader_set_header(&rp->r, h, err);
	if (rc) {
		stream_reader_destroy(&rp->r);
		return rc;
	}
	pthread_mutex_init(&rp->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rp->cond, &ca);
	pthread_condattr_destroy(&ca);
	rp->last_rx_ns = clock_now_ns();
	rc = -pthread_create(&rp->thread, NULL, rp_thread, rp);
	if (rc) {
		pthread_cond_destroy(&rp->cond);
		pthread_mutex_destroy(&rp->lock);
		stream_reader_destroy(&rp->r);
		return ferr_errno(err, rc, "cannot start the return-path thread");
	}
	rp->started = true;
	return 0;
}

uint64_t rp_missing_count(struct return_path *rp)
{
	pthread_mutex_lock(&rp->lock);
	uint64_t n = rp->nmissing;
	pthread_mutex_unlock(&rp->lock);
	return n;
}

/* Under lock: the reason the engine must stop, if any. */
static int rp_failed_locked(struct return_path *rp, struct ferr *err)
{
	if (rp->peer_said)
		return ferr_set(err, rp->peer.code, "%s", rp->peer.msg);
	if (rp->ended)
		return ferr_set(err, rp->why.code ? rp->why.code : -EPIPE, "%s",
				rp->why.msg[0] ? rp->why.msg : "the return path ended");
	return 0;
}

int rp_wait(struct return_path *rp, uint32_t type, uint64_t ack_record, uint64_t deadline_ns,
	    int idle_ms, struct stream_msg *out, struct ferr *err)
{
	/* Silence counts from this wait's start: the destination says nothing
	 * through whole passes, which is no sign of it being gone. */
	uint64_t since = clock_now_ns();
	int rc = 0;

	pthread_mutex_lock(&rp->lock);
	for (;;) {
		while (rp->count) {
			struct stream_msg *m = &rp->msgs[rp->head];
			rp->head = (rp->head + 1) % RP_QUEUE;
			rp->count--;
			/* An ACK for an END of an earlier, rolled-back attempt is stale. */
			if (m->type == type &&
			    (type != STREAM_MSG_ACK || m->ack.record == ack_record)) {
				*out = *m;
				pthread_mutex_unlock(&rp->lock);
				return 0;
			}
		}
		rc = rp_failed_locked(rp, err);
		if (rc)
			break;
		uint64_t now = clock_now_ns(), until = UINT64_MAX;
		if (deadline_ns) {
			if (now >= deadline_ns) {
				rc = -ETIME;
				break;
			}
			until = deadline_ns;
		}
		if (idle_ms >= 0) {
			uint64_t last = rp->last_rx_ns > since ? rp->last_rx_ns : since;
			uint64_t idle_end = last + (uint64_t)idle_ms * 1000000u;
			if (now >= idle_end && (!deadline_ns || idle_end < deadline_ns)) {
				rc = ferr_set(err, -ETIMEDOUT,
					      "no answer from the destination for %d ms", idle_ms);
				break;
			}
			if (idle_end < until)
				until = idle_end;
		}
		if (until == UINT64_MAX) {
			pthread_cond_wait(&rp->cond, &rp->lock);
		} else {
			struct timespec ts = clock_abstime(until);
			pthread_cond_timedwait(&rp->cond, &rp->lock, &ts);
		}
	}
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

int rp_check(struct return_path *rp, struct ferr *err)
{
	pthread_mutex_lock(&rp->lock);
	int rc = rp_failed_locked(rp, err);
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

bool rp_peer_said(struct return_path *rp)
{
	pthread_mutex_lock(&rp->lock);
	bool said = rp->peer_said;
	pthread_mutex_unlock(&rp->lock);
	return said;
}

unsigned rp_take_urgent(struct return_path *rp, uint64_t *gfns, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&rp->lock);
	while (n < max && rp->ucount) {
		gfns[n++] = rp->urgent[rp->uhead];
		rp->uhead = (rp->uhead + 1) % RP_URGENT;
		rp->ucount--;
	}
	pthread_mutex_unlock(&rp->lock);
	return n;
}

void rp_stop(struct return_path *rp, struct channel *ch)
{
	if (!rp->started)
		return;
	channel_cancel(ch);
	pthread_join(rp->thread, NULL);
	rp->started = false;
	pthread_cond_destroy(&rp->cond);
	pthread_mutex_destroy(&rp->lock);
	stream_reader_destroy(&rp->r);
}
