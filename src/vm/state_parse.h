/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Parsing and validation of the vCPU, VM and device state blobs
 * (docs/stream-format.md, "State blobs"), apart from KVM: these functions
 * only read the blob, so the fuzzer (fuzz/fuzz_state.c) runs them without
 * a VM.  The loaders in vcpu_state.c, vm_state.c and the devices call them
 * first and touch KVM only with what they accepted.
 */
#ifndef FERRY_VM_STATE_PARSE_H
#define FERRY_VM_STATE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "common/err.h"

enum vcpu_section {
	VCPU_SEC_REGS = 1,
	VCPU_SEC_SREGS = 2,
	VCPU_SEC_SREGS2 = 3,
	VCPU_SEC_XSAVE = 4,
	VCPU_SEC_XCRS = 5,
	VCPU_SEC_MSRS = 6,
	VCPU_SEC_LAPIC = 7,
	VCPU_SEC_EVENTS = 8,
	VCPU_SEC_MP_STATE = 9,
	VCPU_SEC_DEBUGREGS = 10,
};

#define VCPU_MAX_MSRS 256

/* Sections found in a vCPU blob, validated for size; pointers into the blob. */
struct vcpu_blob {
	const void *sec[VCPU_SEC_DEBUGREGS + 1];
	uint32_t len[VCPU_SEC_DEBUGREGS + 1];
};

/* What the loading host offers that a vCPU blob must fit. */
struct vcpu_host {
	uint32_t xsave_size; /* KVM_CAP_XSAVE2 bytes, or sizeof(struct kvm_xsave) */
	bool has_sregs2;
};

int vcpu_blob_parse(const struct vcpu_host *host, unsigned index, const void *blob, size_t len,
		    struct vcpu_blob *b, struct ferr *err);

enum vm_section {
	VM_SEC_PIC_MASTER = 1,
	VM_SEC_PIC_SLAVE = 2,
	VM_SEC_IOAPIC = 3,
	VM_SEC_PIT = 4,
	VM_SEC_CLOCK = 5,
	VM_SEC_TSC = 6, /* optional: absent from streams of hosts without the TSC attribute */
};

/* VM_SEC_TSC: this header, then every vCPU's guest TSC at one instant (u64 each). */
struct vm_tsc_head {
	uint32_t ncpus;
	uint32_t reserved;
};

/*
 * Sections of a VM blob: 1..5 present once each at their exact size; the
 * TSC section at most once, sized for its vCPU count (@tsc_len 0: absent).
 */
struct vm_blob {
	const void *sec[VM_SEC_TSC + 1];
	uint32_t tsc_len;
};

int vm_blob_parse(const void *blob, size_t len, struct vm_blob *b, struct ferr *err);

/*
 * Device state blobs: sections of fixed or bounded size, each at most once.
 * device_blob_parse() checks every section of @blob against @spec (@n
 * entries): a known tag, a length within bounds, no duplicate, every
 * required one there; @out[i] is then spec[i]'s section (data NULL: absent).
 */
struct dev_section_spec {
	uint32_t tag;
	uint32_t min_len, max_len;
	bool required;
	const char *what; /* for messages */
};
struct dev_section {
	const void *data;
	uint32_t len;
};
int device_blob_parse(const char *dev, const struct dev_section_spec *spec, unsigned n,
		      const void *blob, size_t len, struct dev_section *out, struct ferr *err);

/*
 * The serial port ("serial0"), version 1: its 10 registers; version 2
 * adds the receive FIFO: a count byte (at most 16), then that many bytes,
 * oldest first.  Loads accept both versions.
 */
#define SERIAL_STATE_REGS 1
#define SERIAL_STATE_RX	  2
enum { SERIAL_NREGS = 10, SERIAL_RX_MAX = 16 };
struct serial_state {
	uint8_t regs[SERIAL_NREGS];
	uint8_t rx[SERIAL_RX_MAX];
	unsigned rx_count;
};
int serial_blob_parse(uint32_t version, const void *blob, size_t len, struct serial_state *st,
		      struct ferr *err);

/*
 * The CMOS RTC ("rtc0"), version 1: section 1, the index register and the
 * 128 CMOS bytes (1 + 128 bytes); section 2, the guest's clock offset from
 * UTC in seconds (s64 LE), within +-2^38 s.
 */
#define RTC_STATE_CMOS	 1
#define RTC_STATE_CLOCK	 2
#define RTC_CMOS_BYTES	 128
#define RTC_MAX_OFFSET_S (1ll << 38)
struct rtc_state {
	uint8_t index; /* < 128 */
	uint8_t cmos[RTC_CMOS_BYTES];
	int64_t offset_s;
};
int rtc_blob_parse(uint32_t version, const void *blob, size_t len, struct rtc_state *st,
		   struct ferr *err);

/* The ACPI PM block ("acpi-pm"), version 1: section 1, PM1_EN (u16 LE). */
#define ACPI_PM_STATE_PM1 1
int acpi_pm_blob_parse(uint32_t version, const void *blob, size_t len, uint16_t *pm1_en,
		       struct ferr *err);

#endif
