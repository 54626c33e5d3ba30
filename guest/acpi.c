/*
 * CPU discovery from the ACPI MADT. Only what is needed: find the RSDP,
 * walk the RSDT/XSDT to "APIC", collect enabled processor-local-APIC
 * entries. The BSP becomes CPU 0; APs follow in MADT order.
 */
#include "kernel.h"

#define RSDP_SIG     0x2052545020445352ULL /* "RSD PTR " */
#define MADT_SIG     0x43495041		   /* "APIC" */
#define MADT_LAPIC   0
#define MADT_ENABLED 0x1

struct rsdp {
	u64 signature;
	u8 checksum;
	char oem[6];
	u8 revision;
	u32 rsdt;
	u32 length; /* revision >= 2 from here on */
	u64 xsdt;
	u8 xchecksum;
	u8 reserved[3];
} __packed;

struct sdt {
	u32 signature;
	u32 length;
	u8 revision;
	u8 checksum;
	char oem[6];
	char oem_table[8];
	u32 oem_revision;
	u32 creator;
	u32 creator_revision;
} __packed;

struct madt {
	struct sdt hdr;
	u32 lapic_addr;
	u32 flags;
	u8 entries[];
} __packed;

static u8 sum(const void *p, size_t n)
{
	const u8 *b = p;
	u8 s = 0;

	while (n--)
		s += *b++;
	return s;
}

/*
 * repne scasq finds the signature in one (emulated) instruction instead
 * of a loop of thousands; candidates must still be 16-byte aligned and
 * pass the checksum.
 */
static const struct rsdp *scan(u64 start, u64 len)
{
	const u64 *p = (const u64 *)start;
	u64 n = len / 8;

	while (n) {
		asm volatile("repne scasq" : "+D"(p), "+c"(n) : "a"(RSDP_SIG) : "cc", "memory");
		if (p[-1] != RSDP_SIG)
			break;
		if (!((u64)(p - 1) & 15) && !sum(p - 1, 20))
			return (const struct rsdp *)(p - 1);
	}
	return NULL;
}

/*
 * Probe 0xE0000 on its own first: that is where ferry puts the RSDP,
 * and each probe costs emulated instructions. Then the EBDA, then the
 * BIOS area F-segment first (where SeaBIOS puts it).
 */
static const struct rsdp *find_rsdp(void)
{
	u64 ebda = (u64) * (const u16 *)0x40e << 4;
	const struct rsdp *r = scan(0xe0000, 16);

	if (!r && ebda >= 0x80000 && ebda < 0xa0000)
		r = scan(ebda, 1024);
	if (!r)
		r = scan(0xf0000, 0x10000);
	if (!r)
		r = scan(0xe0000, 0x10000);
	return r;
}

static const struct madt *find_madt(void)
{
	const struct rsdp *r = find_rsdp();
	const struct sdt *root;
	unsigned n, width;

	if (!r)
		return NULL;
	if (r->revision >= 2 && r->xsdt && r->xsdt < (1ULL << 32)) {
		root = (const struct sdt *)r->xsdt;
		width = 8;
	} else {
		root = (const struct sdt *)(u64)r->rsdt;
		width = 4;
	}
	if (!root)
		return NULL;
	n = (root->length - sizeof(*root)) / width;
	for (unsigned i = 0; i < n; i++) {
		const u8 *e = (const u8 *)(root + 1) + i * width;
		u64 addr = width == 8 ? *(const u64 *)e : *(const u32 *)e;

		if (addr && addr < (1ULL << 32) &&
		    ((const struct sdt *)addr)->signature == MADT_SIG)
			return (const struct madt *)addr;
	}
	return NULL;
}

void acpi_find_cpus(void)
{
	const struct madt *madt = find_madt();
	u8 bsp = (u8)(lapic_read(LAPIC_ID) >> 24);
	const u8 *p, *end;
	unsigned n = 1;

	memset(cpu_apic_id, 0xff, sizeof(cpu_apic_id));
	cpu_apic_id[0] = bsp;
	guest.ncpus = 1;
	if (!madt) {
		guest.no_madt = true;
		return;
	}

	p = madt->entries;
	end = (const u8 *)madt + madt->hdr.length;
	for (; p + 2 <= end && p[1] >= 2 && p + p[1] <= end; p += p[1]) {
		u8 id = p[3];
		u32 flags = *(const u32 *)(p + 4);

		if (p[0] != MADT_LAPIC || p[1] < 8 || !(flags & MADT_ENABLED))
			continue;
		if (id == bsp || id == 0xff || n == MAX_CPUS)
			continue;
		cpu_apic_id[n++] = id;
	}
	guest.ncpus = n;
}
