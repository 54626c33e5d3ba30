// SPDX-License-Identifier: GPL-2.0-only
/* Trace points: the switchboard and the sink (common/trace.h). */
#include "common/trace.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"

static const char *const trace_names[TRACE__COUNT] = {
    [TRACE_PASS_START] = "pass_start",		 [TRACE_PASS_END] = "pass_end",
    [TRACE_POLICY_DECISION] = "policy_decision", [TRACE_SWITCHOVER_PHASE] = "switchover_phase",
    [TRACE_SWITCHOVER_END] = "switchover_end",	 [TRACE_CHANNEL_STALL] = "channel_stall",
};

const char *trace_event_name(enum trace_event e)
{
	return (unsigned)e < TRACE__COUNT ? trace_names[e] : NULL;
}

/* Glob with '*' only: event names have no other special characters. */
static bool match(const char *pat, size_t plen, const char *s)
{
	if (plen == 0)
		return *s == '\0';
	if (*pat == '*')
		return match(pat + 1, plen - 1, s) || (*s && match(pat, plen, s + 1));
	return *s && *pat == *s && match(pat + 1, plen - 1, s + 1);
}

static unsigned trace_set_n(struct trace *t, const char *pat, size_t plen, bool on)
{
	unsigned n = 0;

	for (unsigned e = 0; e < TRACE__COUNT; e++) {
		if (!match(pat, plen, trace_names[e]))
			continue;
		if (on)
			atomic_fetch_or(&t->on, 1ull << e);
		else
			atomic_fetch_and(&t->on, ~(1ull << e));
		n++;
	}
	return n;
}

unsigned trace_set(struct trace *t, const char *pattern, bool on)
{
	return trace_set_n(t, pattern, strlen(pattern), on);
}

int trace_init(struct trace *t, const char *env, struct ferr *err)
{
	atomic_init(&t->on, 0);
	t->sink = stderr;
	while (env && *env) {
		size_t len = strcspn(env, ",");
		if (len && !trace_set_n(t, env, len, true))
			return ferr_set(err, -EINVAL,
					"FERRY_TRACE: \"%.*s\" matches no trace event (see "
					"docs/tracing.md)",
					(int)len, env);
		env += len + (env[len] == ',');
	}
	return 0;
}

void trace_emit(struct trace *t, enum trace_event e, const char *fmt, ...)
{
	char line[512];
	uint64_t now = clock_now_ns();
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "ferry-trace: %llu.%06llu %s ",
		     (unsigned long long)(now / 1000000000u),
		     (unsigned long long)(now % 1000000000u / 1000u), trace_names[e]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from several threads never interleave. */
	if (write(fileno(t->sink), line, (size_t)n) < 0) {
		/* nowhere to report it: tracing is best effort */
	}
}
