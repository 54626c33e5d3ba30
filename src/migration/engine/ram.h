/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest RAM as the migration engine sees it: pages in RAM order (page i at
 * byte i * 4096 of the host mapping), their guest frame numbers, and which
 * of them the guest has ever touched.
 */
#ifndef FERRY_MIGRATION_RAM_H
#define FERRY_MIGRATION_RAM_H

#include <stdint.h>

#include "common/bitmap.h"
#include "common/err.h"
#include "migration/stream/stream.h"

struct gmem;

/* Frame number of RAM-order page @i. */
uint64_t ram_page_gfn(const struct gmem *m, uint64_t i);
/* RAM-order index of frame @gfn, or UINT64_MAX if it is not RAM. */
uint64_t ram_gfn_page(const struct gmem *m, uint64_t gfn);
/* Host address of RAM-order page @i. */
void *ram_page_ptr(const struct gmem *m, uint64_t i);

/*
 * For RAM-order pages [first, first + n), n <= RAM_RESIDENT_CHUNK: set
 * vec[i] & 1 if page first + i is populated in the host mapping (mincore).
 * A page the guest never touched is not, and is known to be zero without
 * reading it (which would populate it).  Only meaningful once dirty
 * tracking covers the range: a page touched after this call must show up
 * in the dirty log, or it would be skipped for good.
 */
#define RAM_RESIDENT_CHUNK 4096
int ram_resident(const struct gmem *m, uint64_t first, uint64_t n, unsigned char *vec,
		 struct ferr *err);

/*
 * Write a set of RAM pages as messages of @type in DISCARD's layout
 * (DISCARD, POSTCOPY_MISSING): the pages @next yields, in increasing RAM
 * order (@next(@set, from): the first page >= from in the set, or any
 * value >= the page count when there is none).  *@count: how many.
 */
int ram_write_page_set(struct stream_writer *w, const struct gmem *m, uint32_t type,
		       uint64_t (*next)(const void *set, uint64_t from), const void *set,
		       uint64_t *count, struct ferr *err);

/*
 * Drop the host pages of the frames @d names (DISCARD's layout) with
 * MADV_DONTNEED, a run at a time: they read as zeros until written again.
 */
int ram_drop_pages(const struct gmem *m, const struct stream_discard *d, struct ferr *err);

/* The stream header describing this VM's RAM. */
void ram_stream_header(const struct gmem *m, unsigned ncpus, uint64_t cpuid_digest,
		       uint64_t features, struct stream_header *h);

/*
 * Check that a stream's header fits this VM; messages name the option the
 * operator would change ("--memory", "--cpus").
 */
int ram_check_header(const struct gmem *m, unsigned ncpus, uint64_t cpuid_digest,
		     const struct stream_header *h, struct ferr *err);

#endif
