// SPDX-License-Identifier: GPL-2.0-only
/*
 * The minimum ACPI a guest needs to find its CPUs: RSDP -> RSDT -> MADT
 * with one Local APIC per vCPU and the IOAPIC.  KVM's default GSI routing
 * maps ISA IRQ n to IOAPIC pin n, so no interrupt source overrides.
 */
#include <errno.h>
#include <string.h>

#include "boot/boot.h"
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
#define ACPI_MADT_OFF 0x80
#define LAPIC_BASE    0xfee00000u
#define IOAPIC_BASE   0xfec00000u

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

	rsdt = (struct acpi_header *)(base + ACPI_RSDT_OFF);
	acpi_header_init(rsdt, "RSDT", sizeof(*rsdt) + 4);
	*(uint32_t *)(rsdt + 1) = BOOT_ACPI_BASE + ACPI_MADT_OFF;
	rsdt->checksum = acpi_checksum(rsdt, rsdt->length);

	rsdp = (struct acpi_rsdp *)base;
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, "FERRY ", 6);
	rsdp->rsdt_address = BOOT_ACPI_BASE + ACPI_RSDT_OFF;
	rsdp->checksum = acpi_checksum(rsdp, sizeof(*rsdp));
	return 0;
}
