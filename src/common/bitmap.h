/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Bitmaps of guest pages, in the layout KVM's dirty log uses: bit i of
 * 64-bit word i / 64 stands for page i of a slot, little-endian.
 * Not thread-safe: the owner serialises access.
 */
#ifndef FERRY_COMMON_BITMAP_H
#define FERRY_COMMON_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

struct bitmap {
	uint64_t nbits;
	uint64_t *words;
};

#define BITMAP_WORDS(n) (((n) + 63) / 64)

int bitmap_init(struct bitmap *b, uint64_t nbits);
void bitmap_destroy(struct bitmap *b);

static inline void bitmap_set(struct bitmap *b, uint64_t i)
{
	b->words[i / 64] |= 1ull << (i % 64);
}

static inline void bitmap_clear(struct bitmap *b, uint64_t i)
{
	b->words[i / 64] &= ~(1ull << (i % 64));
}

static inline bool bitmap_test(const struct bitmap *b, uint64_t i)
{
	return b->words[i / 64] >> (i % 64) & 1;
}

void bitmap_zero(struct bitmap *b);
void bitmap_fill(struct bitmap *b);
/* dst |= src, word by word from @src's array of nbits bits starting at bit @at (a multiple of 64). */
void bitmap_or_words(struct bitmap *dst, uint64_t at, const uint64_t *src, uint64_t nbits);
uint64_t bitmap_count(const struct bitmap *b);
/* Index of the first set bit >= @from, or b->nbits if none. */
uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from);

#endif
