// SPDX-License-Identifier: GPL-2.0-only
/*
 * Device state sections (docs/stream-format.md, "State blobs"): the RTC,
 * the ACPI PM block and the UART saved from one device and loaded into
 * another through their device_state_ops, as a migration does; and every
 * way a blob is refused (they are untrusted bytes from the stream).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/sbuf.h"
#include "devices/acpi_pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "machine/board.h"
#include "vm/iobus.h"
#include "vm/state_parse.h"

static uint8_t cmos_rd(struct iobus *bus, uint8_t reg)
{
	iobus_out(bus, RTC_PORT, 1, reg);
	return iobus_in(bus, RTC_PORT + 1, 1);
}

static void cmos_wr(struct iobus *bus, uint8_t reg, uint8_t v)
{
	iobus_out(bus, RTC_PORT, 1, reg);
	iobus_out(bus, RTC_PORT + 1, 1, v);
}

static void test_rtc_round_trip(void **state)
{
	struct iobus a = {0}, b = {0};
	struct rtc ra, rb;
	struct sbuf blob = SBUF_INIT;
	struct ferr err = FERR_INIT;

	assert_int_equal(rtc_init(&ra, &a, &err), 0);
	assert_int_equal(rtc_init(&rb, &b, &err), 0);
	cmos_wr(&a, 0x40, 0x5a);
	cmos_wr(&a, 0x0b, 0x06); /* binary, 24-hour */
	cmos_wr(&a, 0x09, 77);	 /* the guest sets the year to (20)77 */
	iobus_out(&a, RTC_PORT, 1, 0x09);
	assert_int_equal(rtc_state_ops.save(&ra, &blob, &err), 0);
	assert_int_equal(rtc_state_ops.load(&rb, rtc_state_ops.version, blob.data, blob.len, &err),
			 0);
	assert_int_equal(rb.offset_s, ra.offset_s);
	/* the index came along: a read of the data port is the year, as on the source */
	assert_int_equal(iobus_in(&b, RTC_PORT + 1, 1), 77);
	assert_int_equal(cmos_rd(&b, 0x40), 0x5a);
	assert_int_equal(cmos_rd(&b, 0x0b), 0x06);
	assert_int_equal(cmos_rd(&b, 0x32), 20);
	sbuf_free(&blob);
	rtc_destroy(&ra);
	rtc_destroy(&rb);
}

/* A blob of sections { tag, len, fill } built with the real writer. */
struct sec {
	uint32_t tag, len;
	const void *data;
};

static struct sbuf blob_of(const struct sec *s, unsigned n)
{
	static const uint8_t zeros[256];
	struct sbuf b = SBUF_INIT;

	for (unsigned i = 0; i < n; i++)
		assert_int_equal(
		    sbuf_put_section(&b, s[i].tag, s[i].data ? s[i].data : zeros, s[i].len), 0);
	return b;
}

/* A blob that must be refused with @code and a message holding @words. */
struct refusal {
	struct sec s[3];
	unsigned n;
	uint32_t version;
	int code;
	const char *words;
};

typedef int (*parse_fn)(void *ctx, uint32_t version, const void *blob, size_t len,
			struct ferr *err);

static void refuse_all(const struct refusal *c, size_t n, parse_fn parse, void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		struct ferr err = FERR_INIT;
		struct sbuf b = blob_of(c[i].s, c[i].n);
		int rc = parse(ctx, c[i].version, b.data, b.len, &err);
		sbuf_free(&b);
		if (rc != c[i].code || !strstr(err.msg, c[i].words))
			fail_msg("case %zu: %d '%s', expected %d and '%s'", i, rc, err.msg,
				 c[i].code, c[i].words);
	}
}

static int rtc_parse(void *ctx, uint32_t version, const void *blob, size_t len, struct ferr *err)
{
	struct rtc_state st;
	return rtc_blob_parse(version, blob, len, &st, err);
}

static int serial_parse(void *ctx, uint32_t version, const void *blob, size_t len, struct ferr *err)
{
	struct serial_state st;
	return serial_blob_parse(version, blob, len, &st, err);
}

