// SPDX-License-Identifier: GPL-2.0-only
/*
 * VM-wide state: the in-kernel PICs and IOAPIC, the PIT and kvmclock; the
 * device table; the CPUID digest that tells two hosts gave the guest the
 * same CPU.
 *
 * Time: the guest's kvmclock is saved when the VM is paused and restored
 * before it resumes, and so are the vCPUs' TSCs, so guest time stands still
 * while the VM is not running, on either host: it never jumps backwards and
 * never races forward to catch up.
 *
 * The TSCs are saved together, as every vCPU's guest TSC at one instant
 * (one host TSC read plus each vCPU's KVM_VCPU_TSC_OFFSET), and restored
 * together, as offsets from one host TSC read on the destination.  Writing
 * MSR_IA32_TSC per vCPU instead (which the MSR section still does, for
 * hosts without the attribute) leaves the result to KVM's TSC "sync"
 * heuristics: a write is matched to the previous vCPU's offset only when
 * it lands within a second of what elapsed time predicts, which the
 * vCPUs' writes, seconds after the destination's vCPUs were created, may
 * or may not do -- on SVM they did not, and the vCPUs' clocks came back
 * seconds apart.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <x86intrin.h>
#include <xxhash.h>

#include "devices/device.h"
#include "vm/state.h"
#include "vm/state_parse.h"
#include "vm/vm_priv.h"

static int vcpu_tsc_offset(struct vm *vm, unsigned i, unsigned req, uint64_t *offset,
			   struct ferr *err)
{
	struct kvm_device_attr a = {
	    .group = KVM_VCPU_TSC_CTRL,
	    .attr = KVM_VCPU_TSC_OFFSET,
	    .addr = (uintptr_t)offset,
	};
	if (ioctl(vm->vcpus[i].fd, req, &a) < 0)
		return ferr_errno(err, -errno, "vCPU %u: %s (TSC offset)", i,
				  req == KVM_GET_DEVICE_ATTR ? "KVM_GET_DEVICE_ATTR"
							     : "KVM_SET_DEVICE_ATTR");
	return 0;
}

/*
 * The guest TSC is host TSC + offset (ferry never scales the TSC), and the
 * offsets of parked vCPUs do not change, so one host TSC read gives every
 * vCPU's TSC at the same instant.  The host TSC is the one KVM reads: this
 * process runs on the same host, and rdtsc is what KVM itself uses.
 */
static int vm_tsc_save(struct vm *vm, struct sbuf *out, struct ferr *err)
{
	struct vm_tsc_head h = {.ncpus = vm->ncpus};
	size_t len = sizeof(h) + vm->ncpus * sizeof(uint64_t);
	uint64_t *tsc = calloc(1, len), now;
	int rc = 0;

	if (!tsc)
		return ferr_set(err, -ENOMEM, "out of memory");
	memcpy(tsc, &h, sizeof(h));
	for (unsigned i = 0; !rc && i < vm->ncpus; i++)
		rc = vcpu_tsc_offset(vm, i, KVM_GET_DEVICE_ATTR, &tsc[1 + i], err);
	now = __rdtsc();
	for (unsigned i = 0; i < vm->ncpus; i++)
		tsc[1 + i] += now;
	if (!rc && sbuf_put_section(out, VM_SEC_TSC, tsc, len))
		rc = ferr_set(err, -ENOMEM, "out of memory");
	free(tsc);
	return rc;
}

/* After the vCPUs' MSRs (their MSR_IA32_TSC writes set offsets of their own). */
static int vm_tsc_load(struct vm *vm, const void *data, uint32_t len, struct ferr *err)
{
	struct vm_tsc_head h;
	uint64_t now;
	int rc;

	memcpy(&h, data, sizeof(h));
	if (h.ncpus != vm->ncpus || len != sizeof(h) + (uint64_t)h.ncpus * sizeof(uint64_t))
		return ferr_set(err, -EBADMSG,
				"VM state: TSC section for %u vCPUs in %u bytes, this VM has %u",
				h.ncpus, len, vm->ncpus);
	if (!vm->has_tsc_offset)
		return 0; /* the MSRs already set each vCPU's TSC, as well as this host can */
	now = __rdtsc();
	for (unsigned i = 0; i < vm->ncpus; i++) {
		uint64_t tsc, offset;
		memcpy(&tsc, (const char *)data + sizeof(h) + i * sizeof(tsc), sizeof(tsc));
		offset = tsc - now;
		rc = vcpu_tsc_offset(vm, i, KVM_SET_DEVICE_ATTR, &offset, err);
		if (rc)
			return rc;
	}
	return 0;
}

