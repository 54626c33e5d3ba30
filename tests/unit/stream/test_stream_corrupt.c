// SPDX-License-Identifier: GPL-2.0-only
/*
 * Damaged and malicious streams: every one is refused, with the message
 * an operator needs, before anything from it is used.  Records crafted
 * with valid checksums (stream_write_record, or patch + rechecksum) get
 * past the checksum to the check under test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migration/stream/stream.h"
#include "stream_test_util.h"

#define MiB (1ull << 20)

/* Records of sample_stream(). */
enum {
	R_BATCH1 = 1,
	R_PASS1,
	R_BATCH2,
	R_PASS2,
	R_SWITCH,
	R_VCPU0,
	R_VCPU3,
	R_DEV,
	R_VM,
	R_END,
	R_GO,
	NRECORDS = R_GO
};

static struct fake_guest src, dst;

static int setup(void **state)
{
	fake_guest_init(&src, 4, 1, 0ull, 4 * MiB);
	fake_guest_init(&dst, 4, 1, 0ull, 4 * MiB);
	return 0;
}

static int teardown(void **state)
{
	fake_guest_destroy(&src);
	fake_guest_destroy(&dst);
	return 0;
}

/* @msg: exact if it starts with '=', else a substring. */
static void expect_load(const uint8_t *buf, size_t len, int rc, const char *msg)
{
	struct ferr err = FERR_INIT;

	int got = load_stream(buf, len, &dst, &err);
	if (got != rc)
		fail_msg("load: got %d (%s), want %d (%s)", got, err.msg, rc, msg);
	if (msg && (msg[0] == '=' ? strcmp(err.msg, msg + 1) != 0 : !strstr(err.msg, msg)))
		fail_msg("load: message \"%s\", want \"%s\"", err.msg, msg);
}

static uint8_t *sample(size_t *len)
{
	return sample_stream(&src, NULL, len);
}

static void test_sample_loads(void **state)
{
	size_t len;
	uint8_t *buf = sample(&len);

	assert_int_equal(record_offset(buf, len, 0), len);
	expect_load(buf, len, 0, NULL);
	free(buf);
}

/* One bit in every byte, the bit rotating: every flip is caught. */
static void test_every_byte(void **state)
{
	size_t len;
	uint8_t *buf = sample(&len);

	for (size_t i = 0; i < len; i++) {
		struct ferr err = FERR_INIT;
		buf[i] ^= (uint8_t)(1u << (i % 8));
		if (load_stream(buf, len, &dst, &err) == 0)
			fail_msg("flip at byte %zu went unnoticed", i);
		assert_true(err.msg[0] != '\0');
		buf[i] ^= (uint8_t)(1u << (i % 8));
	}
	free(buf);
}

/* Every truncation fails, except right after END (a saved file may end there). */
static void test_every_truncation(void **state)
{
	size_t len;
	uint8_t *buf = sample(&len);
	size_t go = record_offset(buf, len, R_GO);

	for (size_t n = 0; n < len; n++) {
		struct ferr err = FERR_INIT;
		int rc = load_stream(buf, n, &dst, &err);
		if (n == go)
			assert_int_equal(rc, 0);
		else if (rc != -EPIPE)
			fail_msg("truncated to %zu bytes: got %d (%s)", n, rc, err.msg);
	}
	free(buf);
}

static void flip(uint8_t *buf, size_t off, uint8_t mask)
{
	buf[off] ^= mask;
}

