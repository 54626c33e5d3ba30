// SPDX-License-Identifier: GPL-2.0-only
/* Reading and showing query-migrate for ferry migrate (see migrate_show.h). */
#include "cli/migrate_show.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "common/parse.h"

/* ---- reading query-migrate ---------------------------------------------- */

/* The member at @path ("ram.transferred") of @o, or NULL. */
static json_t *migrate_get(json_t *o, const char *path)
{
	char key[64];

	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key); /* NULL for a non-object */
		path += n + (dot != NULL);
	}
	return o;
}

/* The non-negative number at @path into *@v; false when absent or not one. */
bool migrate_num(json_t *o, const char *path, double *v)
{
	json_t *j = migrate_get(o, path);

	if (!json_is_number(j) || json_number_value(j) < 0)
		return false;
	*v = json_number_value(j);
	return true;
}

bool migrate_status_final(const char *s)
{
	return s && (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 ||
		     strcmp(s, "cancelled") == 0);
}

/* Bandwidth in bytes/s.  ram.mbps is QEMU's: 10^6 bits per second; 0 is "not measured yet". */
static bool migrate_rate(json_t *info, double *bytes_per_s)
{
	double mbps;

	if (!migrate_num(info, "ram.mbps", &mbps) || mbps <= 0)
		return false;
	*bytes_per_s = mbps * 1e6 / 8;
	return true;
}

/*
 * The pass a progress line is about: ferry.passes counts the completed ones
 * (0 during the first), so while pre-copy runs the one under way is next.
 */
static bool migrate_pass(json_t *info, double *n)
{
	const char *status = json_string_value(json_object_get(info, "status"));

	if (!migrate_num(info, "ferry.passes", n))
		return false;
	if (status && strcmp(status, "active") == 0)
		*n += 1;
	return true;
}

/*
 * Seconds to send @remaining bytes at @rate bytes/s, or -1 when either is
 * unknown (0).  What the guest dirties meanwhile is not counted: this is
 * the end of the current pass, a lower bound for the migration.
 */
double migrate_eta_s(double remaining, double rate)
{
	if (remaining <= 0 || rate <= 0)
		return -1;
	return remaining / rate;
}

/*
 * The rate seen between polls, smoothed.  ram.mbps comes at the end of a
 * pass; a first pass over a large guest would go without any rate at all.
 */

double rate_meter_add(struct rate_meter *m, uint64_t now_ns, double bytes)
{
	if (bytes < m->last_bytes) {
		m->rate = 0; /* another migration: start over */
	} else if (m->last_bytes > 0 && now_ns > m->last_ns) {
		/* Only between samples of a transfer under way: not across the setup. */
		double now_rate = (bytes - m->last_bytes) * 1e9 / (double)(now_ns - m->last_ns);

		m->rate = m->rate > 0 ? 0.7 * m->rate + 0.3 * now_rate : now_rate;
	}
	m->last_ns = now_ns;
	m->last_bytes = bytes;
	return m->rate;
}

/* ---- formatting ---------------------------------------------------------- */

/* A duration with the precision that matters at its scale: "0.35 ms", "12.5 ms", "2.3 s", "4m05s". */
const char *fmt_ms(double ms, char *buf)
{
	if (ms == 0)
		snprintf(buf, FMT_LEN, "0 ms");
	else if (ms < 10)
		snprintf(buf, FMT_LEN, "%.2f ms", ms);
	else if (ms < 100)
		snprintf(buf, FMT_LEN, "%.1f ms", ms);
	else if (ms < 1000)
		snprintf(buf, FMT_LEN, "%.0f ms", ms);
	else if (ms < 60000)
		snprintf(buf, FMT_LEN, "%.1f s", ms / 1000);
	else if (ms < 3600000)
		snprintf(buf, FMT_LEN, "%um%02us", (unsigned)(ms / 60000),
			 (unsigned)(ms / 1000) % 60);
	else
		snprintf(buf, FMT_LEN, "%uh%02um", (unsigned)(ms / 3600000),
			 (unsigned)(ms / 60000) % 60);
	return buf;
}

