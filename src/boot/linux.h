/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The Linux x86 boot protocol (Documentation/arch/x86/boot.rst): a bzImage
 * is a real-mode setup part of (setup_sects + 1) sectors followed by the
 * protected-mode kernel.  ferry uses the 64-bit entry (protocol 2.12+,
 * XLF_KERNEL_64): the protected-mode part is loaded at 1 MiB and entered at
 * +0x200 in long mode with identity-mapped page tables and RSI pointing at
 * the boot_params "zero page".
 */
#ifndef FERRY_BOOT_LINUX_H
#define FERRY_BOOT_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Offsets in the image (and in boot_params, which embeds the same header). */
#define LINUX_HDR_START	       0x1f1
#define LINUX_OFF_SETUP_SECTS  0x1f1
#define LINUX_OFF_BOOT_FLAG    0x1fe
#define LINUX_OFF_JUMP	       0x200
#define LINUX_OFF_MAGIC	       0x202
#define LINUX_OFF_VERSION      0x206
#define LINUX_OFF_LOADFLAGS    0x211
#define LINUX_OFF_INITRD_MAX   0x22c
#define LINUX_OFF_ALIGN	       0x230
#define LINUX_OFF_RELOC	       0x234
#define LINUX_OFF_XLOADFLAGS   0x236
#define LINUX_OFF_CMDLINE_SIZE 0x238
#define LINUX_OFF_PREF_ADDR    0x258
#define LINUX_OFF_INIT_SIZE    0x260

#define LINUX_MIN_VERSION   0x020c /* 2.12: xloadflags, the 64-bit entry */
#define LINUX_LOADED_HIGH   0x01
#define LINUX_XLF_KERNEL_64 0x01

struct linux_image {
	unsigned version;      /* e.g. 0x020f */
	size_t setup_size;     /* bytes of real-mode setup, (setup_sects + 1) * 512 */
	size_t hdr_end;	       /* end of the setup header in the image (0x202 + jump byte) */
	const uint8_t *kernel; /* protected-mode part */
	size_t kernel_size;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size; /* without the NUL */
	uint32_t init_size;    /* memory the kernel needs from its load address */
	uint64_t pref_address;
};

/* Is this a bzImage (boot flag and "HdrS")?  Cheap; linux_parse() checks the rest. */
bool linux_probe(const uint8_t *image, size_t size);

/* Check everything ferry relies on; -ENOEXEC with the reason otherwise. */
int linux_parse(const uint8_t *image, size_t size, struct linux_image *out, struct ferr *err);

#endif
