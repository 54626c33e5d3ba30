// SPDX-License-Identifier: GPL-2.0-only
/*
 * Parallel data channels: the source's senders and the destination's
 * receivers (multifd.h says who owns what).
 */
#include "migration/engine/multifd.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "migration/engine/engine.h"
#include "migration/engine/ram.h"
#include "vm/memory.h"

#define MFD_QUEUE 4 /* chunks queued per sender */
#define MFD_WORDS (MFD_CHUNK_PAGES / 64)

_Static_assert(MFD_CHUNK_PAGES % 64 == 0, "a chunk is whole bitmap words");

/* ------------------------------------------------------------------------ */
/* Source */

enum mfd_job_kind { MFD_JOB_PAGES, MFD_JOB_SYNC, MFD_JOB_FLUSH };

/* A job is written by the migration thread into a free slot (under the
 * sender's lock) and read by the sender while it is at the queue's head. */
struct mfd_job {
	enum mfd_job_kind kind;
	bool running;	   /* PAGES: copy each page (the guest runs), else send it in place */
	uint32_t attempt;  /* SYNC */
	uint64_t first, n; /* PAGES: the chunk, RAM order */
	uint64_t bits[MFD_WORDS]; /* PAGES: bit i = page first + i is to be sent */
};

struct mfd_sender {
	/* set before the thread starts, then read-only */
	struct mfd_src *f;
	unsigned index; /* 1..n */
	pthread_t thread;
	bool started;
	/*
	 * Set up (header sent) by the migration thread before the sender
	 * starts; then the sender thread's while it runs a job, the migration
	 * thread's while the sender is idle (mfd_src_wait() returned) and at
	 * stop.  The channel's
	 * deadline and byte counts are atomics any thread may touch.
	 */
	struct channel *ch;
	struct stream_writer w;
	/* under lock: */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job queued, a job done, stop */
	struct mfd_job jobs[MFD_QUEUE];
	unsigned head, count; /* count includes the job being run */
	bool stop;
	int rc; /* sticky: the first failure (-ETIME: cleared by a flush) */
	struct ferr err;
	uint64_t normal, zero; /* pages sent (or tried) with data / as ZERO */
};

/* The migration thread's (it creates, drives and stops the senders). */
struct mfd_src {
	const struct gmem *mem; /* read by every sender */
	unsigned n;
	/*
	 * Pages of jobs that failed or were dropped (RAM order): they go back
	 * into the caller's to-do set (mfd_src_redo()).  Each sender writes
	 * only the words of its own chunks; the migration thread reads and
	 * clears it only while every sender is idle.
	 */
	struct bitmap redo;
	uint64_t cut_bytes; /* test only: sender 1 fails after this much; 0: never */
	struct mfd_sender s[STREAM_MULTIFD_MAX];
};

static int mfd_send_pages(struct mfd_sender *c, const struct mfd_job *j, uint64_t *normal,
			  uint64_t *zero, struct ferr *err)
{
	const struct gmem *mem = c->f->mem;
	int rc = 0;

	for (uint64_t k = 0; k < j->n && !rc; k++) {
		if (!(j->bits[k / 64] & (1ull << (k % 64))))
			continue;
		uint64_t i = j->first + k;
		uint64_t gfn = ram_page_gfn(mem, i);
		const void *p = ram_page_ptr(mem, i);
		if (stream_page_is_zero(p)) {
			rc = stream_batch_zero(&c->w, gfn, err);
			(*zero)++;
		} else {
			rc = j->running ? stream_batch_copy(&c->w, gfn, p, err)
					: stream_batch_ref(&c->w, gfn, p, err);
			(*normal)++;
		}
	}
	if (!rc)
		rc = stream_batch_flush(&c->w, err);
	if (!rc && c->index == 1 && c->f->cut_bytes && c->w.stats.bytes >= c->f->cut_bytes) {
		channel_shutdown(c->ch);
		rc = ferr_set(err, -ENOLINK, /* the source's own doing: precopy.c keeps the words */
			      "cut after %" PRIu64 " KiB (x-multifd-cut, test only)",
			      c->w.stats.bytes >> 10);
	}
	return rc;
}

