/*
 * Minimal snprintf used by every output line. Supports %s %c %d %u %x
 * and %%, an optional '0' flag and width, and 'l'/'ll' (both 64-bit).
 * Output is always NUL-terminated and silently truncated.
 */
#include "common.h"

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, u64 v, unsigned base, unsigned width, char pad, bool neg)
{
	char tmp[24];
	unsigned n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width > n) {
		put(o, pad);
		width--;
	}
	while (n)
		put(o, tmp[--n]);
}

size_t vfmt(char *buf, size_t size, const char *f, va_list ap)
{
	struct out o = {.buf = buf, .size = size, .len = 0};

	for (; *f; f++) {
		unsigned width = 0, longs = 0;
		char pad = ' ';
		u64 u;
		s64 s;
		const char *str;

		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		f++;
		if (*f == '0') {
			pad = '0';
			f++;
		}
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (unsigned)(*f++ - '0');
		while (*f == 'l') {
			longs++;
			f++;
		}
		switch (*f) {
		case 'd':
			s = longs ? va_arg(ap, long) : va_arg(ap, int);
			u = s < 0 ? -(u64)s : (u64)s;
			put_num(&o, u, 10, width, pad, s < 0);
			break;
		case 'u':
		case 'x':
			u = longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			put_num(&o, u, *f == 'u' ? 10 : 16, width, pad, false);
			break;
		case 's':
			str = va_arg(ap, const char *);
			while (*str)
				put(&o, *str++);
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			f--;
			break;
		default:
			put(&o, '?');
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

size_t fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, f);
	n = vfmt(buf, size, f, ap);
	va_end(ap);
	return n;
}
