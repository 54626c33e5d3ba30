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
#include "migration/transport/channel.h"
#include "migration/engine/engine.h"
#include "migration/engine/multifd.h"
#include "migration/engine/postcopy.h"
#include "migration/engine/ram.h"
#include "vm/memory.h"
#include "vm/state.h"
#include "vm/vm.h"

#include "migration/engine/dest_priv.h"

/* ---- the page sink: guest RAM ---- */

static void *ram_direct(struct mig_dest *d, uint64_t gfn)
{
	uint64_t i = ram_gfn_page(d->mem, gfn);

	if (i == UINT64_MAX)
		return NULL;
	bitmap_set(&d->written, i);
	return ram_page_ptr(d->mem, i);
}

static int ram_place(struct mig_dest *d, uint64_t gfn, const void *data, struct ferr *err)
{
	void *p = ram_direct(d, gfn);

	if (!p)
		return ferr_set(err, -EPROTO, "frame %#llx is not RAM", (unsigned long long)gfn);
	memcpy(p, data, GMEM_PAGE_SIZE);
	return 0;
}

/*
 * A fresh VM's memory is zero: only pages this load wrote earlier need
 * clearing, and touching the others would populate them for nothing.
 */
static int ram_place_zero(struct mig_dest *d, uint64_t gfn, struct ferr *err)
{
	uint64_t i = ram_gfn_page(d->mem, gfn);

	if (i == UINT64_MAX)
		return ferr_set(err, -EPROTO, "frame %#llx is not RAM", (unsigned long long)gfn);
	if (bitmap_test(&d->written, i)) {
		memset(ram_page_ptr(d->mem, i), 0, GMEM_PAGE_SIZE);
		bitmap_clear(&d->written, i);
	}
	return 0;
}

/* Post-copy, after GO: through the userfaultfd, verified pages only. */
static int uffd_place(struct mig_dest *d, uint64_t gfn, const void *data, struct ferr *err)
{
	uint64_t i = ram_gfn_page(d->mem, gfn);

	if (i == UINT64_MAX)
		return ferr_set(err, -EPROTO, "frame %#llx is not RAM", (unsigned long long)gfn);
	int rc = pcd_place(d->pcd, i, data, err);
	if (rc)
		d->pc_fatal = true;
	return rc;
}

static int uffd_place_zero(struct mig_dest *d, uint64_t gfn, struct ferr *err)
{
	return uffd_place(d, gfn, NULL, err);
}

/* The bulk stream's pages come in runs: one UFFDIO_COPY (or ZEROPAGE) each. */
static int uffd_place_run(struct mig_dest *d, uint64_t gfn, uint64_t n, const void *data,
			  struct ferr *err)
{
	uint64_t i = ram_gfn_page(d->mem, gfn);

	if (i == UINT64_MAX)
		return ferr_set(err, -EPROTO, "frame %#llx is not RAM", (unsigned long long)gfn);
	int rc = pcd_place_run(d->pcd, i, n, data, err);
	if (rc)
		d->pc_fatal = true;
	return rc;
}

static const struct dest_sink_ops uffd_sink = {.kind = "uffd",
					       .place = uffd_place,
					       .place_zero = uffd_place_zero,
					       .place_run = uffd_place_run};

static const struct dest_sink_ops ram_direct_sink = {
    .kind = "ram-direct", .direct = ram_direct, .place = ram_place, .place_zero = ram_place_zero};
static const struct dest_sink_ops ram_verified_sink = {
    .kind = "ram-verified", .place = ram_place, .place_zero = ram_place_zero};

/* Adapters for the stream's direct reader. */
static void *sink_page(void *opaque, uint64_t gfn)
{
	struct mig_dest *d = opaque;

	return d->sink->direct(d, gfn);
}

static int sink_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	struct mig_dest *d = opaque;
	int rc = 0;

	for (uint64_t k = 0; !rc && k < npages; k++)
		rc = d->sink->place_zero(d, gfn + k, err);
	return rc;
}