/* @j's pages are still to do: its chunk's own words of the redo set. */
static void mfd_redo_job(struct mfd_src *f, const struct mfd_job *j)
{
	uint64_t *w = f->redo.words + j->first / 64;

	for (unsigned k = 0; k < MFD_WORDS && j->first + 64ull * k < f->redo.nbits; k++)
		w[k] |= j->bits[k];
}

static void *mfd_sender_thread(void *arg)
{
	struct mfd_sender *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->count && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->stop)
			break;
		struct mfd_job *j = &c->jobs[c->head];
		int failed = c->rc;
		pthread_mutex_unlock(&c->lock);

		struct ferr e = FERR_INIT;
		uint64_t normal = 0, zero = 0;
		int rc = 0;
		if (j->kind == MFD_JOB_FLUSH) {
			rc = stream_writer_flush_tail(&c->w, &e);
		} else if (failed) {
			/* After a failure, jobs are dropped until a flush; their pages
			 * are still to do.  (The page counts then say what was tried.) */
			if (j->kind == MFD_JOB_PAGES)
				mfd_redo_job(c->f, j);
		} else {
			if (j->kind == MFD_JOB_PAGES) {
				rc = mfd_send_pages(c, j, &normal, &zero, &e);
				/* Not sent, or not sure: sending a page twice is harmless. */
				if (rc)
					mfd_redo_job(c->f, j);
			} else {
				struct stream_msg m = {.type = STREAM_REC_CHANNEL_SYNC};
				m.sync.attempt = j->attempt;
				rc = stream_write_msg(&c->w, &m, &e);
			}
		}

		pthread_mutex_lock(&c->lock);
		if (j->kind == MFD_JOB_FLUSH && !rc && c->rc == -ETIME) {
			c->rc = 0; /* the stream goes on */
			ferr_clear(&c->err);
		}
		if (rc && !c->rc) {
			c->rc = rc;
			c->err = e;
			if (rc != -ETIME)
				ferr_prefix(&c->err, "data channel %u: ", c->index);
		}
		c->normal += normal;
		c->zero += zero;
		c->head = (c->head + 1) % MFD_QUEUE;
		c->count--;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Queue @j on @c, waiting for room; the channel's sticky error if it has one. */
