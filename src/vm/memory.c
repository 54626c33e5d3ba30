// SPDX-License-Identifier: GPL-2.0-only
#include "vm/memory.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/parse.h"

static int gmem_add_region(struct gmem *m, int vm_fd, uint64_t gpa, uint64_t size, uint8_t *hva,
			   struct ferr *err)
{
	struct gmem_region *r = &m->regions[m->nregions];
	struct kvm_userspace_memory_region kr = {
	    .slot = m->nregions,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)hva,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
		return ferr_errno(err, -errno, "KVM_SET_USER_MEMORY_REGION for %#llx+%#llx",
				  (unsigned long long)gpa, (unsigned long long)size);
	r->gpa = gpa;
	r->size = size;
	r->hva = hva;
	r->slot = kr.slot;
	m->nregions++;
	return 0;
}

int gmem_init(struct gmem *m, int vm_fd, uint64_t size, struct ferr *err)
{
	char buf[32];
	uint64_t low = size < GMEM_LOW_LIMIT ? size : GMEM_LOW_LIMIT;
	int rc;

	memset(m, 0, sizeof(*m));
	if (size == 0 || size % GMEM_PAGE_SIZE)
		return ferr_set(err, -EINVAL, "memory size must be a non-zero multiple of 4 KiB");
	/*
	 * MAP_NORESERVE: untouched guest RAM costs nothing, and migration
	 * relies on never-touched pages staying unpopulated.
	 */
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		return ferr_errno(err, -errno, "cannot map %s of guest memory",
				  fmt_size(size, buf, sizeof(buf)));
	}
	m->size = size;
	rc = gmem_add_region(m, vm_fd, 0, low, m->base, err);
	if (!rc && size > low)
		rc = gmem_add_region(m, vm_fd, GMEM_HIGH_BASE, size - low, m->base + low, err);
	if (rc)
		gmem_destroy(m);
	return rc;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int gmem_prealloc(struct gmem *m, const volatile bool *stop, struct ferr *err)
{
	const uint64_t chunk = 64ull << 20; /* check @stop this often */

	for (uint64_t off = 0; off < m->size && !*stop; off += chunk) {
		uint64_t n = m->size - off < chunk ? m->size - off : chunk;
		if (madvise(m->base + off, n, MADV_POPULATE_WRITE) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL)
				return ferr_set(
				    err, -EOPNOTSUPP,
				    "--prealloc needs MADV_POPULATE_WRITE (Linux 5.14)");
			return ferr_errno(err, -errno, "preallocating guest memory");
		}
	}
	return 0;
}

void gmem_destroy(struct gmem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	memset(m, 0, sizeof(*m));
}

void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

uint64_t gmem_end(const struct gmem *m)
{
	const struct gmem_region *r = &m->regions[m->nregions - 1];
	return r->gpa + r->size;
}

uint64_t gmem_low_size(const struct gmem *m)
{
	return m->regions[0].size;
}
