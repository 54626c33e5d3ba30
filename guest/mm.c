/*
 * Memory: read the multiboot information (command line, memory map),
 * extend the boot page tables, and place the working set.
 */
#include "kernel.h"
#include "x86.h"

#define MB_BOOTLOADER_MAGIC 0x2BADB002
#define MB_INFO_MEMORY	    0x001
#define MB_INFO_CMDLINE	    0x004
#define MB_INFO_MMAP	    0x040
#define MB_MMAP_RAM	    1

#define PTE_TABLE      0x27 /* as in pagetable.S */
#define PTE_LARGE      0xe7
#define GIB	       (1ULL << 30)
#define MAX_RAM_RANGES 32

struct mb_info {
	u32 flags;
	u32 mem_lower; /* KiB below 1 MiB */
	u32 mem_upper; /* KiB above 1 MiB */
	u32 boot_device;
	u32 cmdline;
	u32 mods_count;
	u32 mods_addr;
	u32 syms[4];
	u32 mmap_length;
	u32 mmap_addr;
} __packed;

struct mb_mmap_entry {
	u32 size; /* of the rest of the entry */
	u64 addr;
	u64 len;
	u32 type;
} __packed;

static struct {
	u64 start, end;
} ram[MAX_RAM_RANGES];
static unsigned nram;

static void add_ram(u64 start, u64 end)
{
	if (end <= start || nram == MAX_RAM_RANGES)
		return;
	ram[nram].start = start;
	ram[nram].end = end;
	nram++;
	guest.mem_bytes += end - start;
}

/*
 * Copy out everything we need before anything can overwrite it: the
 * loader may have put these structures in what becomes the working set.
 */
void multiboot_parse(u32 magic, u32 info)
{
	const struct mb_info *mbi = (const void *)(u64)info;

	if (magic != MB_BOOTLOADER_MAGIC)
		kfatal("not started by a multiboot loader (eax=0x%x)", magic);

	if (mbi->flags & MB_INFO_CMDLINE) {
		const char *s = (const char *)(u64)mbi->cmdline;
		size_t n = strlen(s);

		if (n >= CMDLINE_MAX)
			kfatal("command line longer than %u bytes", CMDLINE_MAX - 1);
		memcpy(guest.cmdline, s, n + 1);
	}

	if (mbi->flags & MB_INFO_MMAP) {
		u64 p = mbi->mmap_addr, end = p + mbi->mmap_length;

		while (p + sizeof(struct mb_mmap_entry) <= end) {
			const struct mb_mmap_entry *e = (const void *)p;

			if (e->type == MB_MMAP_RAM)
				add_ram(e->addr, e->addr + e->len);
			p += e->size + sizeof(e->size);
		}
	} else if (mbi->flags & MB_INFO_MEMORY) {
		add_ram(0, (u64)mbi->mem_lower << 10);
		add_ram(1ULL << 20, (1ULL << 20) + ((u64)mbi->mem_upper << 10));
	}
	if (!nram)
		kfatal("the loader passed no memory information");
}

/*
 * pagetable.S maps 0-4 GiB with 2 MiB pages. With pdpe1gb, GiB 0-2 move
 * to 1 GiB pages (GiB 3 keeps its directory for the uncached APIC
 * window), and RAM above 4 GiB is mapped the same way, else with page
 * directories from extra_pds. The PML4 has one entry: 512 GiB at most.
 */
void mm_init(void)
{
	u32 a, b, c, d;
	bool gb_pages;
	unsigned used_pds = 0;

	cpuid(0x80000001, &a, &b, &c, &d);
	gb_pages = d & (1u << 26);

	if (gb_pages)
		for (u64 g = 0; g < 3; g++)
			pdpt[g] = g * GIB + PTE_LARGE;

	for (unsigned i = 0; i < nram; i++) {
		u64 first = MAX(ram[i].start, 4 * GIB) / GIB;
		u64 last = (ram[i].end - 1) / GIB;

		if (ram[i].end <= 4 * GIB)
			continue;
		for (u64 g = first; g <= last && g < 512; g++) {
			u64 *pd;

			if (pdpt[g])
				continue;
			if (gb_pages) {
				pdpt[g] = g * GIB + PTE_LARGE;
				continue;
			}
			if (used_pds == EXTRA_PDS)
				break;
			pd = (u64 *)(extra_pds + PAGE_SIZE * used_pds++);
			for (u64 j = 0; j < 512; j++)
				pd[j] = g * GIB + (j << 21) + PTE_LARGE;
			pdpt[g] = (u64)pd + PTE_TABLE;
		}
	}
	write_cr3(read_cr3());
}

/*
 * The working set is one contiguous run of RAM starting at WS_BASE,
 * split into equal page-aligned per-CPU slices.
 */
void workset_layout(void)
{
	u64 limit = WS_BASE, wss, slice;
	bool grew = true;

	/* Follow touching or overlapping RAM ranges upwards. */
	while (grew) {
		grew = false;
		for (unsigned i = 0; i < nram; i++) {
			if (ram[i].start <= limit && limit < ram[i].end) {
				limit = ram[i].end;
				grew = true;
			}
		}
	}
	/* Stop at the first unmapped GiB. */
	for (u64 g = WS_BASE / GIB; g * GIB < limit; g++) {
		if (g >= 512 || !pdpt[g]) {
			limit = g * GIB;
			break;
		}
	}
	limit &= ~(u64)(PAGE_SIZE - 1);
	if (limit <= WS_BASE)
		kfatal("no RAM at the working-set base 0x%x", WS_BASE);

	guest.ws_base = WS_BASE;
	guest.ws_limit = limit;
	wss = MIN(guest.cfg.wss, limit - WS_BASE);
	slice = (wss / guest.ncpus) & ~(u64)(PAGE_SIZE - 1);
	if (!slice)
		kfatal("wss=%lu is less than one page per CPU (%u CPUs)", guest.cfg.wss,
		       guest.ncpus);
	guest.slice_bytes = slice;
	if (guest.cfg.high) {
		u64 hi = 4 * GIB, hend = hi + guest.cfg.high;
		bool covered = false;

		for (unsigned i = 0; i < nram; i++)
			covered |= ram[i].start <= hi && hend <= ram[i].end;
		for (u64 g = hi / GIB; covered && g <= (hend - 1) / GIB; g++)
			covered = g < 512 && pdpt[g];
		if (!covered)
			kfatal("high=%lu: no mapped RAM at [0x%lx, 0x%lx)", guest.cfg.high, hi,
			       hend);
		guest.high_slice = (guest.cfg.high / guest.ncpus) & ~(u64)(PAGE_SIZE - 1);
		if (!guest.high_slice)
			kfatal("high=%lu is less than one page per CPU", guest.cfg.high);
	}
	guest.seed = guest.cfg.seed_given ? guest.cfg.seed : guest.boot_tsc;
}
