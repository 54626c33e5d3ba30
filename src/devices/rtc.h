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
 * Migrated (rtc_state_ops, "rtc0"): the index register, the CMOS RAM and
 * the guest's offset from UTC, so the guest's RTC reads on the destination
 * what it would have read on the source (hosts keep UTC in step).
 */
#ifndef FERRY_DEVICES_RTC_H
#define FERRY_DEVICES_RTC_H

#include <pthread.h>
#include <stdint.h>

#include "common/err.h"
#include "devices/device.h"

struct iobus;

#define RTC_PORT 0x70

struct rtc {
	pthread_mutex_t lock; /* vCPU threads */
	uint8_t index;
	uint8_t ram[128]; /* registers 0x0a-0x7f; 0x00-0x09 are computed */
	int64_t offset_s; /* guest time - host UTC */
};

int rtc_init(struct rtc *rtc, struct iobus *bus, struct ferr *err);
extern const struct device_state_ops rtc_state_ops;
/*
 * A board reset: the clock and its CMOS RAM are battery-backed and keep
 * their time, offset and contents; only the index register goes back to 0.
 */
void rtc_reset(struct rtc *rtc);
void rtc_destroy(struct rtc *rtc);

/* Pure helpers, for tests: register @reg of time @t as register B @regb formats it. */
uint8_t rtc_time_reg(int64_t t, uint8_t reg, uint8_t regb);

#endif
