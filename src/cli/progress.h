/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A one-line progress bar on a terminal; silent when stderr is not one.
 * Thread-safe (any thread may report); redraws at most every 100 ms.
 */
#ifndef FERRY_CLI_PROGRESS_H
#define FERRY_CLI_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct progress {
	pthread_mutex_t lock;
	bool tty;
	bool drawn;
	uint64_t last_ns;
};

void progress_init(struct progress *p);
/* @done == @total ends the bar with a newline. */
void progress_update(void *opaque, const char *what, uint64_t done, uint64_t total);
void progress_destroy(struct progress *p);

#endif