static int mfd_queue(struct mfd_sender *c, const struct mfd_job *j, struct ferr *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	while (c->count == MFD_QUEUE && !c->rc)
		pthread_cond_wait(&c->cond, &c->lock);
	rc = c->rc;
	if (rc && j->kind != MFD_JOB_FLUSH) {
		ferr_set(err, rc, "%s", c->err.msg);
	} else {
		while (c->count == MFD_QUEUE)
			pthread_cond_wait(&c->cond, &c->lock);
		c->jobs[(c->head + c->count) % MFD_QUEUE] = *j;
		c->count++;
		rc = 0;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int mfd_src_start(const struct gmem *mem, const char *uri, const struct channel_opts *copts,
		  int timeout_ms, const struct stream_header *main, uint64_t cut_kib,
		  struct trace *trace, struct mfd_src **out, struct ferr *err)
{
	struct mfd_src *f = calloc(1, sizeof(*f));
	int rc = 0;

	if (!f)
		return ferr_set(err, -ENOMEM, "out of memory");
	f->mem = mem;
	f->cut_bytes = cut_kib << 10;
	if (bitmap_init(&f->redo, mem->size / GMEM_PAGE_SIZE)) {
		free(f);
		return ferr_set(err, -ENOMEM, "out of memory for the multifd page set");
	}
	for (unsigned i = 0; i < main->nchannels; i++) {
		struct mfd_sender *c = &f->s[i];
		struct stream_header h = *main;

		c->f = f;
		c->index = i + 1;
		pthread_mutex_init(&c->lock, NULL);
		pthread_cond_init(&c->cond, NULL);
		f->n++;
		rc = channel_connect_opts(uri, timeout_ms, copts, &c->ch, err);
		if (rc) {
			ferr_prefix(err, "data channel %u: ", c->index);
			break;
		}
		c->ch->timeout_ms = 30000;
		c->ch->trace = trace;
		h.channel = c->index;
		h.features &= ~STREAM_FEAT_RETURN_PATH; /* the main connection's */
		rc = stream_writer_init(&c->w, c->ch, STREAM_MIGRATION, err);
		if (!rc)
			rc = stream_write_header(&c->w, &h, err);
		if (rc) {
			ferr_prefix(err, "data channel %u: ", c->index);
			break;
		}
		rc = -pthread_create(&c->thread, NULL, mfd_sender_thread, c);
		if (rc) {
			ferr_set(err, rc, "data channel %u: cannot start its sender thread",
				 c->index);
			break;
		}
		c->started = true;
	}
	if (rc) {
		mfd_src_stop(f);
		return rc;
	}
	*out = f;
	return 0;
}

int mfd_src_send_chunk(struct mfd_src *f, uint64_t first, uint64_t n, const uint64_t *bits,
		       bool running, struct ferr *err)
{
	struct mfd_job j = {.kind = MFD_JOB_PAGES, .running = running, .first = first, .n = n};

	memcpy(j.bits, bits, sizeof(j.bits));
	int rc = mfd_queue(&f->s[(first / MFD_CHUNK_PAGES) % f->n], &j, err);
	/* Refused (the channel failed): still to do.  No sender writes this
	 * chunk's words of the redo set meanwhile: it is in no queue. */
	if (rc)
		mfd_redo_job(f, &j);
	return rc;
}

int mfd_src_wait(struct mfd_src *f, struct ferr *err)
{
	int first = 0;

	for (unsigned i = 0; i < f->n; i++) {
		struct mfd_sender *c = &f->s[i];
		pthread_mutex_lock(&c->lock);
		while (c->count)
			pthread_cond_wait(&c->cond, &c->lock);
		/* A real failure wins over a deadline's -ETIME. */
		if (c->rc && (!first || (first == -ETIME && c->rc != -ETIME))) {
			first = c->rc;
			if (c->rc == -ETIME)
				ferr_clear(err);
			else
				ferr_set(err, c->rc, "%s", c->err.msg);
		}
		pthread_mutex_unlock(&c->lock);
	}
	return first;
}

int mfd_src_sync(struct mfd_src *f, uint32_t attempt, struct ferr *err)
{
	struct mfd_job j = {.kind = MFD_JOB_SYNC, .attempt = attempt};
	int rc = 0;

	for (unsigned i = 0; i < f->n && !rc; i++)
		rc = mfd_queue(&f->s[i], &j, err);
	int wrc = mfd_src_wait(f, err);
	return wrc ? wrc : rc;
}

void mfd_src_set_deadline(struct mfd_src *f, uint64_t deadline_ns)
{
	for (unsigned i = 0; f && i < f->n; i++)
		if (f->s[i].ch)
			channel_set_deadline(f->s[i].ch, deadline_ns);
}

int mfd_src_flush_tails(struct mfd_src *f, struct ferr *err)
{
	struct mfd_job j = {.kind = MFD_JOB_FLUSH};

	for (unsigned i = 0; i < f->n; i++)
		mfd_queue(&f->s[i], &j, err);
	return mfd_src_wait(f, err);
}

uint64_t mfd_src_bytes(struct mfd_src *f)
{
	uint64_t b = 0;

	for (unsigned i = 0; f && i < f->n; i++)
		if (f->s[i].ch)
			b += atomic_load(&f->s[i].ch->bytes_written);
	return b;
}

uint64_t mfd_src_unsent(struct mfd_src *f)
{
	uint64_t b = 0;

	for (unsigned i = 0; f && i < f->n; i++)
		if (f->s[i].ch)
			b += channel_unsent(f->s[i].ch);
	return b;
}

void mfd_src_counts(struct mfd_src *f, uint64_t *normal, uint64_t *zero)
{
	*normal = *zero = 0;
	for (unsigned i = 0; f && i < f->n; i++) {
		pthread_mutex_lock(&f->s[i].lock);
		*normal += f->s[i].normal;
		*zero += f->s[i].zero;
		pthread_mutex_unlock(&f->s[i].lock);
	}
}

unsigned mfd_src_channels(struct mfd_src *f, struct channel **out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->n && n < max; i++)
		if (f->s[i].ch)
			out[n++] = f->s[i].ch;
	return n;
}

void mfd_src_stop(struct mfd_src *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->n; i++) {
		struct mfd_sender *c = &f->s[i];
		if (c->ch)
			channel_cancel(c->ch); /* a sender stuck in a write returns */
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	for (unsigned i = 0; i < f->n; i++) {
		struct mfd_sender *c = &f->s[i];
		if (c->started)
			pthread_join(c->thread, NULL);
		if (c->w.ch)
			stream_writer_destroy(&c->w);
		if (c->ch)
			channel_close(c->ch);
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
	}
	bitmap_destroy(&f->redo);
	free(f);
}

void mfd_src_redo(struct mfd_src *f, struct bitmap *todo)
{
	if (bitmap_next_set(&f->redo, 0) >= f->redo.nbits)
		return;
	bitmap_or_words(todo, 0, f->redo.words, f->redo.nbits);
	memset(f->redo.words, 0, (f->redo.nbits + 63) / 64 * sizeof(uint64_t));
}

/* ------------------------------------------------------------------------ */
/* Destination */

struct mfd_receiver {
	/* set by the loader before the thread starts, then read-only */
	struct mfd_dest *f;
	unsigned index; /* 1..n */
	pthread_t thread;
	bool started;
	/* the receiver thread's while it runs; the loader's before and after */
	struct channel *ch;
	struct stream_reader r;
	/* written by the receiver, read by the loader for query-migrate */
	_Atomic uint64_t bytes, pages, zero;
};

/* Created, waited on and stopped by the loader (the migration thread). */
struct mfd_dest {
	/* read-only once the receivers run */
	const struct gmem *mem;
	struct stream_page_sink sink; /* the loader's, for pages this channel owns */
	unsigned n;
	struct mfd_receiver c[STREAM_MULTIFD_MAX];
	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a CHANNEL_SYNC arrived, or a receiver failed */
	uint32_t synced[STREAM_MULTIFD_MAX];
	bool stopping;
	int rc;
	struct ferr err;
};

/* The sink seen by one receiver: only its own chunks. */
struct mfd_rsink {
	struct mfd_receiver *c;
	char why[160];
};

static bool mfd_owns(const struct mfd_receiver *c, uint64_t gfn)
{
	uint64_t i = ram_gfn_page(c->f->mem, gfn);

	return i != UINT64_MAX && (i / MFD_CHUNK_PAGES) % c->f->n == c->index - 1;
}

static void *mfd_rsink_page(void *opaque, uint64_t gfn)
{
	struct mfd_receiver *c = opaque;

	/* NULL fails the load: a page of another channel's chunk would race with it. */
	if (!mfd_owns(c, gfn))
		return NULL;
	return c->f->sink.page(c->f->sink.opaque, gfn);
}

static int mfd_rsink_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	struct mfd_receiver *c = opaque;

	for (uint64_t k = 0; k < npages; k++)
		if (!mfd_owns(c, gfn + k))
			return ferr_set(err, -EPROTO,
					"data channel %u: frame %#" PRIx64
					" belongs to another channel's chunk",
					c->index, gfn + k);
	return c->f->sink.zero(c->f->sink.opaque, gfn, npages, err);
}

