/*
 * State the kernel part hands to the ring-3 workloads. Everything is
 * identity mapped with U=1, so user code reads `guest` directly.
 */
#ifndef FERRY_GUEST_GUEST_H
#define FERRY_GUEST_GUEST_H

#include "common.h"

#define CMDLINE_MAX 1024

enum workload { WL_IDLE, WL_SPIN, WL_DIRTY, WL_VERIFY };
enum pattern { PAT_SEQ, PAT_RANDOM, PAT_HOTCOLD };

struct config {
	enum workload workload;
	u64 wss;  /* requested working set, bytes */
	u64 rate; /* pages/s per CPU, 0 = max */
	enum pattern pattern;
	u64 heartbeat_us; /* 0 = off */
	u64 progress_us;  /* 0 = off; always a whole number of ms */
	u64 seed;
	bool seed_given;
	u64 sweeps; /* dirty: stop writing after this many slices' worth; 0 = never */
	u64 high;   /* verify: extra working set at 4 GiB, bytes; 0 = none */
};

struct guest {
	struct config cfg;
	char cmdline[CMDLINE_MAX];

	unsigned ncpus;
	bool no_madt;
	u64 mem_bytes; /* usable RAM from the memory map */

	u64 boot_tsc; /* BSP TSC at kernel entry: t_ms origin */
	u64 tsc_khz;
	u64 tick_us; /* LAPIC timer period */

	u64 ws_base;	 /* = WS_BASE */
	u64 ws_limit;	 /* end of the RAM usable for the working set */
	u64 slice_bytes; /* per-CPU share, multiple of PAGE_SIZE */
	u64 seed;	 /* effective seed */
	u64 high_slice;	 /* per-CPU share of the high working set at 4 GiB */
	u64 ro_sum;	 /* verify: checksum of kernel text/rodata and page tables */

	u32 go; /* set by CPU 0 once the start line is out */
};

extern struct guest guest;

extern const char *const workload_names[];
extern const char *const pattern_names[];

/* cmdline.c: returns 0, or -1 with a message in err. */
int cmdline_parse(const char *cmdline, struct config *cfg, char *err, size_t errlen);

/* user.c: ring-3 entry of every CPU. */
__noreturn void user_main(u64 cpu);

#endif
