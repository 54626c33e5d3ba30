// SPDX-License-Identifier: GPL-2.0-only
#include "cli/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "common/clock.h"

#define PROGRESS_WIDTH 30

void progress_init(struct progress *p)
{
	pthread_mutex_init(&p->lock, NULL);
	p->tty = isatty(STDERR_FILENO);
	p->drawn = false;
	p->last_ns = 0;
}

void progress_update(void *opaque, const char *what, uint64_t done, uint64_t total)
{
	struct progress *p = opaque;
	uint64_t now = clock_now_ns();
	bool last = total && done >= total;
	char bar[PROGRESS_WIDTH + 1];

	if (!p->tty)
		return;
	pthread_mutex_lock(&p->lock);
	if (!last && now - p->last_ns < 100000000u) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (last && !p->drawn) { /* too quick to have shown anything: stay quiet */
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->last_ns = now;
	unsigned pct = total ? (unsigned)(done * 100 / total) : 0;
	if (pct > 100)
		pct = 100;
	for (unsigned i = 0; i < PROGRESS_WIDTH; i++)
		bar[i] = i < pct * PROGRESS_WIDTH / 100 ? '#' : '.';
	bar[PROGRESS_WIDTH] = '\0';
	fprintf(stderr, "\rferry: %-8s [%s] %3u%%%s", what, bar, pct, last ? "\n" : "");
	fflush(stderr);
	p->drawn = !last;
	pthread_mutex_unlock(&p->lock);
}

void progress_destroy(struct progress *p)
{
	pthread_mutex_destroy(&p->lock);
}