static void test_corruption_messages(void **state)
{
	size_t len;
	uint8_t *buf = sample(&len);
	size_t vcpu0 = record_offset(buf, len, R_VCPU0);

	flip(buf, 20, 0x01); /* vcpu_count in the header */
	expect_load(buf, len, -EBADMSG, "stream header: checksum mismatch");
	flip(buf, 20, 0x01);

	flip(buf, vcpu0 + 1, 0x01); /* type 0x0003 -> 0x0103 */
	expect_load(buf, len, -EPROTO,
		    "=record 6 (type 0x00000103): unknown mandatory record (written by a newer"
		    " ferry?)");
	flip(buf, vcpu0 + 1, 0x01);

	flip(buf, vcpu0 + 4, 0x01); /* OPTIONAL on a known record: only the checksum sees it */
	expect_load(buf, len, -EBADMSG, "record 6 (VCPU_STATE): checksum mismatch");
	flip(buf, vcpu0 + 4, 0x01);

	flip(buf, vcpu0 + 4, 0x02);
	expect_load(buf, len, -EPROTO, "=record 6 (VCPU_STATE): reserved flags 0x2 are set");
	flip(buf, vcpu0 + 4, 0x02);

	flip(buf, vcpu0 + 8, 0x10); /* length 21 -> 5 */
	expect_load(buf, len, -EPROTO,
		    "=record 6 (VCPU_STATE): length 5 is out of bounds (8..1048584)");
	flip(buf, vcpu0 + 8, 0x10);

	flip(buf, vcpu0 + 14, 0x40); /* length + 2^54 */
	expect_load(buf, len, -EPROTO,
		    "record 6 (VCPU_STATE): length 18014398509482005 exceeds the 64 MiB limit");
	flip(buf, vcpu0 + 14, 0x40);

	flip(buf, vcpu0 + 16 + 10, 0x80); /* the state */
	expect_load(buf, len, -EBADMSG, "record 6 (VCPU_STATE): checksum mismatch: stream says");
	flip(buf, vcpu0 + 16 + 10, 0x80);

	flip(buf, vcpu0 + 16 + 21, 0x01); /* padding: 21 bytes of payload, 3 of padding */
	expect_load(buf, len, -EPROTO, "=record 6 (VCPU_STATE): padding is not zero");
	flip(buf, vcpu0 + 16 + 21, 0x01);

	flip(buf, vcpu0 + 16 + 24, 0x01); /* the checksum itself */
	expect_load(buf, len, -EBADMSG, "record 6 (VCPU_STATE): checksum mismatch");
	flip(buf, vcpu0 + 16 + 24, 0x01);

	size_t page = record_offset(buf, len, R_BATCH1) + 16 + 8 + 32 + 4095;
	flip(buf, page, 0x04);
	expect_load(buf, len, -EBADMSG, "record 1 (PAGE_BATCH): checksum mismatch");
	flip(buf, page, 0x04);

	expect_load(buf, len, 0, NULL);
	free(buf);
}

static void test_truncation_messages(void **state)
{
	size_t len;
	uint8_t *buf = sample(&len);

	expect_load(buf, record_offset(buf, len, R_SWITCH) + 7, -EPIPE,
		    "=record 5: mem: stream ended after 7 of 16 bytes");
	expect_load(buf, record_offset(buf, len, R_BATCH1) + 16 + 8 + 32 + 100, -EPIPE,
		    "=record 1 (PAGE_BATCH): mem: stream ended after 100 of 8192 bytes");
	expect_load(buf, record_offset(buf, len, R_VM) - 3, -EPIPE,
		    "=record 8 (DEVICE_STATE): mem: stream ended after 8 of 11 bytes");
	expect_load(buf, record_offset(buf, len, R_SWITCH), -EPIPE,
		    "=stream ended after record 4 (PASS_END) without an END record");
	expect_load(buf, record_offset(buf, len, R_BATCH1), -EPIPE,
		    "=stream ended before any record after the header");
	free(buf);
}

/* Seeded checksums: a lost or moved record is caught at once. */
static void test_lost_and_reordered(void **state)
{
	size_t len;
	uint8_t *buf = sample(&len);
	uint8_t *cut = malloc(len);
	size_t a = record_offset(buf, len, R_SWITCH), b = record_offset(buf, len, R_VCPU0),
	       c = record_offset(buf, len, R_VCPU3);

	memcpy(cut, buf, a); /* drop SWITCHOVER_PREPARE */
	memcpy(cut + a, buf + b, len - b);
	expect_load(cut, len - (b - a), -EBADMSG,
		    "record 5 (VCPU_STATE): checksum mismatch: stream says 0x");
	expect_load(cut, len - (b - a), -EBADMSG, "(corrupt, or records lost or out of order)");

	memcpy(cut, buf, len); /* swap the two VCPU_STATEs */
	memcpy(cut + b, buf + c, record_offset(buf, len, R_DEV) - c);
	memcpy(cut + b + (record_offset(buf, len, R_DEV) - c), buf + b, c - b);
	expect_load(cut, len, -EBADMSG, "record 6 (VCPU_STATE): checksum mismatch");
	free(cut);
	free(buf);
}

/* ------------------------------------------------------------------------ */
/* Crafted records, valid checksums */