static const struct {
	uint32_t tag;
	uint32_t chip_id;
	const char *name;
} vm_irqchips[] = {
    {VM_SEC_PIC_MASTER, KVM_IRQCHIP_PIC_MASTER, "PIC master"},
    {VM_SEC_PIC_SLAVE, KVM_IRQCHIP_PIC_SLAVE, "PIC slave"},
    {VM_SEC_IOAPIC, KVM_IRQCHIP_IOAPIC, "IOAPIC"},
};

int vm_state_save(struct vm *vm, struct sbuf *out, struct ferr *err)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = {0};

	for (size_t i = 0; i < sizeof(vm_irqchips) / sizeof(vm_irqchips[0]); i++) {
		struct kvm_irqchip chip = {.chip_id = vm_irqchips[i].chip_id};
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return ferr_errno(err, -errno, "KVM_GET_IRQCHIP (%s)", vm_irqchips[i].name);
		if (sbuf_put_section(out, vm_irqchips[i].tag, &chip, sizeof(chip)))
			return ferr_set(err, -ENOMEM, "out of memory");
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return ferr_errno(err, -errno, "KVM_GET_PIT2");
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return ferr_errno(err, -errno, "KVM_GET_CLOCK");
	if (sbuf_put_section(out, VM_SEC_PIT, &pit, sizeof(pit)) ||
	    sbuf_put_section(out, VM_SEC_CLOCK, &clock, sizeof(clock)))
		return ferr_set(err, -ENOMEM, "out of memory");
	return vm->has_tsc_offset ? vm_tsc_save(vm, out, err) : 0;
}

int vm_state_load(struct vm *vm, const void *blob, size_t len, struct ferr *err)
{
	struct vm_blob b;
	const void *const *sec = b.sec;
	int rc = vm_blob_parse(blob, len, &b, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(vm_irqchips) / sizeof(vm_irqchips[0]); i++) {
		struct kvm_irqchip chip;
		memcpy(&chip, sec[vm_irqchips[i].tag], sizeof(chip));
		if (chip.chip_id != vm_irqchips[i].chip_id)
			return ferr_set(err, -EBADMSG, "VM state: %s section names chip %u",
					vm_irqchips[i].name, chip.chip_id);
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return ferr_errno(err, -errno, "KVM_SET_IRQCHIP (%s)", vm_irqchips[i].name);
	}
	struct kvm_pit_state2 pit;
	memcpy(&pit, sec[VM_SEC_PIT], sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return ferr_errno(err, -errno, "KVM_SET_PIT2");
	if (sec[VM_SEC_TSC]) {
		/* Before the clock: KVM_SET_CLOCK refreshes every vCPU's kvmclock from its TSC. */
		rc = vm_tsc_load(vm, sec[VM_SEC_TSC], b.tsc_len, err);
		if (rc)
			return rc;
	}
	struct kvm_clock_data clock;
	memcpy(&clock, sec[VM_SEC_CLOCK], sizeof(clock));
	clock.flags = 0; /* only the clock value is ours to set; the rest is host-specific */
	memset(clock.pad, 0, sizeof(clock.pad));
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return ferr_errno(err, -errno, "KVM_SET_CLOCK");
	return 0;
}

unsigned vm_device_count(const struct vm *vm)
{
	return vm->ndevices;
}

int vm_device_save(struct vm *vm, unsigned i, const char **name, uint32_t *version,
		   struct sbuf *out, struct ferr *err)
{
	const struct vm_device *d = &vm->devices[i];

	if (i >= vm->ndevices)
		return ferr_set(err, -EINVAL, "device %u does not exist", i);
	*name = d->name;
	*version = d->ops->version;
	return d->ops->save(d->dev, out, err);
}

int vm_device_load(struct vm *vm, const char *name, uint32_t version, const void *blob, size_t len,
		   struct ferr *err)
{
	for (unsigned i = 0; i < vm->ndevices; i++) {
		const struct vm_device *d = &vm->devices[i];
		if (strcmp(d->name, name) == 0) {
			int rc = d->ops->load(d->dev, version, blob, len, err);
			if (rc)
				ferr_prefix(err, "device %s: ", name);
			return rc;
		}
	}
	return ferr_set(err, -ENOENT, "the stream has state for device '%s', which this VM lacks",
			name);
}

uint64_t vm_cpuid_digest(const struct vm *vm)
{
	/* The table as given to KVM_SET_CPUID2 minus per-vCPU APIC IDs (added later). */
	return XXH3_64bits(vm->cpuid->entries, vm->cpuid->nent * sizeof(vm->cpuid->entries[0]));
}
