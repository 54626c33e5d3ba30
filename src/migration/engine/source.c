// SPDX-License-Identifier: GPL-2.0-only
/*
 * The source side: save to a file, or (pre-copy) migrate to a peer.
 *
 * A file save is a migration with a single pass taken while the VM is
 * paused: the same page sender, state sender and END, and no return path.
 * The sender walks a bitmap of pages in RAM order, skips pages the guest
 * never touched (they are zero on any fresh destination), sends zero pages
 * as flags, and sends the rest straight from guest memory when the guest
 * is paused (no copy) or through a copy while it runs (the checksum must
 * cover exactly the bytes sent).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/sbuf.h"
#include "migration/transport/channel.h"
#include "vm/dirty.h"
#include "migration/engine/engine.h"
#include "migration/engine/ram.h"
#include "migration/engine/ratelimit.h"
#include "vm/memory.h"
#include "vm/state.h"
#include "vm/vm.h"

#define SRC_CONNECT_TIMEOUT_MS 10000
#define SRC_IO_TIMEOUT_MS      30000
#define SRC_CHUNK_PAGES	       4096 /* rearm and publish granularity: 16 MiB */
/* Bandwidth cap burst: a little over one batch, so short migrations keep the cap too. */
#define SRC_RATE_BURST (2 * STREAM_BATCH_MAX_DATA)

void mig_sleep_ns(uint64_t ns)
{
	clock_sleep_ns(ns);
}

/* A max-bandwidth changed by the operator applies from the next chunk. */
static void src_cap_update(struct mig_src *s)
{
	pthread_mutex_lock(&s->m->lock);
	uint64_t rate =
	    s->postcopy_cap ? s->m->params.max_postcopy_bandwidth : s->m->params.max_bandwidth;
	pthread_mutex_unlock(&s->m->lock);
	if (rate != s->rl.rate)
		ratelimit_set_rate(&s->rl, rate, clock_now_ns());
}

/*
 * max-bandwidth: account what went out since *@since (@now: bytes put on
 * the stream so far; with multifd, queued for the senders) once it is at least
 * @min bytes (a batch: the cap holds over short windows too, not only per
 * 16 MiB chunk), and wait as the token bucket says.  The cap shapes passes
 * and snapshots; inside a switchover's window it would only add to the
 * guest's pause.
 */
uint64_t mig_src_bytes(const struct mig_src *s)
{
	return s->bytes_closed + s->w.stats.bytes + (s->mfd ? mfd_src_bytes(s->mfd) : 0);
}

void mig_src_set_deadline(struct mig_src *s, uint64_t deadline_ns)
{
	channel_set_deadline(s->ch, deadline_ns);
	mfd_src_set_deadline(s->mfd, deadline_ns);
}

/* With multifd the senders count the pages they sent. */
static void src_mfd_counts(struct mig_src *s)
{
	uint64_t normal, zero;

	mfd_src_counts(s->mfd, &normal, &zero);
	s->st.normal = normal;
	s->st.duplicate = zero;
	s->st.normal_bytes = normal * GMEM_PAGE_SIZE;
	s->st.multifd_bytes = mfd_src_bytes(s->mfd);
}

void mig_src_stop_multifd(struct mig_src *s)
{
	if (!s->mfd)
		return;
	src_mfd_counts(s);
	s->bytes_closed += mfd_src_bytes(s->mfd);
	pthread_mutex_lock(&s->m->lock);
	s->m->ndata_ch = 0;
	pthread_mutex_unlock(&s->m->lock);
	mfd_src_stop(s->mfd); /* idle: every send waited for its senders */
	s->mfd = NULL;
}

/*
 * The cap's wait, in slices: under a low cap (max-postcopy-bandwidth 64 KiB/s
 * against a 1 MiB batch: 16 s) one sleep would hold off migrate-cancel,
 * migrate-pause, a new cap and a broken connection until it ends.  Any of
 * them ends it early.
 */
#define SRC_PACE_SLICE_NS 20000000u

static void src_pace_wait(struct mig_src *s, uint64_t wait)
{
	struct migration *m = s->m;
	uint64_t end = clock_now_ns() + wait;

	for (;;) {
		uint64_t now = clock_now_ns();
		if (now >= end)
			return;
		mig_sleep_ns(end - now < SRC_PACE_SLICE_NS ? end - now : SRC_PACE_SLICE_NS);
		pthread_mutex_lock(&m->lock);
		bool stop = m->cancel || m->pause_requested ||
			    (s->postcopy_cap ? m->params.max_postcopy_bandwidth
					     : m->params.max_bandwidth) != s->rl.rate;
		pthread_mutex_unlock(&m->lock);
		/* The destination's last words, or its connection gone: the
		 * next send would fail anyway; fail (or pause) now. */
		struct ferr dead = FERR_INIT;
		if (stop || (s->have_rp && rp_check(&s->rp, &dead)))
			return;
	}
}

