/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The migration stream on the wire, version 1: docs/stream-format.md is the
 * specification, this file its C transcription.  Fields are little-endian;
 * the structures are only ever copied to and from byte buffers with
 * explicit conversions (stream_*.c), never cast over a buffer from the
 * peer, so their in-memory layout is what the static assertions pin.
 */
#ifndef FERRY_MIGRATION_STREAM_FORMAT_H
#define FERRY_MIGRATION_STREAM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_MAGIC	   "FERRYMIG" /* 8 bytes, no NUL on the wire */
#define STREAM_MAGIC_LEN   8
#define STREAM_VERSION	   1u
#define STREAM_PAGE_SIZE   4096u
#define STREAM_PAGE_SHIFT  12
#define STREAM_HEADER_MAX  4096u /* header_len never exceeds this, in any version */
#define STREAM_MAX_VCPUS   1024u
#define STREAM_MAX_REGIONS 8u
#define STREAM_MAX_GUEST   (1ull << 40) /* sum of region sizes: 1 TiB */
#define STREAM_MAX_GPA	   (1ull << 52) /* x86 MAXPHYADDR at most */

/* Header features: bits 0-31 must be understood, bits 32-63 may be ignored. */
#define STREAM_FEAT_RETURN_PATH (1ull << 0)
#define STREAM_FEAT_POSTCOPY	(1ull << 1)
/* Parallel channels: the header ends with a struct stream_wire_multifd. */
#define STREAM_FEAT_MULTIFD (1ull << 2)
/* This connection resumes a paused post-copy of the header's session
 * (docs/postcopy.md, "Recovery"): it starts after GO, with post-copy's
 * records only.  Needs POSTCOPY. */
#define STREAM_FEAT_RESUME	  (1ull << 3)
#define STREAM_FEAT_REQUIRED_MASK 0xffffffffull
#define STREAM_FEAT_KNOWN \
	(STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY | STREAM_FEAT_MULTIFD | STREAM_FEAT_RESUME)
/* Features whose streams open more than one connection: the header carries
 * the session block (struct stream_wire_multifd). */
#define STREAM_FEAT_SESSION (STREAM_FEAT_MULTIFD | STREAM_FEAT_POSTCOPY)

/*
 * Header: the fixed part, then nregions regions, then a u64 XXH3-64 (seed 0)
 * of everything before it.  magic, version and header_len are frozen for
 * every version so that any reader can check the checksum first.
 */
struct stream_wire_header {
	uint8_t magic[STREAM_MAGIC_LEN];
	uint32_t version;
	uint32_t header_len; /* whole header, checksum included */
	uint32_t page_size;
	uint32_t vcpu_count;
	uint32_t nregions;
	uint32_t reserved;
	uint64_t features;
	uint64_t cpuid_digest;
};
_Static_assert(sizeof(struct stream_wire_header) == 48, "stream header layout");
_Static_assert(offsetof(struct stream_wire_header, features) == 32, "stream header layout");

#define STREAM_HEADER_PREFIX 16 /* magic, version, header_len */

struct stream_wire_region {
	uint64_t gpa;
	uint64_t size;
};
_Static_assert(sizeof(struct stream_wire_region) == 16, "stream region layout");

/*
 * With STREAM_FEAT_MULTIFD, after the regions and before the checksum: which
 * migration (a random session id the source draws per migration) and which
 * of its connections this is (0: the main one, 1..nchannels: data channels).
 */
struct stream_wire_multifd {
	uint64_t session;
	uint16_t channel;
	uint16_t nchannels;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_multifd) == 16, "stream header multifd layout");
#define STREAM_MULTIFD_MAX 16u /* data channels */
/* The post-copy channel's index: page requests and their answers, apart
 * from the bulk stream (STREAM_FEAT_POSTCOPY). */
#define STREAM_CHANNEL_POSTCOPY 0xffffu

#define STREAM_HEADER_LEN(nregions) \
	(sizeof(struct stream_wire_header) + (nregions) * sizeof(struct stream_wire_region) + 8)
