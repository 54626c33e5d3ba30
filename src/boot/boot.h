/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel loaders.  Each kind of image is an entry in a table of
 * { probe, load }; boot_load() picks the first whose probe accepts the file.
 * A loader writes the image and its boot data into guest RAM and sets the
 * boot vCPU's registers; the other vCPUs wait for INIT/SIPI as on a PC.
 *
 * Low memory used by ferry (see docs/architecture.md):
 *   0x00000-0x003ff  real-mode IVT (boot sector only)
 *   0x00400-0x004ff  BIOS data area (boot sector only)
 *   0xe0000-0xeffff  ACPI RSDP, RSDT, FACS, FADT, DSDT, MADT
 *   0xf0000-0xfffff  BIOS interrupt stubs (boot sector only)
 */
#ifndef FERRY_BOOT_BOOT_H
#define FERRY_BOOT_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct gmem;

struct boot_ctx {
	struct gmem *mem;
	int bsp_fd; /* boot vCPU */
	unsigned ncpus;
	const char *path;    /* for messages */
	const char *cmdline; /* never NULL */
	const uint8_t *image;
	size_t image_size;
	const char *initrd_path; /* NULL: none */
	const uint8_t *initrd;
	size_t initrd_size;
};

struct boot_loader {
	const char *name;
	bool (*probe)(const uint8_t *image, size_t size);
	int (*load)(const struct boot_ctx *ctx, struct ferr *err);
	/* Optional: check the whole image before anything else is said about it. */
	int (*check)(const uint8_t *image, size_t size, struct ferr *err);
	bool takes_initrd; /* --initrd is meaningful */
	/*
	 * A stock OS kernel: it runs much of its time in guest kernel mode,
	 * which PVM hosts emulate instruction by instruction (PLATFORM.md),
	 * so boot_load() refuses it there with one line saying what works.
	 */
	bool stock_kernel;
};

extern const struct boot_loader boot_multiboot_loader;
extern const struct boot_loader boot_bootsector_loader;
extern const struct boot_loader boot_linux_loader;
extern const struct boot_loader boot_pvh_loader;

/* Read @path (and @initrd, may be NULL), pick a loader, load it for @ncpus vCPUs. */
int boot_load(struct gmem *mem, int bsp_fd, unsigned ncpus, const char *path, const char *initrd,
	      const char *cmdline, struct ferr *err);

/* Is /dev/kvm served by PVM (the kvm_pvm module)?  @sysfs_module: "/sys/module". */
bool boot_host_is_pvm(const char *sysfs_module);

/* Probe only (used by tests and for early CLI checks). */
const struct boot_loader *boot_probe(const uint8_t *image, size_t size);

/*
 * acpi.c: at 0xe0000, RSDP -> RSDT -> MADT (@ncpus LAPICs, one IOAPIC) and
 * FADT (-> FACS, DSDT with \_S5) whose PM1a control block at
 * ACPI_PM1A_CNT_PORT is how a guest powers off (devices/acpi_pm.c).
 */
int acpi_build(struct gmem *mem, unsigned ncpus, struct ferr *err);

#define BOOT_ACPI_BASE 0xe0000u
#define BOOT_BIOS_BASE 0xf0000u

#endif
