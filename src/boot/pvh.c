// SPDX-License-Identifier: GPL-2.0-only
/*
 * PVH loader.  Guest-physical layout:
 *   0x06000  hvm_start_info (EBX at entry)
 *   0x06100  module list: the initrd, if any
 *   0x06200  memory map (the same ranges as the bzImage loader's e820)
 *   0x20000  command line
 *   segments at their ELF physical addresses (Linux: 16 MiB)
 *   initrd   at the top of RAM below 3 GiB, page-aligned
 */
#include "boot/pvh.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "boot/boot.h"
#include "vm/memory.h"

#define PVH_START_INFO	0x6000ull
#define PVH_MODLIST	0x6100ull
#define PVH_MEMMAP	0x6200ull
#define PVH_CMDLINE	0x20000ull
#define PVH_CMDLINE_MAX 0x10000u
#define PVH_MAGIC	0x336ec578u

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info version 1");

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static int pvh_set_entry_state(int fd, uint32_t entry, struct ferr *err)
{
	struct kvm_sregs s;
	struct kvm_regs r = {.rbx = PVH_START_INFO, .rip = entry, .rflags = 2};
	struct kvm_segment code = {
	    .limit = 0xffffffff,
	    .selector = 0x08,
	    .type = 0xb,
	    .present = 1,
	    .db = 1,
	    .s = 1,
	    .g = 1,
	};
	struct kvm_segment data = code;

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_GET_SREGS");
	data.selector = 0x10;
	data.type = 0x3;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.cr0 = 0x11; /* PE | ET; paging off */
	s.cr4 = 0;
	s.efer = 0;
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_SET_SREGS");
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return ferr_errno(err, -errno, "KVM_SET_REGS");
	return 0;
}

static int pvh_load(const struct boot_ctx *ctx, struct ferr *err)
{
	uint64_t low = gmem_low_size(ctx->mem), top = 0, rd_addr = 0;
	size_t cmdlen = strlen(ctx->cmdline);
	struct hvm_start_info si = {.magic = PVH_MAGIC, .version = 1};
	struct hvm_memmap_entry mm[4];
	struct pvh_image pv;
	unsigned n = 0;
	int rc;

	rc = pvh_parse(ctx->image, ctx->image_size, &pv, err);
	if (rc) {
		ferr_prefix(err, "kernel %s: ", ctx->path);
		return rc;
	}
	if (cmdlen >= PVH_CMDLINE_MAX)
		return ferr_set(err, -E2BIG, "--append is %zu bytes; at most %u", cmdlen,
				PVH_CMDLINE_MAX - 1);
	for (unsigned i = 0; i < pv.nsegments; i++) {
		const struct pvh_segment *sg = &pv.segments[i];
		if (sg->paddr + sg->mem_size > low)
			return ferr_set(err, -ENOMEM,
					"kernel %s loads up to %#llx; the guest has %llu MiB below "
					"3 GiB (raise --memory)",
					ctx->path, (unsigned long long)(sg->paddr + sg->mem_size),
					(unsigned long long)low >> 20);
		if (sg->paddr + sg->mem_size > top)
			top = sg->paddr + sg->mem_size;
	}
	if (ctx->initrd_size) {
		rd_addr = (low - ctx->initrd_size) & ~0xfffull;
		if (ctx->initrd_size > low || rd_addr < top)
			return ferr_set(err, -ENOMEM,
					"initrd %s (%zu bytes) does not fit in guest memory above "
					"the kernel (%llu MiB below 3 GiB; raise --memory)",
					ctx->initrd_path, ctx->initrd_size,
					(unsigned long long)low >> 20);
	}
	for (unsigned i = 0; i < pv.nsegments; i++) {
		const struct pvh_segment *sg = &pv.segments[i];
		uint8_t *dst = gmem_ptr(ctx->mem, sg->paddr, sg->mem_size);
		memcpy(dst, ctx->image + sg->file_offset, sg->file_size);
		memset(dst + sg->file_size, 0, sg->mem_size - sg->file_size);
	}
	if (ctx->initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = rd_addr, .size = ctx->initrd_size};
		memcpy(gmem_ptr(ctx->mem, rd_addr, ctx->initrd_size), ctx->initrd,
		       ctx->initrd_size);
		memcpy(gmem_ptr(ctx->mem, PVH_MODLIST, sizeof(mod)), &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = PVH_MODLIST;
	}
	memcpy(gmem_ptr(ctx->mem, PVH_CMDLINE, cmdlen + 1), ctx->cmdline, cmdlen + 1);
	mm[n++] = (struct hvm_memmap_entry){0, 0x9fc00, 1, 0};
	mm[n++] = (struct hvm_memmap_entry){BOOT_ACPI_BASE, 0x100000 - BOOT_ACPI_BASE, 2, 0};
	mm[n++] = (struct hvm_memmap_entry){0x100000, low - 0x100000, 1, 0};
	if (ctx->mem->nregions > 1)
		mm[n++] = (struct hvm_memmap_entry){ctx->mem->regions[1].gpa,
						    ctx->mem->regions[1].size, 1, 0};
	memcpy(gmem_ptr(ctx->mem, PVH_MEMMAP, n * sizeof(mm[0])), mm, n * sizeof(mm[0]));
	si.cmdline_paddr = PVH_CMDLINE;
	si.rsdp_paddr = BOOT_ACPI_BASE;
	si.memmap_paddr = PVH_MEMMAP;
	si.memmap_entries = n;
	memcpy(gmem_ptr(ctx->mem, PVH_START_INFO, sizeof(si)), &si, sizeof(si));
	return pvh_set_entry_state(ctx->bsp_fd, pv.entry, err);
}

static int pvh_check(const uint8_t *image, size_t size, struct ferr *err)
{
	struct pvh_image pv;

	return pvh_parse(image, size, &pv, err);
}

const struct boot_loader boot_pvh_loader = {
    .name = "PVH ELF",
    .probe = pvh_probe,
    .load = pvh_load,
    .check = pvh_check,
    .takes_initrd = true,
    .stock_kernel = true,
};
