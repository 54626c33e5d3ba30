/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Splits a client's byte stream into JSON values, the way QEMU's
 * json-streamer does: a scanner tracks string/escape state and bracket
 * depth, and a value is complete when its brackets balance.  Requests may
 * thus arrive split across reads, several on a line, spread over several
 * lines, with or without a trailing newline.  jansson then parses each
 * complete value on its own.
 *
 * A value also ends, so that an interactive client never hangs on a
 * typo, at:
 *  - a newline at depth 0 after a bare scalar ("42\n"),
 *  - a control character inside a string (never valid JSON; this catches
 *    an unterminated string at the end of a line),
 *  - a closing bracket with nothing open.
 * Such values fail to parse (or are not objects) and draw an error reply.
 *
 * A value longer than the limit is reported once and its remaining bytes
 * are discarded by the same scanner until it ends; then framing resumes.
 */
#ifndef FERRY_CONTROL_QMP_FRAMER_H
#define FERRY_CONTROL_QMP_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct qmp_framer {
	char *buf; /* bytes of the value being assembled */
	size_t len, cap;
	size_t limit; /* longest value accepted */
	size_t depth; /* open brackets */
	bool in_string, escape;
	bool skipping; /* discarding the rest of an over-long value */
};

/*
 * Called for each complete value (@text, @len; not NUL-terminated), or with
 * @text NULL once when a value exceeds the limit.  Return false to stop
 * feeding (the rest of the input is dropped).
 */
typedef bool qmp_frame_fn(void *ctx, const char *text, size_t len);

void qmp_framer_init(struct qmp_framer *f, size_t limit);
void qmp_framer_fini(struct qmp_framer *f);

/* Scan @len bytes of input.  Returns -ENOMEM if the buffer cannot grow, else 0. */
int qmp_framer_feed(struct qmp_framer *f, const char *data, size_t len, qmp_frame_fn *fn,
		    void *ctx);

/* True when part of a value is buffered (for diagnostics at EOF). */
bool qmp_framer_pending(const struct qmp_framer *f);

#endif