/* Rates are computed in floating point: round, so that 1 GiB/s does not show as 1024.0 MiB/s. */
static uint64_t round_u64(double v)
{
	return v <= 0 ? 0 : (uint64_t)(v + 0.5);
}

static const char *fmt_bytes(double bytes, char *buf)
{
	return fmt_size(round_u64(bytes), buf, FMT_LEN);
}

static const char *fmt_rate(double bytes_per_s, char *buf)
{
	fmt_size(round_u64(bytes_per_s), buf, FMT_LEN - 2);
	strcat(buf, "/s");
	return buf;
}

/* The size at @path ("1.5 GiB"), or "-". */
static const char *show_bytes(json_t *o, const char *path, char *buf)
{
	double v;

	return migrate_num(o, path, &v) ? fmt_bytes(v, buf) : "-";
}

/* The count at @path, or "-". */
static const char *show_count(json_t *o, const char *path, char *buf)
{
	double v;

	if (!migrate_num(o, path, &v))
		return "-";
	snprintf(buf, FMT_LEN, "%.0f", v);
	return buf;
}

/*
 * The progress line, from a query-migrate result and the rate seen between
 * polls (0: none), for when ferry has not measured one yet:
 *   active  pass 3  sent 1.2 GiB  left 340.0 MiB  rate 812.0 MiB/s  dirty 64.0 MiB/s
 *   downtime ~120 ms  ETA 0.4 s  throttle 30%                     (one line;
 *   the throttle only while auto-converge slows the guest)
 */