static void test_rtc_rejections(void **state)
{
	uint8_t cmos[129] = {0x0a}, bad_index[129] = {0x80};
	int64_t ok = 3600, far = RTC_MAX_OFFSET_S + 1, before = -RTC_MAX_OFFSET_S - 1;
	const struct refusal cases[] = {
	    {{{1, 129, cmos}, {2, 8, &ok}}, 2, 2, -ENOTSUP, "version 2"},
	    {{{1, 129, cmos}, {2, 8, &ok}}, 2, 0, -ENOTSUP, "version 0"},
	    {{{1, 129, cmos}}, 1, 1, -EBADMSG, "clock offset"},
	    {{{2, 8, &ok}}, 1, 1, -EBADMSG, "CMOS"},
	    {{{1, 129, cmos}, {2, 8, &ok}, {2, 8, &ok}}, 3, 1, -EBADMSG, "duplicate"},
	    {{{1, 128, cmos}, {2, 8, &ok}}, 2, 1, -EBADMSG, "128 bytes"},
	    {{{1, 129, cmos}, {2, 4, &ok}}, 2, 1, -EBADMSG, "4 bytes"},
	    {{{1, 129, cmos}, {2, 8, &ok}, {3, 8, &ok}}, 3, 1, -EBADMSG, "section 0x3"},
	    {{{1, 129, bad_index}, {2, 8, &ok}}, 2, 1, -EBADMSG, "index register 0x80"},
	    {{{1, 129, cmos}, {2, 8, &far}}, 2, 1, -EBADMSG, "out of range"},
	    {{{1, 129, cmos}, {2, 8, &before}}, 2, 1, -EBADMSG, "out of range"},
	    {{{0}}, 0, 1, -EBADMSG, "no section"},
	};
	struct rtc_state st;

	refuse_all(cases, sizeof(cases) / sizeof(cases[0]), rtc_parse, NULL);
	/* a section header claiming more than the blob holds */
	struct sec good[] = {{1, 129, cmos}, {2, 8, &ok}};
	struct sbuf b = blob_of(good, 2);
	struct ferr err = FERR_INIT;
	assert_int_equal(rtc_blob_parse(1, b.data, b.len, &st, &err), 0);
	assert_int_equal(st.index, 0x0a);
	assert_int_equal(st.offset_s, 3600);
	assert_int_not_equal(rtc_blob_parse(1, b.data, b.len - 8, &st, &err), 0);
	sbuf_free(&b);
}

static int no_irq(void *opaque, unsigned irq, bool level)
{
	return 0;
}

static void no_shutdown(void *opaque, const char *reason, bool guest, int status)
{
	fail_msg("unexpected shutdown %s", reason);
}

static void no_reset(void *opaque, const char *reason)
{
	fail_msg("unexpected reset %s", reason);
}

static const struct board_ctl ctl = {no_irq, no_shutdown, no_reset, NULL};

static void test_acpi_pm_round_trip_and_rejections(void **state)
{
	struct iobus a = {0}, b = {0};
	struct acpi_pm pa, pb;
	struct sbuf blob = SBUF_INIT;
	struct ferr err = FERR_INIT;
	uint16_t en[2] = {0x0121, 0}; /* room for the 4-byte case */

	assert_int_equal(acpi_pm_init(&pa, &ctl, &a, &err), 0);
	assert_int_equal(acpi_pm_init(&pb, &ctl, &b, &err), 0);
	iobus_out(&a, ACPI_PM1A_EVT_PORT + 2, 2, 0x0121);
	assert_int_equal(acpi_pm_state_ops.save(&pa, &blob, &err), 0);
	assert_int_equal(acpi_pm_state_ops.load(&pb, 1, blob.data, blob.len, &err), 0);
	assert_int_equal(iobus_in(&b, ACPI_PM1A_EVT_PORT + 2, 2), 0x0121);
	sbuf_free(&blob);

	const struct refusal cases[] = {
	    {{{1, 2, en}}, 1, 2, -ENOTSUP, "version 2"},
	    {{{1, 1, en}}, 1, 1, -EBADMSG, "1 bytes"},
	    {{{1, 4, en}}, 1, 1, -EBADMSG, "4 bytes"},
	    {{{1, 2, en}, {1, 2, en}}, 2, 1, -EBADMSG, "duplicate"},
	    {{{2, 2, en}}, 1, 1, -EBADMSG, "section 0x2"},
	    {{{0}}, 0, 1, -EBADMSG, "PM1_EN"},
	};
	refuse_all(cases, sizeof(cases) / sizeof(cases[0]), acpi_pm_state_ops.load, &pb);
	/* a refused load changed nothing */
	assert_int_equal(iobus_in(&b, ACPI_PM1A_EVT_PORT + 2, 2), 0x0121);
}