static void *mfd_receiver_thread(void *arg)
{
	struct mfd_receiver *c = arg;
	struct mfd_dest *f = c->f;
	struct stream_page_sink sink = {mfd_rsink_page, mfd_rsink_zero, c};
	struct ferr e = FERR_INIT;
	int rc;

	for (;;) {
		struct stream_record rec;
		rc = stream_next_record(&c->r, &rec, &e);
		if (rc)
			break;
		if (rec.type == STREAM_REC_PAGE_BATCH) {
			rc = stream_read_page_batch(&c->r, &sink, &e);
		} else if (rec.type == STREAM_REC_CHANNEL_SYNC) {
			struct stream_msg m;
			rc = stream_read_msg(&c->r, &m, &e);
			if (!rc) {
				pthread_mutex_lock(&f->lock);
				f->synced[c->index - 1] = m.sync.attempt;
				pthread_cond_broadcast(&f->cond);
				pthread_mutex_unlock(&f->lock);
			}
		} else {
			rc = ferr_set(
			    &e, -EPROTO,
			    "record %" PRIu64 " (%s) is not expected on a data channel", rec.number,
			    stream_type_name(rec.type) ? stream_type_name(rec.type) : "unknown");
		}
		if (rc)
			break;
		atomic_store(&c->bytes, c->r.stats.bytes);
		atomic_store(&c->pages, c->r.stats.pages);
		atomic_store(&c->zero, c->r.stats.zero_pages);
	}
	pthread_mutex_lock(&f->lock);
	if (!f->stopping && !f->rc) {
		f->rc = rc;
		f->err = e;
		ferr_prefix(&f->err, "data channel %u: ", c->index);
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Tell a refused peer why, on its return direction, and the operator too. */
static void mfd_refuse(struct migration *m, struct channel *ch, const struct stream_header *main,
		       const char *why)
{
	struct stream_writer w;
	struct stream_msg msg = {.type = STREAM_MSG_ERROR};

	if (m->events.note)
		m->events.note(m->events.opaque, "MIGRATION_CHANNEL_REFUSED", "refused", why);
	if (stream_writer_init(&w, ch, STREAM_RETURN, NULL) == 0) {
		if (stream_writer_set_header(&w, main, NULL) == 0) {
			msg.error.code = -EPROTO;
			snprintf(msg.error.text, sizeof(msg.error.text), "%s", why);
			stream_write_msg(&w, &msg, NULL);
		}
		stream_writer_destroy(&w);
	}
	channel_close(ch);
}

int mfd_dest_start(struct migration *m, struct channel_listener *l,
		   const struct stream_header *main, const struct gmem *mem,
		   const struct stream_page_sink *sink, int timeout_ms, struct mfd_dest **out,
		   struct ferr *err)
{
	struct mfd_dest *f = calloc(1, sizeof(*f));
	uint64_t end = clock_now_ns() + (uint64_t)timeout_ms * 1000000u;
	unsigned accepted = 0;
	int rc = 0;

	if (!f)
		return ferr_set(err, -ENOMEM, "out of memory");
	f->mem = mem;
	f->sink = *sink;
	f->n = main->nchannels;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	while (accepted < f->n) {
		struct channel *ch = NULL;
		struct stream_reader r;
		struct stream_header h;
		char why[FERR_MSG_MAX];
		uint64_t now = clock_now_ns();

		if (now >= end) {
			rc = ferr_set(err, -ETIMEDOUT,
				      "%u of %u data channels connected within %d s", accepted,
				      f->n, timeout_ms / 1000);
			break;
		}
		if (mig_cancelled(m)) {
			rc = ferr_set(err, -ECANCELED, "incoming migration cancelled");
			break;
		}
		/* migrate-cancel cancels the listener: the wait ends with -ECANCELED.
		 * The TLS handshake, if any, runs within the same time. */
		struct ferr aerr = FERR_INIT;
		rc = channel_accept(l, (int)((end - now) / 1000000u) + 1, &ch, &aerr);
		if (rc == -ECANCELED) {
			ferr_set(err, rc, "%s", aerr.msg);
			break;
		}
		if (rc) {
			/* A peer that failed the TLS handshake, or a mere timeout. */
			if (rc != -ETIMEDOUT && rc != -ETIME && m->events.note)
				m->events.note(m->events.opaque, "MIGRATION_CHANNEL_REFUSED",
					       "refused", aerr.msg);
			rc = 0;
			continue;
		}
		ch->timeout_ms = 5000; /* for the header: a silent peer does not hold us */
		why[0] = 0;
		if (stream_reader_init(&r, ch, STREAM_MIGRATION, err)) {
			channel_close(ch);
			rc = -ENOMEM;
			break;
		}
		struct ferr herr = FERR_INIT;
		if (stream_read_header(&r, &h, &herr))
			snprintf(why, sizeof(why), "a data connection's header: %.400s", herr.msg);
		else if (!(h.features & STREAM_FEAT_MULTIFD) || h.channel == 0)
			snprintf(why, sizeof(why),
				 "a connection that is not a data channel arrived while this "
				 "migration waits for its data channels");
		else if (h.session != main->session)
			snprintf(why, sizeof(why),
				 "data channel %u belongs to another migration (session "
				 "%016" PRIx64 "; this one is %016" PRIx64 ")",
				 h.channel, h.session, main->session);
		else if (h.nchannels != main->nchannels || !stream_header_same_guest(&h, main))
			snprintf(why, sizeof(why),
				 "data channel %u of session %016" PRIx64
				 " disagrees with the main connection's header",
				 h.channel, h.session);
		else if (f->c[h.channel - 1].ch)
			snprintf(why, sizeof(why),
				 "data channel %u of session %016" PRIx64
				 " is already connected (a duplicate)",
				 h.channel, h.session);
		if (why[0]) {
			stream_reader_destroy(&r);
			mfd_refuse(m, ch, main, why);
			continue;
		}
		struct mfd_receiver *c = &f->c[h.channel - 1];
		c->f = f;
		c->index = h.channel;
		c->ch = ch;
		c->r = r;
		ch->timeout_ms = 30000;
		ch->rd_timeout_ms = -1; /* silent through passes that send it nothing */
		ch->trace = m->trace;
		accepted++;
	}
	for (unsigned i = 0; !rc && i < f->n; i++) {
		struct mfd_receiver *c = &f->c[i];
		rc = -pthread_create(&c->thread, NULL, mfd_receiver_thread, c);
		if (rc)
			ferr_set(err, rc, "cannot start a receiver thread");
		else
			c->started = true;
	}
	if (rc) {
		mfd_dest_stop(f);
		return rc;
	}
	*out = f;
	return 0;
}

int mfd_dest_check(struct mfd_dest *f, struct ferr *err)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = f->rc;
	if (rc)
		ferr_set(err, rc, "%s", f->err.msg);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int mfd_dest_wait_sync(struct mfd_dest *f, struct migration *m, uint32_t attempt, int timeout_ms,
		       struct ferr *err)
{
	uint64_t end = clock_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		unsigned missing = 0;
		for (unsigned i = 0; i < f->n; i++)
			missing += f->synced[i] < attempt;
		if (f->rc) {
			rc = ferr_set(err, f->rc, "%s", f->err.msg);
			break;
		}
		if (!missing)
			break;
		if (clock_now_ns() >= end) {
			rc = ferr_set(
			    err, -ETIMEDOUT,
			    "END arrived, but %u of %u data channels did not end switchover "
			    "attempt %u within %d s",
			    missing, f->n, attempt, timeout_ms / 1000);
			break;
		}
		pthread_mutex_unlock(&f->lock);
		if (mig_cancelled(m))
			return ferr_set(err, -ECANCELED, "incoming migration cancelled");
		pthread_mutex_lock(&f->lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void mfd_dest_counts(struct mfd_dest *f, uint64_t *bytes, uint64_t *pages, uint64_t *zero)
{
	*bytes = *pages = *zero = 0;
	for (unsigned i = 0; f && i < f->n; i++) {
		*bytes += atomic_load(&f->c[i].bytes);
		*pages += atomic_load(&f->c[i].pages);
		*zero += atomic_load(&f->c[i].zero);
	}
}

void mfd_dest_stop(struct mfd_dest *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_mutex_unlock(&f->lock);
	for (unsigned i = 0; i < f->n; i++)
		if (f->c[i].ch)
			channel_cancel(f->c[i].ch);
	for (unsigned i = 0; i < f->n; i++) {
		struct mfd_receiver *c = &f->c[i];
		if (c->started)
			pthread_join(c->thread, NULL);
		if (c->ch) {
			stream_reader_destroy(&c->r);
			channel_close(c->ch);
		}
	}
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