struct raw {
	struct channel *ch;
	struct stream_writer w;
	struct ferr err;
};

static void raw_start(struct raw *s, const struct stream_header *h, enum stream_dir dir)
{
	s->err = (struct ferr)FERR_INIT;
	assert_int_equal(channel_mem_open(NULL, 0, &s->ch, &s->err), 0);
	assert_int_equal(stream_writer_init(&s->w, s->ch, dir, &s->err), 0);
	if (dir == STREAM_MIGRATION)
		assert_int_equal(stream_write_header(&s->w, h, &s->err), 0);
	else
		assert_int_equal(stream_writer_set_header(&s->w, h, &s->err), 0);
}

static void raw(struct raw *s, uint32_t type, const void *p, size_t len)
{
	struct iovec iov = {(void *)p, len};

	assert_int_equal(stream_write_record(&s->w, type, 0, &iov, 1, &s->err), 0);
}

static uint8_t *raw_done(struct raw *s, size_t *len)
{
	uint8_t *buf = mem_copy(s->ch, len);

	stream_writer_destroy(&s->w);
	channel_close(s->ch);
	return buf;
}

/*
 * A migration stream of one crafted record, loaded into dst.  There is no
 * END (the writer's counts would not match a crafted batch), so a record
 * that passes ends the load at the end of the stream.
 */
#define ACCEPTED -EPIPE, "without an END record"

static void expect_raw(uint32_t type, const void *p, size_t plen, int rc, const char *msg)
{
	struct raw s;
	size_t len;

	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	raw(&s, type, p, plen);
	uint8_t *buf = raw_done(&s, &len);
	expect_load(buf, len, rc, msg);
	free(buf);
}

struct batch {
	uint32_t count, reserved;
	uint64_t ent[4];
	uint8_t data[2][4096];
};

static struct batch *batch(uint32_t count, uint32_t reserved, uint64_t e0, uint64_t e1)
{
	static struct batch b;

	memset(&b, 0, sizeof(b));
	b.count = count;
	b.reserved = reserved;
	b.ent[0] = e0;
	b.ent[1] = e1;
	return &b;
}

static void test_bad_batches(void **state)
{
	struct batch *b = batch(1, 0, 0x400 | (1ull << 63), 0);

	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO,
		   "=record 1 (PAGE_BATCH): frame 0x400 is beyond guest memory of 4 MiB");
	b->ent[0] = 7 | (1ull << 52);
	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO,
		   "=record 1 (PAGE_BATCH): entry 0 has reserved bits set (0x0010000000000007)");
	b->ent[0] = 7; /* data promised, none there */
	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO,
		   "=record 1 (PAGE_BATCH): length 16 does not match its 1 entries, 1 of them with"
		   " data (4112 bytes)");
	b = batch(2, 0, 1, 2);
	expect_raw(STREAM_REC_PAGE_BATCH, b, 24 + 4096, -EPROTO,
		   "length 4120 does not match its 2 entries, 2 of them with data (8216 bytes)");
	b->ent[1] |= 1ull << 63; /* ZERO: now the length is right */
	expect_raw(STREAM_REC_PAGE_BATCH, b, 24 + 4096, ACCEPTED);
	expect_raw(STREAM_REC_PAGE_BATCH, b, 24 + 4096 * 2, -EPROTO, "does not match");
	b = batch(0, 0, 1, 0);
	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO,
		   "=record 1 (PAGE_BATCH): 0 pages is out of range (1..256)");
	b->count = 300;
	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO, "300 pages is out of range (1..256)");
	b->count = 3;
	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO,
		   "=record 1 (PAGE_BATCH): length 16 cannot hold 3 entries");
	b = batch(1, 1, 1ull << 63, 0);
	expect_raw(STREAM_REC_PAGE_BATCH, b, 16, -EPROTO, "reserved field is not 0");
	expect_raw(STREAM_REC_PAGE_BATCH, b, 8, -EPROTO,
		   "=record 1 (PAGE_BATCH): length 8 is out of bounds (16..1050632)");
}

