// SPDX-License-Identifier: GPL-2.0-only
/*
 * vCPU state capture and restore.  The blob is a list of sections, one per
 * KVM state group, each the raw KVM structure of this kernel's ABI (the
 * structures are part of KVM's stable UAPI).  Restore order follows what
 * KVM needs: APIC base (in sregs) before the LAPIC, MSRs after sregs, and
 * events last so that a pending exception lands on the final state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/state.h"
#include "vm/state_parse.h"
#include "vm/vm_priv.h"

/* kvm_msrs with room for the entries. */
struct vcpu_msrs {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[VCPU_MAX_MSRS];
};

/*
 * KVM_GET_MSR_INDEX_LIST names every MSR KVM can save on this host; a few
 * of them can still fail to read (features the CPU model lacks).  Keep the
 * ones vCPU 0 can read, once, so that save and restore use the same set.
 */
int vcpu_state_probe(struct vm *vm, struct ferr *err)
{
	struct kvm_msr_list *list;
	struct vcpu_msrs m;
	int n, xs;

	vm->has_sregs2 = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
	{
		struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL,
					    .attr = KVM_VCPU_TSC_OFFSET};
		vm->has_tsc_offset = ioctl(vm->vcpus[0].fd, KVM_HAS_DEVICE_ATTR, &a) == 0;
	}
	xs = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vm->xsave_size =
	    xs > (int)sizeof(struct kvm_xsave) ? (uint32_t)xs : sizeof(struct kvm_xsave);

	list = calloc(1, sizeof(*list) + VCPU_MAX_MSRS * sizeof(uint32_t));
	vm->msr_index = calloc(VCPU_MAX_MSRS, sizeof(uint32_t));
	if (!list || !vm->msr_index) {
		free(list);
		return ferr_set(err, -ENOMEM, "out of memory");
	}
	list->nmsrs = VCPU_MAX_MSRS;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int rc = -errno;
		free(list);
		return ferr_errno(err, rc, "KVM_GET_MSR_INDEX_LIST");
	}
	for (unsigned i = 0; i < list->nmsrs; i++) {
		memset(&m, 0, sizeof(m));
		m.hdr.nmsrs = 1;
		m.e[0].index = list->indices[i];
		n = ioctl(vm->vcpus[0].fd, KVM_GET_MSRS, &m);
		if (n == 1)
			vm->msr_index[vm->nmsrs++] = list->indices[i];
	}
	free(list);
	return 0;
}

#define PUT(tag, ptr, size)                                             \
	do {                                                            \
		if (sbuf_put_section(out, (tag), (ptr), (size)))        \
			return ferr_set(err, -ENOMEM, "out of memory"); \
	} while (0)

#define GET(fd, req, ptr, what)                                                  \
	do {                                                                     \
		if (ioctl((fd), (req), (ptr)) < 0)                               \
			return ferr_errno(err, -errno, "vCPU %u: " what, index); \
	} while (0)

