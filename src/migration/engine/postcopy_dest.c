// SPDX-License-Identifier: GPL-2.0-only
/*
 * The destination's post-copy (postcopy.h): the missing set, the
 * userfaultfd, the fault thread and the receiver of answered requests.
 *
 * The invariant: a page is in @missing until its verified contents are in
 * guest memory.  A page is cleared only after UFFDIO_COPY (or ZEROPAGE)
 * placed it or found it already there, so a fault on a page outside the
 * set is a page that was never sent (the source found it zero or never
 * touched) and is filled with zeros at once, without asking.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "migration/engine/engine.h"
#include "migration/engine/postcopy.h"
#include "migration/engine/ram.h"
#include "migration/transport/channel.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define PCD_SAMPLES   65536u /* fault latencies kept for exact percentiles */
#define PCD_FAULT_MSG 64     /* uffd messages read at once */

struct pcd {
	struct migration *m;
	const struct gmem *mem;
	uint64_t npages;
	/* The post-copy channel: reader (receiver thread), writer (fault thread). */
	struct channel *ch;
	struct stream_reader r;
	struct stream_writer w;
	bool have_r, have_w;
	int uffd, stop_fd; /* -1: not armed */
	pthread_t fault_thread, recv_thread;
	bool fault_started, recv_started;
	/* Words changed with atomics by every installer; set by the loader. */
	_Atomic uint64_t *missing;
	_Atomic uint64_t nmissing;
	/* The fault thread's own: pages already asked for, and when. */
	struct bitmap requested;
	/* Fault time per requested page (0: none pending); exchanged by installers. */
	_Atomic uint64_t *fault_ns;
	/* The vCPU (+1) that faulted first on a requested page; 0: not a vCPU. */
	_Atomic uint16_t *fault_vcpu;
	void *buf; /* the receiver's batch data */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* nmissing reaching 0, or a failure */
	/* The fault thread's while it runs, else its starter's: whether the
	 * channel can take requests (false while paused), and whether to ask
	 * again, at start, for every page requested and still missing. */
	bool linked, resend;
	/* Under lock. */
	struct ferr failed; /* fatal: guest memory cannot be served any more */
	struct ferr link;   /* the post-copy channel broke: a pause, not the end */
	struct mig_postcopy_stats st;
	uint64_t *samples;
	uint64_t nsamples;
	uint64_t paused_at_ns; /* CLOCK_MONOTONIC of the last pcd_pause() */
};

static bool pcd_test_missing(struct pcd *p, uint64_t i)
{
	return atomic_load(&p->missing[i / 64]) >> (i % 64) & 1;
}

