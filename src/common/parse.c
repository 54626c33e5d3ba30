// SPDX-License-Identifier: GPL-2.0-only
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -EINVAL;
	}
	for (; *s; s++) {
		unsigned d;
		if (isdigit((unsigned char)*s))
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = (tolower((unsigned char)*s) - 'a') + 10;
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* Split @s into a leading number and a suffix; the number must be non-empty. */
static int split_number(const char *s, char *num, size_t numlen, const char **suffix)
{
	size_t n = 0;

	if (!s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		/* hex takes no suffix: letters would be ambiguous */
		if (strlen(s) >= numlen)
			return -ERANGE;
		strcpy(num, s);
		*suffix = s + strlen(s);
		return 0;
	}
	while (isdigit((unsigned char)s[n]))
		n++;
	if (n == 0)
		return -EINVAL;
	if (n >= numlen)
		return -ERANGE;
	memcpy(num, s, n);
	num[n] = '\0';
	*suffix = s + n;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char num[32];
	const char *suf;
	uint64_t v;
	unsigned shift = 0;
	int rc;

	rc = split_number(s, num, sizeof(num), &suf);
	if (rc)
		return rc;
	rc = parse_u64(num, &v);
	if (rc)
		return rc;
	if (*suf) {
		switch (toupper((unsigned char)*suf)) {
		case 'K':
			shift = 10;
			break;
		case 'M':
			shift = 20;
			break;
		case 'G':
			shift = 30;
			break;
		case 'T':
			shift = 40;
			break;
		case 'B':
			shift = 0;
			break;
		default:
			return -EINVAL;
		}
		if (toupper((unsigned char)*suf) != 'B') {
			suf++;
			if (strcasecmp(suf, "iB") == 0 || strcasecmp(suf, "B") == 0)
				suf += strlen(suf);
		} else {
			suf++;
		}
		if (*suf)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int parse_duration_ns(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
	    {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}, {"", 1000000},
	};
	char num[32];
	const char *suf;
	uint64_t v;
	int rc;

	rc = split_number(s, num, sizeof(num), &suf);
	if (rc)
		return rc;
	rc = parse_u64(num, &v);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(suf, units[i].unit) == 0) {
			if (v > UINT64_MAX / units[i].ns)
				return -ERANGE;
			*out = v * units[i].ns;
			return 0;
		}
	}
	return -EINVAL;
}

const char *fmt_size(uint64_t bytes, char *buf, unsigned long len)
{
	static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	unsigned i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, names[i]);
	return buf;
}
