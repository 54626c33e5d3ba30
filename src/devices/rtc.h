/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * MC146818 CMOS real-time clock at ports 0x70 (index; bit 7 is the NMI
 * mask, ignored) and 0x71 (data), as Linux's rtc_cmos and its early
 * wall-clock read expect: time and date from the host's UTC clock plus an
 * offset that the guest's own writes set, in BCD or binary and 12- or
 * 24-hour form as register B says; register A never shows an update in
 * progress; register D says the battery is good; 114 bytes of CMOS RAM.
 * No interrupts (periodic, alarm, update-ended): IRQ 8 never fires, and
 * Linux does not need it to boot.
 *
 * Not migrated yet: the offset and the CMOS RAM stay on the source (a
 * guest that set its RTC reads the host's time after a move).
 */
#ifndef FERRY_DEVICES_RTC_H
#define FERRY_DEVICES_RTC_H

#include <pthread.h>
#include <stdint.h>

#include "common/err.h"

struct iobus;

#define RTC_PORT 0x70

struct rtc {
	pthread_mutex_t lock; /* vCPU threads */
	uint8_t index;
	uint8_t ram[128]; /* registers 0x0a-0x7f; 0x00-0x09 are computed */
	int64_t offset_s; /* guest time - host UTC */
};

int rtc_init(struct rtc *rtc, struct iobus *bus, struct ferr *err);
/*
 * A board reset: the clock and its CMOS RAM are battery-backed and keep
 * their time, offset and contents; only the index register goes back to 0.
 */
void rtc_reset(struct rtc *rtc);
void rtc_destroy(struct rtc *rtc);

/* Pure helpers, for tests: register @reg of time @t as register B @regb formats it. */
uint8_t rtc_time_reg(int64_t t, uint8_t reg, uint8_t regb);

#endif
