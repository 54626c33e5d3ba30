// SPDX-License-Identifier: GPL-2.0-only
/*
 * CPUID for the guest: what KVM supports on this host, with the per-vCPU
 * topology fields filled in.  The table is kept in struct vm so that a
 * migration can compare what the guest was given on both ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/vm_priv.h"

#define CPUID_MAX_ENTRIES      256
#define CPUID_1_ECX_HYPERVISOR (1u << 31)

int cpuid_init(struct vm *vm, struct ferr *err)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);

	if (!c)
		return ferr_set(err, -ENOMEM, "out of memory");
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int rc = -errno;
		free(c);
		return ferr_errno(err, rc, "KVM_GET_SUPPORTED_CPUID");
	}
	/*
	 * KVM reports some fields as seen by the host CPU the ioctl ran on
	 * (its APIC ID in leaves 1, 0xb, 0x1f).  Clear them: they are set per
	 * vCPU below, and the table must be the same whichever CPU ferry ran
	 * on, since its digest decides whether a snapshot fits this host.
	 */
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1) {
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			e->ebx &= 0x00ffffff;
		}
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = 0;
	}
	vm->cpuid = c;
	return 0;
}

/* Copy of the VM's table with this vCPU's APIC ID in leaves 1, 0xb and 0x1f. */
int cpuid_set_vcpu(struct vm *vm, struct vcpu *vcpu, struct ferr *err)
{
	size_t sz = sizeof(struct kvm_cpuid2) + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(sz);
	int rc = 0;

	if (!c)
		return ferr_set(err, -ENOMEM, "out of memory");
	memcpy(c, vm->cpuid, sz);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			/* initial APIC ID, and the logical processor count */
			e->ebx = (e->ebx & 0x0000ffff) | (vcpu->index << 24) |
				 ((vm->ncpus & 0xff) << 16);
			e->edx |= 1u << 28; /* HTT: the count field is valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = vcpu->index; /* x2APIC ID */
			if (e->index == 0)
				e->ebx = 1; /* one thread per core */
			else if (e->index == 1)
				e->ebx = vm->ncpus;
			break;
		}
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		rc = ferr_errno(err, -errno, "vCPU %u: KVM_SET_CPUID2", vcpu->index);
	free(c);
	return rc;
}
