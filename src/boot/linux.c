// SPDX-License-Identifier: GPL-2.0-only
/*
 * Linux bzImage loader: the 64-bit boot protocol.
 *
 * Guest-physical layout (all below the ACPI tables at 0xe0000):
 *   0x00500  GDT: null, null, __BOOT_CS (0x10, 64-bit code), __BOOT_DS (0x18)
 *   0x07000  boot_params, the "zero page" (RSI at entry)
 *   0x09000  PML4; 0x0a000 PDPT; 0x0b000-0x0efff four page directories:
 *            the first 4 GiB identity-mapped with 2 MiB pages
 *   0x20000  command line (up to 64 KiB)
 *   0x100000 the protected-mode kernel (entered at +0x200)
 *   initrd   at the top of RAM below 3 GiB and initrd_addr_max, page-aligned
 * The e820 map is the same as the multiboot one: RAM below 0x9fc00, the
 * ACPI/BIOS area reserved, RAM from 1 MiB, and the high region if any.
 */
#include "boot/linux.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "boot/boot.h"
#include "vm/memory.h"

#define LB_GDT	       0x500ull
#define LB_ZEROPAGE    0x7000ull
#define LB_PML4	       0x9000ull
#define LB_PDPT	       0xa000ull
#define LB_PD	       0xb000ull
#define LB_CMDLINE     0x20000ull
#define LB_CMDLINE_MAX 0x10000u
#define LB_KERNEL      0x100000ull
#define LB_STACK       0x6ff0ull

/* boot_params fields outside the setup header */
#define BP_ACPI_RSDP	0x070
#define BP_EXT_RD_IMAGE 0x0c0
#define BP_EXT_RD_SIZE	0x0c4
#define BP_EXT_CMDLINE	0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE	0x2d0
#define BP_E820_MAX	128
/* setup header fields ferry writes */
#define HDR_VID_MODE	      0x1fa
#define HDR_TYPE_LOADER	      0x210
#define HDR_LOADFLAGS	      0x211
#define HDR_RD_IMAGE	      0x218
#define HDR_RD_SIZE	      0x21c
#define HDR_HEAP_END	      0x224
#define HDR_CMDLINE_PTR	      0x228
#define LOADFLAG_CAN_USE_HEAP 0x80

#define E820_RAM      1
#define E820_RESERVED 2

static const uint64_t lb_gdt[4] = {
    0, 0, 0x00af9b000000ffffull, /* 0x10 __BOOT_CS: 64-bit code, DPL 0 */
    0x00cf93000000ffffull,	 /* 0x18 __BOOT_DS: data, DPL 0 */
};

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct e820_entry) == 20, "boot_params e820 entry");

static void wr16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static unsigned lb_e820(const struct gmem *mem, uint8_t *zp)
{
	uint64_t low = gmem_low_size(mem);
	struct e820_entry e[4];
	unsigned n = 0;

	e[n++] = (struct e820_entry){0, 0x9fc00, E820_RAM};
	e[n++] = (struct e820_entry){BOOT_ACPI_BASE, 0x100000 - BOOT_ACPI_BASE, E820_RESERVED};
	e[n++] = (struct e820_entry){0x100000, low - 0x100000, E820_RAM};
	if (mem->nregions > 1)
		e[n++] = (struct e820_entry){mem->regions[1].gpa, mem->regions[1].size, E820_RAM};
	memcpy(zp + BP_E820_TABLE, e, n * sizeof(e[0]));
	zp[BP_E820_ENTRIES] = n;
	return n;
}

static void lb_page_tables(const struct gmem *mem)
{
	uint64_t *pml4 = gmem_ptr(mem, LB_PML4, 4096);
	uint64_t *pdpt = gmem_ptr(mem, LB_PDPT, 4096);
	uint64_t *pd = gmem_ptr(mem, LB_PD, 4 * 4096);

	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LB_PDPT | 0x3; /* present, writable */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (LB_PD + i * 4096) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB */
}

static int lb_set_entry_state(int fd, uint64_t entry, struct ferr *err)
{
	struct kvm_regs r = {.rip = entry, .rsi = LB_ZEROPAGE, .rsp = LB_STACK, .rflags = 2};
	struct kvm_segment code = {
	    .limit = 0xffffffff,
	    .selector = 0x10,
	    .type = 0xb,
	    .present = 1,
	    .s = 1,
	    .l = 1,
	    .g = 1,
	};
	struct kvm_segment data = {
	    .limit = 0xffffffff,
	    .selector = 0x18,
	    .type = 0x3,
	    .present = 1,
	    .s = 1,
	    .db = 1,
	    .g = 1,
	};
	struct kvm_sregs s;

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_GET_SREGS");
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = LB_GDT;
	s.gdt.limit = sizeof(lb_gdt) - 1;
	s.cr0 = 0x80000033; /* PG | NE | ET | MP | PE */
	s.cr3 = LB_PML4;
	s.cr4 = 0x20;	/* PAE */
	s.efer = 0x500; /* LME | LMA */
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_SET_SREGS");
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return ferr_errno(err, -errno, "KVM_SET_REGS");
	return 0;
}

