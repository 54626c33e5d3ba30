// SPDX-License-Identifier: GPL-2.0-only
/*
 * The destination's connections (dest_priv.h): the first connection's
 * handshake and its data and post-copy channels, post-copy's reconnections
 * after a break (docs/postcopy.md, "Recovery"), and the thread that
 * accepts a migration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "migration/engine/dest_priv.h"
#include "migration/engine/multifd.h"
#include "migration/engine/postcopy.h"
#include "migration/engine/ram.h"
#include "migration/transport/channel.h"
#include "vm/memory.h"
#include "vm/state.h"
#include "vm/vm.h"

int dest_begin(struct mig_dest *d, struct channel *ch, struct ferr *err)
{
	struct migration *m = d->m;
	int rc;

	d->nsections = vm_section_count(m->vm);
	d->seen = calloc(d->nsections, sizeof(*d->seen));
	d->buf = malloc(DEST_BLOB_MAX);
	if (!d->seen || !d->buf || bitmap_init(&d->written, d->mem->size / GMEM_PAGE_SIZE))
		return ferr_set(err, -ENOMEM, "out of memory");
	rc = stream_read_header(&d->r, &d->h, err);
	if (rc)
		return rc;
	d->live = d->h.features & STREAM_FEAT_RETURN_PATH;
	if (d->live) {
		rc = stream_writer_init(&d->w, ch, STREAM_RETURN, err);
		if (!rc)
			rc = stream_writer_set_header(&d->w, &d->h, err);
		if (rc)
			return rc;
	}
	rc = ram_check_header(d->mem, vm_ncpus(m->vm), vm_cpuid_digest(m->vm), &d->h, err);
	if (!rc && (d->h.features & STREAM_FEAT_MULTIFD)) {
		if (d->h.channel != 0)
			rc =
			    ferr_set(err, -EPROTO,
				     "data channel %u of session %016llx arrived with no migration "
				     "in progress (expected a main connection)",
				     d->h.channel, (unsigned long long)d->h.session);
		else if (!d->live)
			rc = ferr_set(err, -EPROTO,
				      "a multifd stream needs a live migration (a return path)");
	}
	if (!rc && (d->h.features & STREAM_FEAT_POSTCOPY) && d->h.channel != 0)
		rc = ferr_set(err, -EPROTO,
			      "channel %u of session %016llx arrived with no migration in progress "
			      "(expected a main connection)",
			      d->h.channel, (unsigned long long)d->h.session);
	/* Post-copy needs a userfaultfd here: without one, READY says no. */
	if (!rc && (d->h.features & STREAM_FEAT_POSTCOPY) && !pcd_supported())
		d->h.features &= ~STREAM_FEAT_POSTCOPY;
	if (!rc && d->live) {
		struct stream_msg ready = {.type = STREAM_MSG_READY};
		ready.ready.features = d->h.features;
		rc = stream_write_msg(&d->w, &ready, err);
	}
	if (!rc && d->live && (d->h.features & STREAM_FEAT_POSTCOPY)) {
		struct channel_listener *l;
		pthread_mutex_lock(&m->lock);
		l = m->listener;
		pthread_mutex_unlock(&m->lock);
		if (!l)
			return ferr_set(err, -EPROTO, "post-copy needs a listening socket");
		rc = pcd_accept(m, l, &d->h, d->mem, DEST_MFD_ACCEPT_MS, &d->pcd, err);
		pthread_mutex_lock(&m->lock);
		m->pcd = d->pcd;
		pthread_mutex_unlock(&m->lock);
	}
	if (!rc && (d->h.features & STREAM_FEAT_MULTIFD)) {
		/* Receivers write guest RAM directly, each only its own chunks. */
		struct stream_page_sink sink = dest_ram_sink(d);
		struct channel_listener *l;
		pthread_mutex_lock(&m->lock);
		l = m->listener;
		pthread_mutex_unlock(&m->lock);
		if (!l)
			return ferr_set(err, -EPROTO, "a multifd stream needs a listening socket");
		rc = mfd_dest_start(m, l, &d->h, d->mem, &sink, DEST_MFD_ACCEPT_MS, &d->mfd, err);
	}
	return rc;
}

/* The main connection goes: its reader, writer and (ours) channel;
 * @shut: the caller's is shut down too, so that the source sees it end. */
