// SPDX-License-Identifier: GPL-2.0-only
#include "migration/engine/ram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/parse.h"
#include "vm/memory.h"

uint64_t ram_page_gfn(const struct gmem *m, uint64_t i)
{
	uint64_t off = i * GMEM_PAGE_SIZE;

	for (unsigned r = 0; r < m->nregions; r++) {
		uint64_t roff = (uint64_t)(m->regions[r].hva - m->base);
		if (off >= roff && off - roff < m->regions[r].size)
			return (m->regions[r].gpa + (off - roff)) / GMEM_PAGE_SIZE;
	}
	return UINT64_MAX;
}

uint64_t ram_gfn_page(const struct gmem *m, uint64_t gfn)
{
	uint64_t gpa = gfn * GMEM_PAGE_SIZE;

	for (unsigned r = 0; r < m->nregions; r++) {
		const struct gmem_region *rg = &m->regions[r];
		if (gpa >= rg->gpa && gpa - rg->gpa < rg->size)
			return ((uint64_t)(rg->hva - m->base) + (gpa - rg->gpa)) / GMEM_PAGE_SIZE;
	}
	return UINT64_MAX;
}

void *ram_page_ptr(const struct gmem *m, uint64_t i)
{
	return m->base + i * GMEM_PAGE_SIZE;
}

int ram_resident(const struct gmem *m, uint64_t first, uint64_t n, unsigned char *vec,
		 struct ferr *err)
{
	if (mincore(m->base + first * GMEM_PAGE_SIZE, n * GMEM_PAGE_SIZE, vec) < 0)
		return ferr_errno(err, -errno, "mincore on guest memory");
	return 0;
}

void ram_stream_header(const struct gmem *m, unsigned ncpus, uint64_t cpuid_digest,
		       uint64_t features, struct stream_header *h)
{
	memset(h, 0, sizeof(*h));
	h->version = STREAM_VERSION;
	h->page_size = STREAM_PAGE_SIZE;
	h->vcpu_count = ncpus;
	h->features = features;
	h->cpuid_digest = cpuid_digest;
	h->nregions = m->nregions;
	for (unsigned i = 0; i < m->nregions; i++)
		h->regions[i] = (struct stream_region){m->regions[i].gpa, m->regions[i].size};
}

int ram_check_header(const struct gmem *m, unsigned ncpus, uint64_t cpuid_digest,
		     const struct stream_header *h, struct ferr *err)
{
	char a[32], b[32];
	bool same = h->nregions == m->nregions;

	for (unsigned i = 0; same && i < m->nregions; i++)
		same = h->regions[i].gpa == m->regions[i].gpa &&
		       h->regions[i].size == m->regions[i].size;
	if (!same)
		return ferr_set(err, -EINVAL,
				"the stream is from a VM with %s of memory; this VM has %s "
				"(--memory must match)",
				fmt_size(stream_header_ram(h), a, sizeof(a)),
				fmt_size(m->size, b, sizeof(b)));
	if (h->vcpu_count != ncpus)
		return ferr_set(err, -EINVAL,
				"the stream is from a VM with %u vCPUs; this VM has %u (--cpus "
				"must match)",
				h->vcpu_count, ncpus);
	if (h->cpuid_digest != cpuid_digest)
		return ferr_set(err, -EINVAL,
				"the stream's CPU model (CPUID digest %016llx) differs from this "
				"host's (%016llx): the guest could meet missing CPU features",
				(unsigned long long)h->cpuid_digest,
				(unsigned long long)cpuid_digest);
	return 0;
}
