// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fake VM: a link-time substitute for the vm_* functions the engine
 * and migration.c call, and for the KVM dirty tracker.  Guest RAM is a
 * plain anonymous mapping (so that mincore() says which pages were ever
 * touched, as with a real guest); its sections (one per vCPU, the VM, one
 * device) are known bytes; the dirty set of each sync is the test's script.
 * Run state and ownership follow vm.c's rules, under one lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/clock.h"
#include "common/sbuf.h"
#include "harness.h"
#include "vm/dirty.h"
#include "vm/dirty_probe.h"
#include "vm/memory.h"
#include "vm/state.h"
#include "vm/vm.h"

#define HX_MAX_SECTIONS (VM_MAX_CPUS + 2)
#define HX_DEV_NAME	"hx-dev"
#define HX_DEV_VERSION	3
#define HX_SEC_TAG	0x4858 /* "HX" */
#define HX_CPUID_DIGEST 0x0123456789abcdefull

struct vm {
	struct hx_vm_config cfg;
	struct gmem mem;
	pthread_mutex_t lock;
	enum vm_runstate state;
	enum vm_owner owner;
	char owner_why[256];
	uint64_t pause_started_ns;
	unsigned nsec;
	uint8_t sec[HX_MAX_SECTIONS][HX_SEC_BYTES];
	bool quiesced[HX_MAX_SECTIONS];
	/* calls, for the faults and the view */
	unsigned saves, loads, post_loads_calls, post_loads;
	unsigned starts, holds, resumes, syncs;
	bool tracking;
	unsigned throttle_pct, throttle_peak, throttle_sets; /* vm_set_throttle */
};

/* What the guest holds at page @i after the @gen-th sync's writes (0: at the start). */
static void hx_fill_page(uint8_t *p, uint64_t i, unsigned gen)
{
	/* Every 5th page is zero (sent as a flag); the rest name page and generation. */
	if (i % 5 == 4 && gen == 0) {
		memset(p, 0, GMEM_PAGE_SIZE);
		return;
	}
	for (unsigned j = 0; j < GMEM_PAGE_SIZE; j++)
		p[j] = (uint8_t)(i * 131 + j * 7 + gen * 29 + 1);
}

struct vm *hx_vm_create(const struct hx_vm_config *cfg, bool incoming)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	uint64_t size = cfg->pages * GMEM_PAGE_SIZE;

	if (!vm)
		abort();
	vm->cfg = *cfg;
	vm->mem.base = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem.base == MAP_FAILED)
		abort();
	vm->mem.size = size;
	vm->mem.nregions = 1;
	vm->mem.regions[0] = (struct gmem_region){.gpa = 0, .size = size, .hva = vm->mem.base};
	pthread_mutex_init(&vm->lock, NULL);
	vm->nsec = cfg->ncpus + 2;
	if (incoming) {
		vm->state = VM_RS_PRELAUNCH;
	} else {
		vm->state = cfg->paused ? VM_RS_PAUSED : VM_RS_RUNNING;
		for (uint64_t i = 0; i < cfg->touched; i++)
			hx_fill_page(vm->mem.base + i * GMEM_PAGE_SIZE, i, 0);
		for (unsigned s = 0; s < vm->nsec; s++)
			for (unsigned j = 0; j < HX_SEC_BYTES; j++)
				vm->sec[s][j] = (uint8_t)(s * 37 + j + 0x5a);
	}
	vm->owner = VM_OWNER_HERE;
	return vm;
}

