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

int ram_write_page_set(struct stream_writer *w, const struct gmem *m, uint32_t type,
		       uint64_t (*next)(const void *set, uint64_t from), const void *set,
		       uint64_t *count, struct ferr *err)
{
	struct stream_msg msg = {.type = type};
	struct stream_discard *d = &msg.discard;
	uint64_t npages = m->size / GMEM_PAGE_SIZE, n = 0;
	bool open = false;
	int rc = 0;

	for (uint64_t i = next(set, 0); !rc && i < npages; i = next(set, i + 1)) {
		uint64_t gfn = ram_page_gfn(m, i);
		/* A message spans at most STREAM_DISCARD_MAX_WORDS words of frames. */
		if (open && gfn >= d->first + 64ull * STREAM_DISCARD_MAX_WORDS) {
			rc = stream_write_msg(w, &msg, err);
			open = false;
		}
		if (!open) {
			memset(d->bits, 0, sizeof(d->bits));
			d->first = gfn & ~63ull;
			d->nwords = 0;
			open = true;
		}
		uint64_t off = gfn - d->first;
		d->bits[off / 64] |= 1ull << (off % 64);
		if (off / 64 + 1 > d->nwords)
			d->nwords = (uint32_t)(off / 64 + 1);
		n++;
	}
	if (!rc && open)
		rc = stream_write_msg(w, &msg, err);
	if (count)
		*count = n;
	return rc;
}

int ram_drop_pages(const struct gmem *m, const struct stream_discard *d, struct ferr *err)
{
	uint64_t run = 0, nrun = 0;

	for (uint32_t w = 0; w <= d->nwords; w++) {
		uint64_t bits = w < d->nwords ? d->bits[w] : 0;
		for (unsigned b = 0; b < 64; b++) {
			bool set = bits >> b & 1;
			uint64_t i = set ? ram_gfn_page(m, d->first + 64ull * w + b) : UINT64_MAX;
			/* A run goes on while pages follow one another in RAM. */
			if (set && i != UINT64_MAX && nrun && i == run + nrun) {
				nrun++;
				continue;
			}
			if (nrun &&
			    madvise(ram_page_ptr(m, run), nrun * GMEM_PAGE_SIZE, MADV_DONTNEED) < 0)
				return ferr_errno(err, -errno, "dropping %llu stale pages",
						  (unsigned long long)nrun);
			nrun = 0;
			if (set && i == UINT64_MAX)
				return ferr_set(err, -EPROTO, "frame %#llx is not RAM",
						(unsigned long long)(d->first + 64ull * w + b));
			if (set) {
				run = i;
				nrun = 1;
			}
			if (w == d->nwords)
				break;
		}
	}
	return 0;
}
