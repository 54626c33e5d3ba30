// SPDX-License-Identifier: GPL-2.0-only
/*
 * A snapshot: a migration to a file.  The guest is paused (held, so that
 * nobody runs it while its pages go out straight from its memory), one
 * pass sends what it ever touched, then the state and END.  The figures
 * are a live migration's: one pass, one window.  The file only counts once
 * it is on disk (source.c syncs it) and a failed save removes it.
 */
#include <errno.h>

#include "common/bitmap.h"
#include "common/clock.h"
#include "migration/engine/engine.h"

/* Snapshot: pause, one pass over what the guest touched, state, END. */
int snapshot_save(struct mig_src *s, struct ferr *err)
{
	struct migration *m = s->m;
	struct bitmap todo = {0};
	struct stream_msg end = {.type = STREAM_REC_END};
	uint64_t t0;
	int rc;

	if (bitmap_init(&todo, s->npages)) {
		rc = ferr_set(err, -ENOMEM, "out of memory for the page bitmaps");
		goto out;
	}
	t0 = clock_now_ns();
	/* Pages go out straight from guest memory: nobody may run it meanwhile. */
	rc = mig_hold_guest(
	    m, true, "a snapshot is being saved (the guest can be resumed once it ends)", err);
	if (rc)
		goto out;
	mig_set_status(m, MIG_SETUP, MIG_ACTIVE);
	/* The same figures as a live migration's, for one pass and one window. */
	uint64_t t = clock_now_ns(), bytes0 = s->w.stats.bytes;
	struct mig_downtime_phases ph = {.pause = t - t0};
	bitmap_fill(&todo);
	rc = mig_src_send_pages(s, &todo, true, false, 0, err);
	if (!rc)
		rc =
		    stream_write_msg(&s->w, &(struct stream_msg){.type = STREAM_REC_PASS_END}, err);
	uint64_t dur = clock_now_ns() - t;
	s->st.passes = 1;
	s->st.pass[0] = (struct mig_pass_stats){
	    .pass = 1,
	    .pages = s->st.normal,
	    .zero_pages = s->st.duplicate,
	    .bytes = s->w.stats.bytes - bytes0,
	    .duration_ns = dur,
	    .bandwidth =
		dur ? (uint64_t)((unsigned __int128)(s->w.stats.bytes - bytes0) * 1000000000u / dur)
		    : 0,
	};
	t = clock_now_ns();
	if (!rc)
		rc = mig_src_send_state(s, err);
	if (!rc)
		rc = stream_write_msg(&s->w, &end, err);
	ph.send = clock_now_ns() - t + dur; /* pages, state and END: all of it is the window */
	s->st.phases = ph;
	s->st.transferred = s->w.stats.bytes;
	s->st.downtime_ns = clock_now_ns() - t0;
out:
	bitmap_destroy(&todo);
	return rc;
}