void hx_vm_destroy(struct vm *vm)
{
	munmap(vm->mem.base, vm->mem.size);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

void hx_vm_view(struct vm *vm, struct hx_vm_view *out)
{
	pthread_mutex_lock(&vm->lock);
	*out = (struct hx_vm_view){
	    .state = vm->state,
	    .owner = vm->owner,
	    .starts = vm->starts,
	    .holds = vm->holds,
	    .resumes = vm->resumes,
	    .syncs = vm->syncs,
	    .tracking = vm->tracking,
	    .post_loads = vm->post_loads,
	    .throttle_pct = vm->throttle_pct,
	    .throttle_peak = vm->throttle_peak,
	    .throttle_sets = vm->throttle_sets,
	};
	for (unsigned i = 0; i < vm->nsec; i++)
		out->quiesced |= vm->quiesced[i];
	pthread_mutex_unlock(&vm->lock);
}

bool hx_vm_same_memory(struct vm *a, struct vm *b, uint64_t *first_diff)
{
	for (uint64_t i = 0; i < a->cfg.pages; i++)
		if (memcmp(a->mem.base + i * GMEM_PAGE_SIZE, b->mem.base + i * GMEM_PAGE_SIZE,
			   GMEM_PAGE_SIZE)) {
			*first_diff = i;
			return false;
		}
	return a->mem.size == b->mem.size;
}

bool hx_vm_same_sections(struct vm *a, struct vm *b)
{
	return a->nsec == b->nsec && !memcmp(a->sec, b->sec, sizeof(a->sec));
}

/* The n-th call of an op fails when the config says so. */
static int hx_fault(unsigned *calls, unsigned fail_at, const char *what, struct ferr *err)
{
	if (++*calls == fail_at)
		return ferr_set(err, -EIO, "injected %s failure (call %u)", what, *calls);
	return 0;
}

/* ---- the CPU throttle: the level is recorded; nobody sleeps ---- */

int vm_set_throttle(struct vm *vm, unsigned pct, struct ferr *err)
{
	if (pct > VM_THROTTLE_MAX)
		return ferr_set(err, -ERANGE, "CPU throttle %u%% is above %u%%", pct,
				VM_THROTTLE_MAX);
	pthread_mutex_lock(&vm->lock);
	vm->throttle_pct = pct;
	if (pct > vm->throttle_peak)
		vm->throttle_peak = pct;
	vm->throttle_sets++;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_throttle_stats(struct vm *vm, struct vm_throttle_stats *out)
{
	pthread_mutex_lock(&vm->lock);
	*out = (struct vm_throttle_stats){.pct = vm->throttle_pct};
	pthread_mutex_unlock(&vm->lock);
}

/* ---- run state and ownership (vm.c's rules) ---- */

enum vm_runstate vm_runstate(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	enum vm_runstate rs = vm->state;
	pthread_mutex_unlock(&vm->lock);
	return rs;
}

/* The fake's vCPUs are not threads: no fault is ever a vCPU's. */
int vm_vcpu_of_tid(struct vm *vm, int tid)
{
	return -1;
}

/* Only a failed post-copy ends the VM from the engine: the harness has none. */
void vm_request_quit(struct vm *vm, const char *reason, bool guest, int exit_status)
{
	fprintf(stderr, "hx_vm: unexpected vm_request_quit(%s, %d)\n", reason, exit_status);
	abort();
}

unsigned vm_ncpus(const struct vm *vm)
{
	return vm->cfg.ncpus;
}

const struct gmem *vm_gmem(const struct vm *vm)
{
	return &vm->mem;
}

uint64_t vm_cpuid_digest(const struct vm *vm)
{
	return HX_CPUID_DIGEST;
}

uint64_t vm_pause_started_ns(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	uint64_t t = vm->pause_started_ns;
	pthread_mutex_unlock(&vm->lock);
	return t;
}

static void hx_set_owner_locked(struct vm *vm, enum vm_owner to, const char *why)
{
	vm->owner = to;
	snprintf(vm->owner_why, sizeof(vm->owner_why), "%s", why ? why : "");
}

int vm_check_owner(struct vm *vm, const char *what, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->owner != VM_OWNER_HERE)
		rc = ferr_set(err, -EBUSY, "cannot %s: %s", what, vm->owner_why);
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int vm_set_incoming(struct vm *vm, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_RS_PRELAUNCH) {
		vm->state = VM_RS_INMIGRATE;
		hx_set_owner_locked(vm, VM_OWNER_AWAY, "the guest has not arrived yet");
	} else if (vm->state != VM_RS_INMIGRATE) {
		rc = ferr_set(err, -EBUSY, "the VM is %s, not fresh", vm_runstate_name(vm->state));
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

static int hx_start(struct vm *vm, bool paused, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_RS_PRELAUNCH && vm->state != VM_RS_INMIGRATE) {
		rc = ferr_set(err, -EBUSY, "the VM is %s and cannot be started",
			      vm_runstate_name(vm->state));
	} else {
		vm->state = paused ? VM_RS_PAUSED : VM_RS_RUNNING;
		hx_set_owner_locked(vm, VM_OWNER_HERE, NULL);
		vm->starts++;
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int vm_start(struct vm *vm, struct ferr *err)
{
	return hx_start(vm, false, err);
}

int vm_start_paused(struct vm *vm, struct ferr *err)
{
	return hx_start(vm, true, err);
}

int vm_hold(struct vm *vm, bool pause, const char *why, bool *was_running, struct ferr *err)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	*was_running = vm->state == VM_RS_RUNNING;
	if (vm->owner != VM_OWNER_HERE)
		rc = ferr_set(err, -EBUSY, "the guest is not here to hand over: %s", vm->owner_why);
	else if (vm->state != VM_RS_RUNNING && vm->state != VM_RS_PAUSED)
		rc = ferr_set(err, -EBUSY, "VM is %s: nothing to hand over",
			      vm_runstate_name(vm->state));
	if (!rc) {
		hx_set_owner_locked(vm, VM_OWNER_HANDING_OVER, why);
		vm->holds++;
		if (pause && vm->state == VM_RS_RUNNING) {
			vm->state = VM_RS_PAUSED;
			vm->pause_started_ns = clock_now_ns();
		}
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

void vm_release(struct vm *vm, enum vm_owner to, bool resume, const char *why)
{
	pthread_mutex_lock(&vm->lock);
	hx_set_owner_locked(vm, to, why);
	if (resume && to == VM_OWNER_HERE && vm->state == VM_RS_PAUSED) {
		vm->state = VM_RS_RUNNING;
		vm->resumes++;
	}
	pthread_mutex_unlock(&vm->lock);
}

/* ---- sections ---- */

unsigned vm_section_count(const struct vm *vm)
{
	return vm->nsec;
}

void vm_section_get(const struct vm *vm, unsigned i, struct vm_section_info *out)
{
	if (i < vm->cfg.ncpus)
		*out = (struct vm_section_info){VM_SECTION_VCPU, i, "vcpu", 0};
	else if (i == vm->cfg.ncpus)
		*out = (struct vm_section_info){VM_SECTION_VM, 0, "vm", 0};
	else
		*out = (struct vm_section_info){VM_SECTION_DEVICE, 0, HX_DEV_NAME, HX_DEV_VERSION};
}

int vm_section_find(const struct vm *vm, enum vm_section_kind kind, unsigned index,
		    const char *name, unsigned *i, struct ferr *err)
{
	for (unsigned k = 0; k < vm->nsec; k++) {
		struct vm_section_info s;
		vm_section_get(vm, k, &s);
		if (s.kind == kind && (kind != VM_SECTION_VCPU || s.index == index) &&
		    (kind != VM_SECTION_DEVICE || !strcmp(s.name, name))) {
			*i = k;
			return 0;
		}
	}
	return ferr_set(err, -ENOENT, "no section for this record");
}

int vm_section_quiesce(struct vm *vm, unsigned i, struct ferr *err)
{
	pthread_mutex_lock(&vm->lock);
	vm->quiesced[i] = true;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_section_resume(struct vm *vm, unsigned i)
{
	pthread_mutex_lock(&vm->lock);
	vm->quiesced[i] = false;
	pthread_mutex_unlock(&vm->lock);
}

int vm_section_save(struct vm *vm, unsigned i, struct sbuf *out, struct ferr *err)
{
	int rc = hx_fault(&vm->saves, vm->cfg.faults.save_fail, "section save", err);

	if (rc)
		return rc;
	clock_sleep_ns(vm->cfg.save_ns); /* inside the downtime window */
	if (sbuf_put_section(out, HX_SEC_TAG, vm->sec[i], HX_SEC_BYTES))
		return ferr_set(err, -ENOMEM, "out of memory");
	return 0;
}

int vm_section_load(struct vm *vm, unsigned i, uint32_t version, const void *blob, size_t len,
		    struct ferr *err)
{
	struct sbuf_reader r;
	struct sbuf_section s;
	struct vm_section_info info;
	int rc = hx_fault(&vm->loads, vm->cfg.faults.load_fail, "section load", err);

	if (rc)
		return rc;
	vm_section_get(vm, i, &info);
	if (info.kind == VM_SECTION_DEVICE && version != HX_DEV_VERSION)
		return ferr_set(err, -EINVAL, "device version %u", version);
	sbuf_reader_init(&r, blob, len);
	rc = sbuf_next_section(&r, &s, err);
	if (rc < 0)
		return rc;
	if (rc == 0 || s.tag != HX_SEC_TAG || s.len != HX_SEC_BYTES)
		return ferr_set(err, -EINVAL, "section %u: not the bytes saved", i);
	memcpy(vm->sec[i], s.data, HX_SEC_BYTES);
	return 0;
}

int vm_section_post_load(struct vm *vm, unsigned i, struct ferr *err)
{
	int rc = hx_fault(&vm->post_loads_calls, vm->cfg.faults.post_load_fail, "post-load", err);

	if (!rc)
		vm->post_loads++;
	return rc;
}

/* ---- dirty tracking: the script ---- */

static int hx_dirty_start(struct dirty_tracker *t, struct ferr *err)
{
	pthread_mutex_lock(&t->vm->lock);
	t->vm->tracking = true;
	pthread_mutex_unlock(&t->vm->lock);
	return 0;
}

/* The guest's writes since the last sync are the script's for this one. */
static int hx_dirty_sync(struct dirty_tracker *t, struct bitmap *dirty, struct ferr *err)
{
	struct vm *vm = t->vm;
	unsigned n;

	pthread_mutex_lock(&vm->lock);
	n = ++vm->syncs;
	pthread_mutex_unlock(&vm->lock);
	for (unsigned k = 0; k < HX_MAX_WRITES; k++) {
		const struct hx_write *w = &vm->cfg.writes[k];
		if (w->sync != n)
			continue;
		for (uint64_t i = w->first; i < w->first + w->count && i < vm->cfg.pages; i++) {
			hx_fill_page(vm->mem.base + i * GMEM_PAGE_SIZE, i, n);
			bitmap_set(dirty, i);
		}
		clock_sleep_ns(w->advance_ns);
	}
	t->syncs++;
	return 0;
}

/* A running pass: the script's link takes ns_per_page for each page of the chunk. */
static int hx_dirty_rearm(struct dirty_tracker *t, const struct bitmap *pages, uint64_t first,
			  uint64_t npages, struct ferr *err)
{
	uint64_t n = 0;

	for (uint64_t i = bitmap_next_set(pages, first); i < first + npages;
	     i = bitmap_next_set(pages, i + 1))
		n++;
	clock_sleep_ns(n * t->vm->cfg.ns_per_page);
	return 0;
}

static void hx_dirty_stop(struct dirty_tracker *t)
{
	pthread_mutex_lock(&t->vm->lock);
	t->vm->tracking = false;
	pthread_mutex_unlock(&t->vm->lock);
}

static const struct dirty_ops hx_dirty_ops = {
    .name = "hx-script",
    .start = hx_dirty_start,
    .sync = hx_dirty_sync,
    .rearm = hx_dirty_rearm,
    .stop = hx_dirty_stop,
};

int dirty_tracker_init(struct dirty_tracker *t, struct vm *vm, struct ferr *err)
{
	memset(t, 0, sizeof(*t));
	t->ops = &hx_dirty_ops;
	t->vm = vm;
	t->npages = vm->cfg.pages;
	return 0;
}

void dirty_tracker_destroy(struct dirty_tracker *t)
{
}

/* migration.c stops a probe on destroy; the harness never starts one. */
void dirty_probe_stop(struct dirty_probe *p, struct dirty_probe_stats *st)
{
}
