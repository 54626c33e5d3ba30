// SPDX-License-Identifier: GPL-2.0-only
/*
 * The "mem" channel: reads come from a private copy of a buffer, writes go
 * to a growing one.  For unit tests and fuzzing: it never blocks, so the
 * timeout does not apply, and it is meant for one thread (channel_cancel()
 * from another is fine).  Cancellation uses the eventfd like every kind,
 * so that channel_cancel() stays kind-agnostic.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "migration/transport/channel.h"

#define MEM_WRITE_MAX (1ull << 32) /* a runaway writer fails instead of eating RAM */

struct mem_priv {
	uint8_t *in;
	size_t in_len, in_off;
	uint8_t *out;
	size_t out_len, out_cap;
	bool shut;
};

static int mem_check(struct channel *ch, struct ferr *err)
{
	struct pollfd p = {.fd = ch->cancel_fd, .events = POLLIN};

	if (poll(&p, 1, 0) > 0)
		return ferr_set(err, -ECANCELED, "%s: cancelled", ch->name);
	return 0;
}

static ssize_t mem_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	struct mem_priv *m = ch->priv;
	int rc = mem_check(ch, err);

	if (rc)
		return rc;
	size_t n = m->shut ? 0 : m->in_len - m->in_off;
	if (n > len)
		n = len;
	memcpy(buf, m->in + m->in_off, n);
	m->in_off += n;
	return (ssize_t)n;
}

static ssize_t mem_writev(struct channel *ch, const struct iovec *iov, int iovcnt, struct ferr *err)
{
	struct mem_priv *m = ch->priv;
	size_t total = 0;
	int rc = mem_check(ch, err);

	if (rc)
		return rc;
	if (m->shut)
		return ferr_set(err, -EPIPE, "%s: shut down", ch->name);
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > MEM_WRITE_MAX - m->out_len)
		return ferr_set(err, -ENOSPC, "%s: more than 4 GiB written", ch->name);
	if (m->out_len + total > m->out_cap) {
		size_t cap = m->out_cap ? m->out_cap : 4096;
		while (cap < m->out_len + total)
			cap *= 2;
		uint8_t *out = realloc(m->out, cap);
		if (!out)
			return ferr_set(err, -ENOMEM, "%s: out of memory", ch->name);
		m->out = out;
		m->out_cap = cap;
	}
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(m->out + m->out_len, iov[i].iov_base, iov[i].iov_len);
		m->out_len += iov[i].iov_len;
	}
	/* ssize_t holds it: total <= MEM_WRITE_MAX */
	return (ssize_t)total;
}

static void mem_shutdown(struct channel *ch)
{
	struct mem_priv *m = ch->priv;

	m->shut = true;
}

static void mem_close(struct channel *ch)
{
	struct mem_priv *m = ch->priv;

	free(m->in);
	free(m->out);
	free(m);
	close(ch->cancel_fd);
	free(ch);
}

static const struct channel_ops mem_ops = {
    .kind = "mem",
    .read = mem_read,
    .writev = mem_writev,
    .shutdown = mem_shutdown,
    .close = mem_close,
};

int channel_mem_open(const void *data, size_t len, struct channel **out, struct ferr *err)
{
	struct channel *ch = calloc(1, sizeof(*ch));
	struct mem_priv *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!ch || !m)
		goto nomem;
	m->in = malloc(len ? len : 1);
	if (!m->in)
		goto nomem;
	if (len)
		memcpy(m->in, data, len);
	m->in_len = len;
	ch->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ch->cancel_fd < 0) {
		int rc = -errno;
		free(m->in);
		free(m);
		free(ch);
		return ferr_errno(err, rc, "mem: eventfd");
	}
	ch->ops = &mem_ops;
	ch->fd = -1;
	ch->timeout_ms = -1;
	ch->priv = m;
	snprintf(ch->name, sizeof(ch->name), "mem");
	*out = ch;
	return 0;
nomem:
	if (m)
		free(m->in);
	free(m);
	free(ch);
	return ferr_set(err, -ENOMEM, "mem: out of memory");
}

const void *channel_mem_data(const struct channel *ch, size_t *len)
{
	const struct mem_priv *m;

	if (ch->ops != &mem_ops) {
		*len = 0;
		return NULL;
	}
	m = ch->priv;
	*len = m->out_len;
	return m->out ? m->out : (const void *)""; /* never NULL: memcpy(dst, p, 0) is fine */
}
