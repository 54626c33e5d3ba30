/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Multiboot v1 image parsing, separated from loading so that it can be
 * unit-tested and fuzzed without a VM.  Every offset and size read from the
 * image is checked against the image before use.
 */
#ifndef FERRY_BOOT_MULTIBOOT_H
#define FERRY_BOOT_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MB_HEADER_MAGIC	    0x1badb002u
#define MB_BOOTLOADER_MAGIC 0x2badb002u
#define MB_SEARCH_LIMIT	    8192
#define MB_MAX_SEGMENTS	    16

/* One piece of the image to place in guest memory. */
struct mb_segment {
	uint64_t paddr;	      /* load address */
	uint64_t file_offset; /* in the image */
	uint64_t file_size;   /* bytes copied from the image */
	uint64_t mem_size;    /* bytes occupied, >= file_size (rest is zeroed) */
};

struct mb_image {
	uint32_t header_offset;
	uint32_t flags;
	uint32_t entry;
	unsigned nsegments;
	struct mb_segment segments[MB_MAX_SEGMENTS];
	uint64_t load_end; /* highest paddr + mem_size over all segments */
};

/* Find the multiboot header; returns its offset or -1. */
long mb_find_header(const uint8_t *image, size_t size);

/* Validate the header and image; fill @out.  Does not check guest RAM size. */
int mb_parse(const uint8_t *image, size_t size, struct mb_image *out, struct ferr *err);

#endif
