/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the socket kinds share (channel_sock.c, channel_tls.c): waiting in
 * poll() on {fd, cancel_fd} with an inactivity limit and the channel's
 * absolute deadline, and the messages for the ways a wait ends.  Private
 * to the channel files.
 */
#ifndef FERRY_MIGRATION_CHANNEL_PRIV_H
#define FERRY_MIGRATION_CHANNEL_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/transport/channel.h"

#define CHANNEL_NO_DEADLINE UINT64_MAX

/* CLOCK_MONOTONIC ns @timeout_ms from now; CHANNEL_NO_DEADLINE when < 0. */
uint64_t channel_deadline_after(int timeout_ms);

/*
 * Wait until @fd is ready for @events, @cancel_fd (if >= 0) is readable,
 * @deadline (inactivity) or @hard (the channel's absolute deadline, 0:
 * none) passes: 0, -ECANCELED, -ETIMEDOUT, -ETIME or -errno.  Errors and
 * hangups on @fd also return 0: the syscall that follows reports them.
 */
int channel_poll(int fd, short events, int cancel_fd, uint64_t deadline, uint64_t hard);

/* @cancel_fd is readable: channel_cancel() was called. */
bool channel_cancelled(int cancel_fd);

/* The message for a channel_poll() failure on @ch; @stalled: "no data", ... */
int channel_wait_error(struct channel *ch, int rc, const char *stalled, struct ferr *err);

#endif
