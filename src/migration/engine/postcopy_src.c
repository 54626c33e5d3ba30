// SPDX-License-Identifier: GPL-2.0-only
/*
 * The source's post-copy (postcopy.h): the post-copy channel's server,
 * which answers page requests ahead of the bulk stream, and the bulk
 * stream itself after GO (postcopy_run), which starts near recent faults.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "common/trace.h"
#include "migration/engine/postcopy.h"
#include "migration/engine/precopy.h"
#include "migration/engine/ram.h"
#include "migration/transport/channel.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define PCS_BULK_PAGES 256u /* the bulk sender looks for a new hint this often: 1 MiB */

struct pcs {
	struct migration *m;
	const struct gmem *mem;
	struct channel *ch;
	struct stream_reader r; /* requests: the server thread's */
	struct stream_writer w; /* answers: the server thread's */
	bool have_r, have_w;
	pthread_t thread;
	bool started;
	/* Pages answered (RAM order), set by the server, read by the bulk
	 * sender, which need not send them again: one word per 64 pages. */
	_Atomic uint64_t *served;
	pthread_mutex_t lock;
	/* Under lock. */
	uint64_t hint;
	bool have_hint;
	uint64_t requests;
	struct ferr failed;
};

static void *pcs_thread(void *arg)
{
	struct pcs *p = arg;
	struct stream_record rec;
	struct stream_msg msg;
	struct ferr err = FERR_INIT;
	int rc;

	for (;;) {
		rc = stream_next_record(&p->r, &rec, &err);
		if (!rc)
			rc = stream_read_msg(&p->r, &msg, &err);
		if (rc)
			break;
		if (msg.type != STREAM_MSG_POSTCOPY_PAGE_REQUEST) {
			rc = ferr_set(&err, -EPROTO, "%s on the post-copy channel",
				      stream_type_name(msg.type));
			break;
		}
		uint64_t last = 0;
		for (uint32_t k = 0; !rc && k < msg.page_request.count; k++) {
			/* The decoder checked every frame against the regions. */
			last = ram_gfn_page(p->mem, msg.page_request.gfn[k]);
			const void *page = ram_page_ptr(p->mem, last);
			atomic_fetch_or(&p->served[last / 64], 1ull << (last % 64));
			/* The guest is paused here for good: no copy needed. */
			rc = stream_page_is_zero(page)
				 ? stream_batch_zero(&p->w, msg.page_request.gfn[k], &err)
				 : stream_batch_ref(&p->w, msg.page_request.gfn[k], page, &err);
		}
		if (!rc)
			rc = stream_batch_flush(&p->w, &err);
		if (rc)
			break;
		pthread_mutex_lock(&p->lock);
		p->requests += msg.page_request.count;
		p->hint = last;
		p->have_hint = true;
		pthread_mutex_unlock(&p->lock);
	}
	/* Stopped by pcs_stop() (cancelled): not a failure. */
	if (rc != -ECANCELED) {
		ferr_prefix(&err, "post-copy channel: ");
		pthread_mutex_lock(&p->lock);
		p->failed = err;
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

int pcs_start(struct migration *m, const struct gmem *mem, const char *uri,
	      const struct channel_opts *copts, const struct stream_header *main, struct pcs **out,
	      struct ferr *err)
{
	struct pcs *p = calloc(1, sizeof(*p));
	struct stream_header h = *main;
	int rc;

	if (!p)
		return ferr_set(err, -ENOMEM, "out of memory");
	*out = p;
	p->m = m;
	p->mem = mem;
	pthread_mutex_init(&p->lock, NULL);
	p->served = calloc(BITMAP_WORDS(mem->size / GMEM_PAGE_SIZE), sizeof(*p->served));
	if (!p->served)
		return ferr_set(err, -ENOMEM, "out of memory");
	rc = channel_connect_opts(uri, 10000, copts, &p->ch, err);
	if (rc) {
		ferr_prefix(err, "the post-copy channel: ");
		return rc;
	}
	p->ch->timeout_ms = 30000;
	p->ch->rd_timeout_ms = -1; /* requests come only after GO */
	p->ch->trace = m->trace;
	h.channel = STREAM_CHANNEL_POSTCOPY;
	h.features &= ~STREAM_FEAT_RETURN_PATH; /* the main connection's */
	rc = stream_writer_init(&p->w, p->ch, STREAM_MIGRATION, err);
	if (rc)
		return rc;
	p->have_w = true;
	rc = stream_write_header(&p->w, &h, err);
	if (!rc)
		rc = stream_reader_init(&p->r, p->ch, STREAM_RETURN, err);
	if (rc)
		return rc;
	p->have_r = true;
	rc = stream_reader_set_header(&p->r, &h, err);
	if (rc)
		return rc;
	rc = -pthread_create(&p->thread, NULL, pcs_thread, p);
	if (rc)
		return ferr_errno(err, rc, "cannot start the post-copy server thread");
	p->started = true;
	return 0;
}

bool pcs_take_hint(struct pcs *p, uint64_t *page)
{
	pthread_mutex_lock(&p->lock);
	bool have = p->have_hint;
	*page = p->hint;
	p->have_hint = false;
	pthread_mutex_unlock(&p->lock);
	return have;
}

int pcs_check(struct pcs *p, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (ferr_is_set(&p->failed))
		rc = ferr_set(err, p->failed.code, "%s", p->failed.msg);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

uint64_t pcs_requests(struct pcs *p)
{
	pthread_mutex_lock(&p->lock);
	uint64_t n = p->requests;
	pthread_mutex_unlock(&p->lock);
	return n;
}

struct channel *pcs_channel(struct pcs *p)
{
	return p ? p->ch : NULL;
}

void pcs_stop(struct pcs *p)
{
	if (!p)
		return;
	if (p->started) {
		channel_cancel(p->ch);
		pthread_join(p->thread, NULL);
	}
	if (p->have_w)
		stream_writer_destroy(&p->w);
	if (p->have_r)
		stream_reader_destroy(&p->r);
	if (p->ch)
		channel_close(p->ch);
	pthread_mutex_destroy(&p->lock);
	free(p->served);
	free(p);
}

/* ---- the switch and the bulk stream (the migration thread) ---- */

static uint64_t pc_todo_next(const void *set, uint64_t from)
{
	return bitmap_next_set(set, from);
}

#define PCS_STALE_WAIT_NS (10 * 1000000000ull)

int postcopy_pre_drop(struct pc *pc, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct stream_msg msg;
	uint64_t n = 0;
	int rc;

	/*
	 * Not with data channels: their receivers write pages straight into
	 * guest memory and check the record's checksum there afterwards, and a
	 * drop racing with one of them is a checksum failure.  Nothing orders a
	 * data channel against STALE short of a switchover's CHANNEL_SYNC.
	 */
	if (s->mfd)
		return 0;
	rc = ram_write_page_set(&s->w, s->mem, STREAM_REC_STALE, pc_todo_next, &pc->todo, &n, err);
	if (!rc)
		rc = stream_batch_flush(&s->w, err);
	if (rc || !n)
		return rc;
	/* Records are handled in order: the last one's ACK covers them all. */
	rc = rp_wait(&s->rp, STREAM_MSG_ACK, s->w.stats.records, clock_now_ns() + PCS_STALE_WAIT_NS,
		     -1, &msg, err);
	if (rc == -ETIME) {
		/* Slow to drop: the switch's own deadline decides. */
		ferr_clear(err);
		return 0;
	}
	return rc;
}

int postcopy_send_discard(struct pc *pc, struct ferr *err)
{
	return ram_write_page_set(&pc->s->w, pc->s->mem, STREAM_REC_DISCARD, pc_todo_next,
				  &pc->todo, NULL, err);
}

/* The next page range to push: at the last fault's neighbourhood, else in order. */
static uint64_t pc_next_chunk(struct pc *pc, struct pcs *p, uint64_t *cursor)
{
	uint64_t hint, npages = pc->s->npages;

	if (pcs_take_hint(p, &hint) && hint < npages)
		*cursor = hint - hint % PCS_BULK_PAGES;
	uint64_t i = bitmap_next_set(&pc->todo, *cursor);
	if (i >= npages)
		i = bitmap_next_set(&pc->todo, 0);
	return i;
}

int postcopy_run(struct pc *pc, struct pcs *p, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct stream_msg msg;
	uint64_t cursor = 0, total = bitmap_count(&pc->todo), before = mig_src_bytes(s);
	uint64_t served = s->st.postcopy.requests; /* by the servers of earlier connections */
	uint64_t rate;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	rate = m->params.max_postcopy_bandwidth;
	pthread_mutex_unlock(&m->lock);
	ratelimit_set_rate(&s->rl, rate, clock_now_ns());
	s->postcopy_cap = true;
	if (!s->st.postcopy.active) { /* not a resumed run */
		s->st.postcopy.active = true;
		s->st.postcopy.start_ns = clock_now_ns();
		s->st.postcopy.discarded = total;
		s->st.postcopy.bytes_before = before;
	}
	before = s->st.postcopy.bytes_before;
	for (;;) {
		uint64_t i = pc_next_chunk(pc, p, &cursor);
		if (i >= s->npages)
			break;
		if ((rc = pcs_check(p, err)) || (rc = rp_check(&s->rp, err)))
			break;
		uint64_t first = i - i % PCS_BULK_PAGES;
		uint64_t n =
		    s->npages - first < PCS_BULK_PAGES ? s->npages - first : PCS_BULK_PAGES;
		/* Answered on the post-copy channel already: not again. */
		for (uint64_t w = first / 64; w < (first + n + 63) / 64; w++)
			pc->todo.words[w] &= ~atomic_load(&p->served[w]);
		rc = mig_src_send_range(s, &pc->todo, first, n, err);
		if (rc)
			break;
		cursor = first + n;
		s->st.postcopy.missing = bitmap_count(&pc->todo);
		s->st.postcopy.requests = served + pcs_requests(p);
		s->st.postcopy.bytes_after = mig_src_bytes(s) - before;
		s->st.remaining = s->st.postcopy.missing * GMEM_PAGE_SIZE;
		s->st.transferred = mig_src_bytes(s);
		mig_publish(m, &s->st);
	}
	if (!rc) {
		s->end_record = s->w.stats.records + 1;
		rc = stream_write_msg(&s->w, &(struct stream_msg){.type = STREAM_REC_POSTCOPY_END},
				      err);
	}
	/* The destination confirms once it owns every page; the server keeps
	 * answering until then. */
	if (!rc)
		rc = rp_wait(&s->rp, STREAM_MSG_ACK, s->end_record, 0, -1, &msg, err);
	s->st.postcopy.requests = served + pcs_requests(p);
	s->st.postcopy.bytes_after = mig_src_bytes(s) - before;
	s->st.postcopy.missing = bitmap_count(&pc->todo);
	if (!rc)
		s->st.postcopy.owned_ns = clock_now_ns() - s->st.postcopy.start_ns;
	return rc;
}

/* ---- recovery (docs/postcopy.md, "Recovery") ---- */

#define PCS_RESUME_CONNECT_MS 10000
#define PCS_RESUME_ANSWER_NS  (30 * 1000000000ull) /* READY, then the missing set */

bool postcopy_breakable(struct pc *pc)
{
	struct mig_src *s = pc->s;

	/* The destination's own failure (ERROR): its guest cannot be served. */
	if (s->have_rp && rp_peer_said(&s->rp))
		return false;
	return mig_pc_breakable(s->m);
}

/* Everything of the broken connections goes; guest memory and @todo stay. */
static void pcs_drop_conn(struct pc *pc)
{
	struct mig_src *s = pc->s;

	if (s->have_rp) {
		rp_stop(&s->rp, s->ch);
		s->have_rp = false;
	}
	pcs_stop(pc->pcs);
	pc->pcs = NULL;
	if (s->w.ch) {
		s->bytes_closed += s->w.stats.bytes;
		stream_writer_destroy(&s->w);
	}
	memset(&s->w, 0, sizeof(s->w));
	pthread_mutex_lock(&s->m->lock);
	s->m->ch = NULL;
	pthread_mutex_unlock(&s->m->lock);
	if (s->ch)
		channel_close(s->ch);
	s->ch = NULL;
}

/* Connect to @uri, resume the session, learn what the destination misses. */
static int pcs_reconnect(struct pc *pc, const char *uri, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct stream_header h = pc->hdr;
	struct stream_msg msg;
	int rc;

	rc = channel_connect_opts(uri, PCS_RESUME_CONNECT_MS, s->copts, &s->ch, err);
	if (rc)
		return rc;
	s->ch->timeout_ms = 30000;
	s->ch->trace = m->trace;
	pthread_mutex_lock(&m->lock);
	m->ch = s->ch;
	if (m->cancel || m->pause_requested)
		channel_cancel(s->ch);
	pthread_mutex_unlock(&m->lock);
	h.features |= STREAM_FEAT_RESUME;
	rc = stream_writer_init(&s->w, s->ch, STREAM_MIGRATION, err);
	if (!rc)
		rc = stream_write_header(&s->w, &h, err);
	if (rc)
		return rc;
	/* The destination's set replaces ours: what went out on the broken
	 * connection may never have arrived. */
	bitmap_zero(&pc->todo);
	s->ch->rd_timeout_ms = -1;
	rc = rp_start_resume(&s->rp, s->ch, &h, &pc->todo, s->mem, err);
	if (rc)
		return rc;
	s->have_rp = true;
	rc = rp_wait(&s->rp, STREAM_MSG_READY, 0, clock_now_ns() + PCS_RESUME_ANSWER_NS, -1, &msg,
		     err);
	if (!rc && !(msg.ready.features & STREAM_FEAT_RESUME))
		rc = ferr_set(err, -EPROTO, "the destination did not take the resume");
	if (!rc)
		rc = rp_wait(&s->rp, STREAM_MSG_POSTCOPY_RESUME, 0,
			     clock_now_ns() + PCS_RESUME_ANSWER_NS, -1, &msg, err);
	if (rc == -ETIME)
		return ferr_set(err, -ETIMEDOUT, "%s: the destination did not answer within %llu s",
				uri, PCS_RESUME_ANSWER_NS / 1000000000ull);
	if (rc)
		return rc;
	uint64_t named = rp_missing_count(&s->rp);
	if (named != msg.pc_resume.missing)
		return ferr_set(
		    err, -EPROTO, "the destination named %llu missing pages but counted %llu",
		    (unsigned long long)named, (unsigned long long)msg.pc_resume.missing);
	return pcs_start(m, s->mem, uri, s->copts, &h, &pc->pcs, err);
}

int postcopy_recover(struct pc *pc, const struct ferr *why, struct ferr *err)
{
	struct mig_src *s = pc->s;
	struct migration *m = s->m;
	struct ferr cause = *why;
	char uri[sizeof(m->resume_uri)];
	uint64_t t0 = clock_now_ns();
	int rc;

	pcs_drop_conn(pc);
	s->st.postcopy.pauses++;
	for (;;) {
		mig_publish(m, &s->st);
		rc = mig_pc_pause(m, &cause, uri, sizeof(uri), err);
		if (rc) {
			ferr_prefix(err, "post-copy paused (%s) and not recovered: ", why->msg);
			return rc;
		}
		rc = pcs_reconnect(pc, uri, err);
		if (!rc)
			break;
		cause = *err;
		ferr_prefix(&cause, "recovery failed: ");
		ferr_clear(err);
		pcs_drop_conn(pc);
	}
	s->st.postcopy.recoveries++;
	s->st.postcopy.paused_ns += clock_now_ns() - t0;
	s->st.postcopy.missing = bitmap_count(&pc->todo);
	mig_pc_resumed(m);
	return 0;
}
