/*
 * COM1 output. Every byte polls the line status register first, so it
 * works on real UARTs, QEMU and VMMs that model THR-empty as always set.
 * A missing UART reads 0xff, which also lets the write go ahead.
 */
#include "exitcodes.h"
#include "serial.h"
#include "syscall.h"
#include "x86.h"

#define UART_THR 0
#define UART_IER 1
#define UART_DLL 0
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20

static u32 serial_lock;

void serial_init(void)
{
	outb(COM1_PORT + UART_IER, 0x00); /* polled: no interrupts */
	outb(COM1_PORT + UART_LCR, 0x80); /* DLAB on */
	outb(COM1_PORT + UART_DLL, 0x01); /* divisor 1: 115200 baud */
	outb(COM1_PORT + UART_DLM, 0x00);
	outb(COM1_PORT + UART_LCR, 0x03); /* 8N1, DLAB off */
	outb(COM1_PORT + UART_FCR, 0xc7); /* FIFOs on and cleared */
	outb(COM1_PORT + UART_MCR, 0x03); /* DTR, RTS; OUT2 off */
}

void serial_write(const char *s, size_t n)
{
	while (n--) {
		while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE))
			cpu_relax();
		outb(COM1_PORT + UART_THR, (u8)*s++);
	}
}

/* From any ring: directly if IOPL lets us, else via the kernel. */
static void emit(const char *s, size_t n)
{
	if (io_allowed())
		serial_write(s, n);
	else
		syscall2(SYS_SERIAL, (u64)s, n);
}

void port_out(u16 port, u8 v)
{
	if (io_allowed())
		outb(port, v);
	else
		syscall2(SYS_OUTB, port, v);
}

static void lock(void)
{
	while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE))
		while (READ_ONCE(serial_lock))
			cpu_relax();
}

static void unlock(void)
{
	__atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

static void vsay(const char *f, va_list ap, bool take_lock)
{
	char buf[LINE_MAX];
	size_t n = vfmt(buf, sizeof(buf) - 1, f, ap);

	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (take_lock)
		lock();
	emit(buf, n);
	if (take_lock)
		unlock();
}

void say(const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsay(f, ap, true);
	va_end(ap);
}

void say_locked(const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsay(f, ap, false);
	va_end(ap);
}

/*
 * A CPU that faulted while printing still owns the lock; wait about
 * 100 ms (or a fixed number of spins before the TSC is calibrated) and
 * then take it anyway.
 */
void serial_lock_for_exit(void)
{
	u64 khz = READ_ONCE(guest.tsc_khz);
	u64 start = rdtsc(), spins = 0;

	while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE)) {
		if (khz ? rdtsc() - start > khz * 100 : ++spins > 100000)
			return;
		cpu_relax();
	}
}

__noreturn void exit_locked(u8 code)
{
	port_out(DEBUG_EXIT_PORT, code);
	/* No debug-exit device: park this CPU, keeping the lock. */
	for (;;) {
		if (cpl() == 3)
			sys_halt();
		else
			asm volatile("cli; hlt");
	}
}

__noreturn void say_and_exit(u8 code, const char *f, ...)
{
	va_list ap;

	serial_lock_for_exit();
	va_start(ap, f);
	vsay(f, ap, false);
	va_end(ap);
	exit_locked(code);
}