static void src_pace(struct mig_src *s, uint64_t *since, uint64_t min, uint64_t now)
{
	uint64_t n = now - *since;

	if (s->in_window || n < min || (n == 0 && min == 0))
		return;
	*since = now;
	uint64_t wait = ratelimit_consume(&s->rl, n, clock_now_ns());
	if (wait) {
		src_pace_wait(s, wait);
		/* A capped stream is slow: let query-migrate see it move, in step
		 * with the cap (after the wait the bytes are due). */
		s->st.transferred = mig_src_bytes(s);
		mig_publish(s->m, &s->st);
	}
}

/*
 * The pages of @todo in [@first, @first + @n) on the main connection,
 * cleared as they go (@done counts them).  @resident (NULL: all): skip
 * pages never populated.  @running: copy (the guest may write them).
 * @paced: bytes count up to which max-bandwidth has been applied.
 */
static int src_send_chunk(struct mig_src *s, struct bitmap *todo, uint64_t first, uint64_t n,
			  const unsigned char *resident, bool running, uint64_t *done,
			  uint64_t *paced, struct ferr *err)
{
	int rc;

	for (uint64_t i = bitmap_next_set(todo, first); i < first + n;
	     i = bitmap_next_set(todo, i + 1)) {
		uint64_t gfn = ram_page_gfn(s->mem, i);
		const void *p = ram_page_ptr(s->mem, i);

		bitmap_clear(todo, i);
		(*done)++;
		if (resident && !(resident[i - first] & 1)) {
			s->st.skipped++;
			continue;
		}
		if (stream_page_is_zero(p)) {
			rc = stream_batch_zero(&s->w, gfn, err);
			s->st.duplicate++;
		} else {
			rc = running ? stream_batch_copy(&s->w, gfn, p, err)
				     : stream_batch_ref(&s->w, gfn, p, err);
			s->st.normal++;
			s->st.normal_bytes += GMEM_PAGE_SIZE;
		}
		if (rc) {
			/* Not sent, or not sure: sending a page twice is harmless. */
			bitmap_set(todo, i);
			return rc;
		}
		src_pace(s, paced, STREAM_BATCH_MAX_DATA, mig_src_bytes(s));
	}
	return 0;
}

int mig_src_send_range(struct mig_src *s, struct bitmap *todo, uint64_t first, uint64_t n,
		       struct ferr *err)
{
	uint64_t done = 0, bytes0 = mig_src_bytes(s);
	int rc;

	src_cap_update(s);
	rc = src_send_chunk(s, todo, first, n, NULL, false, &done, &bytes0, err);

	if (!rc)
		rc = stream_batch_flush(&s->w, err);
	if (!rc) {
		s->st.transferred = mig_src_bytes(s);
		src_pace(s, &bytes0, 0, mig_src_bytes(s));
	}
	return rc;
}

/*
 * Send the pages set in @todo, clearing them.  @only_resident skips pages
 * never populated; @running selects copy mode.
 */