static void test_serial_fifo_round_trip(void **state)
{
	struct iobus a = {0}, b = {0};
	struct serial *sa, *sb;
	struct ferr err = FERR_INIT;
	uint8_t regs[SERIAL_NREGS] = {0x01, 0x03, 0x08, 0x61, 0xb0, 0x77, 0x01, 0x01, 0x00, 0};
	uint8_t fifo[] = {3, 'a', 'b', 'c'};
	struct sec s[] = {{SERIAL_STATE_REGS, SERIAL_NREGS, regs}, {SERIAL_STATE_RX, 4, fifo}};
	struct sbuf in = blob_of(s, 2), out = SBUF_INIT;

	assert_int_equal(serial_create(&ctl, &a, 0x3f8, 4, NULL, &sa, &err), 0);
	assert_int_equal(serial_create(&ctl, &b, 0x3f8, 4, NULL, &sb, &err), 0);
	assert_int_equal(serial_state_ops.load(sa, 2, in.data, in.len, &err), 0);
	assert_int_equal(iobus_in(&a, 0x3f8 + 7, 1), 0x77);	/* SCR */
	assert_int_equal(iobus_in(&a, 0x3f8 + 5, 1) & 1, 1);	/* LSR.DR */
	assert_int_equal(iobus_in(&a, 0x3f8 + 2, 1) & 0x0f, 4); /* IIR: received data */
	assert_int_equal(iobus_in(&a, 0x3f8, 1), 'a');
	/* the two bytes still waiting travel, in order */
	assert_int_equal(serial_state_ops.save(sa, &out, &err), 0);
	assert_int_equal(
	    serial_state_ops.load(sb, serial_state_ops.version, out.data, out.len, &err), 0);
	assert_int_equal(iobus_in(&b, 0x3f8, 1), 'b');
	assert_int_equal(iobus_in(&b, 0x3f8, 1), 'c');
	assert_int_equal(iobus_in(&b, 0x3f8 + 5, 1) & 1, 0);
	assert_int_equal(iobus_in(&b, 0x3f8 + 7, 1), 0x77);
	/* version 1 (registers only) still loads, with an empty FIFO */
	struct sbuf v1 = blob_of(s, 1);
	assert_int_equal(serial_state_ops.load(sb, 1, v1.data, v1.len, &err), 0);
	assert_int_equal(iobus_in(&b, 0x3f8 + 5, 1) & 1, 0);
	sbuf_free(&v1);
	sbuf_free(&in);
	sbuf_free(&out);
	serial_destroy(sa);
	serial_destroy(sb);
}

static void test_serial_rejections(void **state)
{
	uint8_t regs[SERIAL_NREGS] = {0};
	uint8_t fifo17[18] = {17}, short_fifo[3] = {5, 'x', 'y'}, empty[1] = {0};
	const struct refusal cases[] = {
	    {{{1, SERIAL_NREGS, regs}}, 1, 3, -ENOTSUP, "version 3"},
	    {{{1, SERIAL_NREGS, regs}}, 1, 0, -ENOTSUP, "version 0"},
	    {{{1, SERIAL_NREGS, regs}}, 1, 2, -EBADMSG, "receive FIFO"},
	    {{{1, SERIAL_NREGS, regs}, {2, 1, empty}}, 2, 1, -EBADMSG, "section 0x2"},
	    {{{1, 9, regs}, {2, 1, empty}}, 2, 2, -EBADMSG, "9 bytes"},
	    {{{1, SERIAL_NREGS, regs}, {2, 18, fifo17}}, 2, 2, -EBADMSG, "18 bytes"},
	    {{{1, SERIAL_NREGS, regs}, {2, 3, short_fifo}}, 2, 2, -EBADMSG, "5 bytes in a 3-byte"},
	    {{{1, SERIAL_NREGS, regs}, {2, 0, empty}}, 2, 2, -EBADMSG, "0 bytes"},
	    {{{1, SERIAL_NREGS, regs}, {1, SERIAL_NREGS, regs}}, 2, 2, -EBADMSG, "duplicate"},
	    {{{2, 1, empty}}, 1, 2, -EBADMSG, "registers"},
	};
	refuse_all(cases, sizeof(cases) / sizeof(cases[0]), serial_parse, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rtc_round_trip),
	    cmocka_unit_test(test_rtc_rejections),
	    cmocka_unit_test(test_acpi_pm_round_trip_and_rejections),
	    cmocka_unit_test(test_serial_fifo_round_trip),
	    cmocka_unit_test(test_serial_rejections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
