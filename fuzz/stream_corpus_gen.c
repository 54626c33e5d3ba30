// SPDX-License-Identifier: GPL-2.0-only
/*
 * Writes the seed corpus of fuzz_stream into a directory:
 *   stream_corpus_gen fuzz/corpus/stream
 * Valid streams of every record kind (both directions, as the fuzz target
 * reads them: 4 MiB guest, 4 vCPUs), plus a few classic failures.  The
 * output is deterministic, so regenerating it changes nothing unless the
 * format or this program changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "migration/stream/stream.h"

#define MiB (1ull << 20)

struct gen {
	struct channel *ch;
	struct stream_writer w;
	struct stream_header h;
	struct ferr err;
	uint8_t page[STREAM_PAGE_SIZE];
};

static void check(struct gen *g, int rc)
{
	if (rc) {
		fprintf(stderr, "stream_corpus_gen: %s\n", g->err.msg);
		exit(1);
	}
}

static void start_with(struct gen *g, enum stream_dir dir, const struct stream_header *h)
{
	memset(g, 0, sizeof(*g));
	g->h = *h;
	check(g, channel_mem_open(NULL, 0, &g->ch, &g->err));
	check(g, stream_writer_init(&g->w, g->ch, dir, &g->err));
	if (dir == STREAM_MIGRATION)
		check(g, stream_write_header(&g->w, &g->h, &g->err));
	else
		check(g, stream_writer_set_header(&g->w, &g->h, &g->err));
}

static void start(struct gen *g, enum stream_dir dir, uint64_t features)
{
	const struct stream_header h = {.page_size = STREAM_PAGE_SIZE,
					.vcpu_count = 4,
					.nregions = 1,
					.features = features,
					.cpuid_digest = 0x5eed5eed5eed5eedull,
					.regions = {{0, 4 * MiB}}};

	start_with(g, dir, &h);
}

static uint8_t *fill(struct gen *g, uint64_t gfn)
{
	for (size_t i = 0; i < sizeof(g->page); i++)
		g->page[i] = (uint8_t)(gfn * 131 + i * 7 + (i >> 8));
	return g->page;
}

static void msg(struct gen *g, struct stream_msg m)
{
	check(g, stream_write_msg(&g->w, &m, &g->err));
}

/* Write what was generated, cut to @keep bytes if not 0, with @patch applied. */
static void save(struct gen *g, const char *dir, const char *name, size_t keep,
		 void (*patch)(uint8_t *buf, size_t len))
{
	char path[4096];
	size_t len;

	check(g, stream_batch_flush(&g->w, &g->err));
	const uint8_t *data = channel_mem_data(g->ch, &len);
	uint8_t *buf = malloc(len);
	if (!buf)
		exit(1);
	memcpy(buf, data, len);
	if (patch)
		patch(buf, len);
	if (keep && keep < len)
		len = keep;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
	free(buf);
	stream_writer_destroy(&g->w);
	channel_close(g->ch);
}

static void precopy(struct gen *g)
{
	static const char vcpu[] = "vcpu registers", dev[] = "uart state", vm[] = "irqchip";

	start(g, STREAM_MIGRATION, 0);
	check(g, stream_batch_zero(&g->w, 0, &g->err));
	check(g, stream_batch_copy(&g->w, 1, fill(g, 1), &g->err));
	check(g, stream_batch_copy(&g->w, 2, fill(g, 2), &g->err));
	check(g, stream_batch_zero(&g->w, 3, &g->err));
	check(g, stream_batch_copy(&g->w, 1023, fill(g, 1023), &g->err));
	msg(g, (struct stream_msg){.type = STREAM_REC_PASS_END, .pass_end = {.remaining = 1}});
	check(g, stream_batch_copy(&g->w, 2, fill(g, 22), &g->err));
	msg(g, (struct stream_msg){.type = STREAM_REC_PASS_END, .pass_end = {.duration_ns = 9}});
	msg(g, (struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE});
	check(g, stream_batch_zero(&g->w, 1, &g->err));
	for (uint32_t v = 0; v < 4; v++)
		check(g, stream_write_vcpu_state(&g->w, v, vcpu, sizeof(vcpu) - v, &g->err));
	check(g, stream_write_device_state(&g->w, "serial0", 1, dev, sizeof(dev), &g->err));
	check(g, stream_write_vm_state(&g->w, vm, sizeof(vm), &g->err));
	msg(g, (struct stream_msg){.type = STREAM_REC_END});
	msg(g, (struct stream_msg){.type = STREAM_MSG_GO});
}

