// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the state blob parsers (src/vm/state_parse.c): the
 * vCPU, VM and device (serial, RTC, ACPI PM) state that a migration stream carries behind
 * a valid checksum.  No KVM: the parsers only read the blob.
 *
 * Input: a 10-byte prefix, then the blob.
 *	byte 0		parser: 0 vCPU, 1 VM, 2 serial, 3 RTC, 4 ACPI PM (modulo 5)
 *	byte 1		bit 0: the loading host has KVM_SET_SREGS2
 *	bytes 2..5	u32 LE: the host's XSAVE size (clamped to the wire limit)
 *	bytes 6..9	u32 LE: vCPU index (vCPU) or state version (devices)
 * The blob is copied into a heap buffer of exactly its size, so any read
 * past it is an AddressSanitizer report; blobs up to the wire limits
 * (1 MiB for vCPU and device state, 16 MiB for VM state) are accepted
 * (run with -max_len accordingly, see fuzz/meson.build).
 *
 * Besides the sanitizers it checks what the loaders rely on once a parse
 * succeeded: every section lies inside the blob, fixed-size sections have
 * their size, the MSR section holds exactly its count of entries and fits
 * struct vcpu_msrs, the XSAVE area has the host's size, every required
 * section is there; and a failure carries a negative code and a message.
 * fuzz/state_seeds.py turns a saved state into seeds (fuzz/corpus/state).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/state_parse.h"

#define PREFIX		10
#define VCPU_BLOB_MAX	(1u << 20)
#define VM_BLOB_MAX	(16u << 20)
#define DEVICE_BLOB_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_state: broken promise: %s\n", what);
		abort();
	}
}

static bool inside(const void *p, uint32_t n, const uint8_t *blob, size_t len)
{
	const uint8_t *q = p;
	return q >= blob && q <= blob + len && n <= (size_t)(blob + len - q);
}

static void check_failure(int rc, const struct ferr *err)
{
	check(rc < 0, "a failure returns a negative errno");
	check(err->msg[0] != '\0', "a failure has a message");
}

static void fuzz_vcpu(const struct vcpu_host *host, unsigned index, const uint8_t *blob, size_t len)
{
	static const uint32_t fixed[VCPU_SEC_DEBUGREGS + 1] = {
	    [VCPU_SEC_REGS] = sizeof(struct kvm_regs),
	    [VCPU_SEC_SREGS] = sizeof(struct kvm_sregs),
	    [VCPU_SEC_SREGS2] = sizeof(struct kvm_sregs2),
	    [VCPU_SEC_XCRS] = sizeof(struct kvm_xcrs),
	    [VCPU_SEC_LAPIC] = sizeof(struct kvm_lapic_state),
	    [VCPU_SEC_EVENTS] = sizeof(struct kvm_vcpu_events),
	    [VCPU_SEC_MP_STATE] = sizeof(struct kvm_mp_state),
	    [VCPU_SEC_DEBUGREGS] = sizeof(struct kvm_debugregs),
	};
	struct vcpu_blob b;
	struct ferr err = {0};
	int rc = vcpu_blob_parse(host, index, blob, len, &b, &err);

	if (rc) {
		check_failure(rc, &err);
		return;
	}
	for (unsigned t = 1; t <= VCPU_SEC_DEBUGREGS; t++) {
		if (!b.sec[t])
			continue;
		check(inside(b.sec[t], b.len[t], blob, len), "a section lies inside the blob");
		check(!fixed[t] || b.len[t] == fixed[t], "a fixed-size section has its size");
	}
	check(b.sec[VCPU_SEC_REGS] && b.sec[VCPU_SEC_XSAVE] && b.sec[VCPU_SEC_XCRS] &&
		  b.sec[VCPU_SEC_MSRS] && b.sec[VCPU_SEC_LAPIC] && b.sec[VCPU_SEC_EVENTS] &&
		  b.sec[VCPU_SEC_MP_STATE] && b.sec[VCPU_SEC_DEBUGREGS],
	      "required sections are present");
	check(b.sec[VCPU_SEC_SREGS] || b.sec[VCPU_SEC_SREGS2], "segment registers are present");
	check(!b.sec[VCPU_SEC_SREGS2] || host->has_sregs2, "sregs2 only where the host has it");
	check(b.len[VCPU_SEC_XSAVE] == host->xsave_size, "the XSAVE area has the host's size");

	/* What vcpu_state_load does with them, minus the ioctls. */
	uint64_t m[(sizeof(struct kvm_msrs) + VCPU_MAX_MSRS * sizeof(struct kvm_msr_entry)) / 8];
	struct kvm_msrs h;
	check(b.len[VCPU_SEC_MSRS] <= sizeof(m), "the MSR section fits struct vcpu_msrs");
	memcpy(m, b.sec[VCPU_SEC_MSRS], b.len[VCPU_SEC_MSRS]);
	memcpy(&h, m, sizeof(h));
	check(h.nmsrs <= VCPU_MAX_MSRS &&
		  b.len[VCPU_SEC_MSRS] == sizeof(h) + h.nmsrs * sizeof(struct kvm_msr_entry),
	      "the MSR count matches the section");
	void *xs = malloc(host->xsave_size);
	if (xs) {
		memcpy(xs, b.sec[VCPU_SEC_XSAVE], host->xsave_size);
		free(xs);
	}
}

