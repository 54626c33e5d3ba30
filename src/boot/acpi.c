// SPDX-License-Identifier: GPL-2.0-only
/*
 * The minimum ACPI a guest needs: RSDP -> RSDT -> MADT with one Local APIC
 * per vCPU and the IOAPIC (KVM's default GSI routing maps ISA IRQ n to
 * IOAPIC pin n, so no interrupt source overrides), and FADT -> FACS, DSDT.
 * The FADT says: no SMI command port (the machine is always in ACPI mode),
 * a PM1a event and control block at ACPI_PM_BASE, no PM timer, no 8042 and
 * no VGA, and a reset register (port 0xcf9).  The DSDT holds only \_S5, the
 * soft-off sleep type Linux writes to PM1a_CNT on poweroff.
 */
#include <errno.h>
#include <string.h>

#include "boot/boot.h"
#include "machine/board.h"
#include "vm/memory.h"

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 20, "ACPI 1.0 RSDP is 20 bytes");

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header is 36 bytes");

struct acpi_madt_lapic {
	uint8_t type, length, processor_id, apic_id;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT LAPIC entry");

struct acpi_madt_ioapic {
	uint8_t type, length, ioapic_id, reserved;
	uint32_t address, gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT IOAPIC entry");

#define ACPI_RSDT_OFF 0x40
#define ACPI_FACS_OFF 0x100 /* 64-byte aligned */
#define ACPI_FADT_OFF 0x200
#define ACPI_DSDT_OFF 0x300
#define ACPI_MADT_OFF 0x400
#define ACPI_FADT_LEN 244 /* revision 3 */
#define ACPI_FACS_LEN 64

/* FADT field offsets (ACPI 6.4, table 5.9) */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT	   40
#define FADT_SCI_INT	   46
#define FADT_PM1A_EVT_BLK  56
#define FADT_PM1A_CNT_BLK  64
#define FADT_PM1_EVT_LEN   88
#define FADT_PM1_CNT_LEN   89
#define FADT_BOOT_ARCH	   109
#define FADT_FLAGS	   112
#define FADT_RESET_REG	   116
#define FADT_RESET_VALUE   128
#define FADT_X_FIRMWARE	   132
#define FADT_X_DSDT	   140

#define FADT_F_WBINVD	  (1u << 0)
#define FADT_F_PROC_C1	  (1u << 2)
#define FADT_F_PWR_BUTTON (1u << 4) /* no fixed power button */
#define FADT_F_SLP_BUTTON (1u << 5) /* no fixed sleep button */
#define FADT_F_RESET_REG  (1u << 10)
#define BOOT_ARCH_NO_VGA  (1u << 2)

/* DefinitionBlock body: Name (_S5, Package () { 5, 5, 0, 0 }) */
static const uint8_t acpi_dsdt_aml[] = {
    0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, ACPI_SLP_TYP_S5, 0x0a, ACPI_SLP_TYP_S5,
    0x00, 0x00};
#define LAPIC_BASE  0xfee00000u
#define IOAPIC_BASE 0xfec00000u

static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = 1;
	memcpy(h->oem_id, "FERRY ", 6);
	memcpy(h->oem_table_id, "FERRYVM ", 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, "FRRY", 4);
	h->creator_revision = 1;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void acpi_fadt_build(uint8_t *base)
{
	uint8_t *f = base + ACPI_FADT_OFF, *facs = base + ACPI_FACS_OFF;
	struct acpi_header *fadt, *dsdt;
	uint64_t x;

	memcpy(facs, "FACS", 4);
	put32(facs + 4, ACPI_FACS_LEN);

	dsdt = (struct acpi_header *)(base + ACPI_DSDT_OFF);
	acpi_header_init(dsdt, "DSDT", sizeof(*dsdt) + sizeof(acpi_dsdt_aml));
	dsdt->revision = 2;
	memcpy(dsdt + 1, acpi_dsdt_aml, sizeof(acpi_dsdt_aml));
	dsdt->checksum = acpi_checksum(dsdt, dsdt->length);

	fadt = (struct acpi_header *)f;
	acpi_header_init(fadt, "FACP", ACPI_FADT_LEN);
	fadt->revision = 3;
	put32(f + FADT_FIRMWARE_CTRL, BOOT_ACPI_BASE + ACPI_FACS_OFF);
	put32(f + FADT_DSDT, BOOT_ACPI_BASE + ACPI_DSDT_OFF);
	f[FADT_SCI_INT] = ACPI_SCI_IRQ;
	put32(f + FADT_PM1A_EVT_BLK, ACPI_PM1A_EVT_PORT);
	put32(f + FADT_PM1A_CNT_BLK, ACPI_PM1A_CNT_PORT);
	f[FADT_PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
	f[FADT_PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
	f[FADT_BOOT_ARCH] = BOOT_ARCH_NO_VGA; /* and no 8042: LEGACY/8042 bits clear */
	put32(f + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_PWR_BUTTON |
				  FADT_F_SLP_BUTTON | FADT_F_RESET_REG);
	/* Generic address: system I/O, 8 bits wide, at the reset port */
	f[FADT_RESET_REG] = 1;
	f[FADT_RESET_REG + 1] = 8;
	f[FADT_RESET_REG + 3] = 1; /* byte access */
	x = ACPI_RESET_PORT;
	memcpy(f + FADT_RESET_REG + 4, &x, 8);
	f[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	x = BOOT_ACPI_BASE + ACPI_FACS_OFF;
	memcpy(f + FADT_X_FIRMWARE, &x, 8);
	x = BOOT_ACPI_BASE + ACPI_DSDT_OFF;
	memcpy(f + FADT_X_DSDT, &x, 8);
	fadt->checksum = acpi_checksum(fadt, ACPI_FADT_LEN);
}

int acpi_build(struct gmem *mem, unsigned ncpus, struct ferr *err)
{
	size_t madt_len = sizeof(struct acpi_header) + 8 + ncpus * sizeof(struct acpi_madt_lapic) +
			  sizeof(struct acpi_madt_ioapic);
	uint8_t *base = gmem_ptr(mem, BOOT_ACPI_BASE, ACPI_MADT_OFF + madt_len);
	struct acpi_rsdp *rsdp;
	struct acpi_header *rsdt, *madt;
	uint8_t *p;

	if (!base || ACPI_MADT_OFF + madt_len > 0x10000)
		return ferr_set(err, -ENOSPC, "ACPI tables for %u vCPUs do not fit", ncpus);
	memset(base, 0, ACPI_MADT_OFF + madt_len);

	madt = (struct acpi_header *)(base + ACPI_MADT_OFF);
	acpi_header_init(madt, "APIC", madt_len);
	p = (uint8_t *)(madt + 1);
	*(uint32_t *)p = LAPIC_BASE;
	*(uint32_t *)(p + 4) = 1; /* PCAT_COMPAT: there are 8259s to mask */
	p += 8;
	for (unsigned i = 0; i < ncpus; i++) {
		struct acpi_madt_lapic l = {0, sizeof(l), (uint8_t)i, (uint8_t)i, 1};
		memcpy(p, &l, sizeof(l));
		p += sizeof(l);
	}
	struct acpi_madt_ioapic io = {1, sizeof(io), 0, 0, IOAPIC_BASE, 0};
	memcpy(p, &io, sizeof(io));
	madt->checksum = acpi_checksum(madt, madt_len);

	acpi_fadt_build(base);

	rsdt = (struct acpi_header *)(base + ACPI_RSDT_OFF);
	acpi_header_init(rsdt, "RSDT", sizeof(*rsdt) + 8);
	put32((uint8_t *)(rsdt + 1), BOOT_ACPI_BASE + ACPI_MADT_OFF);
	put32((uint8_t *)(rsdt + 1) + 4, BOOT_ACPI_BASE + ACPI_FADT_OFF);
	rsdt->checksum = acpi_checksum(rsdt, rsdt->length);

	rsdp = (struct acpi_rsdp *)base;
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, "FERRY ", 6);
	rsdp->rsdt_address = BOOT_ACPI_BASE + ACPI_RSDT_OFF;
	rsdp->checksum = acpi_checksum(rsdp, sizeof(*rsdp));
	return 0;
}
