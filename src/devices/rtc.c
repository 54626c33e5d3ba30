// SPDX-License-Identifier: GPL-2.0-only
#include "devices/rtc.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "vm/iobus.h"
#include "vm/state_parse.h"

enum {
	RTC_SEC = 0x00,
	RTC_MIN = 0x02,
	RTC_HOUR = 0x04,
	RTC_WDAY = 0x06,
	RTC_MDAY = 0x07,
	RTC_MON = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32,
};

#define RTC_B_DM   0x04 /* binary, not BCD */
#define RTC_B_2412 0x02 /* 24-hour */
#define RTC_D_VRT  0x80 /* valid RAM and time */
#define RTC_A_INIT 0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP clear */

static uint8_t to_bcd(unsigned v, uint8_t regb)
{
	return (regb & RTC_B_DM) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_bcd(uint8_t v, uint8_t regb)
{
	return (regb & RTC_B_DM) ? v : (v >> 4) * 10 + (v & 0x0f);
}

uint8_t rtc_time_reg(int64_t t, uint8_t reg, uint8_t regb)
{
	time_t tt = (time_t)t;
	struct tm tm;
	unsigned h;

	gmtime_r(&tt, &tm);
	switch (reg) {
	case RTC_SEC:
		return to_bcd(tm.tm_sec, regb);
	case RTC_MIN:
		return to_bcd(tm.tm_min, regb);
	case RTC_HOUR:
		if (regb & RTC_B_2412)
			return to_bcd(tm.tm_hour, regb);
		h = tm.tm_hour % 12;
		return to_bcd(h ? h : 12, regb) | (tm.tm_hour >= 12 ? 0x80 : 0);
	case RTC_WDAY:
		return to_bcd(tm.tm_wday + 1, regb);
	case RTC_MDAY:
		return to_bcd(tm.tm_mday, regb);
	case RTC_MON:
		return to_bcd(tm.tm_mon + 1, regb);
	case RTC_YEAR:
		return to_bcd(tm.tm_year % 100, regb);
	case RTC_CENTURY:
		return to_bcd((tm.tm_year + 1900) / 100, regb);
	}
	return 0;
}

static int64_t rtc_now(const struct rtc *rtc)
{
	return (int64_t)time(NULL) + rtc->offset_s;
}

/* The guest wrote time register @reg: move the offset so that it reads @val. */
static void rtc_set_reg(struct rtc *rtc, uint8_t reg, uint8_t val)
{
	uint8_t regb = rtc->ram[RTC_REG_B];
	time_t t = (time_t)rtc_now(rtc);
	struct tm tm;
	unsigned v;

	gmtime_r(&t, &tm);
	v = from_bcd(reg == RTC_HOUR ? val & 0x7f : val, regb);
	switch (reg) {
	case RTC_SEC:
		tm.tm_sec = v % 60;
		break;
	case RTC_MIN:
		tm.tm_min = v % 60;
		break;
	case RTC_HOUR:
		if (!(regb & RTC_B_2412))
			v = (v % 12) + ((val & 0x80) ? 12 : 0);
		tm.tm_hour = v % 24;
		break;
	case RTC_MDAY:
		tm.tm_mday = v >= 1 && v <= 31 ? (int)v : tm.tm_mday;
		break;
	case RTC_MON:
		tm.tm_mon = v >= 1 && v <= 12 ? (int)v - 1 : tm.tm_mon;
		break;
	case RTC_YEAR:
		tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)(v % 100) - 1900;
		break;
	case RTC_CENTURY:
		tm.tm_year = (int)(v % 100) * 100 + (tm.tm_year % 100) - 1900;
		break;
	default: /* weekday: derived from the date */
		return;
	}
	rtc->offset_s = (int64_t)timegm(&tm) - (int64_t)time(NULL);
}

/* The registers that hold the time of day (and date): read and set as a clock. */
static bool rtc_is_time(uint8_t reg)
{
	return reg == RTC_SEC || reg == RTC_MIN || reg == RTC_HOUR || reg == RTC_WDAY ||
	       reg == RTC_MDAY || reg == RTC_MON || reg == RTC_YEAR || reg == RTC_CENTURY;
}

