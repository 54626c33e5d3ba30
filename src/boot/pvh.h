/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * PVH entry of an uncompressed ELF kernel (Linux's vmlinux with CONFIG_PVH,
 * xen/include/public/arch-x86/hvm/start_info.h): the ELF note
 * XEN_ELFNOTE_PHYS32_ENTRY ("Xen", type 18) names a 32-bit entry point that
 * is entered in protected mode with paging off and EBX pointing at an
 * hvm_start_info (command line, initrd as module 0, RSDP, memory map).
 * No decompression: the fastest way to boot Linux.
 */
#ifndef FERRY_BOOT_PVH_H
#define FERRY_BOOT_PVH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PVH_MAX_SEGMENTS 16

struct pvh_segment {
	uint64_t paddr, file_offset, file_size, mem_size;
};

struct pvh_image {
	uint32_t entry;
	unsigned nsegments;
	struct pvh_segment segments[PVH_MAX_SEGMENTS];
};

/* An ELF64 x86-64 image with a PHYS32_ENTRY note? */
bool pvh_probe(const uint8_t *image, size_t size);

/* Entry and PT_LOAD segments, every offset and size checked; -ENOEXEC with the reason. */
int pvh_parse(const uint8_t *image, size_t size, struct pvh_image *out, struct ferr *err);

#endif
