// SPDX-License-Identifier: GPL-2.0-only
/*
 * Multiboot v1 image parsing: pure functions over untrusted bytes, no VM.
 * Every offset and size read from the image is checked before use.
 */
#include "boot/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define MB_FLAG_PAGE_ALIGN (1u << 0)
#define MB_FLAG_MEMINFO	   (1u << 1)
#define MB_FLAG_VIDEO	   (1u << 2)
#define MB_FLAG_AOUT	   (1u << 16)
#define MB_FLAGS_KNOWN	   (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO | MB_FLAG_VIDEO | MB_FLAG_AOUT)
#define MB_KERNEL_MIN_ADDR 0x100000u /* below 1 MiB is the loader's */

long mb_find_header(const uint8_t *image, size_t size)
{
	size_t limit = size < MB_SEARCH_LIMIT ? size : MB_SEARCH_LIMIT;

	for (size_t off = 0; off + 12 <= limit; off += 4) {
		uint32_t h[3];
		memcpy(h, image + off, sizeof(h));
		if (h[0] == MB_HEADER_MAGIC && (uint32_t)(h[0] + h[1] + h[2]) == 0)
			return (long)off;
	}
	return -1;
}

static int mb_add_segment(struct mb_image *mb, uint64_t paddr, uint64_t off, uint64_t filesz,
			  uint64_t memsz, size_t image_size, struct ferr *err)
{
	if (filesz > memsz)
		return ferr_set(err, -ENOEXEC, "segment at %#llx: file size exceeds memory size",
				(unsigned long long)paddr);
	if (off > image_size || filesz > image_size - off)
		return ferr_set(err, -ENOEXEC, "segment at %#llx lies outside the file",
				(unsigned long long)paddr);
	if (paddr < MB_KERNEL_MIN_ADDR || paddr > UINT32_MAX || memsz > UINT32_MAX - paddr)
		return ferr_set(err, -ENOEXEC,
				"segment %#llx+%#llx is outside 1 MiB..4 GiB where multiboot "
				"kernels load",
				(unsigned long long)paddr, (unsigned long long)memsz);
	if (mb->nsegments == MB_MAX_SEGMENTS)
		return ferr_set(err, -ENOEXEC, "more than %d loadable segments", MB_MAX_SEGMENTS);
	mb->segments[mb->nsegments++] = (struct mb_segment){paddr, off, filesz, memsz};
	if (paddr + memsz > mb->load_end)
		mb->load_end = paddr + memsz;
	return 0;
}

/* Flag 16: the header's own address fields say where the file goes. */
static int mb_parse_aout(const uint8_t *image, size_t size, struct mb_image *mb, struct ferr *err)
{
	uint32_t f[5]; /* header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr */
	uint64_t off, filesz, memsz;

	if (mb->header_offset + 32 > size)
		return ferr_set(err, -ENOEXEC, "multiboot header truncated");
	memcpy(f, image + mb->header_offset + 12, sizeof(f));
	if (f[1] > f[0] || f[0] - f[1] > mb->header_offset)
		return ferr_set(err, -ENOEXEC, "multiboot header: load_addr after header_addr");
	off = mb->header_offset - (f[0] - f[1]);
	filesz = f[2] ? (uint64_t)f[2] - f[1] : size - off;
	if (f[2] && f[2] < f[1])
		return ferr_set(err, -ENOEXEC, "multiboot header: load_end_addr before load_addr");
	memsz = f[3] ? (uint64_t)f[3] - f[1] : filesz;
	if (f[3] && f[3] < f[1] + filesz)
		return ferr_set(err, -ENOEXEC, "multiboot header: bss_end_addr before load_end");
	mb->entry = f[4];
	return mb_add_segment(mb, f[1], off, filesz, memsz, size, err);
}

#define MB_DEFINE_ELF_PARSER(name, Ehdr, Phdr)                                                    \
	static int name(const uint8_t *image, size_t size, struct mb_image *mb, struct ferr *err) \
	{                                                                                         \
		Ehdr eh;                                                                          \
		if (size < sizeof(eh))                                                            \
			return ferr_set(err, -ENOEXEC, "ELF header truncated");                   \
		memcpy(&eh, image, sizeof(eh));                                                   \
		if (eh.e_phentsize != sizeof(Phdr) || eh.e_phoff > size ||                        \
		    (uint64_t)eh.e_phnum * sizeof(Phdr) > size - eh.e_phoff)                      \
			return ferr_set(err, -ENOEXEC, "ELF program headers outside the file");   \
		if (eh.e_entry > UINT32_MAX)                                                      \
			return ferr_set(err, -ENOEXEC,                                            \
					"ELF entry %#llx is above 4 GiB: multiboot enters in "    \
					"32-bit mode",                                            \
					(unsigned long long)eh.e_entry);                          \
		mb->entry = eh.e_entry;                                                           \
		for (unsigned i = 0; i < eh.e_phnum; i++) {                                       \
			Phdr ph;                                                                  \
			memcpy(&ph, image + eh.e_phoff + i * sizeof(Phdr), sizeof(ph));           \
			if (ph.p_type != PT_LOAD || ph.p_memsz == 0)                              \
				continue;                                                         \
			int rc = mb_add_segment(mb, ph.p_paddr, ph.p_offset, ph.p_filesz,         \
						ph.p_memsz, size, err);                           \
			if (rc)                                                                   \
				return rc;                                                        \
		}                                                                                 \
		return 0;                                                                         \
	}

MB_DEFINE_ELF_PARSER(mb_parse_elf32, Elf32_Ehdr, Elf32_Phdr)
MB_DEFINE_ELF_PARSER(mb_parse_elf64, Elf64_Ehdr, Elf64_Phdr)

int mb_parse(const uint8_t *image, size_t size, struct mb_image *mb, struct ferr *err)
{
	long off = mb_find_header(image, size);
	uint32_t flags;
	int rc;

	memset(mb, 0, sizeof(*mb));
	if (off < 0)
		return ferr_set(err, -ENOEXEC, "no multiboot header in the first %d bytes",
				MB_SEARCH_LIMIT);
	mb->header_offset = off;
	memcpy(&flags, image + off + 4, 4);
	mb->flags = flags;
	if (flags & 0xffff & ~MB_FLAGS_KNOWN)
		return ferr_set(err, -ENOEXEC, "multiboot header requires unsupported features %#x",
				flags & 0xffff & ~MB_FLAGS_KNOWN);
	if (flags & MB_FLAG_AOUT)
		rc = mb_parse_aout(image, size, mb, err);
	else if (size >= EI_NIDENT && memcmp(image, ELFMAG, SELFMAG) == 0 &&
		 image[EI_CLASS] == ELFCLASS32)
		rc = mb_parse_elf32(image, size, mb, err);
	else if (size >= EI_NIDENT && memcmp(image, ELFMAG, SELFMAG) == 0 &&
		 image[EI_CLASS] == ELFCLASS64)
		rc = mb_parse_elf64(image, size, mb, err);
	else
		return ferr_set(err, -ENOEXEC,
				"multiboot image is not ELF and does not give load addresses "
				"(flag 16)");
	if (rc)
		return rc;
	if (mb->nsegments == 0)
		return ferr_set(err, -ENOEXEC, "image has nothing to load");
	if (mb->entry < MB_KERNEL_MIN_ADDR || mb->entry >= mb->load_end)
		return ferr_set(err, -ENOEXEC, "entry point %#x is outside the loaded image",
				mb->entry);
	return 0;
}