static void fuzz_vm(const uint8_t *blob, size_t len)
{
	static const uint32_t size[VM_SEC_CLOCK + 1] = {
	    [VM_SEC_PIC_MASTER] = sizeof(struct kvm_irqchip),
	    [VM_SEC_PIC_SLAVE] = sizeof(struct kvm_irqchip),
	    [VM_SEC_IOAPIC] = sizeof(struct kvm_irqchip),
	    [VM_SEC_PIT] = sizeof(struct kvm_pit_state2),
	    [VM_SEC_CLOCK] = sizeof(struct kvm_clock_data),
	};
	struct vm_blob b;
	struct ferr err = {0};
	int rc = vm_blob_parse(blob, len, &b, &err);

	if (rc) {
		check_failure(rc, &err);
		return;
	}
	for (unsigned t = 1; t <= VM_SEC_CLOCK; t++) {
		check(b.sec[t] != NULL, "every VM section is present");
		check(inside(b.sec[t], size[t], blob, len), "a VM section lies inside the blob");
	}
}

static void fuzz_serial(uint32_t version, const uint8_t *blob, size_t len)
{
	struct serial_state st;
	struct ferr err = {0};
	int rc = serial_blob_parse(version, blob, len, &st, &err);

	if (rc) {
		check_failure(rc, &err);
		return;
	}
	check(version == 1 || version == 2, "only versions 1 and 2 are accepted");
	check(st.rx_count <= SERIAL_RX_MAX, "the receive FIFO fits");
	check(version == 2 || st.rx_count == 0, "version 1 carries no FIFO");
}

static void fuzz_rtc(uint32_t version, const uint8_t *blob, size_t len)
{
	struct rtc_state st;
	struct ferr err = {0};
	int rc = rtc_blob_parse(version, blob, len, &st, &err);

	if (rc) {
		check_failure(rc, &err);
		return;
	}
	check(version == 1, "only version 1 is accepted");
	check(st.index < RTC_CMOS_BYTES, "the index stays inside the CMOS");
	check(st.offset_s >= -RTC_MAX_OFFSET_S && st.offset_s <= RTC_MAX_OFFSET_S,
	      "the clock offset is in range");
}

static void fuzz_acpi_pm(uint32_t version, const uint8_t *blob, size_t len)
{
	uint16_t en;
	struct ferr err = {0};
	int rc = acpi_pm_blob_parse(version, blob, len, &en, &err);

	if (rc)
		check_failure(rc, &err);
	else
		check(version == 1, "only version 1 is accepted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < PREFIX)
		return 0;
	unsigned kind = data[0] % 5;
	struct vcpu_host host = {
	    .has_sregs2 = data[1] & 1,
	    .xsave_size = le32(data + 2) % (VCPU_BLOB_MAX + 1),
	};
	uint32_t arg = le32(data + 6);
	size_t len = size - PREFIX;
	size_t max = kind == 1 ? VM_BLOB_MAX : kind == 0 ? VCPU_BLOB_MAX : DEVICE_BLOB_MAX;

	if (len > max)
		return 0;
	/* Exactly the blob's size, so that reading past it is caught. */
	uint8_t *blob = malloc(len ? len : 1);
	if (!blob)
		return 0;
	memcpy(blob, data + PREFIX, len);
	switch (kind) {
	case 0:
		fuzz_vcpu(&host, arg, blob, len);
		break;
	case 1:
		fuzz_vm(blob, len);
		break;
	case 2:
		fuzz_serial(arg, blob, len);
		break;
	case 3:
		fuzz_rtc(arg, blob, len);
		break;
	default:
		fuzz_acpi_pm(arg, blob, len);
		break;
	}
	free(blob);
	return 0;
}
