// SPDX-License-Identifier: GPL-2.0-only
/*
 * Multiboot v1: find the header, take the load layout from the ELF program
 * headers (or from the header's address fields when flag 16 is set), write
 * the boot information (memory map, command line) after the image as QEMU
 * does, and enter the kernel in 32-bit protected mode with paging off,
 * EAX = 0x2badb002 and EBX = the information structure.
 */
#include "boot/multiboot.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "boot/boot.h"
#include "vm/memory.h"

/* Boot information structure (the parts ferry fills). */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info, vbe_mode_info;
	uint16_t vbe_mode, vbe_if_seg, vbe_if_off, vbe_if_len;
} __attribute__((packed));
_Static_assert(sizeof(struct mb_info) == 88, "multiboot info layout");

#define MBI_MEM		(1u << 0)
#define MBI_CMDLINE	(1u << 2)
#define MBI_MMAP	(1u << 6)
#define MBI_LOADER_NAME (1u << 9)

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry: 20 */
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct mb_mmap_entry) == 24, "multiboot mmap entry layout");

#define MB_MEM_AVAILABLE 1
#define MB_MEM_RESERVED	 2

static unsigned mb_build_mmap(const struct gmem *mem, struct mb_mmap_entry *e)
{
	uint64_t low = gmem_low_size(mem);
	unsigned n = 0;

	e[n++] = (struct mb_mmap_entry){20, 0, 0x9fc00, MB_MEM_AVAILABLE};
	e[n++] = (struct mb_mmap_entry){20, 0x9fc00, 0x400, MB_MEM_RESERVED};
	e[n++] =
	    (struct mb_mmap_entry){20, BOOT_ACPI_BASE, 0x100000 - BOOT_ACPI_BASE, MB_MEM_RESERVED};
	e[n++] = (struct mb_mmap_entry){20, 0x100000, low - 0x100000, MB_MEM_AVAILABLE};
	if (mem->nregions > 1)
		e[n++] = (struct mb_mmap_entry){20, mem->regions[1].gpa, mem->regions[1].size,
						MB_MEM_AVAILABLE};
	return n;
}

static int mb_set_entry_state(int fd, uint32_t entry, uint32_t mbi, struct ferr *err)
{
	struct kvm_sregs s;
	struct kvm_regs r = {.rax = MB_BOOTLOADER_MAGIC, .rbx = mbi, .rip = entry, .rflags = 2};
	struct kvm_segment code = {
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = 0x08,
	    .type = 0xb,
	    .present = 1,
	    .dpl = 0,
	    .db = 1,
	    .s = 1,
	    .l = 0,
	    .g = 1,
	};
	struct kvm_segment data = code;

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_GET_SREGS");
	data.selector = 0x10;
	data.type = 0x3;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.cr0 = 0x11; /* PE | ET; paging off as the spec requires */
	s.cr4 = 0;
	s.efer = 0;
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_SET_SREGS");
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return ferr_errno(err, -errno, "KVM_SET_REGS");
	return 0;
}

static int mb_load(const struct boot_ctx *ctx, struct ferr *err)
{
	static const char loader_name[] = "ferry";
	struct mb_image mb;
	struct mb_mmap_entry mmap[5];
	struct mb_info info = {0};
	size_t cmdlen = strlen(ctx->cmdline) + 1;
	uint64_t low = gmem_low_size(ctx->mem);
	uint64_t mbi, p;
	unsigned nmmap;
	uint8_t *dst;
	int rc;

	rc = mb_parse(ctx->image, ctx->image_size, &mb, err);
	if (rc) {
		ferr_prefix(err, "kernel %s: ", ctx->path);
		return rc;
	}
	/* Boot information goes after the image, page-aligned, as QEMU places it. */
	mbi = (mb.load_end + 0xfff) & ~0xfffull;
	nmmap = mb_build_mmap(ctx->mem, mmap);
	if (mbi + sizeof(info) + sizeof(mmap) + cmdlen + sizeof(loader_name) > low)
		return ferr_set(err, -ENOMEM,
				"kernel %s needs %#llx bytes of low memory; the guest has %#llx",
				ctx->path, (unsigned long long)mbi + 4096, (unsigned long long)low);
	for (unsigned i = 0; i < mb.nsegments; i++) {
		const struct mb_segment *sg = &mb.segments[i];
		dst = gmem_ptr(ctx->mem, sg->paddr, sg->mem_size);
		if (!dst || sg->paddr + sg->mem_size > low)
			return ferr_set(err, -ENOMEM,
					"kernel %s loads at %#llx+%#llx, beyond the guest's %#llx "
					"bytes of low memory",
					ctx->path, (unsigned long long)sg->paddr,
					(unsigned long long)sg->mem_size, (unsigned long long)low);
		memcpy(dst, ctx->image + sg->file_offset, sg->file_size);
		memset(dst + sg->file_size, 0, sg->mem_size - sg->file_size);
	}

	p = mbi + sizeof(info);
	info.flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;
	info.mem_lower = 0x9fc00 / 1024;
	info.mem_upper = (low - 0x100000) / 1024;
	info.mmap_addr = p;
	info.mmap_length = nmmap * sizeof(mmap[0]);
	memcpy(gmem_ptr(ctx->mem, p, info.mmap_length), mmap, info.mmap_length);
	p += info.mmap_length;
	info.cmdline = p;
	memcpy(gmem_ptr(ctx->mem, p, cmdlen), ctx->cmdline, cmdlen);
	p += cmdlen;
	info.boot_loader_name = p;
	memcpy(gmem_ptr(ctx->mem, p, sizeof(loader_name)), loader_name, sizeof(loader_name));
	memcpy(gmem_ptr(ctx->mem, mbi, sizeof(info)), &info, sizeof(info));

	return mb_set_entry_state(ctx->bsp_fd, mb.entry, mbi, err);
}

static bool mb_probe(const uint8_t *image, size_t size)
{
	return mb_find_header(image, size) >= 0;
}

const struct boot_loader boot_multiboot_loader = {
    .name = "multiboot",
    .probe = mb_probe,
    .load = mb_load,
};
