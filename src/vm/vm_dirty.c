// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VM's side of dirty tracking: the KVM_MEM_LOG_DIRTY_PAGES flag on
 * every slot, the manual-protect capability, and the record of pages that
 * ferry itself writes (KVM's log only sees the guest's writes).
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/ioctl.h>

#include "vm/vm_priv.h"

/* Linux 5.x names; Debian 12's headers have them, older ones may not. */
#ifndef KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
#define KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1 << 0)
#endif
#ifndef KVM_DIRTY_LOG_INITIALLY_SET
#define KVM_DIRTY_LOG_INITIALLY_SET (1 << 1)
#endif

int vm_dirty_init(struct vm *vm, struct ferr *err)
{
	int caps = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	if (caps > 0) {
		/*
		 * Manual protect: harvesting no longer re-protects all memory at
		 * once; the engine re-protects each chunk just before sending it.
		 * INITIALLY_SET: turning logging on write-protects nothing up
		 * front, which keeps the start of a migration cheap for big guests.
		 */
		struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2};
		cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
		if (caps & KVM_DIRTY_LOG_INITIALLY_SET)
			cap.args[0] |= KVM_DIRTY_LOG_INITIALLY_SET;
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			return ferr_errno(err, -errno, "KVM_ENABLE_CAP MANUAL_DIRTY_LOG_PROTECT2");
		vm->dirty_manual_flags = cap.args[0];
	}
	return 0;
}

void vm_dirty_destroy(struct vm *vm)
{
	bitmap_destroy(&vm->self_dirty);
	pthread_mutex_destroy(&vm->dirty_lock);
}

const struct gmem *vm_gmem(const struct vm *vm)
{
	return &vm->mem;
}

int vm_kvm_vm_fd(const struct vm *vm)
{
	return vm->vm_fd;
}

uint64_t vm_dirty_log_manual_flags(const struct vm *vm)
{
	return vm->dirty_manual_flags;
}

int vm_dirty_log_enable(struct vm *vm, bool on, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&vm->dirty_lock);
	if (on && !vm->self_dirty.words &&
	    bitmap_init(&vm->self_dirty, vm->mem.size / GMEM_PAGE_SIZE)) {
		pthread_mutex_unlock(&vm->dirty_lock);
		return ferr_set(err, -ENOMEM, "out of memory for the dirty bitmap");
	}
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct gmem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region kr = {
		    .slot = r->slot,
		    .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uintptr_t)r->hva,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0) {
			rc = ferr_errno(err, -errno, "%s dirty logging on slot %u",
					on ? "enabling" : "disabling", r->slot);
			break;
		}
	}
	if (!rc) {
		if (on)
			bitmap_zero(&vm->self_dirty); /* before markers can see it on */
		atomic_store_explicit(&vm->dirty_logging, on, memory_order_release);
	}
	pthread_mutex_unlock(&vm->dirty_lock);
	return rc;
}

void vm_mark_self_dirty(struct vm *vm, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gmem_ptr(&vm->mem, gpa, len);
	uint64_t first, last;

	if (!p || len == 0 || !atomic_load_explicit(&vm->dirty_logging, memory_order_acquire))
		return;
	first = (uint64_t)(p - vm->mem.base) / GMEM_PAGE_SIZE;
	last = (uint64_t)(p + len - 1 - vm->mem.base) / GMEM_PAGE_SIZE;
	/* The data was written before this: a harvest that sees the bit sends it. */
	for (uint64_t i = first; i <= last; i++)
		__atomic_fetch_or(&vm->self_dirty.words[i / 64], 1ull << (i % 64),
				  __ATOMIC_ACQ_REL);
}

void vm_take_self_dirty(struct vm *vm, struct bitmap *dirty)
{
	struct bitmap *sd = &vm->self_dirty;

	if (!sd->words)
		return;
	/* Word by word, so that a mark racing with the harvest lands in this
	 * harvest or the next, never in neither. */
	for (uint64_t w = 0; w < BITMAP_WORDS(sd->nbits); w++) {
		uint64_t bits = __atomic_exchange_n(&sd->words[w], 0, __ATOMIC_ACQ_REL);
		if (bits)
			bitmap_or_words(dirty, w * 64, &bits,
					sd->nbits - w * 64 < 64 ? sd->nbits - w * 64 : 64);
	}
}