/* For multifd receivers: always the direct sink (whatever x-verified-pages
 * says).  Distinct receivers touch distinct chunks, so distinct words of
 * @written (a chunk is whole words): no lock. */
static void *ram_sink_page(void *opaque, uint64_t gfn)
{
	return ram_direct(opaque, gfn);
}

static int ram_sink_zero(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	int rc = 0;

	for (uint64_t k = 0; !rc && k < npages; k++)
		rc = ram_place_zero(opaque, gfn + k, err);
	return rc;
}

struct stream_page_sink dest_ram_sink(struct mig_dest *d)
{
	return (struct stream_page_sink){ram_sink_page, ram_sink_zero, d};
}

/* ---- record handlers ---- */

static int dest_pages(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	if (d->sink->direct) {
		struct stream_page_sink sink = {sink_page, sink_zero, d};
		return stream_read_page_batch(&d->r, &sink, err);
	}
	struct stream_page_batch *b = malloc(sizeof(*b));
	if (!b)
		return ferr_set(err, -ENOMEM, "out of memory");
	int rc = stream_read_page_batch_verified(&d->r, d->buf, DEST_BLOB_MAX, b, err);
	for (uint32_t i = 0, n; !rc && i < b->count; i += n) {
		n = 1;
		if (d->sink->place_run) {
			/* A run: consecutive in RAM, all zero or data back to back. */
			uint64_t first = ram_gfn_page(d->mem, b->gfn[i]);
			while (i + n < b->count && first != UINT64_MAX &&
			       ram_gfn_page(d->mem, b->gfn[i + n]) == first + n &&
			       (b->data[i] ? b->data[i + n] == b->data[i] + n * GMEM_PAGE_SIZE
					   : !b->data[i + n]))
				n++;
			rc = d->sink->place_run(d, b->gfn[i], n, b->data[i], err);
			continue;
		}
		rc = b->data[i] ? d->sink->place(d, b->gfn[i], b->data[i], err)
				: d->sink->place_zero(d, b->gfn[i], err);
	}
	free(b);
	return rc;
}

static int dest_pass_end(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;

	d->st.passes++;
	return stream_read_msg(&d->r, &msg, err);
}

/* A switchover begins: every section must arrive again in this attempt. */
static int dest_prepare(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;
	int rc = stream_read_msg(&d->r, &msg, err);

	if (rc)
		return rc;
	d->st.pause_at_ns = clock_now_ns();
	d->start_paused = msg.switchover.flags & STREAM_SWITCHOVER_PAUSED;
	d->postcopy = msg.switchover.flags & STREAM_SWITCHOVER_POSTCOPY;
	if (d->postcopy && !d->pcd)
		return ferr_set(err, -EPROTO,
				"record %llu: a switch to post-copy without a post-copy channel",
				(unsigned long long)rec->number);
	d->attempts++;
	memset(d->seen, 0, d->nsections * sizeof(*d->seen));
	d->phase = DP_WINDOW;
	return 0;
}

static int dest_state(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct vm *vm = d->m->vm;
	struct stream_blob b;
	enum vm_section_kind kind = rec->type == STREAM_REC_VCPU_STATE ? VM_SECTION_VCPU
				    : rec->type == STREAM_REC_VM_STATE ? VM_SECTION_VM
								       : VM_SECTION_DEVICE;
	unsigned i;
	int rc = stream_read_blob(&d->r, &b, d->buf, DEST_BLOB_MAX, err);

	if (!rc)
		rc = vm_section_find(vm, kind, b.vcpu, b.device, &i, err);
	/* Once per attempt: a second copy would silently replace the first. */
	if (!rc && d->seen[i]) {
		struct vm_section_info sec;
		vm_section_get(vm, i, &sec);
		rc = kind == VM_SECTION_VCPU
			 ? ferr_set(err, -EPROTO, "a second state for vCPU %u", sec.index)
		     : kind == VM_SECTION_VM
			 ? ferr_set(err, -EPROTO, "a second VM state")
			 : ferr_set(err, -EPROTO, "a second state for device '%s'", sec.name);
	}
	if (!rc)
		rc = vm_section_load(vm, i, b.device_version, d->buf, b.len, err);
	if (!rc)
		d->seen[i] = true;
	if (rc)
		ferr_prefix(err, "record %llu: ", (unsigned long long)rec->number);
	return rc;
}

