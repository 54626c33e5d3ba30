/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for the stream tests: a fake guest with a page sink, stream
 * buffers that can be patched (and re-checksummed, to get past the
 * checksum to the check under test), and a channel that moves one byte
 * at a time.
 */
#ifndef FERRY_TEST_STREAM_UTIL_H
#define FERRY_TEST_STREAM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "migration/stream/stream.h"

/* Guest RAM in "RAM order" (like struct gmem): region after region. */
struct fake_guest {
	struct stream_header hdr;
	uint8_t *mem;
	size_t size;
};

/* @nregions pairs of (gpa, size); vcpus; no features. */
void fake_guest_init(struct fake_guest *g, uint32_t vcpus, unsigned nregions, ...);
void fake_guest_destroy(struct fake_guest *g);
/* NULL if @gfn is not guest memory. */
uint8_t *fake_guest_page(struct fake_guest *g, uint64_t gfn);
/* Deterministic non-zero contents for frame @gfn, version @v. */
void fake_guest_fill(struct fake_guest *g, uint64_t gfn, unsigned v);
/* A sink into @g (zero() left NULL: the reader memsets). */
struct stream_page_sink fake_guest_sink(struct fake_guest *g);

/* A mem channel that received @w's output; the writer's channel is closed. */
struct channel *reopen(struct channel *wch);
/* A copy of what a mem channel received. */
uint8_t *mem_copy(struct channel *ch, size_t *len);

/* Offset of record @number (1-based) in a migration stream buffer, or of its end if 0. */
size_t record_offset(const uint8_t *buf, size_t len, uint64_t number);
/* Recompute the checksum of the record at @off (number @number). */
void rechecksum(uint8_t *buf, size_t off, uint64_t number);
/* Recompute the header's checksum. */
void rechecksum_header(uint8_t *buf);

/*
 * Read a whole migration stream into @g (page data direct), every record
 * consumed by its typed reader; returns the first error.  @err gets the
 * message.  @records counts records read.
 */
int load_stream(const uint8_t *buf, size_t len, struct fake_guest *g, struct ferr *err);

/*
 * A small complete migration stream of @src (fake_guest_init(src, 4, 1, 0,
 * 4 MiB), filled here): pass 1 sends frames 0-3 (0 and 3 zero), pass 2
 * frame 1 again (changed) and frame 2 as zero; SWITCHOVER_PREPARE; two
 * VCPU_STATE, a DEVICE_STATE and a VM_STATE with odd lengths (padding);
 * END; GO.  Written over @ch if not NULL (a trickle channel, say),
 * else a mem channel.  Returns a malloc'd copy.
 */
uint8_t *sample_stream(struct fake_guest *src, struct channel *ch, size_t *len);

/* Wrap @inner so that reads and writes move at most @chunk bytes per call. */
struct channel *trickle_channel(struct channel *inner, size_t chunk);

#endif
