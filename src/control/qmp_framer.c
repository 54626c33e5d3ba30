// SPDX-License-Identifier: GPL-2.0-only
#include "control/qmp_framer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void qmp_framer_init(struct qmp_framer *f, size_t limit)
{
	memset(f, 0, sizeof(*f));
	f->limit = limit;
}

void qmp_framer_fini(struct qmp_framer *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

bool qmp_framer_pending(const struct qmp_framer *f)
{
	return f->len > 0 || f->skipping;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Advance the scanner over @c; true if @c ends the current value. */
static bool qmp_framer_step(struct qmp_framer *f, unsigned char c)
{
	if (f->in_string) {
		if (c < 0x20)
			return true; /* raw control character: the string can never be valid */
		if (f->escape)
			f->escape = false;
		else if (c == '\\')
			f->escape = true;
		else if (c == '"')
			f->in_string = false;
		return false;
	}
	switch (c) {
	case '"':
		f->in_string = true;
		return false;
	case '{':
	case '[':
		f->depth++;
		return false;
	case '}':
	case ']':
		if (f->depth == 0)
			return true; /* nothing open: let the parser complain now */
		return --f->depth == 0;
	case '\n':
		return f->depth == 0; /* ends a bare scalar */
	default:
		return false;
	}
}

static int qmp_framer_append(struct qmp_framer *f, char c)
{
	if (f->len == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		if (cap > f->limit)
			cap = f->limit;
		char *buf = realloc(f->buf, cap);
		if (!buf)
			return -ENOMEM;
		f->buf = buf;
		f->cap = cap;
	}
	f->buf[f->len++] = c;
	return 0;
}

static void qmp_framer_reset_value(struct qmp_framer *f)
{
	f->len = 0;
	f->depth = 0;
	f->in_string = false;
	f->escape = false;
	f->skipping = false;
}

int qmp_framer_feed(struct qmp_framer *f, const char *data, size_t len, qmp_frame_fn *fn, void *ctx)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		/* Whitespace between values is not part of any value. */
		if (!qmp_framer_pending(f) && is_space(c))
			continue;

		bool end = qmp_framer_step(f, c);

		if (!f->skipping) {
			if (f->len == f->limit) {
				/* Too long: report once, then only scan until it ends. */
				f->skipping = true;
				f->len = 0;
				if (!fn(ctx, NULL, 0)) {
					qmp_framer_reset_value(f);
					return 0;
				}
			} else {
				int ret = qmp_framer_append(f, (char)c);
				if (ret < 0) {
					qmp_framer_reset_value(f);
					return ret;
				}
			}
		}
		if (!end)
			continue;

		bool deliver = !f->skipping;
		size_t vlen = f->len;
		qmp_framer_reset_value(f);
		if (deliver && !fn(ctx, f->buf, vlen))
			return 0;
	}
	return 0;
}
