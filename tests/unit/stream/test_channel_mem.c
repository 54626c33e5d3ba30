// SPDX-License-Identifier: GPL-2.0-only
/*
 * The mem channel and the generic helpers of channel.c: complete reads and
 * writes over short transfers, end of stream, IOV_MAX, cancellation,
 * shutdown, byte counts, and ops that fail without saying why.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migration/transport/channel.h"
#include "stream_test_util.h"

static void test_read_full(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *ch;
	char buf[8] = {0};

	assert_int_equal(channel_mem_open("abcdef", 6, &ch, &err), 0);
	assert_string_equal(ch->ops->kind, "mem");
	assert_int_equal(ch->fd, -1);
	assert_int_equal(channel_read_full(ch, buf, 2, &err), 0);
	assert_memory_equal(buf, "ab", 2);
	assert_int_equal(channel_read_full(ch, buf, 0, &err), 0);
	assert_int_equal(channel_read_full(ch, buf, 8, &err), -EPIPE);
	assert_string_equal(err.msg, "mem: stream ended after 4 of 8 bytes");
	assert_memory_equal(buf, "cdef", 4);
	assert_int_equal(ch->bytes_read, 6);
	channel_close(ch);
	channel_close(NULL);
}

static void test_trickle_read(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *ch;
	char buf[11] = {0};

	assert_int_equal(channel_mem_open("hello world", 11, &ch, &err), 0);
	ch = trickle_channel(ch, 3);
	assert_int_equal(channel_read_full(ch, buf, 11, &err), 0);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(ch->bytes_read, 11);
	assert_int_equal(channel_read_full(ch, buf, 1, &err), -EPIPE);
	channel_close(ch);
}

/* More vectors than writev() takes at once, and writes that stop mid-vector. */
static void test_writev_full(void **state)
{
	enum { N = 2 * IOV_MAX + 5 };
	static struct iovec iov[N];
	static uint8_t want[N * 3];
	size_t total = 0, len;

	for (int chunk = 0; chunk < 2; chunk++) {
		struct ferr err = FERR_INIT;
		struct channel *mem, *ch;
		assert_int_equal(channel_mem_open(NULL, 0, &mem, &err), 0);
		ch = chunk ? trickle_channel(mem, 2) : mem;
		total = 0;
		for (int i = 0; i < N; i++) {
			size_t n = (size_t)(i % 4); /* some empty */
			for (size_t k = 0; k < n; k++)
				want[total + k] = (uint8_t)(i + k);
			iov[i] = (struct iovec){want + total, n};
			total += n;
		}
		assert_int_equal(channel_writev_full(ch, iov, N, &err), 0);
		assert_int_equal(ch->bytes_written, total);
		const uint8_t *got = channel_mem_data(mem, &len);
		assert_int_equal(len, total);
		assert_memory_equal(got, want, total);
		assert_int_equal(channel_write_full(ch, "xyz", 3, &err), 0);
		got = channel_mem_data(mem, &len);
		assert_int_equal(len, total + 3);
		assert_memory_equal(got + total, "xyz", 3);
		if (chunk)
			assert_null(channel_mem_data(ch, &len)); /* not a mem channel */
		channel_close(ch);
	}
}

static void test_cancel(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *ch;
	char c;

	assert_int_equal(channel_mem_open("x", 1, &ch, &err), 0);
	channel_cancel(ch);
	channel_cancel(ch); /* idempotent */
	assert_int_equal(channel_read_full(ch, &c, 1, &err), -ECANCELED);
	assert_string_equal(err.msg, "mem: cancelled");
	ferr_clear(&err);
	assert_int_equal(channel_write_full(ch, "y", 1, &err), -ECANCELED);
	assert_int_equal(ch->bytes_read, 0);
	channel_close(ch);
}

static void test_shutdown(void **state)
{
	struct ferr err = FERR_INIT;
	struct channel *ch;
	char c;

	assert_int_equal(channel_mem_open("x", 1, &ch, &err), 0);
	channel_shutdown(ch);
	assert_int_equal(channel_read_full(ch, &c, 1, &err), -EPIPE);
	ferr_clear(&err);
	assert_int_equal(channel_write_full(ch, "y", 1, &err), -EPIPE);
	assert_string_equal(err.msg, "mem: shut down");
	channel_close(ch);
}

/* Ops that fail without a message, or misbehave: the helpers still say something. */
static ssize_t bad_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	return ch->timeout_ms ? (ssize_t)len + 1 : -EIO;
}

static ssize_t bad_writev(struct channel *ch, const struct iovec *iov, int n, struct ferr *err)
{
	return ch->timeout_ms ? 0 : -ENOSPC;
}

static void bad_close(struct channel *ch)
{
}

static void test_silent_ops(void **state)
{
	static const struct channel_ops ops = {
	    .kind = "bad", .read = bad_read, .writev = bad_writev, .close = bad_close};
	struct channel ch = {.ops = &ops, .fd = -1, .cancel_fd = -1, .name = "bad:x"};
	struct ferr err = FERR_INIT;
	char buf[4];

	assert_int_equal(channel_read_full(&ch, buf, 4, &err), -EIO);
	assert_string_equal(err.msg, "bad:x: read: Input/output error");
	ferr_clear(&err);
	assert_int_equal(channel_write_full(&ch, buf, 4, &err), -ENOSPC);
	assert_string_equal(err.msg, "bad:x: write: No space left on device");
	ch.timeout_ms = 1; /* now: too much, and no progress */
	ferr_clear(&err);
	assert_int_equal(channel_read_full(&ch, buf, 4, &err), -EIO);
	assert_string_equal(err.msg, "bad:x: read returned more than asked");
	ferr_clear(&err);
	assert_int_equal(channel_write_full(&ch, buf, 4, &err), -EIO);
	assert_string_equal(err.msg, "bad:x: write made no progress");
	channel_shutdown(&ch); /* no shutdown op: nothing happens */
	channel_cancel(&ch);   /* no eventfd: nothing happens */
	channel_close(&ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_full),	cmocka_unit_test(test_trickle_read),
	    cmocka_unit_test(test_writev_full), cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_shutdown),	cmocka_unit_test(test_silent_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
