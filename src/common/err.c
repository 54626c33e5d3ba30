// SPDX-License-Identifier: GPL-2.0-only
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int ferr_vset(struct ferr *err, int code, bool with_errno, const char *fmt, va_list ap)
{
	if (code >= 0)
		code = -EIO; /* a failure must never read as success */
	if (!err || err->code != 0)
		return code;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(-code));
	return code;
}

int ferr_set(struct ferr *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = ferr_vset(err, code, false, fmt, ap);
	va_end(ap);
	return code;
}

int ferr_errno(struct ferr *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = ferr_vset(err, code, true, fmt, ap);
	va_end(ap);
	return code;
}

void ferr_prefix(struct ferr *err, const char *fmt, ...)
{
	char prefix[FERR_MSG_MAX];
	size_t plen, mlen;
	va_list ap;

	if (!err || err->code == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	plen = strlen(prefix);
	mlen = strnlen(err->msg, sizeof(err->msg) - 1);
	if (plen > sizeof(err->msg) - 1)
		plen = sizeof(err->msg) - 1;
	if (plen + mlen > sizeof(err->msg) - 1)
		mlen = sizeof(err->msg) - 1 - plen; /* keep the prefix, cut the tail */
	memmove(err->msg + plen, err->msg, mlen);
	memcpy(err->msg, prefix, plen);
	err->msg[plen + mlen] = '\0';
}
