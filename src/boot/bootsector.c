// SPDX-License-Identifier: GPL-2.0-only
/*
 * A 512-byte PC boot sector, loaded at 0000:7c00 and entered in real mode
 * with DL = 0x80 as a BIOS would.  There is no BIOS: every interrupt vector
 * points at an IRET, except INT 10h whose teletype function (AH = 0Eh)
 * writes AL to the serial port, which is what tiny boot images use to
 * print.  Everything else they may call returns without effect.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "boot/boot.h"
#include "vm/memory.h"

#define BOOTSECT_SIZE  512
#define BOOTSECT_LOAD  0x7c00
#define BIOS_SEG       (BOOT_BIOS_BASE >> 4)
#define BIOS_IRET_OFF  0x0000
#define BIOS_INT10_OFF 0x0010

/*
 * INT 10h:  cmp ah,0x0e ; jne done ; push dx ; push ax ; mov dx,0x3f8 ;
 *           out dx,al ; pop ax ; pop dx ; done: iret
 */
static const uint8_t bios_int10[] = {
    0x80, 0xfc, 0x0e, 0x75, 0x08, 0x52, 0x50, 0xba, 0xf8, 0x03, 0xee, 0x58, 0x5a, 0xcf,
};

static bool bootsector_probe(const uint8_t *image, size_t size)
{
	return size == BOOTSECT_SIZE && image[510] == 0x55 && image[511] == 0xaa;
}

static void real_mode_seg(struct kvm_segment *s, uint16_t sel)
{
	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->limit = 0xffff;
}

static int bootsector_load(const struct boot_ctx *ctx, struct ferr *err)
{
	uint8_t *ivt = gmem_ptr(ctx->mem, 0, 0x500);
	uint8_t *bios = gmem_ptr(ctx->mem, BOOT_BIOS_BASE, 0x100);
	struct kvm_regs r = {.rip = BOOTSECT_LOAD, .rdx = 0x80, .rsp = BOOTSECT_LOAD, .rflags = 2};
	struct kvm_sregs s;

	memset(ivt, 0, 0x500);
	for (unsigned v = 0; v < 256; v++) {
		uint16_t off = v == 0x10 ? BIOS_INT10_OFF : BIOS_IRET_OFF;
		uint16_t seg = BIOS_SEG;
		memcpy(ivt + v * 4, &off, 2);
		memcpy(ivt + v * 4 + 2, &seg, 2);
	}
	bios[BIOS_IRET_OFF] = 0xcf;
	memcpy(bios + BIOS_INT10_OFF, bios_int10, sizeof(bios_int10));
	memcpy(gmem_ptr(ctx->mem, BOOTSECT_LOAD, BOOTSECT_SIZE), ctx->image, BOOTSECT_SIZE);

	/* From the reset state, keep the segment attributes and move CS:IP to 0:7c00. */
	if (ioctl(ctx->bsp_fd, KVM_GET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_GET_SREGS");
	real_mode_seg(&s.cs, 0);
	real_mode_seg(&s.ds, 0);
	real_mode_seg(&s.es, 0);
	real_mode_seg(&s.ss, 0);
	if (ioctl(ctx->bsp_fd, KVM_SET_SREGS, &s) < 0)
		return ferr_errno(err, -errno, "KVM_SET_SREGS");
	if (ioctl(ctx->bsp_fd, KVM_SET_REGS, &r) < 0)
		return ferr_errno(err, -errno, "KVM_SET_REGS");
	return 0;
}

const struct boot_loader boot_bootsector_loader = {
    .name = "bootsector",
    .probe = bootsector_probe,
    .load = bootsector_load,
};
