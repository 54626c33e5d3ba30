/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the migration engine's files only. */
#ifndef FERRY_MIGRATION_MIG_PRIV_H
#define FERRY_MIGRATION_MIG_PRIV_H

#include "migration/migration.h"
#include "migration/stream.h"

/* Publish a figure change, and progress for a terminal. */
void mig_publish(struct migration *m, const struct mig_stats *st);
void mig_progress(struct migration *m, const char *what, uint64_t done, uint64_t total);

/* Record the first failure and move to FAILED (or CANCELLED if cancelled). */
void mig_fail(struct migration *m, const struct ferr *err);

bool mig_cancelled(struct migration *m);

/* The engine threads. */
void *mig_source_thread(void *arg);
void *mig_dest_thread(void *arg);

/* Receive a whole stream into the (not running) VM: header to END. */
int mig_dest_load(struct migration *m, struct channel *ch, uint64_t total_hint,
		  struct ferr *err);

/* Peek at a file stream's header (for ferry run --incoming file: without sizes). */
int mig_read_file_header(const char *path, struct stream_header *h, struct ferr *err);

#endif
