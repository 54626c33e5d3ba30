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

/* A digest of the CPUID table the guest was given: equal digests, same CPU model. */
uint64_t vm_cpuid_digest(const struct vm *vm);

#endif
