/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Bandwidth cap as a token bucket, pure: the caller passes the clock.
 * ratelimit_delay() says how long to wait before sending more so that the
 * average rate stays at or under @rate bytes/s, allowing a burst of
 * @burst bytes (one batch) at a time.
 */
#ifndef FERRY_MIGRATION_RATELIMIT_H
#define FERRY_MIGRATION_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	uint64_t rate;	 /* bytes/s; 0 = unlimited */
	uint64_t burst;	 /* bytes */
	uint64_t tokens; /* bytes that may go now */
	uint64_t last_ns;
};

void ratelimit_init(struct ratelimit *rl, uint64_t rate, uint64_t burst, uint64_t now_ns);
/* Change the rate mid-migration (migrate-set-parameters). */
void ratelimit_set_rate(struct ratelimit *rl, uint64_t rate, uint64_t now_ns);
/* Account @bytes sent at @now_ns; returns nanoseconds to wait before the next send. */
uint64_t ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns);

#endif
