// SPDX-License-Identifier: GPL-2.0-only
#include "common/bitmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bitmap_init(struct bitmap *b, uint64_t nbits)
{
	b->nbits = nbits;
	b->words = calloc(BITMAP_WORDS(nbits) ? BITMAP_WORDS(nbits) : 1, sizeof(uint64_t));
	return b->words ? 0 : -ENOMEM;
}

void bitmap_destroy(struct bitmap *b)
{
	free(b->words);
	b->words = NULL;
	b->nbits = 0;
}

void bitmap_zero(struct bitmap *b)
{
	memset(b->words, 0, BITMAP_WORDS(b->nbits) * sizeof(uint64_t));
}

void bitmap_fill(struct bitmap *b)
{
	uint64_t n = BITMAP_WORDS(b->nbits);

	memset(b->words, 0xff, n * sizeof(uint64_t));
	if (b->nbits % 64)
		b->words[n - 1] = (1ull << (b->nbits % 64)) - 1; /* no bits past the end */
}

void bitmap_or_words(struct bitmap *dst, uint64_t at, const uint64_t *src, uint64_t nbits)
{
	uint64_t n = BITMAP_WORDS(nbits), base = at / 64;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t w = src[i];
		if (i == n - 1 && nbits % 64)
			w &= (1ull << (nbits % 64)) -
			     1; /* bits past the source's end are no pages */
		dst->words[base + i] |= w;
	}
}

uint64_t bitmap_count(const struct bitmap *b)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < BITMAP_WORDS(b->nbits); i++)
		n += (uint64_t)__builtin_popcountll(b->words[i]);
	return n;
}

uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from)
{
	uint64_t w, i;

	if (from >= b->nbits)
		return b->nbits;
	i = from / 64;
	w = b->words[i] & (~0ull << (from % 64));
	for (;;) {
		if (w) {
			uint64_t bit = i * 64 + (uint64_t)__builtin_ctzll(w);
			return bit < b->nbits ? bit : b->nbits;
		}
		if (++i >= BITMAP_WORDS(b->nbits))
			return b->nbits;
		w = b->words[i];
	}
}
