// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vm/iobus.h"

struct fake_dev {
	uint16_t last_port;
	uint32_t last_val;
	unsigned last_size;
};

static uint32_t fake_in(void *dev, uint16_t port, unsigned size)
{
	return port + size;
}

static void fake_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	struct fake_dev *d = dev;
	d->last_port = port;
	d->last_size = size;
	d->last_val = val;
}

static const struct io_ops fake_ops = {"fake", fake_in, fake_out};
static const struct io_ops wo_ops = {"write-only", NULL, fake_out};

static void test_dispatch(void **state)
{
	struct iobus bus = {0};
	struct fake_dev d = {0};
	struct ferr err = FERR_INIT;

	assert_int_equal(iobus_register(&bus, 0x3f8, 8, &fake_ops, &d, &err), 0);
	assert_int_equal(iobus_in(&bus, 0x3f8, 1), 0x3f9);
	assert_int_equal(iobus_in(&bus, 0x3ff, 2), 0x401);
	iobus_out(&bus, 0x3fc, 4, 0xdeadbeef);
	assert_int_equal(d.last_port, 0x3fc);
	assert_int_equal(d.last_size, 4);
	assert_int_equal(d.last_val, 0xdeadbeef);
}

static void test_unclaimed(void **state)
{
	struct iobus bus = {0};
	struct fake_dev d = {0};
	struct ferr err = FERR_INIT;

	assert_int_equal(iobus_in(&bus, 0x80, 1), 0xff);
	assert_int_equal(iobus_in(&bus, 0x80, 2), 0xffff);
	assert_int_equal(iobus_in(&bus, 0x80, 4), 0xffffffff);
	assert_int_equal(iobus_register(&bus, 0xf4, 2, &wo_ops, &d, &err), 0);
	assert_int_equal(iobus_in(&bus, 0xf4, 1), 0xff); /* no in handler */
	iobus_out(&bus, 0x3f8, 1, 1);			 /* unclaimed: dropped */
	assert_int_equal(d.last_size, 0);
}

static void test_register_rejects(void **state)
{
	struct iobus bus = {0};
	struct ferr err = FERR_INIT;

	assert_int_equal(iobus_register(&bus, 0x3f8, 8, &fake_ops, NULL, &err), 0);
	assert_int_equal(iobus_register(&bus, 0x3ff, 1, &fake_ops, NULL, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "overlap"));
	ferr_clear(&err);
	assert_int_equal(iobus_register(&bus, 0xffff, 2, &fake_ops, NULL, &err), -EINVAL);
	ferr_clear(&err);
	assert_int_equal(iobus_register(&bus, 0x10, 0, &fake_ops, NULL, &err), -EINVAL);
	for (unsigned i = 1; i < IOBUS_MAX_RANGES; i++)
		assert_int_equal(iobus_register(&bus, 0x1000 + i, 1, &fake_ops, NULL, &err), 0);
	assert_int_equal(iobus_register(&bus, 0x2000, 1, &fake_ops, NULL, &err), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dispatch),
	    cmocka_unit_test(test_unclaimed),
	    cmocka_unit_test(test_register_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
