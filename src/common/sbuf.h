/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * State blobs: a growable byte buffer of tagged sections
 *   { tag: u32, len: u32, data[len], zero pad to 8 }   little-endian
 * used for vCPU, VM and device state inside migration records
 * (docs/stream-format.md, "State blobs").  The reader bounds-checks every
 * section header against the blob before handing out a pointer.
 */
#ifndef FERRY_COMMON_SBUF_H
#define FERRY_COMMON_SBUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct sbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define SBUF_INIT          \
	{                  \
		NULL, 0, 0 \
	}

int sbuf_put_section(struct sbuf *b, uint32_t tag, const void *data, uint32_t len);
void sbuf_reset(struct sbuf *b); /* len = 0, keep memory */
void sbuf_free(struct sbuf *b);

struct sbuf_section {
	uint32_t tag;
	uint32_t len;
	const uint8_t *data;
};

struct sbuf_reader {
	const uint8_t *p;
	size_t left;
};

static inline void sbuf_reader_init(struct sbuf_reader *r, const void *blob, size_t len)
{
	r->p = blob;
	r->left = len;
}

/* 1 and @s filled, 0 at the end, -EBADMSG (with @err) on a malformed blob. */
int sbuf_next_section(struct sbuf_reader *r, struct sbuf_section *s, struct ferr *err);

#endif
