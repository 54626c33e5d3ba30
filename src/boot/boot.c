// SPDX-License-Identifier: GPL-2.0-only
#include "boot/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/memory.h"
#include "vm/vm.h"

/* Images bigger than this are not test kernels: refuse before reading them. */
#define BOOT_IMAGE_MAX (512u << 20)

static const struct boot_loader *const boot_loaders[] = {
    &boot_multiboot_loader,
    &boot_bootsector_loader,
};

const struct boot_loader *boot_probe(const uint8_t *image, size_t size)
{
	for (size_t i = 0; i < sizeof(boot_loaders) / sizeof(boot_loaders[0]); i++)
		if (boot_loaders[i]->probe(image, size))
			return boot_loaders[i];
	return NULL;
}

static int boot_read_file(const char *path, uint8_t **out, size_t *size, struct ferr *err)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_errno(err, -errno, "kernel %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ferr_set(err, -EINVAL, "kernel %s: not a regular file", path);
	}
	if (st.st_size == 0 || (uint64_t)st.st_size > BOOT_IMAGE_MAX) {
		close(fd);
		return ferr_set(err, -EINVAL, "kernel %s: size %lld is not a plausible kernel",
				path, (long long)st.st_size);
	}
	buf = malloc(st.st_size);
	if (!buf) {
		close(fd);
		return ferr_set(err, -ENOMEM, "out of memory");
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = ferr_errno(err, n < 0 ? -errno : -EIO, "kernel %s: read", path);
			break;
		}
		done += n;
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*size = done;
	return 0;
}

int boot_load(struct vm *vm, struct gmem *mem, int bsp_fd, const char *path, const char *cmdline,
	      struct ferr *err)
{
	const struct boot_loader *loader;
	struct boot_ctx ctx = {
	    .mem = mem,
	    .bsp_fd = bsp_fd,
	    .ncpus = vm_ncpus(vm),
	    .path = path,
	    .cmdline = cmdline ? cmdline : "",
	};
	uint8_t *image = NULL;
	int rc;

	rc = boot_read_file(path, &image, &ctx.image_size, err);
	if (rc)
		return rc;
	ctx.image = image;
	loader = boot_probe(image, ctx.image_size);
	if (!loader) {
		free(image);
		return ferr_set(err, -ENOEXEC,
				"kernel %s: not a multiboot (v1) image nor a 512-byte boot sector",
				path);
	}
	rc = acpi_build(mem, ctx.ncpus, err);
	if (!rc)
		rc = loader->load(&ctx, err);
	free(image);
	return rc;
}