static uint32_t rtc_in(void *dev, uint16_t port, unsigned size)
{
	struct rtc *rtc = dev;
	uint8_t v, reg;

	if (port == RTC_PORT)
		return 0xff; /* the index register is write-only */
	pthread_mutex_lock(&rtc->lock);
	reg = rtc->index;
	if (rtc_is_time(reg))
		v = rtc_time_reg(rtc_now(rtc), reg, rtc->ram[RTC_REG_B]);
	else
		switch (reg) {
		case RTC_REG_C:
			v = 0; /* no interrupt flags, ever */
			break;
		case RTC_REG_D:
			v = RTC_D_VRT;
			break;
		default:
			v = rtc->ram[reg];
		}
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

static void rtc_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	struct rtc *rtc = dev;
	uint8_t v = val, reg;

	pthread_mutex_lock(&rtc->lock);
	if (port == RTC_PORT) {
		rtc->index = v & 0x7f;
		pthread_mutex_unlock(&rtc->lock);
		return;
	}
	reg = rtc->index;
	if (rtc_is_time(reg))
		rtc_set_reg(rtc, reg, v);
	else
		switch (reg) {
		case RTC_REG_A:
			rtc->ram[reg] = (v & 0x7f); /* UIP is read-only */
			break;
		case RTC_REG_C:
		case RTC_REG_D:
			break; /* read-only */
		default:
			rtc->ram[reg] = v;
		}
	pthread_mutex_unlock(&rtc->lock);
}

static const struct io_ops rtc_ops = {
    .name = "rtc",
    .in = rtc_in,
    .out = rtc_out,
};

int rtc_init(struct rtc *rtc, struct iobus *bus, struct ferr *err)
{
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->index = 0;
	rtc->offset_s = 0;
	for (unsigned i = 0; i < sizeof(rtc->ram); i++)
		rtc->ram[i] = 0;
	rtc->ram[RTC_REG_A] = RTC_A_INIT;
	rtc->ram[RTC_REG_B] = RTC_B_2412; /* BCD, 24-hour, as PC firmware leaves it */
	return iobus_register(bus, RTC_PORT, 2, &rtc_ops, rtc, err);
}

/* State blob v1 (vm/state_parse.h): the index and CMOS bytes, then the offset. */
static int rtc_save(void *dev, struct sbuf *out, struct ferr *err)
{
	struct rtc *rtc = dev;
	uint8_t cmos[1 + RTC_CMOS_BYTES];
	int64_t offset;

	pthread_mutex_lock(&rtc->lock);
	cmos[0] = rtc->index;
	memcpy(cmos + 1, rtc->ram, RTC_CMOS_BYTES);
	offset = rtc->offset_s;
	pthread_mutex_unlock(&rtc->lock);
	if (sbuf_put_section(out, RTC_STATE_CMOS, cmos, sizeof(cmos)) ||
	    sbuf_put_section(out, RTC_STATE_CLOCK, &offset, sizeof(offset)))
		return ferr_set(err, -ENOMEM, "rtc: out of memory");
	return 0;
}

static int rtc_load(void *dev, uint32_t version, const void *blob, size_t len, struct ferr *err)
{
	struct rtc *rtc = dev;
	struct rtc_state st;
	int rc = rtc_blob_parse(version, blob, len, &st, err);

	if (rc)
		return rc;
	pthread_mutex_lock(&rtc->lock);
	rtc->index = st.index;
	memcpy(rtc->ram, st.cmos, RTC_CMOS_BYTES);
	rtc->ram[RTC_REG_A] &= 0x7f; /* UIP is never set here */
	rtc->offset_s = st.offset_s;
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

const struct device_state_ops rtc_state_ops = {
    .version = 1,
    .save = rtc_save,
    .load = rtc_load,
};

void rtc_reset(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	rtc->index = 0;
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}
