// SPDX-License-Identifier: GPL-2.0-only
/*
 * 16550A UART.  The guest's writes to THR go straight to the backend, so
 * the transmitter is always empty (LSR.THRE|TEMT) and nothing is ever lost
 * to a full FIFO.  Receive: a thread reads the backend's input (when it has
 * one, devices/chardev.h) into a 16-byte receive FIFO, only while there is
 * room, so input waits in the backend rather than being dropped; LSR.DR
 * and the received-data interrupt (IER bit 0, IIR 0x04) follow the FIFO.
 * Migration (state version 2, vm/state_parse.h): the registers and the
 * receive FIFO's bytes.  Quiescing holds the receive thread, so that no
 * byte leaves the backend after the FIFO was saved: input typed during
 * the switchover waits in the source's backend (the source's console).
 */
#include "devices/serial.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/chardev.h"
#include "vm/iobus.h"
#include "machine/board.h"
#include "vm/state_parse.h"

enum {
	UART_RBR_THR = 0, /* DLL when LCR.DLAB */
	UART_IER = 1,	  /* DLM when LCR.DLAB */
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define UART_LCR_DLAB	    0x80
#define UART_IER_RDI	    0x01
#define UART_IER_THRI	    0x02
#define UART_IIR_NONE	    0x01
#define UART_IIR_THRI	    0x02
#define UART_IIR_RDI	    0x04
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_LSR_DR	    0x01
#define SERIAL_RX_FIFO	    SERIAL_RX_MAX
#define UART_IIR_FIFO	    0xc0
#define UART_FCR_ENABLE	    0x01
#define UART_MCR_OUT2	    0x08
#define UART_MCR_LOOP	    0x10
#define UART_LSR_THRE	    0x20
#define UART_LSR_TEMT	    0x40
#define UART_MSR_IDLE	    0xb0 /* DCD, DSR, CTS asserted */

/* Guest-visible register state: what a snapshot must carry. */
struct serial_regs {
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
	uint8_t thr_ipending; /* THR-empty interrupt pending (cleared by IIR read or THR write) */
};

struct serial {
	pthread_mutex_t lock; /* guards regs; taken by vCPU threads */
	struct serial_regs regs;
	struct board_ctl ctl;
	struct chardev *out;
	uint16_t base;
	unsigned irq;
	bool irq_level;
	/* receive side, under lock; rx_cond: room, stop, hold released, a read done */
	uint8_t rx[SERIAL_RX_FIFO];
	unsigned rx_head, rx_count;
	pthread_cond_t rx_cond;
	pthread_t rx_thread;
	bool rx_started, rx_stop;
	bool rx_hold;	 /* quiesced for a migration: take no input */
	bool rx_reading; /* between poll() and the FIFO: quiesce waits for it */
	int rx_fd;	 /* the backend's input, not owned */
	int rx_wake[2];	 /* pipe: serial_destroy() wakes the thread's poll() */
};

/* Recompute IIR and the interrupt line; called with the lock held. */
static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->regs.fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;

	if ((s->regs.ier & UART_IER_RDI) && s->rx_count)
		return UART_IIR_RDI | fifo;
	if ((s->regs.ier & UART_IER_THRI) && s->regs.thr_ipending)
		return UART_IIR_THRI | fifo;
	return UART_IIR_NONE | fifo;
}

static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & UART_IIR_NONE) && (s->regs.mcr & UART_MCR_OUT2);

	if (level != s->irq_level) {
		s->irq_level = level;
		s->ctl.irq_line(s->ctl.opaque, s->irq, level);
	}
}