/* The example from the issue, and a frame in the PCI hole. */
static void test_frame_messages(void **state)
{
	struct stream_header h = {
	    .page_size = 4096, .vcpu_count = 1, .nregions = 1, .regions = {{0, 1ull << 30}}};
	struct batch *b = batch(1, 0, 0x41000 | (1ull << 63), 0);
	struct stream_reader r;
	struct stream_record rec;
	struct raw s;
	size_t len;

	for (int hole = 0; hole < 2; hole++) {
		if (hole) {
			h.nregions = 2;
			h.regions[0].size = 3ull << 30;
			h.regions[1] = (struct stream_region){4ull << 30, 1ull << 30};
			b->ent[0] = (0xc0000000 >> 12) | (1ull << 63);
		}
		raw_start(&s, &h, STREAM_MIGRATION);
		for (int i = 0; i < 811; i++)
			raw(&s, STREAM_REC_VM_STATE, NULL, 0);
		raw(&s, STREAM_REC_PAGE_BATCH, b, 16);
		uint8_t *buf = raw_done(&s, &len);
		struct ferr err = FERR_INIT;
		struct channel *ch;
		assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
		assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
		assert_int_equal(stream_read_header(&r, NULL, &err), 0);
		for (int i = 0; i < 811; i++) {
			assert_int_equal(stream_next_record(&r, &rec, &err), 0);
			assert_int_equal(stream_skip_record(&r, &err), 0);
		}
		assert_int_equal(stream_next_record(&r, &rec, &err), 0);
		struct stream_page_sink sink = fake_guest_sink(&dst); /* never reached */
		assert_int_equal(stream_read_page_batch(&r, &sink, &err), -EPROTO);
		assert_string_equal(err.msg,
				    hole ? "record 812 (PAGE_BATCH): frame 0xc0000 lies"
					   " outside the guest's memory regions"
					 : "record 812 (PAGE_BATCH): frame 0x41000 is beyond"
					   " guest memory of 1 GiB");
		stream_reader_destroy(&r);
		channel_close(ch);
		free(buf);
	}
}

static void test_bad_state_records(void **state)
{
	struct {
		uint32_t vcpu, reserved;
		char blob[8];
	} v = {4, 0, "state"};
	struct {
		char id[32];
		uint32_t version, reserved;
	} d;

	expect_raw(STREAM_REC_VCPU_STATE, &v, sizeof(v), -EPROTO,
		   "=record 1 (VCPU_STATE): vCPU 4 does not exist (the stream has 4 vCPUs)");
	v.vcpu = 0xffffffff;
	expect_raw(STREAM_REC_VCPU_STATE, &v, sizeof(v), -EPROTO, "vCPU 4294967295 does not exist");
	v = (typeof(v)){3, 1, "x"};
	expect_raw(STREAM_REC_VCPU_STATE, &v, sizeof(v), -EPROTO, "reserved field is not 0");

	static const char *const ids[] = {"", "has space", "tab\there",
					  "0123456789abcdef0123456789abcdef"};
	for (size_t i = 0; i < 4; i++) {
		memset(&d, 0, sizeof(d));
		memcpy(d.id, ids[i], strlen(ids[i]));
		expect_raw(STREAM_REC_DEVICE_STATE, &d, sizeof(d), -EPROTO,
			   "=record 1 (DEVICE_STATE): device id is not 1-31 printable characters"
			   " padded with NUL");
	}
	memset(&d, 0, sizeof(d));
	strcpy(d.id, "serial0");
	d.id[20] = 'x'; /* garbage after the NUL */
	expect_raw(STREAM_REC_DEVICE_STATE, &d, sizeof(d), -EPROTO, "device id is not");
	d.id[20] = 0;
	d.id[7] = (char)0xc3; /* not ASCII */
	expect_raw(STREAM_REC_DEVICE_STATE, &d, sizeof(d), -EPROTO, "device id is not");
	d.id[7] = 0;
	expect_raw(STREAM_REC_DEVICE_STATE, &d, sizeof(d), ACCEPTED);
	expect_raw(STREAM_REC_DEVICE_STATE, &d, sizeof(d) - 1, -EPROTO,
		   "=record 1 (DEVICE_STATE): length 39 is out of bounds (40..1048616)");
	expect_raw(STREAM_REC_VM_STATE, NULL, 0, ACCEPTED);
}

