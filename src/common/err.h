/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Errors for the operator.
 *
 * Functions that can fail return 0 or a negative errno.  Where the caller
 * needs words, they also fill a caller-provided struct ferr with one line
 * fit for an operator ("kernel /x: not an ELF file").  The first message
 * set sticks: later failures while unwinding do not overwrite the cause.
 */
#ifndef FERRY_COMMON_ERR_H
#define FERRY_COMMON_ERR_H

#include <stdbool.h>

#define FERR_MSG_MAX 512

struct ferr {
	int code;		/* negative errno of the first failure, 0 if none */
	char msg[FERR_MSG_MAX]; /* its message */
};

#define FERR_INIT     \
	{             \
		0, "" \
	}

/*
 * Record a failure.  Returns @code (a negative errno) so that callers can
 * write "return ferr_set(err, -EINVAL, "...")".  @err may be NULL.
 */
int ferr_set(struct ferr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ferr_set(), appending ": strerror(-code)". */
int ferr_errno(struct ferr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("restore: " + msg). */
void ferr_prefix(struct ferr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool ferr_is_set(const struct ferr *err)
{
	return err && err->code != 0;
}

static inline void ferr_clear(struct ferr *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}

#endif
