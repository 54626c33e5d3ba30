/*
 * Command-line parsing: space-separated key=value words. The first word
 * is skipped when it has no '=', because QEMU and GRUB pass the kernel
 * path there. Any other problem is reported, never guessed around.
 */
#include "guest.h"

#define HEARTBEAT_MIN_US 100
#define PERIOD_MAX_US	 (3600ULL * 1000000)
#define RATE_MAX	 1000000000ULL

const char *const workload_names[] = {
    [WL_IDLE] = "idle",
    [WL_SPIN] = "spin",
    [WL_DIRTY] = "dirty",
    [WL_VERIFY] = "verify",
};

const char *const pattern_names[] = {
    [PAT_SEQ] = "seq",
    [PAT_RANDOM] = "random",
    [PAT_HOTCOLD] = "hotcold",
};

/* Decimal, or hex with 0x; stops at the first non-digit. */
static const char *parse_u64(const char *s, u64 *out)
{
	unsigned base = 10;
	const char *start;
	u64 v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (start = s;; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return NULL;
		v = v * base + d;
	}
	if (s == start)
		return NULL;
	*out = v;
	return s;
}

static int parse_size(const char *s, u64 *out)
{
	u64 v, mul = 1;

	s = parse_u64(s, &v);
	if (!s)
		return -1;
	switch (*s) {
	case 'k':
	case 'K':
		mul = 1ULL << 10;
		s++;
		break;
	case 'm':
	case 'M':
		mul = 1ULL << 20;
		s++;
		break;
	case 'g':
	case 'G':
		mul = 1ULL << 30;
		s++;
		break;
	}
	if (*s || v == 0 || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* "0", or a number with a us/ms/s suffix; result in microseconds. */
static int parse_period(const char *s, u64 *us)
{
	u64 v, mul;

	s = parse_u64(s, &v);
	if (!s)
		return -1;
	if (!strcmp(s, "us"))
		mul = 1;
	else if (!strcmp(s, "ms"))
		mul = 1000;
	else if (!strcmp(s, "s"))
		mul = 1000000;
	else if (!*s && v == 0)
		mul = 0;
	else
		return -1;
	if (v > PERIOD_MAX_US / (mul ? mul : 1) || v * mul > PERIOD_MAX_US)
		return -1;
	*us = v * mul;
	return 0;
}

static int lookup(const char *v, const char *const *names, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(v, names[i]))
			return (int)i;
	return -1;
}

static int parse_word(char *word, struct config *cfg, char *err, size_t errlen)
{
	char *key = word, *val = word;
	int i;

	while (*val && *val != '=')
		val++;
	if (!*val) {
		fmt(err, errlen, "bad argument \"%s\": expected key=value", word);
		return -1;
	}
	*val++ = '\0';

	if (!strcmp(key, "workload")) {
		i = lookup(val, workload_names, ARRAY_SIZE(workload_names));
		if (i < 0)
			goto bad;
		cfg->workload = (enum workload)i;
	} else if (!strcmp(key, "pattern")) {
		i = lookup(val, pattern_names, ARRAY_SIZE(pattern_names));
		if (i < 0)
			goto bad;
		cfg->pattern = (enum pattern)i;
	} else if (!strcmp(key, "wss")) {
		if (parse_size(val, &cfg->wss))
			goto bad;
	} else if (!strcmp(key, "rate")) {
		if (!strcmp(val, "max")) {
			cfg->rate = 0;
		} else {
			const char *end = parse_u64(val, &cfg->rate);

			if (!end || *end || !cfg->rate || cfg->rate > RATE_MAX)
				goto bad;
		}
	} else if (!strcmp(key, "heartbeat")) {
		if (parse_period(val, &cfg->heartbeat_us) ||
		    (cfg->heartbeat_us && cfg->heartbeat_us < HEARTBEAT_MIN_US))
			goto bad;
	} else if (!strcmp(key, "progress")) {
		if (parse_period(val, &cfg->progress_us) || cfg->progress_us % 1000)
			goto bad;
	} else if (!strcmp(key, "sweeps")) {
		const char *end = parse_u64(val, &cfg->sweeps);

		if (!end || *end)
			goto bad;
	} else if (!strcmp(key, "high")) {
		if (!strcmp(val, "0"))
			cfg->high = 0;
		else if (parse_size(val, &cfg->high))
			goto bad;
	} else if (!strcmp(key, "seed")) {
		const char *end = parse_u64(val, &cfg->seed);

		if (!end || *end)
			goto bad;
		cfg->seed_given = true;
	} else {
		fmt(err, errlen, "unknown key \"%s\"", key);
		return -1;
	}
	return 0;

bad:
	fmt(err, errlen, "bad value \"%s\" for %s (%s)", val, key,
	    !strcmp(key, "workload")	? "expected idle|spin|dirty|verify"
	    : !strcmp(key, "pattern")	? "expected seq|random|hotcold"
	    : !strcmp(key, "wss")	? "expected N, NK, NM or NG, N > 0"
	    : !strcmp(key, "high")	? "expected 0, N, NK, NM or NG"
	    : !strcmp(key, "rate")	? "expected max or 1..1000000000 pages/s"
	    : !strcmp(key, "heartbeat") ? "expected 0 or 100us..3600s with suffix us|ms|s"
	    : !strcmp(key, "progress")	? "expected 0 or whole ms up to 3600s with suffix ms|s"
					: "expected a decimal or 0x-prefixed number");
	return -1;
}

int cmdline_parse(const char *cmdline, struct config *cfg, char *err, size_t errlen)
{
	char word[CMDLINE_MAX];
	bool first = true;
	const char *s = cmdline;

	*cfg = (struct config){
	    .workload = WL_IDLE,
	    .wss = 64ULL << 20,
	    .rate = 0,
	    .pattern = PAT_SEQ,
	    .heartbeat_us = 0,
	    .progress_us = 1000000,
	};

	for (;;) {
		size_t n = 0;
		bool has_eq = false;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		while (*s && *s != ' ' && *s != '\t' && n < sizeof(word) - 1) {
			has_eq |= *s == '=';
			word[n++] = *s++;
		}
		word[n] = '\0';
		if (first && !has_eq) {
			first = false;
			continue;
		}
		first = false;
		if (parse_word(word, cfg, err, errlen))
			return -1;
	}
	return 0;
}