static void test_bad_sequence(void **state)
{
	uint64_t end[4] = {3, 0, 0, 72}, pass[6] = {1, 5, 0, 72, 0, 0}; /* 72: the header */
	uint64_t ready = 0;
	struct raw s;
	size_t len;

	expect_raw(0x42, NULL, 0, -EPROTO,
		   "=record 1 (type 0x00000042): unknown mandatory record (written by a"
		   " newer ferry?)");
	expect_raw(STREAM_MSG_READY, &ready, 8, -EPROTO,
		   "=record 1 (READY): not valid on the migration stream");
	expect_raw(STREAM_MSG_GO, &ready, 8, -EPROTO,
		   "=record 1 (GO): length 8 is out of bounds (0..0)");
	expect_raw(STREAM_REC_END, end, sizeof(end), -EPROTO,
		   "=record 1 (END): source sent 3 records, 0 arrived");
	end[0] = 0;
	end[1] = 1;
	expect_raw(STREAM_REC_END, end, sizeof(end), -EPROTO,
		   "=record 1 (END): source sent 1 pages (0 zero), 0 (0 zero) arrived");
	end[1] = 0;
	end[3] = 73;
	expect_raw(STREAM_REC_END, end, sizeof(end), -EPROTO,
		   "=record 1 (END): source sent 73 bytes, 72 arrived");
	expect_raw(STREAM_REC_PASS_END, pass, sizeof(pass), -EPROTO,
		   "=record 1 (PASS_END): source sent 5 pages (0 zero) in pass 1, 0 (0 zero)"
		   " arrived");
	pass[0] = 2;
	pass[1] = 0;
	expect_raw(STREAM_REC_PASS_END, pass, sizeof(pass), -EPROTO,
		   "=record 1 (PASS_END): pass 2 follows pass 0");
	pass[0] = 1 | (1ull << 32);
	expect_raw(STREAM_REC_PASS_END, pass, sizeof(pass), -EPROTO, "reserved field is not 0");

	/* Nothing but control messages after END. */
	end[3] = 72;
	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	raw(&s, STREAM_REC_END, end, sizeof(end));
	raw(&s, STREAM_MSG_GO, NULL, 0);
	raw(&s, STREAM_REC_VM_STATE, NULL, 0);
	uint8_t *buf = raw_done(&s, &len);
	expect_load(buf, len, -EPROTO, "=record 3 (VM_STATE): record after END");
	free(buf);

	/* Type 0, by patching a valid record. */
	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	raw(&s, STREAM_REC_VM_STATE, NULL, 0);
	buf = raw_done(&s, &len);
	memset(buf + 72, 0, 4);
	rechecksum(buf, 72, 1);
	expect_load(buf, len, -EPROTO, "=record 1 (type 0x00000000): record type 0 is invalid");
	free(buf);
}

/* Return path messages, read as the source would. */
static void expect_return(uint32_t type, const void *p, size_t plen, int rc, const char *msg)
{
	struct ferr err = FERR_INIT;
	struct stream_reader r;
	struct stream_record rec;
	struct stream_msg m;
	struct channel *ch;
	struct raw s;
	size_t len;

	raw_start(&s, &dst.hdr, STREAM_RETURN);
	raw(&s, type, p, plen);
	uint8_t *buf = raw_done(&s, &len);
	assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_RETURN, &err), 0);
	assert_int_equal(stream_reader_set_header(&r, &dst.hdr, &err), 0);
	int got = stream_next_record(&r, &rec, &err);
	if (got == 0)
		got = stream_read_msg(&r, &m, &err);
	if (got != rc || (msg && strcmp(err.msg, msg)))
		fail_msg("got %d \"%s\", want %d \"%s\"", got, err.msg, rc, msg);
	stream_reader_destroy(&r);
	channel_close(ch);
	free(buf);
}