static void patch_version(uint8_t *buf, size_t len)
{
	uint32_t v = 2;
	uint64_t sum;

	memcpy(buf + 8, &v, 4);
	sum = XXH3_64bits(buf, 64); /* one region: the checksum is at 64 */
	memcpy(buf + 64, &sum, 8);
}

static void patch_magic(uint8_t *buf, size_t len)
{
	memcpy(buf, "FERRYMIH", 8);
}

int main(int argc, char **argv)
{
	struct gen g;

	if (argc != 2) {
		fprintf(stderr, "usage: stream_corpus_gen DIR\n");
		return 2;
	}
	const char *dir = argv[1];

	precopy(&g);
	save(&g, dir, "valid-precopy", 0, NULL);

	start(&g, STREAM_MIGRATION, STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY);
	msg(&g, (struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE,
				    .switchover = {STREAM_SWITCHOVER_POSTCOPY, 3}});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_GO});
	check(&g, stream_batch_ref(&g.w, 7, fill(&g, 7), &g.err));
	check(&g, stream_batch_zero(&g.w, 8, &g.err));
	check(&g, stream_batch_flush(&g.w, &g.err));
	check(&g, stream_batch_ref(&g.w, 900, fill(&g, 900), &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ABORT, .abort.reason = STREAM_ABORT_FAILED});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ERROR, .error = {-EIO, "source: disk"}});
	save(&g, dir, "valid-postcopy", 0, NULL);

	start(&g, STREAM_RETURN, STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY);
	msg(&g, (struct stream_msg){.type = STREAM_MSG_READY, .ready.features = 3});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_POSTCOPY_PAGE_REQUEST,
				    .page_request = {3, {7, 1023, 0}}});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ACK, .ack = {STREAM_REC_END, 12}});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ERROR,
				    .error = {-EPROTO, "record 3 (PAGE_BATCH): bad frame"}});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_RESUMED, .resumed.resume_ns = 123456789});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ABORT, .abort.reason = 1});
	save(&g, dir, "valid-return-path", 0, NULL);

	/* A resumed post-copy (docs/postcopy.md, "Recovery"): it starts after GO. */
	start(&g, STREAM_MIGRATION,
	      STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME);
	check(&g, stream_batch_ref(&g.w, 9, fill(&g, 9), &g.err));
	check(&g, stream_batch_zero(&g.w, 10, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_POSTCOPY_END});
	save(&g, dir, "valid-postcopy-resume", 0, NULL);

	/* ... and its return path: READY, the missing set, POSTCOPY_RESUME. */
	start(&g, STREAM_RETURN,
	      STREAM_FEAT_RETURN_PATH | STREAM_FEAT_POSTCOPY | STREAM_FEAT_RESUME);
	msg(&g, (struct stream_msg){.type = STREAM_MSG_READY, .ready.features = 0xb});
	struct stream_msg miss = {.type = STREAM_MSG_POSTCOPY_MISSING};
	miss.discard.first = 64;
	miss.discard.nwords = 3;
	miss.discard.bits[0] = 0x8001;
	miss.discard.bits[2] = 1ull << 63;
	msg(&g, miss);
	msg(&g, (struct stream_msg){.type = STREAM_MSG_POSTCOPY_RESUME, .pc_resume.missing = 3});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ACK, .ack = {STREAM_REC_POSTCOPY_END, 4}});
	save(&g, dir, "valid-return-path-resume", 0, NULL);

	/* A switchover rolled back (ABORT(RETRY) after END), then a second one. */
	start(&g, STREAM_MIGRATION, STREAM_FEAT_RETURN_PATH);
	check(&g, stream_batch_copy(&g.w, 5, fill(&g, 5), &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE});
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_ABORT, .abort.reason = STREAM_ABORT_RETRY});
	check(&g, stream_batch_zero(&g.w, 5, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_PASS_END});
	msg(&g, (struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE});
	check(&g, stream_write_vcpu_state(&g.w, 1, "regs", 4, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	msg(&g, (struct stream_msg){.type = STREAM_MSG_GO});
	save(&g, dir, "valid-retry", 0, NULL);

	/* A multifd data channel: the header's session block, pages, CHANNEL_SYNCs. */
	const struct stream_header mfd = {.page_size = STREAM_PAGE_SIZE,
					  .vcpu_count = 4,
					  .nregions = 1,
					  .features = STREAM_FEAT_MULTIFD,
					  .cpuid_digest = 0x5eed5eed5eed5eedull,
					  .regions = {{0, 4 * MiB}},
					  .session = 0x0123456789abcdefull,
					  .channel = 2,
					  .nchannels = 3};
	start_with(&g, STREAM_MIGRATION, &mfd);
	check(&g, stream_batch_ref(&g.w, 4, fill(&g, 4), &g.err));
	check(&g, stream_batch_zero(&g.w, 5, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_CHANNEL_SYNC, .sync.attempt = 1});
	check(&g, stream_batch_copy(&g.w, 4, fill(&g, 4), &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_CHANNEL_SYNC, .sync.attempt = 3});
	save(&g, dir, "valid-multifd-channel", 0, NULL);

	const struct stream_header two = {.page_size = STREAM_PAGE_SIZE,
					  .vcpu_count = 1,
					  .nregions = 2,
					  .regions = {{0, 2 * MiB}, {3 * MiB, 2 * MiB}}};
	start_with(&g, STREAM_MIGRATION, &two);
	check(&g, stream_batch_ref(&g.w, 511, fill(&g, 511), &g.err));
	check(&g, stream_batch_ref(&g.w, 768, fill(&g, 768), &g.err));
	check(&g, stream_batch_zero(&g.w, 1279, &g.err));
	check(&g, stream_write_vcpu_state(&g.w, 0, "r", 1, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	save(&g, dir, "valid-two-regions", 0, NULL);

	/* Valid, but bigger than the fuzz target's guest: the sink has no page. */
	const struct stream_header big = {.page_size = STREAM_PAGE_SIZE,
					  .vcpu_count = 2,
					  .nregions = 1,
					  .regions = {{0, 8 * MiB}}};
	start_with(&g, STREAM_MIGRATION, &big);
	check(&g, stream_batch_ref(&g.w, 1500, fill(&g, 1500), &g.err));
	check(&g, stream_batch_zero(&g.w, 1600, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	save(&g, dir, "valid-8MiB-guest", 0, NULL);

	start(&g, STREAM_MIGRATION, 1ull << 40);
	for (uint64_t gfn = 0; gfn < 300; gfn++)
		check(&g, stream_batch_zero(&g.w, gfn, &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_PASS_END});
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	save(&g, dir, "valid-zero-pages", 0, NULL);

	start(&g, STREAM_MIGRATION, 0);
	check(&g, stream_write_record(&g.w, 0x4321, STREAM_REC_OPTIONAL,
				      &(struct iovec){"later", 5}, 1, &g.err));
	check(&g, stream_write_record(&g.w, 0x8777, STREAM_REC_OPTIONAL, NULL, 0, &g.err));
	check(&g, stream_write_vm_state(&g.w, NULL, 0, &g.err));
	check(&g, stream_write_vcpu_state(&g.w, 3, NULL, 0, &g.err));
	check(&g, stream_write_device_state(&g.w, "d", 0, "x", 1, &g.err));
	check(&g, stream_write_device_state(&g.w, "0123456789012345678901234567890", 7, NULL, 0,
					    &g.err));
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	save(&g, dir, "valid-edges", 0, NULL);

	precopy(&g);
	save(&g, dir, "bad-newer-version", 200, patch_version);
	precopy(&g);
	save(&g, dir, "bad-magic", 200, patch_magic);
	precopy(&g);
	save(&g, dir, "bad-truncated", 72 + 16 + 8 + 40 + 6000, NULL);

	start(&g, STREAM_MIGRATION, 0);
	check(&g, stream_write_record(&g.w, 0x42, 0, NULL, 0, &g.err));
	save(&g, dir, "bad-unknown-mandatory", 0, NULL);

	start(&g, STREAM_MIGRATION, 0);
	msg(&g, (struct stream_msg){.type = STREAM_REC_END});
	check(&g, stream_write_record(&g.w, STREAM_REC_VM_STATE, 0, NULL, 0, &g.err));
	save(&g, dir, "bad-after-end", 0, NULL);
	return 0;
}
