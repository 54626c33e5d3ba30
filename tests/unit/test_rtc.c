// SPDX-License-Identifier: GPL-2.0-only
/* CMOS RTC: time register formats, and the port interface (index, data, setting the time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "devices/rtc.h"
#include "vm/iobus.h"

#define T_2023 1700000000 /* Tue 2023-11-14 22:13:20 UTC */

static void test_formats(void **state)
{
	/* BCD, 24-hour */
	assert_int_equal(rtc_time_reg(T_2023, 0x00, 0x02), 0x20);
	assert_int_equal(rtc_time_reg(T_2023, 0x02, 0x02), 0x13);
	assert_int_equal(rtc_time_reg(T_2023, 0x04, 0x02), 0x22);
	assert_int_equal(rtc_time_reg(T_2023, 0x06, 0x02), 3); /* Tuesday: day 3 */
	assert_int_equal(rtc_time_reg(T_2023, 0x07, 0x02), 0x14);
	assert_int_equal(rtc_time_reg(T_2023, 0x08, 0x02), 0x11);
	assert_int_equal(rtc_time_reg(T_2023, 0x09, 0x02), 0x23);
	assert_int_equal(rtc_time_reg(T_2023, 0x32, 0x02), 0x20);
	/* BCD, 12-hour: 10 PM */
	assert_int_equal(rtc_time_reg(T_2023, 0x04, 0x00), 0x90);
	/* binary */
	assert_int_equal(rtc_time_reg(T_2023, 0x04, 0x06), 22);
	assert_int_equal(rtc_time_reg(T_2023, 0x09, 0x06), 23);
	/* midnight in 12-hour form is 12 AM */
	assert_int_equal(rtc_time_reg(0, 0x04, 0x00), 0x12);
}

static uint8_t rd(struct iobus *bus, uint8_t reg)
{
	iobus_out(bus, RTC_PORT, 1, reg);
	return iobus_in(bus, RTC_PORT + 1, 1);
}

static void test_ports(void **state)
{
	struct iobus bus = {0};
	struct rtc rtc;
	struct ferr err = FERR_INIT;
	time_t now = time(NULL);
	struct tm tm;

	assert_int_equal(rtc_init(&rtc, &bus, &err), 0);
	assert_int_equal(rd(&bus, 0x0d), 0x80);	    /* battery good */
	assert_int_equal(rd(&bus, 0x0a) & 0x80, 0); /* no update in progress */
	assert_int_equal(rd(&bus, 0x0b), 0x02);	    /* BCD, 24-hour */
	assert_int_equal(rd(&bus, 0x0c), 0);	    /* no interrupt flags */
	gmtime_r(&now, &tm);
	assert_int_equal(rd(&bus, 0x09), ((tm.tm_year % 100) / 10) << 4 | (tm.tm_year % 10));
	/* CMOS RAM keeps what is written; the NMI bit of the index is ignored */
	iobus_out(&bus, RTC_PORT, 1, 0x80 | 0x40);
	iobus_out(&bus, RTC_PORT + 1, 1, 0x5a);
	assert_int_equal(rd(&bus, 0x40), 0x5a);
	/* the guest sets the year to 2031: it reads back, and the clock still runs */
	iobus_out(&bus, RTC_PORT, 1, 0x09);
	iobus_out(&bus, RTC_PORT + 1, 1, 0x31);
	assert_int_equal(rd(&bus, 0x09), 0x31);
	assert_int_equal(rd(&bus, 0x32), 0x20);
	assert_true(rtc.offset_s > 300L * 24 * 3600);
	rtc_destroy(&rtc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_formats),
	    cmocka_unit_test(test_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
