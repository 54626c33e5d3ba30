/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Parsers for operator input: sizes ("512M"), durations ("10ms"),
 * unsigned integers and byte-rate values.  All reject empty strings,
 * signs, trailing garbage and overflow with -EINVAL / -ERANGE.
 */
#ifndef FERRY_COMMON_PARSE_H
#define FERRY_COMMON_PARSE_H

#include <stdint.h>

/* Decimal or 0x-hex unsigned integer, no suffix. */
int parse_u64(const char *s, uint64_t *out);

/* Byte size with optional K/M/G/T suffix (binary, case-insensitive, optional "iB"/"B"). */
int parse_size(const char *s, uint64_t *out);

/* Duration with unit ns/us/ms/s (no unit = ms), result in nanoseconds. */
int parse_duration_ns(const char *s, uint64_t *out);

/* Format @bytes as "1.5 GiB" into @buf; returns @buf. */
const char *fmt_size(uint64_t bytes, char *buf, unsigned long len);

#endif
