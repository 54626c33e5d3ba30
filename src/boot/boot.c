// SPDX-License-Identifier: GPL-2.0-only
#include "boot/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/memory.h"

/* Images bigger than this are not test kernels: refuse before reading them. */
#define BOOT_IMAGE_MAX (512u << 20)
/* An initrd is bounded by guest RAM below 3 GiB anyway. */
#define BOOT_INITRD_MAX (2048u << 20)

static const struct boot_loader *const boot_loaders[] = {
    &boot_multiboot_loader,
    &boot_pvh_loader,	/* after multiboot: an ELF with both headers boots as multiboot */
    &boot_linux_loader, /* before the boot sector: a bzImage starts with one */
    &boot_bootsector_loader,
};

const struct boot_loader *boot_probe(const uint8_t *image, size_t size)
{
	for (size_t i = 0; i < sizeof(boot_loaders) / sizeof(boot_loaders[0]); i++)
		if (boot_loaders[i]->probe(image, size))
			return boot_loaders[i];
	return NULL;
}

bool boot_host_is_pvm(const char *sysfs_module)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/kvm_pvm", sysfs_module);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int boot_read_file(const char *what, const char *path, size_t max, uint8_t **out,
			  size_t *size, struct ferr *err)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_errno(err, -errno, "%s %s", what, path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ferr_set(err, -EINVAL, "%s %s: not a regular file", what, path);
	}
	if (st.st_size == 0 || (uint64_t)st.st_size > max) {
		close(fd);
		return ferr_set(err, -EINVAL, "%s %s: size %lld is not a plausible %s", what, path,
				(long long)st.st_size, what);
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
			rc = ferr_errno(err, n < 0 ? -errno : -EIO, "%s %s: read", what, path);
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

int boot_load(struct gmem *mem, int bsp_fd, unsigned ncpus, const char *path, const char *initrd,
	      const char *cmdline, struct ferr *err)
{
	const struct boot_loader *loader;
	struct boot_ctx ctx = {
	    .mem = mem,
	    .bsp_fd = bsp_fd,
	    .ncpus = ncpus,
	    .path = path,
	    .cmdline = cmdline ? cmdline : "",
	    .initrd_path = initrd,
	};
	uint8_t *image = NULL, *rd = NULL;
	int rc;

	rc = boot_read_file("kernel", path, BOOT_IMAGE_MAX, &image, &ctx.image_size, err);
	if (rc)
		return rc;
	ctx.image = image;
	loader = boot_probe(image, ctx.image_size);
	if (!loader) {
		rc = ferr_set(err, -ENOEXEC,
			      "kernel %s: not a multiboot (v1) image, a Linux bzImage, a PVH ELF "
			      "nor a 512-byte boot sector",
			      path);
		goto out;
	}
	if (loader->check) {
		rc = loader->check(image, ctx.image_size, err);
		if (rc) {
			ferr_prefix(err, "kernel %s: ", path);
			goto out;
		}
	}
	if (initrd && !loader->takes_initrd) {
		rc = ferr_set(err, -EINVAL, "--initrd needs a Linux kernel; %s is a %s image", path,
			      loader->name);
		goto out;
	}
	if (loader->stock_kernel && boot_host_is_pvm("/sys/module")) {
		rc = ferr_set(err, -ENOTSUP,
			      "kernel %s is a stock kernel (%s), and this host's KVM is PVM "
			      "(kvm_pvm), which emulates guest kernel code: it would take many "
			      "minutes to boot; run it on a host with hardware KVM (VMX/SVM), e.g. "
			      "in the nested lane (scripts/nested/lane.sh)",
			      path, loader->name);
		goto out;
	}
	if (initrd) {
		rc = boot_read_file("initrd", initrd, BOOT_INITRD_MAX, &rd, &ctx.initrd_size, err);
		if (rc)
			goto out;
		ctx.initrd = rd;
	}
	rc = acpi_build(mem, ctx.ncpus, err);
	if (!rc)
		rc = loader->load(&ctx, err);
out:
	free(rd);
	free(image);
	return rc;
}
