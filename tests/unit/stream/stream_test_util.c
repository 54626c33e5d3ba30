// SPDX-License-Identifier: GPL-2.0-only
#include "stream_test_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "migration/transport/channel.h"

void fake_guest_init(struct fake_guest *g, uint32_t vcpus, unsigned nregions, ...)
{
	va_list ap;

	memset(g, 0, sizeof(*g));
	g->hdr.page_size = STREAM_PAGE_SIZE;
	g->hdr.vcpu_count = vcpus;
	g->hdr.nregions = nregions;
	g->hdr.cpuid_digest = 0x0123456789abcdefull;
	va_start(ap, nregions);
	for (unsigned i = 0; i < nregions; i++) {
		g->hdr.regions[i].gpa = va_arg(ap, uint64_t);
		g->hdr.regions[i].size = va_arg(ap, uint64_t);
		g->size += g->hdr.regions[i].size;
	}
	va_end(ap);
	g->mem = calloc(1, g->size);
	if (!g->mem)
		abort();
}

void fake_guest_destroy(struct fake_guest *g)
{
	free(g->mem);
	g->mem = NULL;
}

uint8_t *fake_guest_page(struct fake_guest *g, uint64_t gfn)
{
	uint64_t gpa = gfn * STREAM_PAGE_SIZE, off = 0;

	for (uint32_t i = 0; i < g->hdr.nregions; i++) {
		const struct stream_region *r = &g->hdr.regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return g->mem + off + (gpa - r->gpa);
		off += r->size;
	}
	return NULL;
}

void fake_guest_fill(struct fake_guest *g, uint64_t gfn, unsigned v)
{
	uint64_t *p = (uint64_t *)fake_guest_page(g, gfn);

	for (size_t i = 0; i < STREAM_PAGE_SIZE / 8; i++)
		p[i] = (gfn << 32) ^ ((uint64_t)v << 20) ^ (i * 0x9e3779b97f4a7c15ull) ^ 1;
}

static void *sink_page(void *opaque, uint64_t gfn)
{
	return fake_guest_page(opaque, gfn);
}

struct stream_page_sink fake_guest_sink(struct fake_guest *g)
{
	return (struct stream_page_sink){.page = sink_page, .opaque = g};
}

uint8_t *mem_copy(struct channel *ch, size_t *len)
{
	const void *data = channel_mem_data(ch, len);
	uint8_t *copy = malloc(*len ? *len : 1);

	if (!copy || !data)
		abort();
	memcpy(copy, data, *len);
	return copy;
}

struct channel *reopen(struct channel *wch)
{
	struct ferr err = FERR_INIT;
	struct channel *ch;
	size_t len;
	const void *data = channel_mem_data(wch, &len);

	if (channel_mem_open(data, len, &ch, &err))
		abort();
	channel_close(wch);
	return ch;
}

size_t record_offset(const uint8_t *buf, size_t len, uint64_t number)
{
	uint32_t hlen;
	size_t off;

	memcpy(&hlen, buf + 12, 4);
	off = hlen;
	for (uint64_t n = 1; off + 16 <= len && n != number; n++) {
		uint64_t rlen;
		memcpy(&rlen, buf + off + 8, 8);
		off += 16 + rlen + stream_pad8(rlen) + 8;
	}
	return off;
}

void rechecksum(uint8_t *buf, size_t off, uint64_t number)
{
	uint64_t rlen, sum;

	memcpy(&rlen, buf + off + 8, 8);
	size_t body = 16 + rlen + stream_pad8(rlen);
	sum = XXH3_64bits_withSeed(buf + off, body, number);
	memcpy(buf + off + body, &sum, 8);
}

void rechecksum_header(uint8_t *buf)
{
	uint32_t hlen;
	uint64_t sum;

	memcpy(&hlen, buf + 12, 4);
	sum = XXH3_64bits(buf, hlen - 8);
	memcpy(buf + hlen - 8, &sum, 8);
}

static int load_records(struct stream_reader *r, struct fake_guest *g, size_t len, struct ferr *err)
{
	struct stream_page_sink sink = fake_guest_sink(g);
	struct stream_record rec;
	struct stream_msg m;
	struct stream_blob b;

	for (;;) {
		int rc = stream_next_record(r, &rec, err);
		if (rc == -EPIPE && r->ended && r->stats.bytes == len) {
			ferr_clear(err); /* a clean end after END */
			return 0;
		}
		if (rc)
			return rc;
		switch (rec.type) {
		case STREAM_REC_PAGE_BATCH:
			rc = stream_read_page_batch(r, &sink, err);
			break;
		case STREAM_REC_VCPU_STATE:
		case STREAM_REC_VM_STATE:
		case STREAM_REC_DEVICE_STATE: {
			void *buf = malloc(rec.length + 1); /* bounded by the type */
			rc = stream_read_blob(r, &b, buf, rec.length, err);
			free(buf);
			break;
		}
		default:
			rc = stream_read_msg(r, &m, err);
			break;
		}
		if (rc)
			return rc;
	}
}

