// SPDX-License-Identifier: GPL-2.0-only
/*
 * Dirty tracking with KVM's per-slot dirty bitmap.
 *
 * With KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_GET_DIRTY_LOG only reports
 * (and forgets) the dirty bits; pages stay writable until
 * KVM_CLEAR_DIRTY_LOG re-protects them, which rearm() does chunk by chunk
 * just before the engine sends the chunk.  Without it, GET re-protects
 * everything it reports and rearm has nothing to do.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/clock.h"
#include "vm/dirty.h"
#include "vm/memory.h"
#include "vm/vm.h"

/* First RAM-order page of a region. */
static uint64_t region_first_page(const struct gmem *m, const struct gmem_region *r)
{
	return (uint64_t)(r->hva - m->base) / GMEM_PAGE_SIZE;
}

static int dkvm_start(struct dirty_tracker *t, struct ferr *err)
{
	return vm_dirty_log_enable(t->vm, true, err);
}

static int dkvm_sync(struct dirty_tracker *t, struct bitmap *dirty, struct ferr *err)
{
	const struct gmem *m = vm_gmem(t->vm);
	uint64_t t0 = clock_now_ns();

	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		uint64_t npages = r->size / GMEM_PAGE_SIZE;
		struct kvm_dirty_log log = {.slot = r->slot, .dirty_bitmap = t->scratch};

		if (ioctl(vm_kvm_vm_fd(t->vm), KVM_GET_DIRTY_LOG, &log) < 0)
			return ferr_errno(err, -errno, "KVM_GET_DIRTY_LOG slot %u", r->slot);
		bitmap_or_words(dirty, region_first_page(m, r), t->scratch, npages);
	}
	vm_take_self_dirty(t->vm, dirty);
	t->syncs++;
	t->sync_ns += clock_now_ns() - t0;
	return 0;
}

static int dkvm_rearm(struct dirty_tracker *t, const struct bitmap *pages, uint64_t first,
		      uint64_t npages, struct ferr *err)
{
	const struct gmem *m = vm_gmem(t->vm);
	uint64_t t0 = clock_now_ns();

	if (!t->manual_protect)
		return 0;
	if (first % 64)
		return ferr_set(err, -EINVAL, "rearm: first page %llu is not 64-aligned",
				(unsigned long long)first);
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		uint64_t rfirst = region_first_page(m, r), rn = r->size / GMEM_PAGE_SIZE;
		uint64_t lo = first > rfirst ? first : rfirst;
		uint64_t hi = first + npages < rfirst + rn ? first + npages : rfirst + rn;

		if (lo >= hi)
			continue;
		/* KVM takes whole 64-page words, except at a slot's end. */
		if ((hi - lo) % 64 && hi != rfirst + rn)
			return ferr_set(err, -EINVAL, "rearm: %llu pages is not a multiple of 64",
					(unsigned long long)(hi - lo));
		struct kvm_clear_dirty_log c = {
		    .slot = r->slot,
		    .num_pages = (uint32_t)(hi - lo),
		    .first_page = lo - rfirst,
		    .dirty_bitmap = (void *)&pages->words[lo / 64],
		};
		if (ioctl(vm_kvm_vm_fd(t->vm), KVM_CLEAR_DIRTY_LOG, &c) < 0)
			return ferr_errno(err, -errno, "KVM_CLEAR_DIRTY_LOG slot %u pages %llu+%u",
					  r->slot, (unsigned long long)c.first_page, c.num_pages);
	}
	t->rearm_ns += clock_now_ns() - t0;
	return 0;
}

static void dkvm_stop(struct dirty_tracker *t)
{
	vm_dirty_log_enable(t->vm, false, NULL);
}

static const struct dirty_ops dirty_kvm_ops = {
    .name = "kvm-dirty-log",
    .start = dkvm_start,
    .sync = dkvm_sync,
    .rearm = dkvm_rearm,
    .stop = dkvm_stop,
};

int dirty_tracker_init(struct dirty_tracker *t, struct vm *vm, struct ferr *err)
{
	const struct gmem *m = vm_gmem(vm);
	uint64_t max_pages = 0, flags = vm_dirty_log_manual_flags(vm);

	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < m->nregions; i++)
		if (m->regions[i].size / GMEM_PAGE_SIZE > max_pages)
			max_pages = m->regions[i].size / GMEM_PAGE_SIZE;
	t->scratch = calloc(BITMAP_WORDS(max_pages), sizeof(uint64_t));
	if (!t->scratch)
		return ferr_set(err, -ENOMEM, "out of memory for the dirty log");
	t->ops = &dirty_kvm_ops;
	t->vm = vm;
	t->npages = m->size / GMEM_PAGE_SIZE;
	t->manual_protect = flags & 1;
	t->initially_set = flags & 2;
	return 0;
}

void dirty_tracker_destroy(struct dirty_tracker *t)
{
	free(t->scratch);
	t->scratch = NULL;
}