int mig_src_send_pages(struct mig_src *s, struct bitmap *todo, bool skip_untouched, bool running,
		       uint64_t deadline_ns, struct ferr *err)
{
	uint64_t total = bitmap_count(todo), done = 0;
	unsigned char resident[SRC_CHUNK_PAGES];
	int rc;

	_Static_assert(SRC_CHUNK_PAGES <= RAM_RESIDENT_CHUNK, "one mincore call per chunk");
	for (uint64_t first = 0; first < s->npages; first += SRC_CHUNK_PAGES) {
		uint64_t n =
		    s->npages - first < SRC_CHUNK_PAGES ? s->npages - first : SRC_CHUNK_PAGES;
		uint64_t bytes0 = mig_src_bytes(s);

		if (bitmap_next_set(todo, first) >= first + n)
			continue;
		if (mig_cancelled(s->m)) {
			rc = ferr_set(err, -ECANCELED, "migration cancelled");
			goto out;
		}
		src_cap_update(s);
		/* The destination gave up (its words) or went away: stop now. */
		if (s->have_rp && (rc = rp_check(&s->rp, err)))
			goto out;
		if (deadline_ns && clock_now_ns() > deadline_ns) {
			rc = -ETIME; /* the caller decides; not an error message */
			goto out;
		}
		/*
		 * Re-protect before reading: a write after this shows up in a later
		 * sync.  Not while the guest is paused: it writes nothing, and the
		 * downtime window has better things to do.
		 */
		if (s->tracking && running) {
			rc = s->tracker.ops->rearm(&s->tracker, todo, first, n, err);
			if (rc)
				goto out;
		}
		/* After the rearm: a page first touched from now on is in the dirty log. */
		if (skip_untouched) {
			rc = ram_resident(s->mem, first, n, resident, err);
			if (rc)
				goto out;
		}
		if (s->mfd) {
			/*
			 * The chunk's pages go to the channel that owns the chunk; its
			 * sender reads (copies) them from now on, after the rearm, so a
			 * later write is in the log as without multifd.
			 */
			uint64_t bits[MFD_CHUNK_PAGES / 64] = {0}, queued = 0;
			for (uint64_t i = bitmap_next_set(todo, first); i < first + n;
			     i = bitmap_next_set(todo, i + 1)) {
				bitmap_clear(todo, i);
				done++;
				if (skip_untouched && !(resident[i - first] & 1)) {
					s->st.skipped++;
				} else {
					bits[(i - first) / 64] |= 1ull << ((i - first) % 64);
					queued++;
				}
			}
			/*
			 * max-bandwidth: the senders write after the chunk is queued,
			 * so the cap counts what is queued (each page at most a page
			 * and its entry), before it goes.
			 */
			for (uint64_t left = queued * (GMEM_PAGE_SIZE + 8); left;) {
				/* a batch at a time: a cancel is not held up by the cap */
				uint64_t step =
				    left < STREAM_BATCH_MAX_DATA ? left : STREAM_BATCH_MAX_DATA;
				uint64_t q0 = 0;
				if (mig_cancelled(s->m))
					break;
				src_pace(s, &q0, 0, step);
				left -= step;
			}
			rc = mfd_src_send_chunk(s->mfd, first, n, bits, running, err);
			if (rc)
				goto out;
			src_mfd_counts(s);
			s->st.transferred = mig_src_bytes(s);
			s->st.remaining = (total - done) * GMEM_PAGE_SIZE;
			mig_publish(s->m, &s->st);
			continue;
		}
		rc = src_send_chunk(s, todo, first, n, skip_untouched ? resident : NULL, running,
				    &done, &bytes0, err);
		if (rc)
			return rc;
		rc = stream_batch_flush(&s->w, err);
		if (rc)
			return rc;
		s->st.transferred = mig_src_bytes(s);
		s->st.remaining = (total - done) * GMEM_PAGE_SIZE;
		mig_publish(s->m, &s->st);
		if (!s->tracking)
			mig_progress(s->m, "saving", done, total);
		src_pace(s, &bytes0, 0, mig_src_bytes(s));
	}
	rc = 0;
out:
	/* Every queued page is on its channel (or failed) before this returns:
	 * a paused guest's pages are sent without a copy. */
	if (s->mfd) {
		struct ferr werr = FERR_INIT;
		int wrc = mfd_src_wait(s->mfd, &werr);
		mfd_src_redo(s->mfd, todo);
		src_mfd_counts(s);
		s->st.transferred = mig_src_bytes(s);
		if (wrc && (!rc || (rc == -ETIME && wrc != -ETIME))) {
			rc = wrc;
			*err = werr;
		}
	}
	return rc;
}

/*
 * Every section's state (vm/state.h: vCPUs, the VM core, devices); the
 * vCPUs must be parked.  All sections are quiesced before any is saved:
 * finishing a device's in-flight work may change guest memory or another
 * section.  mig_src_resume_state() undoes the quiesce if the guest stays.
 */
int mig_src_send_state(struct mig_src *s, struct ferr *err)
{
	struct vm *vm = s->m->vm;
	unsigned n = vm_section_count(vm);
	struct sbuf b = SBUF_INIT;
	uint64_t bytes0 = s->w.stats.bytes;
	int rc = 0;

	s->quiesced = true;
	for (unsigned i = 0; !rc && i < n; i++)
		rc = vm_section_quiesce(vm, i, err);
	for (unsigned i = 0; !rc && i < n; i++) {
		struct vm_section_info sec;
		vm_section_get(vm, i, &sec);
		sbuf_reset(&b);
		rc = vm_section_save(vm, i, &b, err);
		if (rc)
			break;
		switch (sec.kind) {
		case VM_SECTION_VCPU:
			rc = stream_write_vcpu_state(&s->w, sec.index, b.data, b.len, err);
			break;
		case VM_SECTION_VM:
			rc = stream_write_vm_state(&s->w, b.data, b.len, err);
			break;
		case VM_SECTION_DEVICE:
			rc = stream_write_device_state(&s->w, sec.name, sec.version, b.data, b.len,
						       err);
			break;
		}
	}
	sbuf_free(&b);
	s->st.state_bytes = s->w.stats.bytes - bytes0;
	return rc;
}

void mig_src_resume_state(struct mig_src *s)
{
	struct vm *vm = s->m->vm;

	if (!s->quiesced)
		return;
	s->quiesced = false;
	for (unsigned i = 0; i < vm_section_count(vm); i++)
		vm_section_resume(vm, i);
}