static void test_bad_return_messages(void **state)
{
	struct {
		int32_t code;
		uint32_t reserved;
		char text[16];
	} e = {-5, 0, "bad\nline"};
	struct {
		uint32_t count, reserved;
		uint64_t gfn[3];
	} pr = {2, 0, {1, 0x400}};
	uint64_t ack[2] = {STREAM_MSG_READY, 5}, features = STREAM_FEAT_RETURN_PATH;
	uint32_t abort_msg[2] = {1, 1};

	expect_return(STREAM_MSG_ERROR, &e, 8 + 8, -EPROTO,
		      "record 1 (ERROR): message has control character 0x0a at byte 3");
	e.code = 0;
	expect_return(STREAM_MSG_ERROR, &e, 8 + 3, -EPROTO,
		      "record 1 (ERROR): error code 0 is not a negative errno");
	e.code = -5;
	expect_return(STREAM_MSG_ERROR, &e, 8 + 3, 0, NULL);
	expect_return(STREAM_MSG_ERROR, &e, 8, -EPROTO,
		      "record 1 (ERROR): length 8 is out of bounds (9..519)");
	expect_return(STREAM_MSG_ACK, ack, sizeof(ack), -EPROTO,
		      "record 1 (ACK): acknowledges record 5 of type 0x8001, which the source"
		      " cannot have sent");
	ack[0] = STREAM_REC_END;
	ack[1] = 0;
	expect_return(STREAM_MSG_ACK, ack, sizeof(ack), -EPROTO,
		      "record 1 (ACK): acknowledges record 0 of type 0x7, which the source cannot"
		      " have sent");
	expect_return(
	    STREAM_MSG_POSTCOPY_PAGE_REQUEST, &pr, 24, -EPROTO,
	    "record 1 (POSTCOPY_PAGE_REQUEST): frame 0x400 is beyond guest memory of 4 MiB");
	expect_return(STREAM_MSG_POSTCOPY_PAGE_REQUEST, &pr, 32, -EPROTO,
		      "record 1 (POSTCOPY_PAGE_REQUEST): 32 bytes long, but 2 frames make it 24");
	pr.gfn[1] = 1ull << 60;
	expect_return(STREAM_MSG_POSTCOPY_PAGE_REQUEST, &pr, 24, -EPROTO,
		      "record 1 (POSTCOPY_PAGE_REQUEST): entry 1 has reserved bits set"
		      " (0x1000000000000000)");
	pr.count = 0;
	expect_return(STREAM_MSG_POSTCOPY_PAGE_REQUEST, &pr, 16, -EPROTO,
		      "record 1 (POSTCOPY_PAGE_REQUEST): 0 frames is out of range (1..256)");
	expect_return(STREAM_MSG_READY, &features, 8, -EPROTO,
		      "record 1 (READY): the destination accepts features 0x1 that the stream"
		      " (0x0) does not have");
	expect_return(STREAM_MSG_ABORT, abort_msg, 8, -EPROTO,
		      "record 1 (ABORT): reserved field is not 0");
	expect_return(STREAM_REC_PASS_END, NULL, 0, -EPROTO,
		      "record 1 (PASS_END): not valid on the return path");
	expect_return(STREAM_MSG_GO, NULL, 0, -EPROTO,
		      "record 1 (GO): not valid on the return path");
}

static void test_bad_switchover(void **state)
{
	uint32_t sw[4] = {4, 0, 0, 0};

	expect_raw(STREAM_REC_SWITCHOVER_PREPARE, sw, sizeof(sw), -EPROTO,
		   "=record 1 (SWITCHOVER_PREPARE): unknown flags 0x4");
	sw[0] = STREAM_SWITCHOVER_PAUSED;
	expect_raw(STREAM_REC_SWITCHOVER_PREPARE, sw, sizeof(sw), ACCEPTED);
	/* Post-copy needs the stream's POSTCOPY feature. */
	sw[0] = STREAM_SWITCHOVER_POSTCOPY;
	expect_raw(STREAM_REC_SWITCHOVER_PREPARE, sw, sizeof(sw), -EPROTO,
		   "=record 1 (SWITCHOVER_PREPARE): a post-copy switchover in a stream without "
		   "POSTCOPY");
	sw[0] = 0;
	sw[1] = 1;
	expect_raw(STREAM_REC_SWITCHOVER_PREPARE, sw, sizeof(sw), -EPROTO,
		   "=record 1 (SWITCHOVER_PREPARE): reserved field is not 0");
}

static void *no_page(void *opaque, uint64_t gfn)
{
	return gfn == 2 ? NULL : fake_guest_page(opaque, gfn);
}

static int zero_fails(void *opaque, uint64_t gfn, uint64_t npages, struct ferr *err)
{
	return ferr_set(err, -ENOMEM, "madvise frames 0x%llx+%llu: no", (unsigned long long)gfn,
			(unsigned long long)npages);
}

