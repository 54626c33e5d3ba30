// SPDX-License-Identifier: GPL-2.0-only
#include "migration/engine/ratelimit.h"

static void ratelimit_refill(struct ratelimit *rl, uint64_t now_ns)
{
	uint64_t dt = now_ns > rl->last_ns ? now_ns - rl->last_ns : 0;
	/* dt * rate / 1e9 without overflow for dt up to ~584 years at 1 TB/s */
	unsigned __int128 add = (unsigned __int128)dt * rl->rate / 1000000000u;

	rl->last_ns = now_ns;
	if (add >= rl->burst || rl->tokens + (uint64_t)add >= rl->burst)
		rl->tokens = rl->burst;
	else
		rl->tokens += (uint64_t)add;
}

void ratelimit_init(struct ratelimit *rl, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	rl->rate = rate;
	rl->burst = burst ? burst : 1;
	rl->tokens = rl->burst;
	rl->last_ns = now_ns;
}

void ratelimit_set_rate(struct ratelimit *rl, uint64_t rate, uint64_t now_ns)
{
	ratelimit_refill(rl, now_ns);
	rl->rate = rate;
}

uint64_t ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns)
{
	if (rl->rate == 0)
		return 0;
	ratelimit_refill(rl, now_ns);
	if (bytes <= rl->tokens) {
		rl->tokens -= bytes;
		return 0;
	}
	/* Go into debt; the wait pays it back at @rate. */
	uint64_t debt = bytes - rl->tokens;
	rl->tokens = 0;
	rl->last_ns = now_ns + (uint64_t)((unsigned __int128)debt * 1000000000u / rl->rate);
	return rl->last_ns - now_ns;
}
