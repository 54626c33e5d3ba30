// SPDX-License-Identifier: GPL-2.0-only
/*
 * State blob parsing without KVM (vm/state_parse.h): every size, count and
 * tag is checked here before a loader hands anything to an ioctl.
 */
#include <errno.h>
#include <string.h>

#include "common/sbuf.h"
#include "vm/state_parse.h"

int vcpu_blob_parse(const struct vcpu_host *host, unsigned index, const void *blob, size_t len,
		    struct vcpu_blob *b, struct ferr *err)
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
	struct sbuf_reader rd;
	struct sbuf_section s;
	int rc;

	memset(b, 0, sizeof(*b));
	sbuf_reader_init(&rd, blob, len);
	while ((rc = sbuf_next_section(&rd, &s, err)) > 0) {
		if (s.tag == 0 || s.tag > VCPU_SEC_DEBUGREGS)
			return ferr_set(err, -EBADMSG, "vCPU %u state: unknown section %u", index,
					s.tag);
		if (b->sec[s.tag])
			return ferr_set(err, -EBADMSG, "vCPU %u state: section %u twice", index,
					s.tag);
		if (fixed[s.tag] && s.len != fixed[s.tag])
			return ferr_set(err, -EBADMSG,
					"vCPU %u state: section %u is %u bytes, expected %u", index,
					s.tag, s.len, fixed[s.tag]);
		b->sec[s.tag] = s.data;
		b->len[s.tag] = s.len;
	}
	if (rc < 0) {
		ferr_prefix(err, "vCPU %u: ", index);
		return rc;
	}
	if (b->sec[VCPU_SEC_XSAVE] && b->len[VCPU_SEC_XSAVE] != host->xsave_size)
		return ferr_set(err, -EBADMSG,
				"vCPU %u state: XSAVE area is %u bytes, this host uses %u (a "
				"different CPU feature set)",
				index, b->len[VCPU_SEC_XSAVE], host->xsave_size);
	if (b->sec[VCPU_SEC_MSRS]) {
		struct kvm_msrs h;
		if (b->len[VCPU_SEC_MSRS] < sizeof(h))
			return ferr_set(err, -EBADMSG, "vCPU %u state: MSR section too short",
					index);
		memcpy(&h, b->sec[VCPU_SEC_MSRS], sizeof(h));
		if (h.nmsrs > VCPU_MAX_MSRS ||
		    b->len[VCPU_SEC_MSRS] != sizeof(h) + h.nmsrs * sizeof(struct kvm_msr_entry))
			return ferr_set(err, -EBADMSG,
					"vCPU %u state: MSR count %u does not match "
					"the section size",
					index, h.nmsrs);
	}
	static const enum vcpu_section required[] = {
	    VCPU_SEC_REGS,  VCPU_SEC_XSAVE,  VCPU_SEC_XCRS,	VCPU_SEC_MSRS,
	    VCPU_SEC_LAPIC, VCPU_SEC_EVENTS, VCPU_SEC_MP_STATE, VCPU_SEC_DEBUGREGS,
	};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!b->sec[required[i]])
			return ferr_set(err, -EBADMSG, "vCPU %u state: section %u missing", index,
					required[i]);
	if (!b->sec[VCPU_SEC_SREGS] && !b->sec[VCPU_SEC_SREGS2])
		return ferr_set(err, -EBADMSG, "vCPU %u state: no segment registers", index);
	if (b->sec[VCPU_SEC_SREGS2] && !host->has_sregs2)
		return ferr_set(err, -ENOTSUP,
				"vCPU %u state needs KVM_SET_SREGS2, which this "
				"host lacks",
				index);
	return 0;
}

int vm_blob_parse(const void *blob, size_t len, struct vm_blob *b, struct ferr *err)
{
	const void **sec = b->sec;
	static const uint32_t size[VM_SEC_CLOCK + 1] = {
	    [VM_SEC_PIC_MASTER] = sizeof(struct kvm_irqchip),
	    [VM_SEC_PIC_SLAVE] = sizeof(struct kvm_irqchip),
	    [VM_SEC_IOAPIC] = sizeof(struct kvm_irqchip),
	    [VM_SEC_PIT] = sizeof(struct kvm_pit_state2),
	    [VM_SEC_CLOCK] = sizeof(struct kvm_clock_data),
	};
	struct sbuf_reader rd;
	struct sbuf_section s;
	int rc;

	memset(b, 0, sizeof(*b));

	sbuf_reader_init(&rd, blob, len);
	while ((rc = sbuf_next_section(&rd, &s, err)) > 0) {
		struct vm_tsc_head h;
		bool tsc = s.tag == VM_SEC_TSC && s.len >= sizeof(h);
		if (tsc) {
			memcpy(&h, s.data, sizeof(h));
			tsc = s.len == sizeof(h) + (uint64_t)h.ncpus * sizeof(uint64_t);
		}
		if (s.tag == 0 || s.tag > VM_SEC_TSC || sec[s.tag] ||
		    (s.tag == VM_SEC_TSC ? !tsc : s.len != size[s.tag]))
			return ferr_set(err, -EBADMSG,
					"VM state: unexpected section %u of %u bytes", s.tag,
					s.len);
		sec[s.tag] = s.data;
		if (tsc)
			b->tsc_len = s.len;
	}
	if (rc < 0)
		return rc;
	for (uint32_t t = 1; t <= VM_SEC_CLOCK; t++)
		if (!sec[t])
			return ferr_set(err, -EBADMSG, "VM state: section %u missing", t);

	return 0;
}