static void pcd_fail(struct pcd *p, const struct ferr *err, bool fatal)
{
	pthread_mutex_lock(&p->lock);
	struct ferr *slot = fatal ? &p->failed : &p->link;
	if (!ferr_is_set(slot))
		*slot = *err;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void pcd_latency(struct pcd *p, uint64_t ns, int vcpu)
{
	uint64_t us = ns / 1000;
	unsigned k = 0;

	while (k + 1 < MIG_PC_HIST && (us >> (k + 1)))
		k++;
	pthread_mutex_lock(&p->lock);
	struct mig_postcopy_stats *s = &p->st;
	s->lat_hist[k]++;
	if (!s->lat_count || ns < s->lat_min)
		s->lat_min = ns;
	if (ns > s->lat_max)
		s->lat_max = ns;
	s->lat_sum += ns;
	s->lat_count++;
	if (p->nsamples < PCD_SAMPLES)
		p->samples[p->nsamples++] = ns;
	if (vcpu >= 0) {
		s->blocktime_ns += ns;
		if (vcpu < MIG_PC_VCPUS)
			s->vcpu_blocktime_ns[vcpu] += ns;
	}
	pthread_mutex_unlock(&p->lock);
}

/* Page @i is in place (copied by us or found there): it leaves the missing set. */
static void pcd_placed(struct pcd *p, uint64_t i)
{
	uint64_t bit = 1ull << (i % 64);
	if (!(atomic_fetch_and(&p->missing[i / 64], ~bit) & bit))
		return; /* another installer won */
	uint64_t t = atomic_exchange(&p->fault_ns[i], 0);
	if (t) {
		uint64_t now = clock_now_ns();
		pcd_latency(p, now > t ? now - t : 0, (int)atomic_load(&p->fault_vcpu[i]) - 1);
	}
	if (atomic_fetch_sub(&p->nmissing, 1) == 1) {
		pthread_mutex_lock(&p->lock);
		p->st.owned_ns = clock_now_ns() - p->st.start_ns;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}

/* One ioctl for pages [@i, @i + @n): 0, or the pages placed before it stopped. */
static int pcd_copy(struct pcd *p, uint64_t i, uint64_t n, const void *data, uint64_t *done)
{
	uintptr_t dst = (uintptr_t)ram_page_ptr(p->mem, i);
	int rc;

	if (data) {
		struct uffdio_copy c = {
		    .dst = dst, .src = (uintptr_t)data, .len = n * GMEM_PAGE_SIZE};
		rc = ioctl(p->uffd, UFFDIO_COPY, &c);
		*done = c.copy > 0 ? (uint64_t)c.copy / GMEM_PAGE_SIZE : 0;
	} else {
		struct uffdio_zeropage z = {.range = {.start = dst, .len = n * GMEM_PAGE_SIZE}};
		rc = ioctl(p->uffd, UFFDIO_ZEROPAGE, &z);
		*done = z.zeropage > 0 ? (uint64_t)z.zeropage / GMEM_PAGE_SIZE : 0;
	}
	if (rc == 0)
		*done = n;
	return rc < 0 ? -errno : 0;
}

int pcd_place_run(struct pcd *p, uint64_t i, uint64_t n, const void *data, struct ferr *err)
{
	while (n) {
		/* The longest stretch still missing goes in one ioctl; a page
		 * here already stays (the guest may have written it since). */
		uint64_t run = 0;
		while (run < n && pcd_test_missing(p, i + run))
			run++;
		if (run) {
			uint64_t done = 0;
			int rc = pcd_copy(p, i, run, data, &done);
			for (uint64_t k = 0; k < done; k++)
				pcd_placed(p, i + k);
			if (rc == -EEXIST || rc == -EAGAIN) {
				/* Placed meanwhile by the other installer: that page is
				 * done, the rest of the stretch goes on. */
				if (rc == -EEXIST)
					pcd_placed(p, i + done++);
			} else if (rc) {
				return ferr_errno(
				    err, rc, "placing page %" PRIu64 " of guest memory (%s)",
				    i + done, data ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE");
			}
			run = done;
		} else {
			run = 1; /* here already */
		}
		i += run;
		n -= run;
		if (data)
			data = (const char *)data + run * GMEM_PAGE_SIZE;
	}
	return 0;
}

int pcd_place(struct pcd *p, uint64_t i, const void *data, struct ferr *err)
{
	return pcd_place_run(p, i, 1, data, err);
}

/* A page that was never sent: zeros, at once (and wake whoever faulted). */
static int pcd_fill_zero(struct pcd *p, uintptr_t addr, struct ferr *err)
{
	struct uffdio_zeropage z = {.range = {.start = addr, .len = GMEM_PAGE_SIZE}};

	if (ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return 0;
	if (errno != EEXIST)
		return ferr_errno(err, -errno, "UFFDIO_ZEROPAGE at %#" PRIxPTR, addr);
	/* Installed meanwhile by a copy: that copy woke the faulting thread
	 * only if it came after the fault; wake it in any case. */
	struct uffdio_range r = {.start = addr, .len = GMEM_PAGE_SIZE};
	if (ioctl(p->uffd, UFFDIO_WAKE, &r) < 0)
		return ferr_errno(err, -errno, "UFFDIO_WAKE at %#" PRIxPTR, addr);
	return 0;
}

/*
 * Send the requests gathered in @req.  A channel that breaks is a pause,
 * not a failure: the pages stay in @requested, to be asked for again on
 * the next channel, and faults on pages never sent are still filled.
 */
static void pcd_request(struct pcd *p, struct stream_msg *req)
{
	struct ferr err = FERR_INIT;

	if (req->page_request.count && p->linked && stream_write_msg(&p->w, req, &err)) {
		ferr_prefix(&err, "post-copy channel: ");
		pcd_fail(p, &err, false);
		p->linked = false;
	}
	req->page_request.count = 0;
}

/* On a new channel: ask again for every page asked for and still missing. */
static void pcd_resend(struct pcd *p, struct stream_msg *req)
{
	for (uint64_t i = bitmap_next_set(&p->requested, 0); i < p->npages;
	     i = bitmap_next_set(&p->requested, i + 1)) {
		if (!pcd_test_missing(p, i))
			continue;
		req->page_request.gfn[req->page_request.count++] = ram_page_gfn(p->mem, i);
		if (req->page_request.count == STREAM_BATCH_MAX_PAGES)
			pcd_request(p, req);
	}
	pcd_request(p, req);
}

/* The fault thread: every fault becomes a zero fill or a request. */
static void *pcd_fault_thread(void *arg)
{
	struct pcd *p = arg;
	struct uffd_msg msgs[PCD_FAULT_MSG];
	struct stream_msg req = {.type = STREAM_MSG_POSTCOPY_PAGE_REQUEST};
	struct ferr err = FERR_INIT;
	uintptr_t base = (uintptr_t)p->mem->base;
	int rc = 0;

	if (p->resend) {
		p->resend = false;
		pcd_resend(p, &req);
	}
	while (!rc) {
		struct pollfd pfd[2] = {{p->uffd, POLLIN, 0}, {p->stop_fd, POLLIN, 0}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = ferr_errno(&err, -errno, "poll on the userfaultfd");
			break;
		}
		if (pfd[1].revents)
			break;
		ssize_t n = read(p->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rc = ferr_errno(&err, -errno, "reading the userfaultfd");
			break;
		}
		uint64_t now = clock_now_ns();
		for (size_t k = 0; !rc && k < (size_t)n / sizeof(msgs[0]); k++) {
			if (msgs[k].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uintptr_t addr = (uintptr_t)msgs[k].arg.pagefault.address &
					 ~(uintptr_t)(GMEM_PAGE_SIZE - 1);
			uint64_t i = (addr - base) / GMEM_PAGE_SIZE;
			if (addr < base || i >= p->npages) {
				rc = ferr_set(&err, -EFAULT,
					      "a fault outside guest memory at %#" PRIxPTR, addr);
				break;
			}
			if (!pcd_test_missing(p, i)) {
				rc = pcd_fill_zero(p, addr, &err);
				continue;
			}
			if (bitmap_test(&p->requested, i))
				continue; /* asked already: its answer wakes every waiter */
			bitmap_set(&p->requested, i);
			int vcpu = vm_vcpu_of_tid(p->m->vm, (int)msgs[k].arg.pagefault.feat.ptid);
			atomic_store(&p->fault_vcpu[i], (uint16_t)(vcpu + 1));
			atomic_store(&p->fault_ns[i], now);
			/*
			 * An installer clears the page's bit, then takes its fault time:
			 * one placed between our check and our store above missed it,
			 * so the time is taken here (the vCPU is already awake).
			 */
			if (!pcd_test_missing(p, i)) {
				uint64_t t = atomic_exchange(&p->fault_ns[i], 0);
				if (t)
					pcd_latency(p, clock_now_ns() - t, vcpu);
			}
			pthread_mutex_lock(&p->lock);
			p->st.requests++;
			pthread_mutex_unlock(&p->lock);
			req.page_request.gfn[req.page_request.count++] = ram_page_gfn(p->mem, i);
			if (req.page_request.count == STREAM_BATCH_MAX_PAGES)
				pcd_request(p, &req);
		}
		if (!rc)
			pcd_request(p, &req);
	}
	if (rc) {
		ferr_prefix(&err, "post-copy fault handling: ");
		pcd_fail(p, &err, true);
	}
	return NULL;
}

/* The receiver: answers to requests, installed as they arrive. */
static void *pcd_recv_thread(void *arg)
{
	struct pcd *p = arg;
	struct stream_page_batch *b = malloc(sizeof(*b));
	struct stream_record rec;
	struct ferr err = FERR_INIT;
	int rc = b ? 0 : ferr_set(&err, -ENOMEM, "out of memory");
	bool fatal = rc != 0; /* the channel's failures are a pause; placing's are the end */

	while (!rc) {
		rc = stream_next_record(&p->r, &rec, &err);
		if (rc)
			break;
		if (rec.type != STREAM_REC_PAGE_BATCH) {
			rc = ferr_set(&err, -EPROTO,
				      "record %" PRIu64 ": %s on the post-copy channel", rec.number,
				      stream_type_name(rec.type));
			break;
		}
		rc = stream_read_page_batch_verified(&p->r, p->buf, STREAM_BATCH_MAX_DATA, b, &err);
		for (uint32_t k = 0; !rc && k < b->count; k++) {
			uint64_t i = ram_gfn_page(p->mem, b->gfn[k]);
			if (i == UINT64_MAX)
				rc = ferr_set(&err, -EPROTO, "frame %#" PRIx64 " is not RAM",
					      b->gfn[k]);
			else if ((rc = pcd_place(p, i, b->data[k], &err)))
				fatal = true;
		}
	}
	free(b);
	/* Stopped by pcd_disarm()/pcd_pause()/pcd_stop() (cancelled channel): not a failure. */
	if (rc && rc != -ECANCELED) {
		ferr_prefix(&err, "post-copy channel: ");
		pcd_fail(p, &err, fatal);
	}
	return NULL;
}

bool pcd_same_session(const struct stream_header *h, const struct stream_header *main,
		      uint32_t want)
{
	return h->channel == want && h->session == main->session &&
	       stream_header_same_guest(h, main);
}

/* Accept the post-copy channel (@resume: of a resumed session), its reader
 * and writer set up; the receiver is not started. */
static int pcd_attach(struct pcd *p, struct channel_listener *l, const struct stream_header *main,
		      bool resume, int timeout_ms, struct ferr *err)
{
	struct stream_header h;
	int rc;

	/* migrate-cancel (or migrate-pause) cancels the listener: -ECANCELED. */
	rc = channel_accept(l, timeout_ms, &p->ch, err);
	if (rc == -ETIMEDOUT || rc == -ETIME)
		return ferr_set(err, -ETIMEDOUT,
				"the source did not open the post-copy channel within %d s",
				timeout_ms / 1000);
	if (rc)
		return rc;
	p->ch->timeout_ms = 5000; /* for the header */
	rc = stream_reader_init(&p->r, p->ch, STREAM_MIGRATION, err);
	if (rc)
		return rc;
	p->have_r = true;
	rc = stream_read_header(&p->r, &h, err);
	if (!rc && (!pcd_same_session(&h, main, STREAM_CHANNEL_POSTCOPY) ||
		    !(h.features & STREAM_FEAT_RESUME) != !resume))
		rc = ferr_set(err, -EPROTO,
			      "the connection after READY is not this migration's %spost-copy "
			      "channel (channel %" PRIu32 ", session %016" PRIx64 ")",
			      resume ? "resumed " : "", h.channel, h.session);
	if (!rc)
		rc = stream_writer_init(&p->w, p->ch, STREAM_RETURN, err);
	if (!rc) {
		p->have_w = true;
		rc = stream_writer_set_header(&p->w, &h, err);
	}
	p->ch->timeout_ms = 30000;
	p->ch->rd_timeout_ms = -1; /* silent until the switch */
	p->ch->trace = p->m->trace;
	return rc;
}

static int pcd_start_receiver(struct pcd *p, struct ferr *err)
{
	int rc = -pthread_create(&p->recv_thread, NULL, pcd_recv_thread, p);

	if (rc)
		return ferr_errno(err, rc, "cannot start the post-copy receiver thread");
	p->recv_started = true;
	return 0;
}

int pcd_accept(struct migration *m, struct channel_listener *l, const struct stream_header *main,
	       const struct gmem *mem, int timeout_ms, struct pcd **out, struct ferr *err)
{
	struct pcd *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return ferr_set(err, -ENOMEM, "out of memory");
	p->m = m;
	p->mem = mem;
	p->npages = mem->size / GMEM_PAGE_SIZE;
	p->uffd = p->stop_fd = -1;
	p->linked = true;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->missing = calloc(BITMAP_WORDS(p->npages), sizeof(*p->missing));
	p->fault_ns = calloc(p->npages, sizeof(*p->fault_ns));
	p->fault_vcpu = calloc(p->npages, sizeof(*p->fault_vcpu));
	p->samples = malloc(PCD_SAMPLES * sizeof(*p->samples));
	p->buf = malloc(STREAM_BATCH_MAX_DATA);
	*out = p;
	if (!p->missing || !p->fault_ns || !p->fault_vcpu || !p->samples || !p->buf ||
	    bitmap_init(&p->requested, p->npages))
		return ferr_set(err, -ENOMEM, "out of memory for the post-copy page sets");
	p->st.nvcpus = vm_ncpus(m->vm);
	rc = pcd_attach(p, l, main, false, timeout_ms, err);
	if (!rc)
		rc = pcd_start_receiver(p, err);
	return rc;
}

int pcd_discard(struct pcd *p, const struct stream_discard *d, struct ferr *err)
{
	for (uint32_t w = 0; w < d->nwords; w++)
		for (uint64_t bits = d->bits[w]; bits; bits &= bits - 1) {
			uint64_t gfn = d->first + 64ull * w + (uint64_t)__builtin_ctzll(bits);
			uint64_t i = ram_gfn_page(p->mem, gfn);
			if (i == UINT64_MAX)
				return ferr_set(err, -EPROTO,
						"DISCARD: frame %#" PRIx64 " is not RAM", gfn);
			uint64_t bit = 1ull << (i % 64);
			if (!(atomic_fetch_or(&p->missing[i / 64], bit) & bit))
				atomic_fetch_add(&p->nmissing, 1);
		}
	return 0;
}

static int pcd_start_fault_thread(struct pcd *p, struct ferr *err)
{
	uint64_t v;

	/* A stop request left over from a previous run would end this one. */
	while (read(p->stop_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	int rc = -pthread_create(&p->fault_thread, NULL, pcd_fault_thread, p);
	if (rc)
		return ferr_errno(err, rc, "cannot start the post-copy fault thread");
	p->fault_started = true;
	return 0;
}

int pcd_arm(struct pcd *p, struct bitmap *written, struct ferr *err)
{
	uint64_t run = 0, nrun = 0;
	int rc;

	/*
	 * Stale copies go: every discarded page faults from now on.  Not only
	 * those this load wrote (@written): a page it zeroed is still mapped,
	 * and UFFDIO_COPY would leave that zero page in place.
	 */
	for (uint64_t i = 0; i <= p->npages; i++) {
		bool drop = i < p->npages && pcd_test_missing(p, i);
		if (drop) {
			bitmap_clear(written, i);
			if (!nrun)
				run = i;
			nrun++;
			continue;
		}
		if (nrun &&
		    madvise(ram_page_ptr(p->mem, run), nrun * GMEM_PAGE_SIZE, MADV_DONTNEED) < 0)
			return ferr_errno(err, -errno, "dropping %" PRIu64 " stale pages", nrun);
		nrun = 0;
	}
	p->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (p->uffd < 0)
		return ferr_errno(err, -errno,
				  "userfaultfd (post-copy needs it: root, or "
				  "vm.unprivileged_userfaultfd=1)");
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
	if (ioctl(p->uffd, UFFDIO_API, &api) < 0)
		return ferr_errno(err, -errno, "UFFDIO_API");
	struct uffdio_register reg = {
	    .range = {.start = (uintptr_t)p->mem->base, .len = p->mem->size},
	    .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(p->uffd, UFFDIO_REGISTER, &reg) < 0)
		return ferr_errno(err, -errno, "registering guest memory with the userfaultfd");
	if (!(reg.ioctls & (1ull << _UFFDIO_COPY)) || !(reg.ioctls & (1ull << _UFFDIO_ZEROPAGE)))
		return ferr_set(err, -EOPNOTSUPP, "the userfaultfd cannot copy into guest memory");
	p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_fd < 0)
		return ferr_errno(err, -errno, "eventfd");
	bitmap_zero(&p->requested);
	rc = pcd_start_fault_thread(p, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	p->st.discarded = atomic_load(&p->nmissing);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pcd_stop_fault_thread(struct pcd *p)
{
	if (p->fault_started) {
		uint64_t one = 1;
		/* An eventfd takes a write of 1 unless its counter is at 2^64 - 2. */
		if (write(p->stop_fd, &one, sizeof(one)) != sizeof(one))
			abort();
		pthread_join(p->fault_thread, NULL);
		p->fault_started = false;
	}
}

/* The fault thread and the userfaultfd go; the receiver stays. */
static void pcd_unarm(struct pcd *p)
{
	pcd_stop_fault_thread(p);
	if (p->uffd >= 0) {
		struct uffdio_range r = {.start = (uintptr_t)p->mem->base, .len = p->mem->size};
		ioctl(p->uffd, UFFDIO_UNREGISTER, &r);
		close(p->uffd);
		p->uffd = -1;
	}
	if (p->stop_fd >= 0) {
		close(p->stop_fd);
		p->stop_fd = -1;
	}
}

void pcd_disarm(struct pcd *p)
{
	/* Nothing ran here: no fault is pending, and no answer comes before GO. */
	pcd_unarm(p);
	for (uint64_t w = 0; w < BITMAP_WORDS(p->npages); w++)
		atomic_store(&p->missing[w], 0);
	atomic_store(&p->nmissing, 0);
	pthread_mutex_lock(&p->lock);
	p->st = (struct mig_postcopy_stats){.nvcpus = p->st.nvcpus};
	pthread_mutex_unlock(&p->lock);
}

void pcd_go(struct pcd *p)
{
	pthread_mutex_lock(&p->lock);
	p->st.active = true;
	p->st.start_ns = clock_now_ns();
	if (!atomic_load(&p->nmissing))
		p->st.owned_ns = 1; /* nothing was missing */
	pthread_mutex_unlock(&p->lock);
}

/* Under lock: the fatal failure first, else the channel's. */
static int pcd_failed_locked(struct pcd *p, bool *fatal, struct ferr *err)
{
	*fatal = ferr_is_set(&p->failed);
	if (*fatal)
		return ferr_set(err, p->failed.code, "%s", p->failed.msg);
	if (ferr_is_set(&p->link))
		return ferr_set(err, p->link.code ? p->link.code : -EPIPE, "%s", p->link.msg);
	return 0;
}

int pcd_check(struct pcd *p, bool *fatal, struct ferr *err)
{
	pthread_mutex_lock(&p->lock);
	int rc = pcd_failed_locked(p, fatal, err);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int pcd_wait_owned(struct pcd *p, bool *fatal, struct ferr *err)
{
	int rc;

	*fatal = false;
	pthread_mutex_lock(&p->lock);
	while (atomic_load(&p->nmissing) && !ferr_is_set(&p->failed) && !ferr_is_set(&p->link) &&
	       !p->m->cancel)
		pthread_cond_wait(&p->cond, &p->lock);
	rc = pcd_failed_locked(p, fatal, err);
	if (!rc && atomic_load(&p->nmissing))
		rc = ferr_set(err, -ECANCELED, "incoming migration cancelled");
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* ---- recovery (docs/postcopy.md, "Recovery") ---- */

/* The channel goes; the fault thread goes on without it. */
static void pcd_unlink(struct pcd *p)
{
	struct ferr err = FERR_INIT;

	/* The fault thread owns the writer: stopped while the channel goes. */
	pcd_stop_fault_thread(p);
	if (p->recv_started) {
		channel_cancel(p->ch);
		pthread_join(p->recv_thread, NULL);
		p->recv_started = false;
	}
	if (p->have_w)
		stream_writer_destroy(&p->w);
	if (p->have_r)
		stream_reader_destroy(&p->r);
	p->have_w = p->have_r = false;
	if (p->ch)
		channel_close(p->ch);
	p->ch = NULL;
	pthread_mutex_lock(&p->lock);
	ferr_clear(&p->link);
	pthread_mutex_unlock(&p->lock);
	/* Faults go on being read: never-sent pages are filled, the rest wait. */
	p->linked = false;
	if (p->uffd >= 0 && pcd_start_fault_thread(p, &err))
		pcd_fail(p, &err, true);
}

void pcd_pause(struct pcd *p)
{
	pcd_unlink(p);
	pthread_mutex_lock(&p->lock);
	p->st.pauses++;
	p->paused_at_ns = clock_now_ns();
	pthread_mutex_unlock(&p->lock);
}

static uint64_t pcd_missing_next(const void *set, uint64_t from)
{
	const struct pcd *p = set;

	for (uint64_t i = from; i < p->npages; i++) {
		uint64_t word = atomic_load(&p->missing[i / 64]) >> (i % 64);
		if (!word) {
			i |= 63; /* the rest of this word is clear */
			continue;
		}
		return i + (uint64_t)__builtin_ctzll(word);
	}
	return p->npages;
}

int pcd_send_missing(struct pcd *p, struct stream_writer *w, struct ferr *err)
{
	struct stream_msg msg = {.type = STREAM_MSG_POSTCOPY_RESUME};
	/* Paused: no installer runs, so the set holds still while it goes out. */
	int rc = ram_write_page_set(w, p->mem, STREAM_MSG_POSTCOPY_MISSING, pcd_missing_next, p,
				    &msg.pc_resume.missing, err);

	return rc ? rc : stream_write_msg(w, &msg, err);
}

int pcd_reattach(struct pcd *p, struct channel_listener *l, const struct stream_header *main,
		 int timeout_ms, struct ferr *err)
{
	int rc = pcd_attach(p, l, main, true, timeout_ms, err);

	if (!rc) {
		pcd_stop_fault_thread(p);
		p->linked = p->resend = true;
		rc = p->uffd >= 0 ? pcd_start_fault_thread(p, err) : 0;
	}
	if (!rc)
		rc = pcd_start_receiver(p, err);
	if (rc) {
		pcd_unlink(p); /* still paused: a clean slate for the next try */
		return rc;
	}
	pthread_mutex_lock(&p->lock);
	p->st.recoveries++;
	p->st.paused_ns += clock_now_ns() - p->paused_at_ns;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int pcd_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void pcd_stats(struct pcd *p, struct mig_postcopy_stats *st)
{
	pthread_mutex_lock(&p->lock);
	*st = p->st;
	st->missing = atomic_load(&p->nmissing);
	uint64_t n = p->nsamples;
	uint64_t *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (copy)
		memcpy(copy, p->samples, n * sizeof(*copy));
	pthread_mutex_unlock(&p->lock);
	if (copy) {
		qsort(copy, n, sizeof(*copy), pcd_cmp);
		st->lat_p50 = copy[(n - 1) / 2];
		st->lat_p99 = copy[(n - 1) * 99 / 100];
		free(copy);
	}
}

bool pcd_supported(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

void pcd_stop(struct pcd *p, bool lost)
{
	if (!p)
		return;
	if (p->recv_started) {
		channel_cancel(p->ch);
		pthread_join(p->recv_thread, NULL);
	}
	if (lost && p->uffd >= 0) {
		/*
		 * Pages still missing may never read as zeros: they become
		 * inaccessible before the userfaultfd goes, so a vCPU waiting on
		 * one (woken by the unregister) or touching one later fails in
		 * KVM instead.  (Kept registered with nobody serving them, a
		 * waiter would never wake, and KVM's own fault workers would hang
		 * the process at exit.)
		 */
		pcd_stop_fault_thread(p);
		uint64_t run = 0, nrun = 0;
		for (uint64_t i = 0; i <= p->npages; i++) {
			if (i < p->npages && pcd_test_missing(p, i)) {
				if (!nrun)
					run = i;
				nrun++;
				continue;
			}
			if (nrun && mprotect(ram_page_ptr(p->mem, run), nrun * GMEM_PAGE_SIZE,
					     PROT_NONE) < 0)
				abort(); /* zeros must never take the place of the guest's data */
			nrun = 0;
		}
	}
	pcd_unarm(p);
	if (p->have_w)
		stream_writer_destroy(&p->w);
	if (p->have_r)
		stream_reader_destroy(&p->r);
	if (p->ch)
		channel_close(p->ch);
	bitmap_destroy(&p->requested);
	free(p->missing);
	free(p->fault_ns);
	free(p->fault_vcpu);
	free(p->samples);
	free(p->buf);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
