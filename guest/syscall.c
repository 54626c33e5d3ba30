/* Kernel side of the system calls other than SYS_HALT (see syscall.h). */
#include "exitcodes.h"
#include "kernel.h"
#include "serial.h"
#include "syscall.h"
#include "x86.h"

void syscall_dispatch(u64 a0, u64 a1, u64 nr)
{
	switch (nr) {
	case SYS_OUTB:
		outb((u16)a0, (u8)a1);
		break;
	case SYS_SERIAL:
		serial_write((const char *)a0, a1);
		break;
	default:
		kfatal("unknown system call %lu", nr);
	}
}
