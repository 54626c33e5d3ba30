// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sections: vCPUs, the VM core and devices behind one migration contract
 * (vm/state.h).  Numbering: 0 .. ncpus-1 are the vCPUs, ncpus the VM
 * core, then the devices in registration order.  vCPUs and the VM core
 * have no quiesce, post-load or resume step of their own: parking the
 * vCPUs is their quiesce (vm_hold), and KVM needs nothing after a load.
 */
#include <errno.h>
#include <string.h>

#include "devices/device.h"
#include "vm/state.h"
#include "vm/vm_priv.h"

unsigned vm_section_count(const struct vm *vm)
{
	return vm->ncpus + 1 + vm->ndevices;
}

void vm_section_get(const struct vm *vm, unsigned i, struct vm_section_info *out)
{
	if (i < vm->ncpus)
		*out = (struct vm_section_info){VM_SECTION_VCPU, i, "vcpu", 0};
	else if (i == vm->ncpus)
		*out = (struct vm_section_info){VM_SECTION_VM, 0, "vm", 0};
	else {
		const struct vm_device *d = &vm->devices[i - vm->ncpus - 1];
		*out = (struct vm_section_info){VM_SECTION_DEVICE, 0, d->name, d->ops->version};
	}
}

int vm_section_find(const struct vm *vm, enum vm_section_kind kind, unsigned index,
		    const char *name, unsigned *i, struct ferr *err)
{
	switch (kind) {
	case VM_SECTION_VCPU:
		if (index >= vm->ncpus)
			return ferr_set(err, -ENOENT,
					"the stream has state for vCPU %u, which this VM lacks "
					"(it has %u)",
					index, vm->ncpus);
		*i = index;
		return 0;
	case VM_SECTION_VM:
		*i = vm->ncpus;
		return 0;
	case VM_SECTION_DEVICE:
		for (unsigned k = 0; k < vm->ndevices; k++)
			if (strcmp(vm->devices[k].name, name) == 0) {
				*i = vm->ncpus + 1 + k;
				return 0;
			}
		return ferr_set(err, -ENOENT,
				"the stream has state for device '%s', which this VM lacks", name);
	}
	return ferr_set(err, -EINVAL, "section kind %d", (int)kind);
}

static const struct vm_device *section_device(const struct vm *vm, unsigned i)
{
	return i > vm->ncpus && i < vm_section_count(vm) ? &vm->devices[i - vm->ncpus - 1] : NULL;
}

int vm_section_quiesce(struct vm *vm, unsigned i, struct ferr *err)
{
	const struct vm_device *d = section_device(vm, i);

	if (!d || !d->ops->quiesce)
		return 0;
	int rc = d->ops->quiesce(d->dev, err);
	if (rc)
		ferr_prefix(err, "device %s: quiesce: ", d->name);
	return rc;
}

int vm_section_save(struct vm *vm, unsigned i, struct sbuf *out, struct ferr *err)
{
	const char *name;
	uint32_t version;

	if (i < vm->ncpus)
		return vcpu_state_save(vm, i, out, err);
	if (i == vm->ncpus)
		return vm_state_save(vm, out, err);
	return vm_device_save(vm, i - vm->ncpus - 1, &name, &version, out, err);
}

int vm_section_load(struct vm *vm, unsigned i, uint32_t version, const void *blob, size_t len,
		    struct ferr *err)
{
	const struct vm_device *d = section_device(vm, i);

	if (i < vm->ncpus)
		return vcpu_state_load(vm, i, blob, len, err);
	if (i == vm->ncpus)
		return vm_state_load(vm, blob, len, err);
	if (!d)
		return ferr_set(err, -EINVAL, "section %u does not exist", i);
	return vm_device_load(vm, d->name, version, blob, len, err);
}

int vm_section_post_load(struct vm *vm, unsigned i, struct ferr *err)
{
	const struct vm_device *d = section_device(vm, i);

	if (!d || !d->ops->post_load)
		return 0;
	int rc = d->ops->post_load(d->dev, err);
	if (rc)
		ferr_prefix(err, "device %s: after loading: ", d->name);
	return rc;
}

void vm_section_resume(struct vm *vm, unsigned i)
{
	const struct vm_device *d = section_device(vm, i);

	if (d && d->ops->resume)
		d->ops->resume(d->dev);
}