/* Failures on the destination's side, and a buffer too small. */
static void test_destination_failures(void **state)
{
	const struct stream_page_sink sinks[2] = {{no_page, NULL, &dst},
						  {no_page, zero_fails, &dst}};
	static const char *const msgs[2] = {
	    "record 1 (PAGE_BATCH): frame 0x2 has no page at the destination",
	    "record 1 (PAGE_BATCH): madvise frames 0x2+1: no",
	};
	struct ferr err = FERR_INIT;
	struct stream_reader r;
	struct stream_record rec;
	struct stream_blob b;
	struct channel *ch;
	struct raw s;
	size_t len;
	uint8_t small[8];

	for (int i = 0; i < 2; i++) {
		raw_start(&s, &dst.hdr, STREAM_MIGRATION);
		assert_int_equal(stream_batch_zero(&s.w, 2, &s.err), 0);
		assert_int_equal(stream_batch_flush(&s.w, &s.err), 0);
		uint8_t *buf = raw_done(&s, &len);
		ferr_clear(&err);
		assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
		assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
		assert_int_equal(stream_read_header(&r, NULL, &err), 0);
		assert_int_equal(stream_next_record(&r, &rec, &err), 0);
		int rc = stream_read_page_batch(&r, &sinks[i], &err);
		assert_int_equal(rc, i ? -ENOMEM : -EFAULT);
		assert_string_equal(err.msg, msgs[i]);
		stream_reader_destroy(&r);
		channel_close(ch);
		free(buf);
	}

	size_t slen;
	uint8_t *sbuf = sample(&slen);
	ferr_clear(&err);
	assert_int_equal(channel_mem_open(sbuf, slen, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), 0);
	assert_int_equal(stream_next_record(&r, &rec, &err), 0);
	struct stream_page_batch *pb = malloc(sizeof(*pb));
	assert_int_equal(stream_read_page_batch_verified(&r, small, sizeof(small), pb, &err),
			 -EMSGSIZE);
	assert_string_equal(err.msg, "record 1 (PAGE_BATCH): 8192 bytes of pages do not fit the"
				     " 8-byte buffer");
	free(pb);
	stream_reader_destroy(&r);
	channel_close(ch);

	ferr_clear(&err);
	assert_int_equal(channel_mem_open(sbuf, slen, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), 0);
	do {
		assert_int_equal(stream_next_record(&r, &rec, &err), 0);
		if (rec.type != STREAM_REC_VCPU_STATE)
			assert_int_equal(stream_skip_record(&r, &err), 0);
	} while (rec.type != STREAM_REC_VCPU_STATE);
	assert_int_equal(stream_read_blob(&r, &b, small, sizeof(small), &err), -EMSGSIZE);
	assert_string_equal(err.msg, "record 6 (VCPU_STATE): state of 13 bytes does not fit the"
				     " 8-byte buffer");
	stream_reader_destroy(&r);
	channel_close(ch);
	free(sbuf);
}

/* Calls out of sequence are the caller's bug: -EINVAL, and they stick. */
static void test_misuse(void **state)
{
	struct ferr err = FERR_INIT;
	struct stream_reader r;
	struct stream_record rec;
	struct stream_blob b;
	struct channel *ch;
	size_t len;
	uint8_t *buf = sample(&len);

	assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_next_record(&r, &rec, &err), -EINVAL);
	assert_string_equal(err.msg, "stream reader: no header yet");
	stream_reader_destroy(&r);

	ferr_clear(&err);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), 0);
	assert_int_equal(stream_next_record(&r, &rec, &err), 0);
	assert_int_equal(stream_read_blob(&r, &b, NULL, 0, &err), -EINVAL);
	assert_string_equal(err.msg, "record 1 (PAGE_BATCH): stream reader: not a state record");
	assert_int_equal(stream_skip_record(&r, &err), -EINVAL); /* sticky */
	stream_reader_destroy(&r);
	channel_close(ch);

	ferr_clear(&err);
	assert_int_equal(channel_mem_open(buf, len, &ch, &err), 0);
	assert_int_equal(stream_reader_init(&r, ch, STREAM_MIGRATION, &err), 0);
	assert_int_equal(stream_read_header(&r, NULL, &err), 0);
	assert_int_equal(stream_next_record(&r, &rec, &err), 0);
	assert_int_equal(stream_next_record(&r, &rec, &err), -EINVAL);
	assert_string_equal(err.msg, "record 1 (PAGE_BATCH): stream reader: the record was not"
				     " consumed");
	stream_reader_destroy(&r);
	channel_close(ch);
	free(buf);
}

