// SPDX-License-Identifier: GPL-2.0-only
/* ferry's own accesses to guest memory: loaders, devices, pmemsave, tests. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vm/vm_priv.h"

static void *vm_mem_range(struct vm *vm, uint64_t gpa, uint64_t len, struct ferr *err)
{
	void *p = gmem_ptr(&vm->mem, gpa, len);

	if (!p)
		ferr_set(err, -EFAULT,
			 "guest-physical range %#llx+%#llx is not RAM (guest RAM: %#llx bytes%s)",
			 (unsigned long long)gpa, (unsigned long long)len,
			 (unsigned long long)vm->mem.size,
			 vm->mem.nregions > 1 ? ", split around the 3-4 GiB hole" : "");
	return p;
}

int vm_mem_read(struct vm *vm, uint64_t gpa, void *buf, size_t len, struct ferr *err)
{
	void *p = vm_mem_range(vm, gpa, len, err);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int vm_mem_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len, struct ferr *err)
{
	void *p = vm_mem_range(vm, gpa, len, err);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	vm_mark_self_dirty(vm, gpa, len);
	return 0;
}

int vm_pmemsave(struct vm *vm, uint64_t gpa, uint64_t size, const char *path, struct ferr *err)
{
	const uint8_t *p = vm_mem_range(vm, gpa, size, err);
	int fd, rc = 0;

	if (!p)
		return -EFAULT;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferr_errno(err, -errno, "pmemsave: cannot create %s", path);
	while (size) {
		ssize_t n = write(fd, p, size > (1u << 30) ? (1u << 30) : size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = ferr_errno(err, n < 0 ? -errno : -EIO, "pmemsave: writing %s", path);
			break;
		}
		p += n;
		size -= n;
	}
	if (close(fd) < 0 && !rc)
		rc = ferr_errno(err, -errno, "pmemsave: closing %s", path);
	return rc;
}
