// SPDX-License-Identifier: GPL-2.0-only
#include "common/sbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SBUF_ALIGN(n) (((n) + 7) & ~(size_t)7)

int sbuf_put_section(struct sbuf *b, uint32_t tag, const void *data, uint32_t len)
{
	size_t need = b->len + 8 + SBUF_ALIGN(len);

	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, &tag, 4);
	memcpy(b->data + b->len + 4, &len, 4);
	if (len)
		memcpy(b->data + b->len + 8, data, len);
	memset(b->data + b->len + 8 + len, 0, SBUF_ALIGN(len) - len);
	b->len = need;
	return 0;
}

void sbuf_reset(struct sbuf *b)
{
	b->len = 0;
}

void sbuf_free(struct sbuf *b)
{
	free(b->data);
	*b = (struct sbuf)SBUF_INIT;
}

int sbuf_next_section(struct sbuf_reader *r, struct sbuf_section *s, struct ferr *err)
{
	if (r->left == 0)
		return 0;
	if (r->left < 8)
		return ferr_set(err, -EBADMSG, "state blob: %zu stray bytes at the end", r->left);
	memcpy(&s->tag, r->p, 4);
	memcpy(&s->len, r->p + 4, 4);
	if (SBUF_ALIGN((size_t)s->len) > r->left - 8)
		return ferr_set(err, -EBADMSG,
				"state blob: section %#x claims %u bytes, only %zu remain", s->tag,
				s->len, r->left - 8);
	s->data = r->p + 8;
	r->p += 8 + SBUF_ALIGN(s->len);
	r->left -= 8 + SBUF_ALIGN(s->len);
	return 1;
}
