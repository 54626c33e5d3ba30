/*
 * Polled 16550 output on COM1 and whole-line printing. A spinlock in
 * ordinary memory keeps lines from different CPUs apart; it works the
 * same from ring 0 and ring 3.
 */
#ifndef FERRY_GUEST_SERIAL_H
#define FERRY_GUEST_SERIAL_H

#include "guest.h"

#define COM1_PORT      0x3f8
#define HEARTBEAT_PORT 0xe9
#define LINE_MAX       (CMDLINE_MAX + 256)

void serial_init(void);
/* Raw output, ring 0 or IOPL only: no lock, no newline. */
void serial_write(const char *s, size_t n);
/* outb that also works from ring 3 when IOPL is not honoured. */
void port_out(u16 port, u8 v);

/* Print one line ("\n" is appended) without interleaving. */
void say(const char *f, ...) __printf(1, 2);

/*
 * Failure path: take the lock (stealing it after a bounded wait), print
 * the line, exit through the debug-exit port and never return. The lock
 * is never released, so other CPUs stop printing if the exit port is
 * missing.
 */
__noreturn void say_and_exit(u8 code, const char *f, ...) __printf(2, 3);

/* For multi-line failure reports (exception dumps). */
void serial_lock_for_exit(void);
void say_locked(const char *f, ...) __printf(1, 2);
__noreturn void exit_locked(u8 code);

#endif