static bool src_is_file(const char *uri)
{
	return strncmp(uri, "file:", 5) == 0;
}

void *mig_source_thread(void *arg)
{
	struct migration *m = arg;
	struct mig_src s = {.m = m};
	struct ferr err = FERR_INIT;
	char uri[sizeof(m->uri)];
	char tls_creds[MIG_PARAM_STR_MAX], tls_hostname[MIG_PARAM_STR_MAX];
	struct channel_opts copts = {.tls_creds = tls_creds, .tls_hostname = tls_hostname};
	struct stream_header h;
	int rc;

	pthread_mutex_lock(&m->lock);
	memcpy(uri, m->uri, sizeof(uri));
	memcpy(tls_creds, m->params.tls_creds, sizeof(tls_creds));
	memcpy(tls_hostname, m->params.tls_hostname, sizeof(tls_hostname));
	ratelimit_init(&s.rl, m->params.max_bandwidth, SRC_RATE_BURST, clock_now_ns());
	s.mfd_channels = m->params.multifd ? (unsigned)m->params.multifd_channels : 0;
	s.mfd_cut_kib = m->params.x_multifd_cut;
	bool postcopy = m->params.postcopy_ram;
	pthread_mutex_unlock(&m->lock);
	s.uri = uri;
	s.copts = &copts;
	s.mem = vm_gmem(m->vm);
	s.npages = s.mem->size / GMEM_PAGE_SIZE;
	s.st.start_ns = clock_now_ns();
	s.st.total_bytes = s.mem->size;

	/* With tls-creds the handshake is part of the connect (channel_tls.c). */
	rc = channel_connect_opts(uri, SRC_CONNECT_TIMEOUT_MS, &copts, &s.ch, &err);
	if (rc)
		goto out;
	channel_get_security(s.ch, &s.st.tls);
	s.ch->timeout_ms = SRC_IO_TIMEOUT_MS;
	s.ch->trace = m->trace;
	pthread_mutex_lock(&m->lock);
	m->ch = s.ch;
	if (m->cancel)
		channel_cancel(s.ch);
	pthread_mutex_unlock(&m->lock);

	rc = stream_writer_init(&s.w, s.ch, STREAM_MIGRATION, &err);
	if (rc)
		goto out;
	ram_stream_header(s.mem, vm_ncpus(m->vm), vm_cpuid_digest(m->vm),
			  src_is_file(uri) ? 0 : STREAM_FEAT_RETURN_PATH, &h);
	if ((s.mfd_channels || postcopy) && !src_is_file(uri)) {
		/* A session id per migration: the destination refuses data or
		 * post-copy channels of any other (docs/stream-format.md). */
		if (getrandom(&h.session, sizeof(h.session), 0) != sizeof(h.session)) {
			rc = ferr_errno(&err, -errno, "getrandom for the session id");
			goto out;
		}
		h.channel = 0;
		if (s.mfd_channels) {
			h.features |= STREAM_FEAT_MULTIFD;
			h.nchannels = s.mfd_channels;
		}
		if (postcopy)
			h.features |= STREAM_FEAT_POSTCOPY;
	}
	rc = stream_write_header(&s.w, &h, &err);
	if (rc)
		goto out;
	s.st.setup_done_ns = clock_now_ns();
	if (src_is_file(uri))
		rc = snapshot_save(&s, &err);
	else
		rc = mig_precopy(&s, &h, &err);
out:
	s.st.end_ns = clock_now_ns();
	mig_publish(m, &s.st);
	if (s.w.ch)
		stream_writer_destroy(&s.w);
	pthread_mutex_lock(&m->lock);
	m->ch = NULL;
	pthread_mutex_unlock(&m->lock);
	if (s.ch) {
		/* A snapshot only counts once it is on disk. */
		if (!rc && src_is_file(uri) && s.ch->fd >= 0 && fdatasync(s.ch->fd) < 0)
			rc = ferr_errno(&err, -errno, "%s: flushing to disk", uri);
		channel_close(s.ch);
	}
	if (rc) {
		if (src_is_file(uri))
			unlink(uri + 5); /* no half-written snapshot that looks like one */
		/* A failed migration leaves the VM running where it was. */
		mig_src_resume_state(&s);
		mig_release_guest(m, true);
		mig_fail(m, &err);
	} else {
		/* A snapshot leaves the guest here, paused (as QEMU); a live
		 * migration already gave it away (mig_guest_gone). */
		if (src_is_file(uri))
			mig_src_resume_state(&s);
		mig_release_guest(m, false);
		mig_progress(m, "saving", 1, 1);
		mig_end_status(m, MIG_COMPLETED);
	}
	return NULL;
}
