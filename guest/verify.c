/*
 * verify: each CPU sweeps its slice sequentially, pass after pass
 * (the pattern key is ignored), then its share of the high working set
 * at 4 GiB (high=SIZE). Pass g writes word w of page p as
 *
 *	f(a, g) = mix64(a ^ key(g)),  a = address of the word,
 *	key(g)  = mix64(seed) ^ g * 0x9e3779b97f4a7c15
 *
 * except that one page in eight holds zeros in each generation: page
 * number n (address >> 12) is all zeros in generation g iff
 * (n + g) % 8 == 7, so a page is never zero in two generations in a
 * row and every migration carries pages that turn to zeros and back.
 * Pass g > 0 first checks that the word still holds its generation
 * g - 1 value. key(g) != key(g - 1) and mix64 is a bijection, so a page
 * that is stale by any number of generations (a zero page: by up to 7),
 * zeroed, moved, or has any byte changed fails the check (a chance
 * collision is ~2^-64 per word).
 * Invariant: during pass g, pages below the cursor hold generation g
 * and pages from the cursor on hold g - 1. Pass 0 only initialises.
 *
 * CPU 0 also checksums what never changes after boot, the kernel's text
 * and read-only data and its page tables, when it starts and then at
 * the end of every pass at most every KSUM_PERIOD_MS.
 */
#include "exitcodes.h"
#include "kernel.h"
#include "serial.h"
#include "task.h"

#define WORDS_PER_PAGE (PAGE_SIZE / 8)
#define GOLDEN	       0x9e3779b97f4a7c15ULL
#define ZERO_EVERY     8
#define KSUM_PERIOD_MS 50

static __noreturn void verify_fail(struct task *t, u64 page, unsigned word, u64 expected, u64 found,
				   u64 gen)
{
	/* Byte offset of the first differing byte (little endian). */
	unsigned offset = word * 8 + __builtin_ctzll(expected ^ found) / 8;

	say_and_exit(FERRY_EXIT_VERIFY,
		     "verify: FAIL cpu=%u addr=0x%lx offset=0x%x "
		     "expected=0x%016lx found=0x%016lx gen=%lu",
		     t->cpu, page, offset, expected, found, gen);
}

static inline bool zero_in_gen(const u64 *p, u64 gen)
{
	return ((u64)p / PAGE_SIZE + gen) % ZERO_EVERY == ZERO_EVERY - 1;
}

static inline u64 word_value(u64 a, u64 key, bool zero)
{
	return zero ? 0 : mix64(a ^ key);
}

static void init_page(u64 *p, u64 key)
{
	bool zero = zero_in_gen(p, 0);
	u64 a = (u64)p;

	for (unsigned w = 0; w < WORDS_PER_PAGE; w++, a += 8)
		p[w] = word_value(a, key, zero);
}

static void check_and_write_page(struct task *t, u64 *p, u64 gen, u64 old_key, u64 new_key)
{
	bool was_zero = zero_in_gen(p, gen - 1), zero = zero_in_gen(p, gen);
	u64 a = (u64)p;

	for (unsigned w = 0; w < WORDS_PER_PAGE; w++, a += 8) {
		u64 expected = word_value(a, old_key, was_zero), found = p[w];

		if (unlikely(found != expected))
			verify_fail(t, (u64)p, w, expected, found, gen - 1);
		p[w] = word_value(a, new_key, zero);
	}
}

/* FNV-1a over words, then mixed: any change of any byte changes it. */
static u64 checksum(u64 sum, const void *start, const void *end)
{
	for (const u64 *w = start; w < (const u64 *)end; w++)
		sum = (sum ^ *w) * 0x100000001b3ULL;
	return mix64(sum);
}

/*
 * Everything that must not change after boot: text and rodata, the boot
 * page tables (pml4, pdpt, the four low page directories) and the extra
 * page directories for RAM above 4 GiB. The CPU never writes them (A and
 * D are preset).
 */
static u64 kernel_checksum(void)
{
	u64 sum = 0xcbf29ce484222325ULL;

	sum = checksum(sum, __image_start, __ro_end);
	sum = checksum(sum, pml4, pd_low + 4 * PAGE_SIZE);
	return checksum(sum, extra_pds, extra_pds + EXTRA_PDS * PAGE_SIZE);
}

static void check_kernel(struct task *t, u64 *next)
{
	u64 now = rdtsc(), sum;

	if (now < *next)
		return;
	*next = now + KSUM_PERIOD_MS * guest.tsc_khz;
	sum = kernel_checksum();
	if (unlikely(sum != guest.ro_sum))
		say_and_exit(FERRY_EXIT_VERIFY,
			     "verify: FAIL cpu=%u kernel checksum expected=0x%016lx found=0x%016lx",
			     t->cpu, guest.ro_sum, sum);
}

static inline u64 *page_addr(const struct task *t, u64 page)
{
	if (page < t->npages)
		return (u64 *)(t->slice + page * PAGE_SIZE);
	return (u64 *)(t->high + (page - t->npages) * PAGE_SIZE);
}

__noreturn void run_verify(struct task *t)
{
	u64 base_key = mix64(guest.seed ^ GOLDEN);
	u64 npages = t->npages + t->nhigh, next_ksum = 0;

	if (t->cpu == 0)
		guest.ro_sum = kernel_checksum();
	for (u64 gen = 0;; gen++) {
		u64 old_key = base_key ^ (gen - 1) * GOLDEN;
		u64 new_key = base_key ^ gen * GOLDEN;
		u64 page = 0;

		while (page < npages) {
			u64 end = MIN(page + t->burst, npages);
			u64 n = end - page;

			for (; page < end; page++) {
				u64 *p = page_addr(t, page);

				if (gen)
					check_and_write_page(t, p, gen, old_key, new_key);
				else
					init_page(p, new_key);
			}
			t->work += n;
			task_poll(t);
			task_pace(t, n);
		}
		if (t->cpu == 0)
			check_kernel(t, &next_ksum);
	}
}
