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

int serial_blob_parse(uint32_t version, const void *blob, size_t len, uint8_t regs[SERIAL_NREGS],
		      struct ferr *err)
{
	struct sbuf_reader rd;
	struct sbuf_section sec;
	bool have_regs = false;
	int rc;

	if (version != 1)
		return ferr_set(err, -ENOTSUP, "serial: state version %u is not supported (1 is)",
				version);
	sbuf_reader_init(&rd, blob, len);
	while ((rc = sbuf_next_section(&rd, &sec, err)) > 0) {
		if (sec.tag != SERIAL_STATE_REGS || sec.len != SERIAL_NREGS)
			return ferr_set(err, -EBADMSG, "serial: unexpected section %#x of %u bytes",
					sec.tag, sec.len);
		if (have_regs)
			return ferr_set(err, -EBADMSG, "serial: duplicate section %#x", sec.tag);
		memcpy(regs, sec.data, SERIAL_NREGS);
		have_regs = true;
	}
	if (rc < 0)
		return rc;
	if (!have_regs)
		return ferr_set(err, -EBADMSG, "serial: state has no registers");
	return 0;
}