int device_blob_parse(const char *dev, const struct dev_section_spec *spec, unsigned n,
		      const void *blob, size_t len, struct dev_section *out, struct ferr *err)
{
	struct sbuf_reader rd;
	struct sbuf_section sec;
	unsigned i;
	int rc;

	memset(out, 0, n * sizeof(*out));
	sbuf_reader_init(&rd, blob, len);
	while ((rc = sbuf_next_section(&rd, &sec, err)) > 0) {
		for (i = 0; i < n && spec[i].tag != sec.tag; i++)
			;
		if (i == n || sec.len < spec[i].min_len || sec.len > spec[i].max_len)
			return ferr_set(err, -EBADMSG, "%s: unexpected section %#x of %u bytes",
					dev, sec.tag, sec.len);
		if (out[i].data)
			return ferr_set(err, -EBADMSG, "%s: duplicate section %#x", dev, sec.tag);
		out[i] = (struct dev_section){sec.data, sec.len};
	}
	if (rc < 0) {
		ferr_prefix(err, "%s: ", dev);
		return rc;
	}
	for (i = 0; i < n; i++)
		if (spec[i].required && !out[i].data)
			return ferr_set(err, -EBADMSG, "%s: state has no section %#x (%s)", dev,
					spec[i].tag, spec[i].what);
	return 0;
}

static int device_version(const char *dev, uint32_t version, uint32_t max, struct ferr *err)
{
	if (version < 1 || version > max)
		return ferr_set(err, -ENOTSUP,
				"%s: state version %u is not supported (1 to %u are)", dev, version,
				max);
	return 0;
}

int serial_blob_parse(uint32_t version, const void *blob, size_t len, struct serial_state *st,
		      struct ferr *err)
{
	/* v1: the registers; v2 adds the receive FIFO (a count, then the bytes in order) */
	const struct dev_section_spec spec[] = {
	    {SERIAL_STATE_REGS, SERIAL_NREGS, SERIAL_NREGS, true, "registers"},
	    {SERIAL_STATE_RX, 1, 1 + SERIAL_RX_MAX, version >= 2, "receive FIFO"},
	};
	struct dev_section sec[2];
	int rc = device_version("serial", version, 2, err);

	if (!rc)
		rc = device_blob_parse("serial", spec, version >= 2 ? 2 : 1, blob, len, sec, err);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	memcpy(st->regs, sec[0].data, SERIAL_NREGS);
	if (version >= 2) {
		const uint8_t *rx = sec[1].data;
		if (rx[0] > SERIAL_RX_MAX || sec[1].len != 1u + rx[0])
			return ferr_set(err, -EBADMSG,
					"serial: receive FIFO of %u bytes in a %u-byte section",
					rx[0], sec[1].len);
		st->rx_count = rx[0];
		memcpy(st->rx, rx + 1, rx[0]);
	}
	return 0;
}

int rtc_blob_parse(uint32_t version, const void *blob, size_t len, struct rtc_state *st,
		   struct ferr *err)
{
	const struct dev_section_spec spec[] = {
	    {RTC_STATE_CMOS, 1 + RTC_CMOS_BYTES, 1 + RTC_CMOS_BYTES, true, "index and CMOS"},
	    {RTC_STATE_CLOCK, 8, 8, true, "clock offset"},
	};
	struct dev_section sec[2];
	const uint8_t *cmos;
	int rc = device_version("rtc", version, 1, err);

	if (!rc)
		rc = device_blob_parse("rtc", spec, 2, blob, len, sec, err);
	if (rc)
		return rc;
	cmos = sec[0].data;
	if (cmos[0] >= RTC_CMOS_BYTES)
		return ferr_set(err, -EBADMSG, "rtc: index register %#x is past the CMOS", cmos[0]);
	st->index = cmos[0];
	memcpy(st->cmos, cmos + 1, RTC_CMOS_BYTES);
	memcpy(&st->offset_s, sec[1].data, sizeof(st->offset_s));
	/* beyond this, the guest's time would not fit a struct tm: no guest sets it */
	if (st->offset_s > RTC_MAX_OFFSET_S || st->offset_s < -RTC_MAX_OFFSET_S)
		return ferr_set(err, -EBADMSG, "rtc: clock offset of %lld s is out of range",
				(long long)st->offset_s);
	return 0;
}

int acpi_pm_blob_parse(uint32_t version, const void *blob, size_t len, uint16_t *pm1_en,
		       struct ferr *err)
{
	const struct dev_section_spec spec[] = {
	    {ACPI_PM_STATE_PM1, 2, 2, true, "PM1_EN"},
	};
	struct dev_section sec;
	int rc = device_version("acpi-pm", version, 1, err);

	if (!rc)
		rc = device_blob_parse("acpi-pm", spec, 1, blob, len, &sec, err);
	if (!rc)
		memcpy(pm1_en, sec.data, sizeof(*pm1_en));
	return rc;
}
