// SPDX-License-Identifier: GPL-2.0-only
/*
 * The destination side: receive a stream into a VM that has not run yet,
 * from a file (restore) or a peer (incoming migration).
 *
 * Page data is written straight into guest memory as it arrives (the
 * stream's direct mode); the record's checksum is checked at its end and a
 * mismatch fails the load before the guest can ever run.  State records
 * are read into a buffer, verified, then handed to the VM.  A frame that
 * arrives several times simply ends up with its last contents.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "migration/channel.h"
#include "migration/mig_priv.h"
#include "migration/ram.h"
#include "vm/memory.h"
#include "vm/state.h"
#include "vm/vm.h"

#define DEST_IO_TIMEOUT_MS 30000
#define DEST_BLOB_MAX	   STREAM_VM_STATE_MAX

struct mig_dest {
	struct migration *m;
	const struct gmem *mem;
	struct bitmap written; /* RAM-order pages this load has written */
	struct mig_stats st;
};

static void *dest_page(void *opaque, uint64_t gfn)
{
	struct mig_dest *d = opaque;
	uint64_t i = ram_gfn_page(d->mem, gfn);

	if (i == UINT64_MAX)
		return NULL;
	bitmap_set(&d->written, i);
	return ram_page_ptr(d->mem, i);
}

/*
 * A fresh VM's memory is zero: only pages this load wrote earlier need
 * clearing, and touching the others would populate them for nothing.
 */
static int dest_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	struct mig_dest *d = opaque;

	for (uint64_t k = 0; k < npages; k++) {
		uint64_t i = ram_gfn_page(d->mem, gfn + k);
		if (i == UINT64_MAX)
			return ferr_set(err, -EPROTO, "frame %#llx is not RAM",
					(unsigned long long)(gfn + k));
		if (bitmap_test(&d->written, i)) {
			memset(ram_page_ptr(d->mem, i), 0, GMEM_PAGE_SIZE);
			bitmap_clear(&d->written, i);
		}
	}
	return 0;
}

static int dest_blob(struct mig_dest *d, struct stream_reader *r, uint32_t type, void *buf,
		     bool *vcpu_seen, bool *vm_seen, struct ferr *err)
{
	struct vm *vm = d->m->vm;
	struct stream_blob b;
	int rc = stream_read_blob(r, &b, buf, DEST_BLOB_MAX, err);

	if (rc)
		return rc;
	switch (type) {
	case STREAM_REC_VCPU_STATE:
		rc = vcpu_state_load(vm, b.vcpu, buf, b.len, err);
		if (!rc)
			vcpu_seen[b.vcpu] = true;
		break;
	case STREAM_REC_VM_STATE:
		rc = vm_state_load(vm, buf, b.len, err);
		*vm_seen = !rc;
		break;
	default:
		rc = vm_device_load(vm, b.device, b.device_version, buf, b.len, err);
		break;
	}
	if (rc)
		ferr_prefix(err, "record %llu: ", (unsigned long long)r->stats.records);
	return rc;
}

/* Tell the source why we give up: its operator should read our reason. */
static void dest_report_error(struct stream_writer *w, const struct ferr *why)
{
	struct stream_msg msg = {.type = STREAM_MSG_ERROR};

	if (!w->ch)
		return;
	msg.error.code = why->code < 0 ? why->code : -EIO;
	snprintf(msg.error.text, sizeof(msg.error.text), "%s", why->msg);
	stream_write_msg(w, &msg, NULL);
}

/*
 * After END: acknowledge it once the state is loaded, then the source
 * decides.  0: GO.  -EAGAIN: ABORT(RETRY), the source resumed its guest
 * and the stream goes on.  Anything else ends the migration.
 */
static int dest_switchover(struct mig_dest *d, struct stream_reader *r, struct stream_writer *w,
			   uint64_t end_record, struct ferr *err)
{
	struct migration *m = d->m;
	struct stream_record rec;
	struct stream_msg msg = {.type = STREAM_MSG_ACK};
	uint64_t delay;
	int rc;

	pthread_mutex_lock(&m->lock);
	delay = m->params.x_load_delay_ms;
	pthread_mutex_unlock(&m->lock);
	/* Test only: a slow destination, which the operator may cancel meanwhile. */
	for (uint64_t end = clock_now_ns() + delay * 1000000u; clock_now_ns() < end;)
		if (!mig_cancelled(m))
			mig_sleep_ns(5000000u);
		else
			break;
	/* Cancelled while loading: the source keeps its guest. */
	if (mig_cancelled(m))
		return ferr_set(err, -ECANCELED, "incoming migration cancelled");
	msg.ack.type = STREAM_REC_END;
	msg.ack.record = end_record;
	rc = stream_write_msg(w, &msg, err);
	if (rc)
		return rc;
	rc = stream_next_record(r, &rec, err);
	if (!rc)
		rc = stream_read_msg(r, &msg, err);
	if (rc)
		return rc;
	switch (msg.type) {
	case STREAM_MSG_GO:
		return 0;
	case STREAM_MSG_ABORT:
		if (msg.abort.reason == STREAM_ABORT_RETRY)
			return -EAGAIN;
		return ferr_set(err, -ECONNABORTED, "the source abandoned the migration (%s)",
				msg.abort.reason == STREAM_ABORT_CANCELLED ? "cancelled"
				: msg.abort.reason == STREAM_ABORT_TIMEOUT ? "timed out"
									   : "failed");
	case STREAM_MSG_ERROR:
		return ferr_set(err, msg.error.code, "the source failed: %s", msg.error.text);
	default:
		return ferr_set(err, -EPROTO, "record %llu: %s after END, expected GO or ABORT",
				(unsigned long long)rec.number, stream_type_name(msg.type));
	}
}

