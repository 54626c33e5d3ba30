// SPDX-License-Identifier: GPL-2.0-only
/* Linux bzImage setup header parsing: the accepted header and every rejection. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/linux.h"

#define IMG_SIZE 8192
static uint8_t img[IMG_SIZE];

static void put16(size_t off, uint16_t v)
{
	memcpy(img + off, &v, 2);
}

static void put32(size_t off, uint32_t v)
{
	memcpy(img + off, &v, 4);
}

/* A 2.15 bzImage: 2 setup sectors + 1, kernel of IMG_SIZE - 1536 bytes. */
static void make_bzimage(void)
{
	memset(img, 0, sizeof(img));
	img[LINUX_OFF_SETUP_SECTS] = 2;
	put16(LINUX_OFF_BOOT_FLAG, 0xaa55);
	img[LINUX_OFF_JUMP] = 0xeb;
	img[LINUX_OFF_JUMP + 1] = 0x6a;
	memcpy(img + LINUX_OFF_MAGIC, "HdrS", 4);
	put16(LINUX_OFF_VERSION, 0x020f);
	img[LINUX_OFF_LOADFLAGS] = LINUX_LOADED_HIGH;
	put32(LINUX_OFF_INITRD_MAX, 0x7fffffff);
	put32(LINUX_OFF_ALIGN, 0x200000);
	put16(LINUX_OFF_XLOADFLAGS, LINUX_XLF_KERNEL_64);
	put32(LINUX_OFF_CMDLINE_SIZE, 2047);
	put32(LINUX_OFF_PREF_ADDR, 0x1000000);
	put32(LINUX_OFF_INIT_SIZE, 0x100000);
}

static void test_accepted(void **state)
{
	struct linux_image li;
	struct ferr err = FERR_INIT;

	make_bzimage();
	assert_true(linux_probe(img, IMG_SIZE));
	assert_int_equal(linux_parse(img, IMG_SIZE, &li, &err), 0);
	assert_int_equal(li.version, 0x020f);
	assert_int_equal(li.setup_size, 3 * 512);
	assert_ptr_equal(li.kernel, img + 3 * 512);
	assert_int_equal(li.kernel_size, IMG_SIZE - 3 * 512);
	assert_int_equal(li.hdr_end, 0x26c);
	assert_int_equal(li.cmdline_size, 2047);
	assert_int_equal(li.init_size, 0x100000);
	assert_int_equal(li.pref_address, 0x1000000);
	/* setup_sects 0 means 4 */
	img[LINUX_OFF_SETUP_SECTS] = 0;
	assert_int_equal(linux_parse(img, IMG_SIZE, &li, &err), 0);
	assert_int_equal(li.setup_size, 5 * 512);
}

static void expect_reject(size_t size, const char *words)
{
	struct linux_image li;
	struct ferr err = FERR_INIT;

	assert_int_equal(linux_parse(img, size, &li, &err), -ENOEXEC);
	if (!strstr(err.msg, words))
		fail_msg("'%s' not in '%s'", words, err.msg);
}

static void test_rejections(void **state)
{
	make_bzimage();
	put16(LINUX_OFF_BOOT_FLAG, 0);
	assert_false(linux_probe(img, IMG_SIZE));
	expect_reject(IMG_SIZE, "not a Linux bzImage");
	make_bzimage();
	memcpy(img + LINUX_OFF_MAGIC, "HdrT", 4);
	expect_reject(IMG_SIZE, "not a Linux bzImage");
	make_bzimage();
	assert_false(linux_probe(img, 0x200));
	expect_reject(0x250, "truncated in its setup header");
	make_bzimage();
	put16(LINUX_OFF_VERSION, 0x020b);
	expect_reject(IMG_SIZE, "2.11 is too old");
	make_bzimage();
	img[LINUX_OFF_LOADFLAGS] = 0;
	expect_reject(IMG_SIZE, "zImage");
	make_bzimage();
	put16(LINUX_OFF_XLOADFLAGS, 0);
	expect_reject(IMG_SIZE, "no 64-bit entry");
	make_bzimage();
	img[LINUX_OFF_JUMP + 1] = 0x10;
	expect_reject(IMG_SIZE, "header length");
	make_bzimage();
	img[LINUX_OFF_SETUP_SECTS] = 20;
	expect_reject(IMG_SIZE, "its setup alone takes");
	make_bzimage();
	put32(LINUX_OFF_INIT_SIZE, 0x100);
	expect_reject(IMG_SIZE, "init_size");
	make_bzimage();
	put32(LINUX_OFF_INITRD_MAX, 0x1000);
	expect_reject(IMG_SIZE, "initrd_addr_max");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_rejections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
