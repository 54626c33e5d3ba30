// SPDX-License-Identifier: GPL-2.0-only
/* Multiboot image parsing: every accepted layout and every rejection. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/multiboot.h"

#define IMG_SIZE 8192
static uint8_t img[IMG_SIZE];

static void put32(size_t off, uint32_t v)
{
	memcpy(img + off, &v, 4);
}

/* a.out-kludge header at @off describing a flat image loaded at 1 MiB. */
static void make_aout(size_t off, uint32_t flags, uint32_t load_end, uint32_t bss_end,
		      uint32_t entry)
{
	memset(img, 0, sizeof(img));
	put32(off, MB_HEADER_MAGIC);
	put32(off + 4, flags);
	put32(off + 8, -(MB_HEADER_MAGIC + flags));
	put32(off + 12, 0x100000 + off); /* header_addr */
	put32(off + 16, 0x100000);	 /* load_addr */
	put32(off + 20, load_end);
	put32(off + 24, bss_end);
	put32(off + 28, entry);
}

static void test_aout_kludge(void **state)
{
	struct mb_image mb;
	struct ferr err = FERR_INIT;

	make_aout(64, 1u << 16, 0, 0x200000, 0x100100);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), 0);
	assert_int_equal(mb.header_offset, 64);
	assert_int_equal(mb.entry, 0x100100);
	assert_int_equal(mb.nsegments, 1);
	assert_int_equal(mb.segments[0].paddr, 0x100000);
	assert_int_equal(mb.segments[0].file_offset, 0);
	assert_int_equal(mb.segments[0].file_size, IMG_SIZE);
	assert_int_equal(mb.segments[0].mem_size, 0x100000);
	assert_int_equal(mb.load_end, 0x200000);
}

static void test_no_header_or_bad_checksum(void **state)
{
	struct mb_image mb;
	struct ferr err = FERR_INIT;

	memset(img, 0, sizeof(img));
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "no multiboot header"));

	make_aout(0, 1u << 16, 0, 0, 0x100010);
	put32(8, 0x12345678); /* checksum broken */
	assert_int_equal(mb_find_header(img, IMG_SIZE), -1);

	/* header beyond the 8 KiB search window is not found */
	assert_int_equal(mb_find_header(img, 4), -1);
}

static void test_unsupported_flags(void **state)
{
	struct mb_image mb;
	struct ferr err = FERR_INIT;

	make_aout(0, (1u << 16) | (1u << 3), 0, 0, 0x100010);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "unsupported"));
}

static void test_aout_bad_fields(void **state)
{
	struct mb_image mb;
	struct ferr err = FERR_INIT;

	/* entry outside the image */
	make_aout(0, 1u << 16, 0, 0, 0x900000);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "entry point"));

	/* load_end before load_addr */
	ferr_clear(&err);
	make_aout(0, 1u << 16, 0x0f0000, 0, 0x100010);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);

	/* load_end beyond the file */
	ferr_clear(&err);
	make_aout(0, 1u << 16, 0x100000 + IMG_SIZE + 1, 0, 0x100010);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "outside the file"));

	/* load_addr after header_addr */
	ferr_clear(&err);
	make_aout(0, 1u << 16, 0, 0, 0x100010);
	put32(16, 0x100100);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
}

/* ELF32 with @n PT_LOAD headers at 1 MiB + i * 4 KiB. */
static void make_elf32(unsigned n, uint32_t entry)
{
	Elf32_Ehdr eh = {0};
	uint32_t flags = 0;

	memset(img, 0, sizeof(img));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_machine = EM_386;
	eh.e_entry = entry;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = n;
	memcpy(img, &eh, sizeof(eh));
	for (unsigned i = 0; i < n; i++) {
		Elf32_Phdr ph = {.p_type = PT_LOAD,
				 .p_offset = 0x1000,
				 .p_paddr = 0x100000 + i * 0x1000,
				 .p_filesz = 0x100,
				 .p_memsz = 0x1000};
		memcpy(img + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
	put32(0x1000, MB_HEADER_MAGIC);
	put32(0x1004, flags);
	put32(0x1008, -(MB_HEADER_MAGIC + flags));
}

static void test_elf32(void **state)
{
	struct mb_image mb;
	struct ferr err = FERR_INIT;

	make_elf32(2, 0x100010);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), 0);
	assert_int_equal(mb.nsegments, 2);
	assert_int_equal(mb.segments[1].paddr, 0x101000);
	assert_int_equal(mb.load_end, 0x102000);
	assert_int_equal(mb.entry, 0x100010);
}

static void test_elf_rejections(void **state)
{
	struct mb_image mb;
	struct ferr err = FERR_INIT;
	Elf32_Phdr ph;

	/* too many segments */
	make_elf32(MB_MAX_SEGMENTS + 1, 0x100010);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);

	/* program headers past the end of the file */
	ferr_clear(&err);
	make_elf32(1, 0x100010);
	assert_int_equal(mb_parse(img, 0x100, &mb, &err), -ENOEXEC);

	/* filesz > memsz */
	ferr_clear(&err);
	make_elf32(1, 0x100010);
	memcpy(&ph, img + sizeof(Elf32_Ehdr), sizeof(ph));
	ph.p_filesz = 0x2000;
	memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);

	/* segment below 1 MiB */
	ferr_clear(&err);
	make_elf32(1, 0x100010);
	memcpy(&ph, img + sizeof(Elf32_Ehdr), sizeof(ph));
	ph.p_paddr = 0x7000;
	memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "1 MiB"));

	/* segment wrapping past 4 GiB */
	ferr_clear(&err);
	make_elf32(1, 0x100010);
	memcpy(&ph, img + sizeof(Elf32_Ehdr), sizeof(ph));
	ph.p_paddr = 0xfffff000;
	ph.p_memsz = 0x2000;
	memcpy(img + sizeof(Elf32_Ehdr), &ph, sizeof(ph));
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);

	/* wrong phentsize */
	ferr_clear(&err);
	make_elf32(1, 0x100010);
	((Elf32_Ehdr *)img)->e_phentsize = 8;
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);

	/* not ELF and no a.out kludge */
	ferr_clear(&err);
	make_elf32(1, 0x100010);
	img[0] = 'X';
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "not ELF"));
}

static void test_elf64_entry_above_4g(void **state)
{
	Elf64_Ehdr eh = {0};
	struct mb_image mb;
	struct ferr err = FERR_INIT;

	memset(img, 0, sizeof(img));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_entry = 0xffffffff80100000ull;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	memcpy(img, &eh, sizeof(eh));
	put32(0x1000, MB_HEADER_MAGIC);
	put32(0x1008, -MB_HEADER_MAGIC);
	assert_int_equal(mb_parse(img, IMG_SIZE, &mb, &err), -ENOEXEC);
	assert_non_null(strstr(err.msg, "above 4 GiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aout_kludge),
	    cmocka_unit_test(test_no_header_or_bad_checksum),
	    cmocka_unit_test(test_unsupported_flags),
	    cmocka_unit_test(test_aout_bad_fields),
	    cmocka_unit_test(test_elf32),
	    cmocka_unit_test(test_elf_rejections),
	    cmocka_unit_test(test_elf64_entry_above_4g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