/* The hand-over point: every registered section arrived, and is settled. */
static int dest_sections_complete(struct mig_dest *d, struct ferr *err)
{
	struct vm *vm = d->m->vm;

	for (unsigned i = 0; i < d->nsections; i++) {
		struct vm_section_info sec;
		if (d->seen[i])
			continue;
		vm_section_get(vm, i, &sec);
		switch (sec.kind) {
		case VM_SECTION_VCPU:
			return ferr_set(err, -EPROTO, "the stream ended without state for vCPU %u",
					sec.index);
		case VM_SECTION_VM:
			return ferr_set(err, -EPROTO, "the stream ended without the VM state");
		case VM_SECTION_DEVICE:
			return ferr_set(err, -EPROTO,
					"the stream ended without state for device '%s'", sec.name);
		}
	}
	for (unsigned i = 0; i < d->nsections; i++) {
		int rc = vm_section_post_load(vm, i, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int dest_start_guest(struct mig_dest *d, struct ferr *err);

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

/* The source gave up (ABORT other than RETRY, or ERROR): its reason, in the operator's words. */
static int dest_abandoned(const struct stream_msg *msg, struct ferr *err)
{
	if (msg->type == STREAM_MSG_ERROR)
		return ferr_set(err, -ECONNABORTED, "the source abandoned the migration: %s",
				msg->error.text);
	return ferr_set(err, -ECONNABORTED, "the source abandoned the migration (%s)",
			msg->abort.reason == STREAM_ABORT_CANCELLED ? "cancelled"
			: msg->abort.reason == STREAM_ABORT_TIMEOUT ? "timed out"
								    : "failed");
}

/*
 * After END of a live stream: acknowledge it once the state is loaded and
 * complete, then the source decides.  0: GO.  -EAGAIN: ABORT(RETRY), the
 * source resumed its guest and the stream goes on.  Else the end.
 */
static int dest_switchover(struct mig_dest *d, uint64_t end_record, struct ferr *err)
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
	rc = stream_write_msg(&d->w, &msg, err);
	if (rc)
		return rc;
	rc = stream_next_record(&d->r, &rec, err);
	if (!rc)
		rc = stream_read_msg(&d->r, &msg, err);
	if (rc)
		return rc;
	switch (msg.type) {
	case STREAM_MSG_GO:
		return 0;
	case STREAM_MSG_ABORT:
		if (msg.abort.reason == STREAM_ABORT_RETRY)
			return -EAGAIN;
		return dest_abandoned(&msg, err);
	case STREAM_MSG_ERROR:
		return ferr_set(err, msg.error.code, "the source failed: %s", msg.error.text);
	default:
		return ferr_set(err, -EPROTO, "record %llu: %s after END, expected GO or ABORT",
				(unsigned long long)rec.number, stream_type_name(msg.type));
	}
}

static int dest_end(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;
	int rc = stream_read_msg(&d->r, &msg, err);

	/* Every data channel's pages of this attempt are in (CHANNEL_SYNC). */
	if (!rc && d->mfd)
		rc = mfd_dest_wait_sync(d->mfd, d->m, d->attempts, DEST_IO_TIMEOUT_MS, err);
	if (!rc)
		rc = dest_sections_complete(d, err);
	/* Post-copy: stale pages dropped, guest memory faults to us from now on. */
	if (!rc && d->postcopy)
		rc = pcd_arm(d->pcd, &d->written, err);
	if (rc)
		return rc;
	if (!d->live) {
		/* No return path (a file, or a socket fed a saved stream): END hands it over. */
		d->phase = DP_ENDED;
		return 0;
	}
	rc = dest_switchover(d, rec->number, err);
	if (rc == -EAGAIN) { /* the source rolled back: more passes follow */
		if (d->postcopy)
			pcd_disarm(d->pcd);
		d->postcopy = false;
		d->phase = DP_PASSES;
		return 0;
	}
	if (!rc && d->postcopy) {
		/* The guest runs here now, on the pages that are here.  The data
		 * channels are done: the rest comes through the userfaultfd. */
		mfd_dest_stop(d->mfd);
		d->mfd = NULL;
		d->go = true;
		pcd_go(d->pcd);
		d->sink = &uffd_sink;
		d->phase = DP_POSTCOPY;
		rc = dest_start_guest(d, err);
		if (!rc)
			mig_set_status(d->m, MIG_ACTIVE, MIG_POSTCOPY_ACTIVE);
		return rc;
	}
	if (!rc) {
		d->go = true;
		d->phase = DP_ENDED;
	}
	return rc;
}

static int dest_discard(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;
	int rc = stream_read_msg(&d->r, &msg, err);

	if (!rc && !d->postcopy)
		rc = ferr_set(err, -EPROTO,
			      "record %llu: DISCARD in a switchover that is not post-copy",
			      (unsigned long long)rec->number);
	if (!rc)
		rc = pcd_discard(d->pcd, &msg.discard, err);
	return rc;
}

/*
 * Pages the source will send again, or discard at a switch to post-copy:
 * our copies go now, while the guest still runs there, instead of inside
 * the switch's window (dropping a GiB takes ~50 ms).  Acknowledged once
 * done, so the source can wait for it before it pauses.
 */
static int dest_stale(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;
	int rc = stream_read_msg(&d->r, &msg, err);

	if (!rc)
		rc = ram_drop_pages(d->mem, &msg.discard, err);
	if (rc || !d->live)
		return rc;
	msg = (struct stream_msg){.type = STREAM_MSG_ACK};
	msg.ack.type = STREAM_REC_STALE;
	msg.ack.record = rec->number;
	return stream_write_msg(&d->w, &msg, err);
}

/* Every page was sent: acknowledge once every one of them is here. */
static int dest_postcopy_end(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;
	int rc = stream_read_msg(&d->r, &msg, err);

	if (!rc)
		rc = pcd_wait_owned(d->pcd, &d->pc_fatal, err);
	if (rc)
		return rc;
	msg = (struct stream_msg){.type = STREAM_MSG_ACK};
	msg.ack.type = STREAM_REC_POSTCOPY_END;
	msg.ack.record = rec->number;
	rc = stream_write_msg(&d->w, &msg, err);
	if (!rc)
		d->phase = DP_ENDED;
	return rc;
}

/* ABORT or ERROR between records: a switchover rolled back mid-way (RETRY), or the end. */
static int dest_abort(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	struct stream_msg msg;
	int rc = stream_read_msg(&d->r, &msg, err);

	if (rc)
		return rc;
	if (msg.type == STREAM_MSG_ABORT && msg.abort.reason == STREAM_ABORT_RETRY) {
		d->phase = DP_PASSES;
		return 0;
	}
	return dest_abandoned(&msg, err);
}

/* Which record may come where, and who handles it (Xen's process_record). */
static const struct dest_record {
	uint32_t type;
	unsigned phases;
	int (*handle)(struct mig_dest *d, const struct stream_record *rec, struct ferr *err);
} dest_records[] = {
    {STREAM_REC_PAGE_BATCH, DP_PASSES | DP_WINDOW | DP_POSTCOPY, dest_pages},
    {STREAM_REC_DISCARD, DP_WINDOW, dest_discard},
    {STREAM_REC_STALE, DP_PASSES, dest_stale},
    {STREAM_REC_POSTCOPY_END, DP_POSTCOPY, dest_postcopy_end},
    {STREAM_REC_PASS_END, DP_PASSES, dest_pass_end},
    {STREAM_REC_SWITCHOVER_PREPARE, DP_PASSES, dest_prepare},
    {STREAM_REC_VCPU_STATE, DP_PASSES | DP_WINDOW, dest_state},
    {STREAM_REC_VM_STATE, DP_PASSES | DP_WINDOW, dest_state},
    {STREAM_REC_DEVICE_STATE, DP_PASSES | DP_WINDOW, dest_state},
    {STREAM_REC_END, DP_PASSES | DP_WINDOW, dest_end},
    {STREAM_MSG_ABORT, DP_PASSES | DP_WINDOW, dest_abort},
    {STREAM_MSG_ERROR, DP_PASSES | DP_WINDOW, dest_abort},
};

static int dest_record(struct mig_dest *d, const struct stream_record *rec, struct ferr *err)
{
	const char *name = stream_type_name(rec->type);

	for (size_t i = 0; i < sizeof(dest_records) / sizeof(dest_records[0]); i++) {
		const struct dest_record *h = &dest_records[i];
		if (h->type != rec->type)
			continue;
		if (!(h->phases & d->phase))
			return ferr_set(err, -EPROTO, "record %llu: %s is not expected %s",
					(unsigned long long)rec->number, name,
					d->phase == DP_WINDOW	  ? "inside a switchover"
					: d->phase == DP_POSTCOPY ? "after the switch to post-copy"
								  : "between passes");
		return h->handle(d, rec, err);
	}
	return ferr_set(err, -EPROTO, "record %llu: %s is not expected in a migration stream",
			(unsigned long long)rec->number, name ? name : "a record of unknown type");
}

/* ---- the loader ---- */

/* The guest is ours: confirm (live), then start it. */
static int dest_start_guest(struct mig_dest *d, struct ferr *err)
{
	struct vm *vm = d->m->vm;

	d->started = true;
	if (!d->live)
		return vm_start(vm, err);
	/*
	 * Confirm first, then start the vCPUs: a source that sees the
	 * connection die without this confirmation knows the guest never ran
	 * here and resumes it there.
	 */
	struct stream_msg res = {.type = STREAM_MSG_RESUMED};
	res.resumed.resume_ns = clock_now_ns();
	int rc = stream_write_msg(&d->w, &res, err);
	if (!rc)
		rc = d->start_paused ? vm_start_paused(vm, err) : vm_start(vm, err);
	d->st.downtime_ns = d->st.pause_at_ns ? clock_now_ns() - d->st.pause_at_ns : 0;
	return rc;
}

int mig_dest_load(struct migration *m, struct channel *ch, uint64_t total_hint, struct ferr *err)
{
	struct mig_dest d = {
	    .m = m, .mem = vm_gmem(m->vm), .phase = DP_PASSES, .total_hint = total_hint, .ch = ch};
	struct stream_record rec;
	int rc;

	pthread_mutex_lock(&m->lock);
	d.sink = m->params.x_verified_pages ? &ram_verified_sink : &ram_direct_sink;
	pthread_mutex_unlock(&m->lock);
	d.st.start_ns = clock_now_ns();
	d.st.total_bytes = d.mem->size;
	channel_get_security(ch, &d.st.tls);
	rc = stream_reader_init(&d.r, ch, STREAM_MIGRATION, err);
	if (rc)
		return rc;
	rc = dest_begin(&d, ch, err);
	if (rc)
		goto out;
	mig_set_status(m, MIG_SETUP, MIG_ACTIVE);
	while (d.phase != DP_ENDED) {
		if (mig_cancelled(m)) {
			rc = ferr_set(err, -ECANCELED, "incoming migration cancelled");
			break;
		}
		rc = stream_next_record(&d.r, &rec, err);
		if (!rc)
			rc = dest_record(&d, &rec, err);
		/* (After GO the data channels have nothing more to say.) */
		if (!rc && d.mfd && d.phase != DP_ENDED)
			rc = mfd_dest_check(d.mfd, err);
		if (!rc && d.pcd && d.phase == DP_POSTCOPY) {
			bool fatal = false;
			rc = pcd_check(d.pcd, &fatal, err);
			d.pc_fatal |= fatal;
		}
		/* After GO a broken connection is a pause: the guest runs here
		 * on pages that are still there (docs/postcopy.md, "Recovery"). */
		if (rc && d.phase == DP_POSTCOPY && !d.pc_fatal && mig_pc_breakable(m)) {
			rc = dest_pc_recover(&d, err);
			if (!rc)
				continue;
		}
		if (rc)
			break;
		uint64_t mb = 0, mp = 0, mz = 0;
		mfd_dest_counts(d.mfd, &mb, &mp, &mz);
		d.st.transferred = d.r.stats.bytes + mb;
		d.st.normal = d.r.stats.pages + mp - d.r.stats.zero_pages - mz;
		d.st.duplicate = d.r.stats.zero_pages + mz;
		d.st.multifd_bytes = mb;
		d.st.multifd_channels = d.h.nchannels;
		if (rec.type == STREAM_REC_PAGE_BATCH && d.r.stats.batches % 64 == 0) {
			if (d.pcd)
				pcd_stats(d.pcd, &d.st.postcopy);
			mig_publish(m, &d.st);
			mig_progress(m, "loading", d.r.stats.bytes, total_hint);
		}
	}
	/* A data channel's own failure says more than the main connection's
	 * end (but less than the source's own words: ABORT, ERROR). */
	if (d.mfd && (rc == -EPIPE || rc == -ECONNRESET)) {
		struct ferr merr = FERR_INIT;
		if (mfd_dest_check(d.mfd, &merr))
			*err = merr;
	}
	/* After GO nothing more comes on the data channels. */
	mfd_dest_stop(d.mfd);
	d.mfd = NULL;
	if (!rc && !d.started)
		rc = dest_start_guest(&d, err);
out:
	mfd_dest_stop(d.mfd);
	if (d.pcd) {
		pcd_stats(d.pcd, &d.st.postcopy);
		/*
		 * A post-copy that failed for good after GO lost the guest: the VM
		 * ends here (exit status VM_EXIT_STATUS_LOST) before its missing
		 * pages are made inaccessible, so that a vCPU failing on one cannot
		 * pass for another kind of failure (docs/postcopy.md).
		 */
		if (rc && d.phase == DP_POSTCOPY)
			vm_request_quit(m->vm, "postcopy-failed", false, VM_EXIT_STATUS_LOST);
		pthread_mutex_lock(&m->lock);
		m->pcd = NULL;
		pthread_mutex_unlock(&m->lock);
		pcd_stop(d.pcd, rc && d.phase == DP_POSTCOPY);
		d.pcd = NULL;
		if (rc && d.phase == DP_POSTCOPY)
			ferr_prefix(err, "post-copy failed with %llu pages still on the source: ",
				    (unsigned long long)d.st.postcopy.missing);
	}
	/* Our own failures go back to the source; its abandonment needs no echo. */
	if (rc && d.live && rc != -ECANCELED && rc != -ECONNABORTED)
		dest_report_error(&d.w, err);
	d.st.end_ns = clock_now_ns();
	mig_publish(m, &d.st);
	if (!rc)
		mig_progress(m, "loading", 1, 1);
	dest_drop_conn(&d, false);
	bitmap_destroy(&d.written);
	free(d.buf);
	free(d.seen);
	return rc;
}