void migrate_format_progress(json_t *info, double seen_rate, char *buf, size_t len)
{
	char pass[FMT_LEN] = "-", sent[FMT_LEN], left[FMT_LEN], rate[FMT_LEN] = "-";
	char dirty[FMT_LEN] = "-", down[FMT_LEN + 1] = "-", eta[FMT_LEN] = "-";
	const char *status = json_string_value(json_object_get(info, "status"));
	double v, bps = seen_rate, remaining = 0, secs;

	if (migrate_pass(info, &v))
		snprintf(pass, sizeof(pass), "%.0f", v);
	migrate_rate(info, &bps);
	if (bps > 0)
		fmt_rate(bps, rate);
	if (migrate_num(info, "ram.dirty-pages-rate", &v))
		fmt_rate(v * MIGRATE_PAGE_SIZE, dirty);
	if (migrate_num(info, "expected-downtime", &v)) {
		down[0] = '~';
		fmt_ms(v, down + 1);
	}
	migrate_num(info, "ram.remaining", &remaining);
	secs = migrate_eta_s(remaining, bps);
	if (secs >= 0)
		fmt_ms(secs * 1000, eta);
	int n = snprintf(buf, len,
			 "%s  pass %s  sent %s  left %s  rate %s  dirty %s  downtime %s  ETA %s",
			 status ? status : "-", pass, show_bytes(info, "ram.transferred", sent),
			 show_bytes(info, "ram.remaining", left), rate, dirty, down, eta);
	/* Auto-converge at work: the guest runs slowed down, say how much. */
	if (migrate_num(info, "cpu-throttle-percentage", &v) && v > 0 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "  throttle %.0f%%", v);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* What a number in the "ferry" object measures, by the convention of its name. */
enum unit { UNIT_NONE, UNIT_BYTES, UNIT_NS, UNIT_MS, UNIT_RATE };

static enum unit unit_of(const char *key)
{
	if (strcmp(key, "bytes") == 0 || ends_with(key, "-bytes"))
		return UNIT_BYTES;
	if (ends_with(key, "-ns"))
		return UNIT_NS;
	if (ends_with(key, "-ms"))
		return UNIT_MS;
	/* ferry's rates are bytes per second (the "ram" ones are QEMU's) */
	if (strcmp(key, "bandwidth") == 0 || strcmp(key, "dirty-rate") == 0)
		return UNIT_RATE;
	return UNIT_NONE;
}

/*
 * A value of the "ferry" object for a person.  @exact adds the byte count
 * to a size.  Arrays and objects come out as compact JSON.
 */
static const char *fmt_value(enum unit u, json_t *v, bool exact, char *buf, size_t len)
{
	char t[FMT_LEN];

	if (!v || json_is_null(v))
		return "-";
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	if (json_is_number(v) && json_number_value(v) >= 0 && u != UNIT_NONE) {
		double d = json_number_value(v);

		if (u == UNIT_BYTES && exact)
			snprintf(buf, len, "%s (%.0f bytes)", fmt_bytes(d, t), d);
		else if (u == UNIT_BYTES)
			snprintf(buf, len, "%s", fmt_bytes(d, t));
		else if (u == UNIT_RATE)
			snprintf(buf, len, "%s", fmt_rate(d, t));
		else
			snprintf(buf, len, "%s", fmt_ms(u == UNIT_NS ? d / 1e6 : d, t));
		return buf;
	}
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
	return buf;
}

#define SUMMARY_LABEL	  14 /* "transferred:" and two spaces */
#define SUMMARY_LABEL_MAX 28 /* longer labels push their value to the right */

static void summary_line(FILE *f, int width, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void summary_line(FILE *f, int width, const char *label, const char *fmt, ...)
{
	int len = (int)strlen(label);
	va_list ap;

	fprintf(f, "%-*s", len + 1 > width ? len + 1 : width, label);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* An array of objects, such as ferry.pass-table. */
static bool is_table(json_t *v)
{
	size_t i;
	json_t *row;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	json_array_foreach(v, i, row) if (!json_is_object(row)) return false;
	return true;
}

#define TABLE_MAX_COLS 16

/* Columns from the first row's keys, right-aligned, "-" for what a row lacks. */
static void print_table(FILE *f, json_t *rows)
{
	const char *cols[TABLE_MAX_COLS];
	int width[TABLE_MAX_COLS];
	size_t ncols = 0, i, k;
	char cell[FMT_LEN];
	const char *key;
	json_t *row, *v;

	json_object_foreach(json_array_get(rows, 0), key, v)
	{
		if (ncols == TABLE_MAX_COLS)
			break;
		cols[ncols] = key;
		width[ncols++] = (int)strlen(key);
	}
	json_array_foreach(rows, i, row)
	{
		for (k = 0; k < ncols; k++) {
			v = json_object_get(row, cols[k]);
			int w =
			    (int)strlen(fmt_value(unit_of(cols[k]), v, false, cell, sizeof(cell)));
			if (w > width[k])
				width[k] = w;
		}
	}
	fputs(" ", f);
	for (k = 0; k < ncols; k++)
		fprintf(f, "  %*s", width[k], cols[k]);
	fputc('\n', f);
	json_array_foreach(rows, i, row)
	{
		fputs(" ", f);
		for (k = 0; k < ncols; k++)
			fprintf(f, "  %*s", width[k],
				fmt_value(unit_of(cols[k]), json_object_get(row, cols[k]), false,
					  cell, sizeof(cell)));
		fputc('\n', f);
	}
}

/* Keys of "ferry" that the summary's own lines show. */
static bool summary_shown(const char *key)
{
	static const char *const shown[] = {"passes", "pass-table", "skipped-pages", "downtime-ns",
					    NULL};

	for (const char *const *s = shown; *s; s++)
		if (strcmp(*s, key) == 0)
			return true;
	return false;
}

/* An object on one line, its members in the unit of its name: "pause 1.50 ms, go 0.25 ms". */
static const char *fmt_members(json_t *obj, enum unit parent, char *buf, size_t len)
{
	size_t n = 0;
	const char *key;
	char t[FMT_LEN];
	json_t *v;

	buf[0] = '\0';
	json_object_foreach(obj, key, v)
	{
		enum unit u = unit_of(key) != UNIT_NONE ? unit_of(key) : parent;

		n += (size_t)snprintf(buf + n, len - n, "%s%s %s", n ? ", " : "", key,
				      fmt_value(u, v, false, t, sizeof(t)));
		if (n >= len)
			break;
	}
	return buf;
}

/* Every other member of "ferry", one line each, whatever the engine reports. */
static void summary_members(FILE *f, int width, json_t *ferry)
{
	const char *key;
	char label[128], buf[512];
	json_t *v;

	json_object_foreach(ferry, key, v)
	{
		if (summary_shown(key))
			continue;
		snprintf(label, sizeof(label), "%s:", key);
		if (is_table(v)) {
			fprintf(f, "%s\n", label);
			print_table(f, v);
		} else if (json_is_object(v)) {
			summary_line(f, width, label, "%s",
				     fmt_members(v, unit_of(key), buf, sizeof(buf)));
		} else {
			summary_line(f, width, label, "%s",
				     fmt_value(unit_of(key), v, true, buf, sizeof(buf)));
		}
	}
}

/* One column for the values, wide enough for ferry's names ("switchover-attempts:"). */
static int summary_width(json_t *ferry)
{
	int width = SUMMARY_LABEL;
	const char *key;
	json_t *v;

	json_object_foreach(ferry, key, v)
	{
		int w = (int)strlen(key) + 2;

		if (!summary_shown(key) && !is_table(v) && w > width && w <= SUMMARY_LABEL_MAX)
			width = w;
	}
	return width;
}

/* The block printed when a migration ends; "-" for what ferry did not report. */
void migrate_print_summary(FILE *f, json_t *info)
{
	const char *status = json_string_value(json_object_get(info, "status"));
	const char *desc = json_string_value(json_object_get(info, "error-desc"));
	json_t *ferry = json_object_get(info, "ferry");
	char a[FMT_LEN], b[FMT_LEN], c[FMT_LEN];
	double ms = 0, setup, down, down_ns, bytes = 0;
	bool has_ms = migrate_num(info, "total-time", &ms);
	bool has_bytes = migrate_num(info, "ram.transferred", &bytes);
	bool has_down = migrate_num(info, "downtime", &down);
	int w = summary_width(ferry);

	summary_line(f, w, "status:", "%s", status ? status : "-");
	if (desc)
		summary_line(f, w, "error:", "%s", desc);

	if (!has_ms)
		summary_line(f, w, "total time:", "-");
	else if (migrate_num(info, "setup-time", &setup))
		summary_line(f, w, "total time:", "%s (setup %s)", fmt_ms(ms, a), fmt_ms(setup, b));
	else
		summary_line(f, w, "total time:", "%s", fmt_ms(ms, a));

	/* QEMU's "downtime" is whole ms; ferry's own figure has the detail. */
	if (migrate_num(info, "ferry.downtime-ns", &down_ns) && (has_down || down_ns > 0))
		summary_line(f, w, "downtime:", "%s (%.6f ms)", has_down ? fmt_ms(down, a) : "-",
			     down_ns / 1e6);
	else
		summary_line(f, w, "downtime:", "%s", has_down ? fmt_ms(down, a) : "-");

	if (has_bytes)
		summary_line(f, w, "transferred:", "%s (%.0f bytes)", fmt_bytes(bytes, a), bytes);
	else
		summary_line(f, w, "transferred:", "-");
	summary_line(f, w, "pages:", "%s sent, %s zero, %s skipped",
		     show_count(info, "ram.normal", a), show_count(info, "ram.duplicate", b),
		     show_count(info, "ferry.skipped-pages", c));

	summary_line(f, w, "passes:", "%s", show_count(info, "ferry.passes", a));
	if (is_table(json_object_get(ferry, "pass-table")))
		print_table(f, json_object_get(ferry, "pass-table"));

	if (has_bytes && has_ms && ms > 0)
		summary_line(f, w, "throughput:", "%s average", fmt_rate(bytes / (ms / 1000), a));
	else
		summary_line(f, w, "throughput:", "-");

	summary_members(f, w, ferry);
}
