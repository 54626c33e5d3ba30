// SPDX-License-Identifier: GPL-2.0-only
/* PVH ELF parsing: the entry note, the loadable segments, every rejection. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/pvh.h"

#define IMG_SIZE 8192
static uint8_t img[IMG_SIZE];

/* ELF64 with phdr 0 = PT_NOTE at 0x200 ("Xen", type 18, entry), phdr 1 = PT_LOAD. */
static void make_elf(uint32_t entry)
{
	Elf64_Ehdr eh = {0};
	Elf64_Phdr note = {0}, load = {0};
	Elf64_Nhdr n = {.n_namesz = 4, .n_descsz = 4, .n_type = 18};

	memset(img, 0, sizeof(img));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 2;
	memcpy(img, &eh, sizeof(eh));
	note.p_type = PT_NOTE;
	note.p_offset = 0x200;
	note.p_filesz = sizeof(n) + 8;
	memcpy(img + 0x200, &n, sizeof(n));
	memcpy(img + 0x200 + sizeof(n), "Xen", 4);
	memcpy(img + 0x200 + sizeof(n) + 4, &entry, 4);
	load.p_type = PT_LOAD;
	load.p_offset = 0x1000;
	load.p_filesz = 0x1000;
	load.p_memsz = 0x3000;
	load.p_paddr = 0x1000000;
	memcpy(img + sizeof(eh), &note, sizeof(note));
	memcpy(img + sizeof(eh) + sizeof(note), &load, sizeof(load));
}

static void set_load(size_t field, uint64_t v)
{
	memcpy(img + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + field, &v, 8);
}

static void expect_reject(const char *words)
{
	struct pvh_image pv;
	struct ferr err = FERR_INIT;

	assert_int_equal(pvh_parse(img, IMG_SIZE, &pv, &err), -ENOEXEC);
	if (!strstr(err.msg, words))
		fail_msg("'%s' not in '%s'", words, err.msg);
}

static void test_accepted(void **state)
{
	struct pvh_image pv;
	struct ferr err = FERR_INIT;

	make_elf(0x1000abc);
	assert_true(pvh_probe(img, IMG_SIZE));
	assert_int_equal(pvh_parse(img, IMG_SIZE, &pv, &err), 0);
	assert_int_equal(pv.entry, 0x1000abc);
	assert_int_equal(pv.nsegments, 1);
	assert_int_equal(pv.segments[0].paddr, 0x1000000);
	assert_int_equal(pv.segments[0].file_offset, 0x1000);
	assert_int_equal(pv.segments[0].file_size, 0x1000);
	assert_int_equal(pv.segments[0].mem_size, 0x3000);
}

static void test_rejections(void **state)
{
	make_elf(0);
	assert_false(pvh_probe(img, IMG_SIZE));
	expect_reject("no PVH entry note");
	make_elf(0x1000000);
	img[0x200 + sizeof(Elf64_Nhdr)] = 'Y'; /* "Yen" */
	expect_reject("no PVH entry note");
	make_elf(0x1000000);
	memset(img + 0x200, 0xff, 4); /* a name size that runs off the note */
	expect_reject("no PVH entry note");
	make_elf(0x1000000);
	img[EI_CLASS] = ELFCLASS32;
	expect_reject("not an ELF64");
	make_elf(0x1000000);
	set_load(offsetof(Elf64_Phdr, p_offset), IMG_SIZE - 0x10);
	expect_reject("outside the file");
	make_elf(0x1000000);
	set_load(offsetof(Elf64_Phdr, p_memsz), 0x800);
	expect_reject("file size above memory size");
	make_elf(0x1000000);
	set_load(offsetof(Elf64_Phdr, p_paddr), 0x80000);
	expect_reject("below 1 MiB");
	make_elf(0x1000000);
	set_load(offsetof(Elf64_Phdr, p_paddr), UINT64_MAX - 0x1000);
	expect_reject("wrapping");
	make_elf(0x1000000);
	set_load(offsetof(Elf64_Phdr, p_type), PT_NULL);
	expect_reject("no loadable segment");
	make_elf(0x1000000);
	uint64_t phoff = IMG_SIZE - 8;
	memcpy(img + offsetof(Elf64_Ehdr, e_phoff), &phoff, 8);
	assert_false(pvh_probe(img, IMG_SIZE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_rejections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
