/*
 * verify: each CPU sweeps its slice sequentially, pass after pass
 * (the pattern key is ignored). Pass g writes word w of page p as
 *
 *	f(a, g) = mix64(a ^ key(g)),  a = address of the word,
 *	key(g)  = mix64(seed) ^ g * 0x9e3779b97f4a7c15
 *
 * and pass g > 0 first checks that the word still holds f(a, g - 1).
 * key(g) != key(g - 1) and mix64 is a bijection, so a page that is
 * stale by any number of generations, zeroed, moved, or has any byte
 * changed fails the check (a chance collision is ~2^-64 per word).
 * Invariant: during pass g, pages below the cursor hold generation g
 * and pages from the cursor on hold g - 1. Pass 0 only initialises.
 */
#include "exitcodes.h"
#include "serial.h"
#include "task.h"

#define WORDS_PER_PAGE (PAGE_SIZE / 8)
#define GOLDEN	       0x9e3779b97f4a7c15ULL

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

static void init_page(u64 *p, u64 key)
{
	u64 a = (u64)p;

	for (unsigned w = 0; w < WORDS_PER_PAGE; w++, a += 8)
		p[w] = mix64(a ^ key);
}

static void check_and_write_page(struct task *t, u64 *p, u64 gen, u64 old_key, u64 new_key)
{
	u64 a = (u64)p;

	for (unsigned w = 0; w < WORDS_PER_PAGE; w++, a += 8) {
		u64 expected = mix64(a ^ old_key), found = p[w];

		if (unlikely(found != expected))
			verify_fail(t, (u64)p, w, expected, found, gen - 1);
		p[w] = mix64(a ^ new_key);
	}
}

__noreturn void run_verify(struct task *t)
{
	u64 base_key = mix64(guest.seed ^ GOLDEN);

	for (u64 gen = 0;; gen++) {
		u64 old_key = base_key ^ (gen - 1) * GOLDEN;
		u64 new_key = base_key ^ gen * GOLDEN;
		u64 page = 0;

		while (page < t->npages) {
			u64 end = MIN(page + t->burst, t->npages);
			u64 n = end - page;

			for (; page < end; page++) {
				u64 *p = (u64 *)(t->slice + page * PAGE_SIZE);

				if (gen)
					check_and_write_page(t, p, gen, old_key, new_key);
				else
					init_page(p, new_key);
			}
			t->work += n;
			task_poll(t);
			task_pace(t, n);
		}
	}
}