void dest_drop_conn(struct mig_dest *d, bool shut)
{
	if (d->w.ch)
		stream_writer_destroy(&d->w);
	if (d->r.ch)
		stream_reader_destroy(&d->r);
	memset(&d->w, 0, sizeof(d->w));
	memset(&d->r, 0, sizeof(d->r));
	pthread_mutex_lock(&d->m->lock);
	if (d->m->ch == d->ch)
		d->m->ch = NULL;
	pthread_mutex_unlock(&d->m->lock);
	if (d->own_ch)
		channel_close(d->own_ch);
	else if (d->ch && shut)
		channel_shutdown(d->ch); /* the caller's: it closes it */
	d->own_ch = d->ch = NULL;
}

static void dest_take_listener(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	struct channel_listener *l = m->listener;
	m->listener = NULL;
	pthread_mutex_unlock(&m->lock);
	if (l)
		channel_listener_close(l);
}

/* The source reconnects (migrate-recover's listener): the handshake, then the post-copy channel. */
static int dest_pc_reconnect(struct mig_dest *d, struct ferr *err)
{
	struct migration *m = d->m;
	struct channel_listener *l;
	struct stream_header h;
	int rc;

	pthread_mutex_lock(&m->lock);
	l = m->listener;
	pthread_mutex_unlock(&m->lock);
	/* As long as it takes the source's operator: migrate-pause or quit ends the wait. */
	rc = channel_accept(l, -1, &d->ch, err);
	if (rc)
		return rc;
	d->own_ch = d->ch;
	d->ch->timeout_ms = DEST_IO_TIMEOUT_MS;
	d->ch->trace = m->trace;
	pthread_mutex_lock(&m->lock);
	m->ch = d->ch;
	if (m->cancel || m->pause_requested)
		channel_cancel(d->ch);
	pthread_mutex_unlock(&m->lock);
	rc = stream_reader_init(&d->r, d->ch, STREAM_MIGRATION, err);
	if (!rc)
		rc = stream_read_header(&d->r, &h, err);
	if (!rc && (!(h.features & STREAM_FEAT_RESUME) || !pcd_same_session(&h, &d->h, 0)))
		rc = ferr_set(err, -EPROTO,
			      "the connection to migrate-recover's address does not resume this "
			      "migration (session %016llx, features 0x%llx)",
			      (unsigned long long)h.session, (unsigned long long)h.features);
	if (!rc)
		rc = stream_writer_init(&d->w, d->ch, STREAM_RETURN, err);
	if (!rc)
		rc = stream_writer_set_header(&d->w, &h, err);
	if (!rc) {
		struct stream_msg ready = {.type = STREAM_MSG_READY};
		ready.ready.features = h.features;
		rc = stream_write_msg(&d->w, &ready, err);
	}
	if (!rc)
		rc = pcd_send_missing(d->pcd, &d->w, err);
	if (!rc)
		rc = pcd_reattach(d->pcd, l, &h, DEST_MFD_ACCEPT_MS, err);
	return rc;
}

/*
 * Post-copy's connection broke (@err): pause, keeping everything, until
 * the operator reconnects both sides (0: going on, on the new connection)
 * or the wait ends (the error: the guest is lost).
 */
int dest_pc_recover(struct mig_dest *d, struct ferr *err)
{
	struct migration *m = d->m;
	struct ferr why = *err;
	char uri[sizeof(m->resume_uri)];
	int rc;

	ferr_clear(err);
	pcd_pause(d->pcd);
	dest_drop_conn(d, true);
	dest_take_listener(m); /* the first one: its address may serve migrate-recover */
	for (;;) {
		pcd_stats(d->pcd, &d->st.postcopy);
		mig_publish(m, &d->st);
		rc = mig_pc_pause(m, &why, uri, sizeof(uri), err);
		if (rc) {
			ferr_prefix(err, "post-copy paused (%s) and not recovered: ", why.msg);
			return rc;
		}
		rc = dest_pc_reconnect(d, err);
		dest_take_listener(m);
		if (!rc) {
			mig_pc_resumed(m);
			return 0;
		}
		why = *err;
		ferr_prefix(&why, "recovery failed: ");
		ferr_clear(err);
		dest_drop_conn(d, true);
	}
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
	ch->trace = m->trace;
	pthread_mutex_lock(&m->lock);
	m->ch = ch;
	if (m->cancel)
		channel_cancel(ch);
	pthread_mutex_unlock(&m->lock);

	rc = mig_dest_load(m, ch, total, &err);
out:
	pthread_mutex_lock(&m->lock);
	m->ch = NULL;
	l = m->listener; /* a post-copy pause closed the first one already */
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