int load_stream(const uint8_t *buf, size_t len, struct fake_guest *g, struct ferr *err)
{
	struct stream_reader r;
	struct channel *ch;

	int rc = channel_mem_open(buf, len, &ch, err);
	if (rc)
		return rc;
	rc = stream_reader_init(&r, ch, STREAM_MIGRATION, err);
	if (rc == 0) {
		rc = stream_read_header(&r, NULL, err);
		if (rc == 0)
			rc = load_records(&r, g, len, err);
		stream_reader_destroy(&r);
	}
	channel_close(ch);
	return rc;
}

#define CHECK(x)                 \
	do {                     \
		if ((x) != 0)    \
			abort(); \
	} while (0)

uint8_t *sample_stream(struct fake_guest *src, struct channel *ch, size_t *len)
{
	static const char vcpu0[] = "vcpu zero st", vcpu3[] = "vcpu three", dev[] = "uart",
			  vm[] = "vm-state";
	struct ferr err = FERR_INIT;
	struct stream_writer w;
	struct channel *mem = NULL;

	if (!ch) {
		CHECK(channel_mem_open(NULL, 0, &mem, &err));
		ch = mem;
	}
	fake_guest_fill(src, 1, 1);
	fake_guest_fill(src, 2, 1);
	CHECK(stream_writer_init(&w, ch, STREAM_MIGRATION, &err));
	CHECK(stream_write_header(&w, &src->hdr, &err));
	CHECK(stream_batch_zero(&w, 0, &err));
	CHECK(stream_batch_ref(&w, 1, fake_guest_page(src, 1), &err));
	CHECK(stream_batch_copy(&w, 2, fake_guest_page(src, 2), &err));
	CHECK(stream_batch_zero(&w, 3, &err));
	CHECK(stream_write_msg(
	    &w, &(struct stream_msg){.type = STREAM_REC_PASS_END, .pass_end.remaining = 2}, &err));
	fake_guest_fill(src, 1, 2);
	memset(fake_guest_page(src, 2), 0, STREAM_PAGE_SIZE);
	CHECK(stream_batch_copy(&w, 1, fake_guest_page(src, 1), &err));
	CHECK(stream_batch_zero(&w, 2, &err));
	CHECK(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_REC_PASS_END}, &err));
	CHECK(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE},
			       &err));
	CHECK(stream_write_vcpu_state(&w, 0, vcpu0, sizeof(vcpu0), &err));
	CHECK(stream_write_vcpu_state(&w, 3, vcpu3, sizeof(vcpu3), &err));
	CHECK(stream_write_device_state(&w, "serial0", 1, dev, sizeof(dev), &err));
	CHECK(stream_write_vm_state(&w, vm, sizeof(vm), &err));
	CHECK(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_REC_END}, &err));
	CHECK(stream_write_msg(&w, &(struct stream_msg){.type = STREAM_MSG_GO}, &err));
	stream_writer_destroy(&w);
	if (!mem) {
		*len = 0;
		return NULL;
	}
	uint8_t *copy = mem_copy(mem, len);
	channel_close(mem);
	return copy;
}

/* ------------------------------------------------------------------------ */

struct trickle {
	struct channel *inner;
	size_t chunk;
};

static ssize_t trickle_read(struct channel *ch, void *buf, size_t len, struct ferr *err)
{
	struct trickle *t = ch->priv;

	return t->inner->ops->read(t->inner, buf, len < t->chunk ? len : t->chunk, err);
}

static ssize_t trickle_writev(struct channel *ch, const struct iovec *iov, int iovcnt,
			      struct ferr *err)
{
	struct trickle *t = ch->priv;
	struct iovec one = iov[0];

	if (one.iov_len > t->chunk)
		one.iov_len = t->chunk;
	return t->inner->ops->writev(t->inner, &one, 1, err);
}

static void trickle_close(struct channel *ch)
{
	struct trickle *t = ch->priv;

	channel_close(t->inner);
	free(t);
	free(ch);
}

static const struct channel_ops trickle_ops = {
    .kind = "trickle",
    .read = trickle_read,
    .writev = trickle_writev,
    .close = trickle_close,
};

struct channel *trickle_channel(struct channel *inner, size_t chunk)
{
	struct channel *ch = calloc(1, sizeof(*ch));
	struct trickle *t = calloc(1, sizeof(*t));

	if (!ch || !t)
		abort();
	*t = (struct trickle){inner, chunk};
	ch->ops = &trickle_ops;
	ch->fd = -1;
	ch->cancel_fd = -1;
	ch->timeout_ms = -1;
	ch->priv = t;
	strcpy(ch->name, "trickle");
	return ch;
}