/* The length for @features (STREAM_FEAT_MULTIFD adds its block). */
#define STREAM_HEADER_LEN_F(nregions, features) \
	(STREAM_HEADER_LEN(nregions) +          \
	 (((features)&STREAM_FEAT_SESSION) ? sizeof(struct stream_wire_multifd) : 0))

/*
 * Record: this header, length bytes of payload, zero padding to 8 bytes,
 * then a u64 XXH3-64 of all of that, seeded with the record's number.
 */
struct stream_wire_record {
	uint32_t type;
	uint32_t flags;
	uint64_t length; /* payload only */
};
_Static_assert(sizeof(struct stream_wire_record) == 16, "stream record layout");

#define STREAM_REC_OPTIONAL    (1u << 0)
#define STREAM_REC_FLAGS_KNOWN STREAM_REC_OPTIONAL
#define STREAM_RECORD_MAX      (64u << 20) /* any record's payload */
#define STREAM_TRAILER_LEN     8

static inline uint64_t stream_pad8(uint64_t len)
{
	return (8 - (len & 7)) & 7;
}

/* Stream records (migration stream only): 0x0001-0x7fff. */
#define STREAM_REC_PAGE_BATCH	      0x0001u
#define STREAM_REC_PASS_END	      0x0002u
#define STREAM_REC_VCPU_STATE	      0x0003u
#define STREAM_REC_VM_STATE	      0x0004u
#define STREAM_REC_DEVICE_STATE	      0x0005u
#define STREAM_REC_SWITCHOVER_PREPARE 0x0006u
#define STREAM_REC_END		      0x0007u
/* A data channel's end of one switchover attempt (multifd). */
#define STREAM_REC_CHANNEL_SYNC 0x0008u
/* Post-copy: pages not valid at the destination (in a post-copy switchover). */
#define STREAM_REC_DISCARD 0x0009u
/* Post-copy: every page has been sent (after GO). */
#define STREAM_REC_POSTCOPY_END 0x000au
/* Between passes, optional: the destination's copies of these pages (DISCARD's
 * layout) are stale; they come again, or a post-copy switch discards them. */
#define STREAM_REC_STALE 0x000bu
/* Control messages, each with its own direction: 0x8000-0xffff. */
#define STREAM_MSG_FIRST		 0x8000u
#define STREAM_MSG_READY		 0x8001u
#define STREAM_MSG_GO			 0x8002u
#define STREAM_MSG_ABORT		 0x8003u
#define STREAM_MSG_ERROR		 0x8004u
#define STREAM_MSG_ACK			 0x8005u
#define STREAM_MSG_POSTCOPY_PAGE_REQUEST 0x8006u
#define STREAM_MSG_RESUMED		 0x8007u
/* Resume streams only (STREAM_FEAT_RESUME), destination -> source. */
#define STREAM_MSG_POSTCOPY_MISSING 0x8008u /* DISCARD's layout: pages not owned here */
#define STREAM_MSG_POSTCOPY_RESUME  0x8009u /* the missing set is complete */

/* PAGE_BATCH: this, count u64 entries, then the data of non-ZERO entries. */
struct stream_wire_page_batch {
	uint32_t count;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_page_batch) == 8, "page batch layout");

#define STREAM_BATCH_MAX_PAGES 256u
#define STREAM_BATCH_MAX_DATA  (STREAM_BATCH_MAX_PAGES * STREAM_PAGE_SIZE)
#define STREAM_ENTRY_ZERO      (1ull << 63)
#define STREAM_ENTRY_RESERVED  (0x7ffull << 52)
#define STREAM_GFN_MASK	       ((1ull << 52) - 1)

struct stream_wire_pass_end {
	uint32_t pass;
	uint32_t reserved;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t bytes;
	uint64_t remaining;
	uint64_t duration_ns;
};
_Static_assert(sizeof(struct stream_wire_pass_end) == 48, "PASS_END layout");