static uint32_t serial_in(void *dev, uint16_t port, unsigned size)
{
	struct serial *s = dev;
	struct serial_regs *r = &s->regs;
	uint8_t v = 0;

	pthread_mutex_lock(&s->lock);
	switch (port - s->base) {
	case UART_RBR_THR:
		if (r->lcr & UART_LCR_DLAB) {
			v = r->dll;
		} else if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
			if (s->rx_count-- == SERIAL_RX_FIFO)
				pthread_cond_broadcast(&s->rx_cond);
		}
		break;
	case UART_IER:
		v = (r->lcr & UART_LCR_DLAB) ? r->dlm : r->ier;
		break;
	case UART_IIR_FCR:
		v = serial_iir(s);
		if ((v & 0x0f) == UART_IIR_THRI)
			r->thr_ipending = 0;
		break;
	case UART_LCR:
		v = r->lcr;
		break;
	case UART_MCR:
		v = r->mcr;
		break;
	case UART_LSR:
		v = (r->lsr & ~UART_LSR_DR) | (s->rx_count ? UART_LSR_DR : 0);
		break;
	case UART_MSR:
		v = (r->mcr & UART_MCR_LOOP) ? (uint8_t)((r->mcr & 0x0f) << 4) : r->msr;
		break;
	case UART_SCR:
		v = r->scr;
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void serial_out(void *dev, uint16_t port, unsigned size, uint32_t val)
{
	struct serial *s = dev;
	struct serial_regs *r = &s->regs;
	uint8_t v = val;
	bool tx = false;

	pthread_mutex_lock(&s->lock);
	switch (port - s->base) {
	case UART_RBR_THR:
		if (r->lcr & UART_LCR_DLAB) {
			r->dll = v;
		} else {
			tx = !(r->mcr & UART_MCR_LOOP);
			r->thr_ipending = 1; /* transmitted at once: THR empty again */
		}
		break;
	case UART_IER:
		if (r->lcr & UART_LCR_DLAB) {
			r->dlm = v;
		} else {
			/* Enabling THRI while THR is empty raises it, as on a real 16550. */
			if (!(r->ier & UART_IER_THRI) && (v & UART_IER_THRI))
				r->thr_ipending = 1;
			r->ier = v & 0x0f;
		}
		break;
	case UART_IIR_FCR:
		r->fcr = v & 0xc9;
		if (v & UART_FCR_CLEAR_RCVR) {
			if (s->rx_count == SERIAL_RX_FIFO)
				pthread_cond_broadcast(&s->rx_cond);
			s->rx_count = 0;
		}
		break;
	case UART_LCR:
		r->lcr = v;
		break;
	case UART_MCR:
		r->mcr = v & 0x1f;
		break;
	case UART_SCR:
		r->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	/* Outside the lock: a slow backend must not stall other vCPUs' register reads. */
	if (tx)
		chardev_write(s->out, &v, 1);
}

/* State blob v2: the registers as bytes in this order, then the receive FIFO. */

static int serial_save(void *dev, struct sbuf *out, struct ferr *err)
{
	struct serial *s = dev;
	struct serial_regs *r = &s->regs;
	uint8_t b[SERIAL_NREGS], rx[1 + SERIAL_RX_FIFO];

	pthread_mutex_lock(&s->lock);
	b[0] = r->ier, b[1] = r->lcr, b[2] = r->mcr, b[3] = r->lsr, b[4] = r->msr;
	b[5] = r->scr, b[6] = r->fcr, b[7] = r->dll, b[8] = r->dlm, b[9] = r->thr_ipending;
	rx[0] = (uint8_t)s->rx_count;
	for (unsigned i = 0; i < s->rx_count; i++)
		rx[1 + i] = s->rx[(s->rx_head + i) % SERIAL_RX_FIFO];
	pthread_mutex_unlock(&s->lock);
	if (sbuf_put_section(out, SERIAL_STATE_REGS, b, sizeof(b)) ||
	    sbuf_put_section(out, SERIAL_STATE_RX, rx, 1 + rx[0]))
		return ferr_set(err, -ENOMEM, "serial: out of memory");
	return 0;
}

static int serial_load(void *dev, uint32_t version, const void *blob, size_t len, struct ferr *err)
{
	struct serial *s = dev;
	struct serial_regs *r = &s->regs;
	struct serial_state st;
	const uint8_t *b = st.regs;
	int rc = serial_blob_parse(version, blob, len, &st, err);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->lock);
	r->ier = b[0] & 0x0f, r->lcr = b[1], r->mcr = b[2] & 0x1f;
	r->lsr = b[3], r->msr = b[4], r->scr = b[5], r->fcr = b[6] & 0xc9;
	r->dll = b[7], r->dlm = b[8], r->thr_ipending = b[9] & 1;
	/* the destination's own input, if any arrived already, comes after the guest's */
	uint8_t mine[SERIAL_RX_FIFO];
	unsigned n = 0;
	for (; n < s->rx_count && st.rx_count + n < SERIAL_RX_FIFO; n++)
		mine[n] = s->rx[(s->rx_head + n) % SERIAL_RX_FIFO];
	memcpy(s->rx, st.rx, st.rx_count);
	memcpy(s->rx + st.rx_count, mine, n);
	s->rx_head = 0;
	s->rx_count = st.rx_count + n;
	s->irq_level = false;
	serial_update_irq(s);
	pthread_cond_broadcast(&s->rx_cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int serial_quiesce(void *dev, struct ferr *err)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	s->rx_hold = true;
	while (s->rx_reading)
		pthread_cond_wait(&s->rx_cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void serial_resume(void *dev)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	s->rx_hold = false;
	pthread_cond_broadcast(&s->rx_cond);
	pthread_mutex_unlock(&s->lock);
}

const struct device_state_ops serial_state_ops = {
    .version = 2,
    .quiesce = serial_quiesce,
    .save = serial_save,
    .load = serial_load,
    .resume = serial_resume,
};

static const struct io_ops serial_io_ops = {
    .name = "serial",
    .in = serial_in,
    .out = serial_out,
};

/* The receive thread: backend input into the FIFO while it has room. */
static void *serial_rx_thread(void *arg)
{
	struct serial *s = arg;
	uint8_t buf[SERIAL_RX_FIFO];

	for (;;) {
		struct pollfd p[2] = {{.fd = s->rx_fd, .events = POLLIN},
				      {.fd = s->rx_wake[0], .events = POLLIN}};
		unsigned room;
		ssize_t n;

		pthread_mutex_lock(&s->lock);
		while ((s->rx_count == SERIAL_RX_FIFO || s->rx_hold) && !s->rx_stop)
			pthread_cond_wait(&s->rx_cond, &s->lock);
		bool stop = s->rx_stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		/* Room again under the lock: a load or a quiesce may have come meanwhile. */
		pthread_mutex_lock(&s->lock);
		room = s->rx_hold ? 0 : SERIAL_RX_FIFO - s->rx_count;
		s->rx_reading = room > 0;
		pthread_mutex_unlock(&s->lock);
		if (!room)
			continue;
		n = read(s->rx_fd, buf, room);
		pthread_mutex_lock(&s->lock);
		for (ssize_t i = 0; i < n; i++)
			s->rx[(s->rx_head + s->rx_count++) % SERIAL_RX_FIFO] = buf[i];
		s->rx_reading = false;
		serial_update_irq(s);
		pthread_cond_broadcast(&s->rx_cond);
		pthread_mutex_unlock(&s->lock);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest sees no more */
	}
	return NULL;
}

static int serial_rx_start(struct serial *s, int fd, struct ferr *err)
{
	int rc;

	if (pipe2(s->rx_wake, O_CLOEXEC) < 0)
		return ferr_errno(err, -errno, "serial: pipe");
	s->rx_fd = fd;
	rc = -pthread_create(&s->rx_thread, NULL, serial_rx_thread, s);
	if (rc)
		return ferr_errno(err, rc, "serial: cannot start the receive thread");
	s->rx_started = true;
	return 0;
}

int serial_create(const struct board_ctl *ctl, struct iobus *bus, uint16_t base, unsigned irq,
		  struct chardev *out, struct serial **ret, struct ferr *err)
{
	struct serial *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return ferr_set(err, -ENOMEM, "serial: out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->rx_cond, NULL);
	s->rx_wake[0] = s->rx_wake[1] = -1;
	s->ctl = *ctl;
	s->out = out;
	s->base = base;
	s->irq = irq;
	s->regs.lsr = UART_LSR_THRE | UART_LSR_TEMT;
	s->regs.msr = UART_MSR_IDLE;
	s->regs.dll = 0x0c; /* 9600 baud, the power-on divisor (serial_reset too) */
	rc = iobus_register(bus, base, 8, &serial_io_ops, s, err);
	if (!rc && out && out->in_fd >= 0)
		rc = serial_rx_start(s, out->in_fd, err);
	if (rc) {
		serial_destroy(s);
		return rc;
	}
	*ret = s;
	return 0;
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	s->regs = (struct serial_regs){
	    .lsr = UART_LSR_THRE | UART_LSR_TEMT,
	    .msr = UART_MSR_IDLE,
	    .dll = 0x0c,
	};
	s->rx_head = s->rx_count = 0; /* a reset clears the FIFO; later input still arrives */
	pthread_cond_broadcast(&s->rx_cond);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_stop_input(struct serial *s)
{
	if (s && s->rx_started) {
		pthread_mutex_lock(&s->lock);
		s->rx_stop = true;
		pthread_cond_broadcast(&s->rx_cond);
		pthread_mutex_unlock(&s->lock);
		if (write(s->rx_wake[1], "", 1) < 0) {
			/* a pipe with room: cannot fail; the join below would tell */
		}
		pthread_join(s->rx_thread, NULL);
		s->rx_started = false;
	}
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	serial_stop_input(s);
	for (int i = 0; i < 2; i++)
		if (s->rx_wake[i] >= 0)
			close(s->rx_wake[i]);
	pthread_cond_destroy(&s->rx_cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
