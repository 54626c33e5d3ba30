// SPDX-License-Identifier: GPL-2.0-only
/* The engine harness's cases: the switchover's paths and its failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "migration/stream/stream_format.h"
#include "vm/vm.h"

/* 256 pages, 200 touched; 1 us a page on the link; pass 1 dirties 40 pages. */
static const struct hx_vm_config base_vm = {
    .pages = 256,
    .touched = 200,
    .ncpus = 2,
    .ns_per_page = 1000,
    .writes = {{.sync = 1, .first = 10, .count = 40}},
};

static void dump(const struct hx *h)
{
	for (unsigned i = 0; i < h->src.nevents; i++)
		printf("src %s\n", h->src.events[i]);
	for (unsigned i = 0; i < h->dst.nevents; i++)
		printf("dst %s\n", h->dst.events[i]);
	printf("src: %s %s\ndst: %s %s\n", mig_status_name(h->src.final), h->src.err.msg,
	       mig_status_name(h->dst.final), h->dst.err.msg);
	for (unsigned i = 0; i < h->src.st.attempts && i < MIG_ATTEMPT_HISTORY; i++) {
		const struct mig_attempt_stats *a = &h->src.st.attempt[i];
		printf("attempt %u outcome %d paused %llu ns bytes %llu\n", a->attempt, a->outcome,
		       (unsigned long long)a->paused_ns, (unsigned long long)a->bytes);
	}
	printf("downtime %llu passes %llu policy %s: %s\n",
	       (unsigned long long)h->src.st.downtime_ns, (unsigned long long)h->src.st.passes,
	       h->src.st.policy_reason, h->src.st.policy_detail);
}

static void assert_same_guest(struct hx *h)
{
	uint64_t diff = 0;

	if (!hx_vm_same_memory(h->src.vm, h->dst.vm, &diff))
		fail_msg("page %llu differs", (unsigned long long)diff);
	assert_true(hx_vm_same_sections(h->src.vm, h->dst.vm));
}

static void test_success(void **state)
{
	struct hx h;

	hx_setup(&h, &base_vm, &(struct hx_params){0});
	hx_run(&h, NULL, 0);
	dump(&h);
	assert_int_equal(h.src.final, MIG_COMPLETED);
	assert_int_equal(h.dst.final, MIG_COMPLETED);
	hx_assert_one_owner(&h, true);
	assert_same_guest(&h);
	hx_teardown(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_success),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