int mig_dest_load(struct migration *m, struct channel *ch, uint64_t total_hint, struct ferr *err)
{
	struct mig_dest d = {.m = m, .mem = vm_gmem(m->vm)};
	struct stream_page_sink sink = {dest_page, dest_zero, &d};
	struct stream_reader r;
	struct stream_writer w = {0};
	struct stream_header h;
	bool live = false, start_paused = false;
	struct stream_record rec;
	struct stream_msg msg;
	bool vcpu_seen[STREAM_MAX_VCPUS] = {0}, vm_seen = false, ended = false;
	void *buf = NULL;
	int rc;

	d.st.start_ns = clock_now_ns();
	d.st.total_bytes = d.mem->size;
	channel_get_security(ch, &d.st.tls);
	rc = stream_reader_init(&r, ch, STREAM_MIGRATION, err);
	if (rc)
		return rc;
	buf = malloc(DEST_BLOB_MAX);
	if (!buf || bitmap_init(&d.written, d.mem->size / GMEM_PAGE_SIZE)) {
		rc = ferr_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	rc = stream_read_header(&r, &h, err);
	if (rc)
		goto out;
	live = h.features & STREAM_FEAT_RETURN_PATH;
	if (live) {
		rc = stream_writer_init(&w, ch, STREAM_RETURN, err);
		if (!rc)
			rc = stream_writer_set_header(&w, &h, err);
		if (rc)
			goto out;
	}
	rc = ram_check_header(d.mem, vm_ncpus(m->vm), vm_cpuid_digest(m->vm), &h, err);
	if (!rc && live) {
		struct stream_msg ready = {.type = STREAM_MSG_READY};
		ready.ready.features = h.features;
		rc = stream_write_msg(&w, &ready, err);
	}
	if (rc)
		goto out;
	mig_set_status(m, MIG_SETUP, MIG_ACTIVE);
	while (!ended && !rc) {
		if (mig_cancelled(m)) {
			rc = ferr_set(err, -ECANCELED, "incoming migration cancelled");
			break;
		}
		rc = stream_next_record(&r, &rec, err);
		if (rc)
			break;
		switch (rec.type) {
		case STREAM_REC_PAGE_BATCH:
			rc = stream_read_page_batch(&r, &sink, err);
			break;
		case STREAM_REC_VCPU_STATE:
		case STREAM_REC_VM_STATE:
		case STREAM_REC_DEVICE_STATE:
			rc = dest_blob(&d, &r, rec.type, buf, vcpu_seen, &vm_seen, err);
			break;
		case STREAM_REC_PASS_END:
			rc = stream_read_msg(&r, &msg, err);
			d.st.passes++;
			break;
		case STREAM_REC_SWITCHOVER_PREPARE:
			rc = stream_read_msg(&r, &msg, err);
			d.st.pause_at_ns = clock_now_ns();
			start_paused = msg.switchover.flags & STREAM_SWITCHOVER_PAUSED;
			break;
		case STREAM_REC_END:
			rc = stream_read_msg(&r, &msg, err);
			if (rc || !live) {
				ended = !rc;
				break;
			}
			rc = dest_switchover(&d, &r, &w, rec.number, err);
			ended = rc == 0;
			if (rc == -EAGAIN) /* the source rolled back: more passes follow */
				rc = 0;
			break;
		case STREAM_MSG_ABORT:
		case STREAM_MSG_ERROR:
			/* Before END: a switchover rolled back mid-way (RETRY), or the end. */
			rc = stream_read_msg(&r, &msg, err);
			if (!rc && (msg.type == STREAM_MSG_ERROR ||
				    msg.abort.reason != STREAM_ABORT_RETRY))
				rc = ferr_set(err, -ECONNABORTED,
					      "the source abandoned the migration%s%s",
					      msg.type == STREAM_MSG_ERROR ? ": " : "",
					      msg.type == STREAM_MSG_ERROR ? msg.error.text : "");
			break;
		default:
			rc = ferr_set(err, -EPROTO, "record %llu: %s is not expected in a %s",
				      (unsigned long long)rec.number,
				      stream_type_name(rec.type) ? stream_type_name(rec.type)
								 : "record",
				      "migration stream");
			break;
		}
		d.st.transferred = r.stats.bytes;
		d.st.normal = r.stats.pages - r.stats.zero_pages;
		d.st.duplicate = r.stats.zero_pages;
		if (rec.type == STREAM_REC_PAGE_BATCH && r.stats.batches % 64 == 0) {
			mig_publish(m, &d.st);
			mig_progress(m, "loading", r.stats.bytes, total_hint);
		}
	}
	if (rc)
		goto out;
	for (unsigned i = 0; i < h.vcpu_count; i++)
		if (!vcpu_seen[i]) {
			rc =
			    ferr_set(err, -EPROTO, "the stream ended without state for vCPU %u", i);
			goto out;
		}
	if (!vm_seen)
		rc = ferr_set(err, -EPROTO, "the stream ended without the VM state");
	if (!rc && !live) {
		/* No return path (a file, or a socket fed a saved stream): END hands it over. */
		rc = vm_start(m->vm, err);
	} else if (!rc && live) {
		/*
		 * GO: the guest is ours.  Confirm first, then start the vCPUs: a
		 * source that sees the connection die without this confirmation
		 * knows the guest never ran here and resumes it there.
		 */
		struct stream_msg res = {.type = STREAM_MSG_RESUMED};
		res.resumed.resume_ns = clock_now_ns();
		rc = stream_write_msg(&w, &res, err);
		if (!rc)
			rc = start_paused ? vm_start_paused(m->vm, err) : vm_start(m->vm, err);
		d.st.downtime_ns = d.st.pause_at_ns ? clock_now_ns() - d.st.pause_at_ns : 0;
	}
out:
	/* Our own failures go back to the source; its abandonment needs no echo. */
	if (rc && live && rc != -ECANCELED && rc != -ECONNABORTED)
		dest_report_error(&w, err);
	if (w.ch)
		stream_writer_destroy(&w);
	d.st.end_ns = clock_now_ns();
	mig_publish(m, &d.st);
	if (!rc)
		mig_progress(m, "loading", 1, 1);
	bitmap_destroy(&d.written);
	free(buf);
	stream_reader_destroy(&r);
	return rc;
}

static bool dest_is_file(const char *uri)
{
	return strncmp(uri, "file:", 5) == 0;
}

void *mig_dest_thread(void *arg)
{
	struct migration *m = arg;
	struct channel_listener *l = NULL;
	struct channel *ch = NULL;
	struct ferr err = FERR_INIT;
	char uri[sizeof(m->uri)];
	uint64_t total = 0;
	struct stat sb;
	int rc;

	pthread_mutex_lock(&m->lock);
	memcpy(uri, m->uri, sizeof(uri));
	pthread_mutex_unlock(&m->lock);
	if (dest_is_file(uri) && stat(uri + 5, &sb) == 0)
		total = (uint64_t)sb.st_size;

	/* migration_incoming() is already listening. */
	pthread_mutex_lock(&m->lock);
	l = m->listener;
	if (m->cancel)
		channel_listener_cancel(l);
	pthread_mutex_unlock(&m->lock);
	rc = channel_accept(l, -1, &ch, &err);
	if (rc)
		goto out;
	ch->timeout_ms = DEST_IO_TIMEOUT_MS;
	pthread_mutex_lock(&m->lock);
	m->ch = ch;
	if (m->cancel)
		channel_cancel(ch);
	pthread_mutex_unlock(&m->lock);

	rc = mig_dest_load(m, ch, total, &err);
out:
	pthread_mutex_lock(&m->lock);
	m->ch = NULL;
	m->listener = NULL;
	pthread_mutex_unlock(&m->lock);
	if (ch)
		channel_close(ch);
	if (l)
		channel_listener_close(l);
	if (rc) {
		ferr_prefix(&err, "incoming migration from %s failed: ", uri);
		mig_fail(m, &err);
	} else {
		mig_end_status(m, MIG_COMPLETED);
	}
	return NULL;
}

int mig_read_file_header(const char *path, struct stream_header *h, struct ferr *err)
{
	char uri[4096];
	struct channel_listener *l = NULL;
	struct channel *ch = NULL;
	struct stream_reader r;
	int rc;

	snprintf(uri, sizeof(uri), "file:%s", path);
	rc = channel_listen(uri, &l, err);
	if (!rc)
		rc = channel_accept(l, -1, &ch, err);
	if (!rc)
		rc = stream_reader_init(&r, ch, STREAM_MIGRATION, err);
	if (!rc) {
		rc = stream_read_header(&r, h, err);
		stream_reader_destroy(&r);
	}
	if (ch)
		channel_close(ch);
	if (l)
		channel_listener_close(l);
	return rc;
}