/* The writer refuses what the reader would, and stops at its first error. */
static void test_writer_refuses(void **state)
{
	static const char *const ids[] = {"", "two words", "0123456789abcdef0123456789abcdef"};
	struct raw s;
	size_t len;

	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	assert_int_equal(stream_batch_zero(&s.w, 0x400, &s.err), -EINVAL);
	assert_string_equal(s.err.msg,
			    "stream writer: frame 0x400 is beyond guest memory of 4 MiB");
	ferr_clear(&s.err);
	assert_int_equal(stream_write_vm_state(&s.w, NULL, 0, &s.err), -EINVAL); /* sticky */
	uint8_t *buf = raw_done(&s, &len);
	assert_int_equal(len, 72); /* the header only */
	free(buf);

	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	assert_int_equal(stream_write_vcpu_state(&s.w, 4, "x", 1, &s.err), -EINVAL);
	free(raw_done(&s, &len));
	for (size_t i = 0; i < 3; i++) {
		raw_start(&s, &dst.hdr, STREAM_MIGRATION);
		assert_int_equal(stream_write_device_state(&s.w, ids[i], 1, NULL, 0, &s.err),
				 -EINVAL);
		assert_non_null(strstr(s.err.msg, "invalid device id"));
		free(raw_done(&s, &len));
	}
	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	assert_int_equal(stream_write_vm_state(&s.w, NULL, STREAM_VM_STATE_MAX + 1, &s.err),
			 -EINVAL);
	free(raw_done(&s, &len));
	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	assert_int_equal(
	    stream_write_msg(&s.w, &(struct stream_msg){.type = STREAM_MSG_READY}, &s.err),
	    -EINVAL);
	assert_string_equal(s.err.msg, "stream writer: READY is not sent on the migration stream");
	free(raw_done(&s, &len));
	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	assert_int_equal(
	    stream_write_msg(&s.w, &(struct stream_msg){.type = STREAM_REC_END}, &s.err), 0);
	assert_int_equal(stream_batch_zero(&s.w, 1, &s.err), -EINVAL);
	assert_string_equal(s.err.msg, "stream writer: PAGE_BATCH after END");
	free(raw_done(&s, &len));
	raw_start(&s, &dst.hdr, STREAM_RETURN);
	assert_int_equal(
	    stream_write_msg(&s.w, &(struct stream_msg){.type = STREAM_REC_PASS_END}, &s.err),
	    -EINVAL);
	free(raw_done(&s, &len));
	raw_start(&s, &dst.hdr, STREAM_RETURN);
	struct stream_msg m = {.type = STREAM_MSG_POSTCOPY_PAGE_REQUEST,
			       .page_request = {1, {0x400}}};
	assert_int_equal(stream_write_msg(&s.w, &m, &s.err), -EINVAL);
	assert_string_equal(s.err.msg, "stream writer: POSTCOPY_PAGE_REQUEST: frame 0x400 is"
				       " beyond guest memory of 4 MiB");
	free(raw_done(&s, &len));
	raw_start(&s, &dst.hdr, STREAM_RETURN);
	m = (struct stream_msg){.type = STREAM_MSG_ACK, .ack = {0x1234, 1}};
	assert_int_equal(stream_write_msg(&s.w, &m, &s.err), -EINVAL);
	free(raw_done(&s, &len));
	raw_start(&s, &dst.hdr, STREAM_MIGRATION);
	m = (struct stream_msg){.type = STREAM_REC_SWITCHOVER_PREPARE, .switchover.flags = 4};
	assert_int_equal(stream_write_msg(&s.w, &m, &s.err), -EINVAL);
	assert_string_equal(s.err.msg, "stream writer: SWITCHOVER_PREPARE: unknown flags 0x4");
	free(raw_done(&s, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sample_loads),	 cmocka_unit_test(test_every_byte),
	    cmocka_unit_test(test_every_truncation),	 cmocka_unit_test(test_corruption_messages),
	    cmocka_unit_test(test_truncation_messages),	 cmocka_unit_test(test_lost_and_reordered),
	    cmocka_unit_test(test_bad_batches),		 cmocka_unit_test(test_frame_messages),
	    cmocka_unit_test(test_bad_state_records),	 cmocka_unit_test(test_bad_sequence),
	    cmocka_unit_test(test_bad_return_messages),	 cmocka_unit_test(test_bad_switchover),
	    cmocka_unit_test(test_destination_failures), cmocka_unit_test(test_misuse),
	    cmocka_unit_test(test_writer_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