static int lb_load(const struct boot_ctx *ctx, struct ferr *err)
{
	uint64_t low = gmem_low_size(ctx->mem);
	size_t cmdlen = strlen(ctx->cmdline);
	struct linux_image li;
	uint64_t need, rd_top, rd_addr = 0;
	uint32_t cmdmax;
	uint8_t *zp;
	int rc;

	rc = linux_parse(ctx->image, ctx->image_size, &li, err);
	if (rc) {
		ferr_prefix(err, "kernel %s: ", ctx->path);
		return rc;
	}
	cmdmax = li.version >= 0x0206 ? li.cmdline_size : 255;
	if (cmdmax > LB_CMDLINE_MAX - 1)
		cmdmax = LB_CMDLINE_MAX - 1;
	if (cmdlen > cmdmax)
		return ferr_set(err, -E2BIG, "--append is %zu bytes; kernel %s accepts at most %u",
				cmdlen, ctx->path, cmdmax);
	/*
	 * The kernel decompresses itself to max(its load address, LOAD_PHYSICAL_ADDR)
	 * (pref_address) and needs init_size bytes from there.
	 */
	need = (li.pref_address > LB_KERNEL ? li.pref_address : LB_KERNEL) + li.init_size;
	if (need > low)
		return ferr_set(err, -ENOMEM,
				"kernel %s needs %llu MiB of memory below 3 GiB to decompress; "
				"the guest has %llu MiB (raise --memory)",
				ctx->path, (unsigned long long)(need + (1 << 20) - 1) >> 20,
				(unsigned long long)low >> 20);
	if (ctx->initrd_size) {
		rd_top = low;
		if (rd_top > (uint64_t)li.initrd_addr_max + 1)
			rd_top = (uint64_t)li.initrd_addr_max + 1;
		rd_addr = (rd_top - ctx->initrd_size) & ~0xfffull;
		if (ctx->initrd_size > rd_top || rd_addr < need)
			return ferr_set(
			    err, -ENOMEM,
			    "initrd %s (%zu bytes) does not fit in guest memory above the kernel "
			    "(%llu MiB below 3 GiB; raise --memory)",
			    ctx->initrd_path, ctx->initrd_size, (unsigned long long)low >> 20);
	}

	memcpy(gmem_ptr(ctx->mem, LB_KERNEL, li.kernel_size), li.kernel, li.kernel_size);
	if (ctx->initrd_size)
		memcpy(gmem_ptr(ctx->mem, rd_addr, ctx->initrd_size), ctx->initrd,
		       ctx->initrd_size);
	memcpy(gmem_ptr(ctx->mem, LB_CMDLINE, cmdlen + 1), ctx->cmdline, cmdlen + 1);
	memcpy(gmem_ptr(ctx->mem, LB_GDT, sizeof(lb_gdt)), lb_gdt, sizeof(lb_gdt));
	lb_page_tables(ctx->mem);

	zp = gmem_ptr(ctx->mem, LB_ZEROPAGE, 4096);
	memset(zp, 0, 4096);
	memcpy(zp + LINUX_HDR_START, ctx->image + LINUX_HDR_START, li.hdr_end - LINUX_HDR_START);
	wr16(zp + HDR_VID_MODE, 0xffff); /* "normal" */
	zp[HDR_TYPE_LOADER] = 0xff;	 /* undefined loader */
	zp[HDR_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
	wr16(zp + HDR_HEAP_END, 0xfe00);
	wr32(zp + HDR_CMDLINE_PTR, (uint32_t)LB_CMDLINE);
	wr32(zp + BP_EXT_CMDLINE, 0);
	wr32(zp + HDR_RD_IMAGE, (uint32_t)rd_addr);
	wr32(zp + HDR_RD_SIZE, (uint32_t)ctx->initrd_size);
	wr32(zp + BP_EXT_RD_IMAGE, (uint32_t)(rd_addr >> 32));
	wr32(zp + BP_EXT_RD_SIZE, 0);
	if (li.version >= 0x020e)
		wr64(zp + BP_ACPI_RSDP, BOOT_ACPI_BASE);
	lb_e820(ctx->mem, zp);

	return lb_set_entry_state(ctx->bsp_fd, LB_KERNEL + 0x200, err);
}

static int lb_check(const uint8_t *image, size_t size, struct ferr *err)
{
	struct linux_image li;

	return linux_parse(image, size, &li, err);
}

const struct boot_loader boot_linux_loader = {
    .name = "bzImage",
    .probe = linux_probe,
    .load = lb_load,
    .check = lb_check,
    .takes_initrd = true,
    .stock_kernel = true,
};