/* VCPU_STATE: this, then the VM module's blob. */
struct stream_wire_vcpu_state {
	uint32_t vcpu;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_vcpu_state) == 8, "VCPU_STATE layout");

#define STREAM_VCPU_STATE_MAX	(1u << 20)
#define STREAM_VM_STATE_MAX	(16u << 20)
#define STREAM_DEVICE_STATE_MAX (1u << 20)

/* DEVICE_STATE: this, then the device's blob. */
#define STREAM_DEVICE_ID_LEN 32
struct stream_wire_device_state {
	char id[STREAM_DEVICE_ID_LEN]; /* 1-31 bytes 0x21-0x7e, NUL-padded */
	uint32_t version;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_device_state) == 40, "DEVICE_STATE layout");

#define STREAM_SWITCHOVER_POSTCOPY (1u << 0)
/* The guest was paused by the operator: the destination keeps it paused. */
#define STREAM_SWITCHOVER_PAUSED (1u << 1)
#define STREAM_SWITCHOVER_KNOWN	 (STREAM_SWITCHOVER_POSTCOPY | STREAM_SWITCHOVER_PAUSED)
struct stream_wire_switchover {
	uint32_t flags;
	uint32_t reserved;
	uint64_t remaining;
};
_Static_assert(sizeof(struct stream_wire_switchover) == 16, "SWITCHOVER_PREPARE layout");

struct stream_wire_end {
	uint64_t records;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t bytes;
};
_Static_assert(sizeof(struct stream_wire_end) == 32, "END layout");

/* CHANNEL_SYNC: a data channel has sent every page of switchover attempt @attempt. */
struct stream_wire_channel_sync {
	uint32_t attempt;
	uint32_t reserved;
	uint64_t records;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t bytes;
};
_Static_assert(sizeof(struct stream_wire_channel_sync) == 40, "CHANNEL_SYNC layout");

struct stream_wire_ready {
	uint64_t features;
};
_Static_assert(sizeof(struct stream_wire_ready) == 8, "READY layout");

#define STREAM_ABORT_CANCELLED 1u
#define STREAM_ABORT_TIMEOUT   2u
#define STREAM_ABORT_FAILED    3u
/* Source -> destination after END: this switchover attempt is rolled back,
 * the source runs the guest again and the stream goes on with more records. */
#define STREAM_ABORT_RETRY 4u
struct stream_wire_abort {
	uint32_t reason;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_abort) == 8, "ABORT layout");

struct stream_wire_resumed {
	uint64_t resume_ns; /* destination's CLOCK_MONOTONIC when it took the guest */
};
_Static_assert(sizeof(struct stream_wire_resumed) == 8, "RESUMED layout");

/* ERROR: this, then 1-511 bytes of text. */
#define STREAM_ERROR_TEXT_MAX 511u
struct stream_wire_error {
	int32_t code; /* negative Linux errno */
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_error) == 8, "ERROR layout");

struct stream_wire_ack {
	uint32_t type;
	uint32_t reserved;
	uint64_t record;
};
_Static_assert(sizeof(struct stream_wire_ack) == 16, "ACK layout");

/*
 * DISCARD: this, then nwords u64 words of a bitmap: bit b of word w set
 * means frame first + 64w + b is not valid at the destination.
 */
struct stream_wire_discard {
	uint64_t first;
	uint32_t nwords;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_discard) == 16, "DISCARD layout");
#define STREAM_DISCARD_MAX_WORDS 256u

/* POSTCOPY_RESUME: how many pages the POSTCOPY_MISSING messages before it named. */
struct stream_wire_pc_resume {
	uint64_t missing;
};
_Static_assert(sizeof(struct stream_wire_pc_resume) == 8, "POSTCOPY_RESUME layout");

/* POSTCOPY_PAGE_REQUEST: this, then count u64 frames. */
struct stream_wire_page_request {
	uint32_t count;
	uint32_t reserved;
};
_Static_assert(sizeof(struct stream_wire_page_request) == 8, "POSTCOPY_PAGE_REQUEST layout");

#endif
