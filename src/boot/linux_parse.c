// SPDX-License-Identifier: GPL-2.0-only
/* Parsing and checking a bzImage's setup header: untrusted input. */
#include "boot/linux.h"

#include <errno.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

bool linux_probe(const uint8_t *image, size_t size)
{
	return size >= LINUX_OFF_MAGIC + 4 && rd16(image + LINUX_OFF_BOOT_FLAG) == 0xaa55 &&
	       memcmp(image + LINUX_OFF_MAGIC, "HdrS", 4) == 0;
}

int linux_parse(const uint8_t *image, size_t size, struct linux_image *out, struct ferr *err)
{
	unsigned sects;

	memset(out, 0, sizeof(*out));
	if (!linux_probe(image, size))
		return ferr_set(err, -ENOEXEC, "not a Linux bzImage (no boot flag and HdrS magic)");
	if (size < LINUX_OFF_INIT_SIZE + 4)
		return ferr_set(err, -ENOEXEC,
				"Linux image truncated in its setup header (%zu bytes)", size);
	out->version = rd16(image + LINUX_OFF_VERSION);
	if (out->version < LINUX_MIN_VERSION)
		return ferr_set(err, -ENOEXEC,
				"Linux boot protocol %u.%02u is too old: ferry needs 2.12 or newer "
				"(the 64-bit entry; Linux 3.8 and later)",
				out->version >> 8, out->version & 0xff);
	if (!(image[LINUX_OFF_LOADFLAGS] & LINUX_LOADED_HIGH))
		return ferr_set(err, -ENOEXEC,
				"a zImage (loaded low) is not supported: use a bzImage");
	if (!(rd16(image + LINUX_OFF_XLOADFLAGS) & LINUX_XLF_KERNEL_64))
		return ferr_set(err, -ENOEXEC,
				"the kernel has no 64-bit entry point (XLF_KERNEL_64): ferry boots "
				"64-bit x86 kernels only");
	sects = image[LINUX_OFF_SETUP_SECTS];
	if (sects == 0)
		sects = 4;
	out->setup_size = (size_t)(sects + 1) * 512;
	out->hdr_end = LINUX_OFF_MAGIC + image[LINUX_OFF_JUMP + 1];
	if (out->hdr_end < LINUX_OFF_INIT_SIZE + 4 || out->hdr_end > out->setup_size)
		return ferr_set(err, -ENOEXEC, "Linux setup header length %#zx is implausible",
				out->hdr_end);
	if (out->setup_size >= size)
		return ferr_set(err, -ENOEXEC,
				"Linux image truncated: %zu bytes, but its setup alone takes %zu",
				size, out->setup_size);
	out->kernel = image + out->setup_size;
	out->kernel_size = size - out->setup_size;
	out->initrd_addr_max = rd32(image + LINUX_OFF_INITRD_MAX);
	out->cmdline_size = rd32(image + LINUX_OFF_CMDLINE_SIZE);
	out->init_size = rd32(image + LINUX_OFF_INIT_SIZE);
	out->pref_address = rd32(image + LINUX_OFF_PREF_ADDR) |
			    (uint64_t)rd32(image + LINUX_OFF_PREF_ADDR + 4) << 32;
	if (out->init_size < out->kernel_size)
		return ferr_set(err, -ENOEXEC,
				"Linux init_size %#x is smaller than the kernel's %#zx bytes",
				out->init_size, out->kernel_size);
	if (out->initrd_addr_max < 0x100000)
		return ferr_set(err, -ENOEXEC, "Linux initrd_addr_max %#x is below 1 MiB",
				out->initrd_addr_max);
	return 0;
}
