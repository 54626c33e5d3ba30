// SPDX-License-Identifier: GPL-2.0-only
/*
 * VM-wide state: the in-kernel PICs and IOAPIC, the PIT and kvmclock; the
 * device table; the CPUID digest that tells two hosts gave the guest the
 * same CPU.
 *
 * Time: the guest's kvmclock is saved when the VM is paused and restored
 * before it resumes, and each vCPU's TSC travels in its MSRs, so guest time
 * stands still while the VM is not running, on either host: it never jumps
 * backwards and never races forward to catch up.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xxhash.h>

#include "devices/device.h"
#include "vm/state.h"
#include "vm/state_parse.h"
#include "vm/vm_priv.h"

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
	return 0;
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