int vcpu_state_save(struct vm *vm, unsigned index, struct sbuf *out, struct ferr *err)
{
	int fd = vm->vcpus[index].fd;
	struct kvm_regs regs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dregs;
	struct vcpu_msrs msrs;
	struct kvm_xsave *xsave;
	int n;

	if (index >= vm->ncpus)
		return ferr_set(err, -EINVAL, "vCPU %u does not exist", index);
	GET(fd, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	PUT(VCPU_SEC_REGS, &regs, sizeof(regs));
	if (vm->has_sregs2) {
		struct kvm_sregs2 s2;
		GET(fd, KVM_GET_SREGS2, &s2, "KVM_GET_SREGS2");
		PUT(VCPU_SEC_SREGS2, &s2, sizeof(s2));
	} else {
		struct kvm_sregs s;
		GET(fd, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
		PUT(VCPU_SEC_SREGS, &s, sizeof(s));
	}
	xsave = calloc(1, vm->xsave_size);
	if (!xsave)
		return ferr_set(err, -ENOMEM, "out of memory");
	if (ioctl(fd, vm->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
		  xsave) < 0) {
		free(xsave);
		return ferr_errno(err, -errno, "vCPU %u: KVM_GET_XSAVE", index);
	}
	n = sbuf_put_section(out, VCPU_SEC_XSAVE, xsave, vm->xsave_size);
	free(xsave);
	if (n)
		return ferr_set(err, -ENOMEM, "out of memory");
	GET(fd, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
	PUT(VCPU_SEC_XCRS, &xcrs, sizeof(xcrs));

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = vm->nmsrs;
	for (unsigned i = 0; i < vm->nmsrs; i++)
		msrs.e[i].index = vm->msr_index[i];
	n = ioctl(fd, KVM_GET_MSRS, &msrs);
	if (n != (int)vm->nmsrs)
		return ferr_set(err, n < 0 ? -errno : -EIO, "vCPU %u: KVM_GET_MSRS read %d of %u",
				index, n, vm->nmsrs);
	PUT(VCPU_SEC_MSRS, &msrs, sizeof(msrs.hdr) + vm->nmsrs * sizeof(msrs.e[0]));

	GET(fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	PUT(VCPU_SEC_LAPIC, &lapic, sizeof(lapic));
	GET(fd, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	PUT(VCPU_SEC_MP_STATE, &mp, sizeof(mp));
	GET(fd, KVM_GET_DEBUGREGS, &dregs, "KVM_GET_DEBUGREGS");
	PUT(VCPU_SEC_DEBUGREGS, &dregs, sizeof(dregs));
	GET(fd, KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS");
	PUT(VCPU_SEC_EVENTS, &events, sizeof(events));
	return 0;
}

#define SET(req, ptr, what)                                                      \
	do {                                                                     \
		memcpy(&tmp, (ptr), sizeof(tmp));                                \
		if (ioctl(fd, (req), &tmp) < 0)                                  \
			return ferr_errno(err, -errno, "vCPU %u: " what, index); \
	} while (0)

int vcpu_state_load(struct vm *vm, unsigned index, const void *blob, size_t len, struct ferr *err)
{
	struct vcpu_blob b;
	int fd, n, rc;

	if (index >= vm->ncpus)
		return ferr_set(err, -EINVAL, "vCPU %u does not exist", index);
	fd = vm->vcpus[index].fd;
	rc = vcpu_blob_parse(&(struct vcpu_host){vm->xsave_size, vm->has_sregs2}, index, blob, len,
			     &b, err);
	if (rc)
		return rc;
	{
		struct kvm_regs tmp;
		SET(KVM_SET_REGS, b.sec[VCPU_SEC_REGS], "KVM_SET_REGS");
	}
	{
		/* Sections inside the blob are 8-aligned; the xsave area wants its own buffer. */
		void *xs = malloc(vm->xsave_size);
		if (!xs)
			return ferr_set(err, -ENOMEM, "out of memory");
		memcpy(xs, b.sec[VCPU_SEC_XSAVE], vm->xsave_size);
		n = ioctl(fd, KVM_SET_XSAVE, xs);
		free(xs);
		if (n < 0)
			return ferr_errno(err, -errno, "vCPU %u: KVM_SET_XSAVE", index);
	}
	{
		struct kvm_xcrs tmp;
		SET(KVM_SET_XCRS, b.sec[VCPU_SEC_XCRS], "KVM_SET_XCRS");
	}
	if (b.sec[VCPU_SEC_SREGS2]) {
		struct kvm_sregs2 tmp;
		SET(KVM_SET_SREGS2, b.sec[VCPU_SEC_SREGS2], "KVM_SET_SREGS2");
	} else {
		struct kvm_sregs tmp;
		SET(KVM_SET_SREGS, b.sec[VCPU_SEC_SREGS], "KVM_SET_SREGS");
	}
	{
		struct vcpu_msrs m;
		memcpy(&m, b.sec[VCPU_SEC_MSRS], b.len[VCPU_SEC_MSRS]);
		n = ioctl(fd, KVM_SET_MSRS, &m);
		if (n != (int)m.hdr.nmsrs)
			return ferr_set(err, n < 0 ? -errno : -EINVAL,
					"vCPU %u: KVM_SET_MSRS refused MSR %#x (%d of %u set)",
					index, n >= 0 && n < (int)m.hdr.nmsrs ? m.e[n].index : 0, n,
					m.hdr.nmsrs);
	}
	{
		struct kvm_mp_state tmp;
		SET(KVM_SET_MP_STATE, b.sec[VCPU_SEC_MP_STATE], "KVM_SET_MP_STATE");
	}
	{
		struct kvm_lapic_state tmp;
		SET(KVM_SET_LAPIC, b.sec[VCPU_SEC_LAPIC], "KVM_SET_LAPIC");
	}
	{
		struct kvm_vcpu_events tmp;
		memcpy(&tmp, b.sec[VCPU_SEC_EVENTS], sizeof(tmp));
		/* Restore NMI and SIPI state too, which GET does not flag as valid. */
		tmp.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			     KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
		if (ioctl(fd, KVM_SET_VCPU_EVENTS, &tmp) < 0)
			return ferr_errno(err, -errno, "vCPU %u: KVM_SET_VCPU_EVENTS", index);
	}
	{
		struct kvm_debugregs tmp;
		SET(KVM_SET_DEBUGREGS, b.sec[VCPU_SEC_DEBUGREGS], "KVM_SET_DEBUGREGS");
	}
	return 0;
}
