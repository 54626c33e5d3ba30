/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Complete capture and restore of VM state, for save/restore and
 * migration.  Blobs are sbuf section lists (common/sbuf.h); their section
 * tags and layouts are in docs/stream-format.md ("State blobs").
 *
 * Saving requires the VM to be paused (vm_stop) or never started; loading
 * requires it never to have run (state PRELAUNCH).  Both are called by one
 * thread (the migration thread) while the vCPU threads are parked or not
 * yet started, so no vCPU fd is used concurrently.
 */
#ifndef FERRY_VM_STATE_H
#define FERRY_VM_STATE_H

#include <stdint.h>

#include "common/err.h"
#include "common/sbuf.h"

struct vm;

/* One vCPU: regs, sregs2, xsave, xcrs, MSRs, LAPIC, events, mp_state, debugregs. */
int vcpu_state_save(struct vm *vm, unsigned index, struct sbuf *out, struct ferr *err);
int vcpu_state_load(struct vm *vm, unsigned index, const void *blob, size_t len, struct ferr *err);

/* The VM: PIC master/slave, IOAPIC, PIT, kvmclock. */
int vm_state_save(struct vm *vm, struct sbuf *out, struct ferr *err);
int vm_state_load(struct vm *vm, const void *blob, size_t len, struct ferr *err);

/* Devices with state, each with a name and a format version. */
unsigned vm_device_count(const struct vm *vm);
int vm_device_save(struct vm *vm, unsigned i, const char **name, uint32_t *version,
		   struct sbuf *out, struct ferr *err);
int vm_device_load(struct vm *vm, const char *name, uint32_t version, const void *blob, size_t len,
		   struct ferr *err);

/*
 * Sections: the one migration contract of everything with state (each
 * vCPU, the VM core, each device; devices/device.h has the order of
 * calls).  The engine walks them by number without knowing their kinds,
 * except to choose the stream record each travels in.
 */
enum vm_section_kind {
	VM_SECTION_VCPU,   /* VCPU_STATE, index = vCPU number */
	VM_SECTION_VM,	   /* VM_STATE */
	VM_SECTION_DEVICE, /* DEVICE_STATE, by name and version */
};

struct vm_section_info {
	enum vm_section_kind kind;
	unsigned index;	  /* vCPU number; 0 otherwise */
	const char *name; /* "vcpu", "vm", or the device's id */
	uint32_t version; /* devices: the version this code writes */
};

unsigned vm_section_count(const struct vm *vm);
void vm_section_get(const struct vm *vm, unsigned i, struct vm_section_info *out);
/* The section a stream record is for, or -ENOENT with the reason in @err. */
int vm_section_find(const struct vm *vm, enum vm_section_kind kind, unsigned index,
		    const char *name, unsigned *i, struct ferr *err);
int vm_section_quiesce(struct vm *vm, unsigned i, struct ferr *err);
int vm_section_save(struct vm *vm, unsigned i, struct sbuf *out, struct ferr *err);
int vm_section_load(struct vm *vm, unsigned i, uint32_t version, const void *blob, size_t len,
		    struct ferr *err);
int vm_section_post_load(struct vm *vm, unsigned i, struct ferr *err);
void vm_section_resume(struct vm *vm, unsigned i);

/* A digest of the CPUID table the guest was given: equal digests, same CPU model. */
uint64_t vm_cpuid_digest(const struct vm *vm);

#endif
