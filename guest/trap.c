/*
 * Exceptions end the run: dump the registers to the serial port and
 * exit with FERRY_EXIT_ERROR. The frame layout matches exc_common.
 */
#include "exitcodes.h"
#include "kernel.h"
#include "serial.h"
#include "x86.h"

struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error;
	u64 rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

static const char *const names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#09", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

__noreturn void trap_exception(struct trap_frame *f)
{
	serial_lock_for_exit();
	say_locked("ferry-guest: error: exception %lu (%s) cpu=%u ring=%lu "
		   "error=0x%lx cr2=0x%lx",
		   f->vector, names[f->vector & 31], this_cpu(), f->cs & 3, f->error, read_cr2());
	say_locked("ferry-guest:   rip=0x%016lx rsp=0x%016lx rflags=0x%lx", f->rip, f->rsp,
		   f->rflags);
	say_locked("ferry-guest:   rax=0x%016lx rbx=0x%016lx rcx=0x%016lx", f->rax, f->rbx, f->rcx);
	say_locked("ferry-guest:   rdx=0x%016lx rsi=0x%016lx rdi=0x%016lx", f->rdx, f->rsi, f->rdi);
	say_locked("ferry-guest:   rbp=0x%016lx r8=0x%016lx r9=0x%016lx", f->rbp, f->r8, f->r9);
	say_locked("ferry-guest:   r10=0x%016lx r11=0x%016lx r12=0x%016lx", f->r10, f->r11, f->r12);
	say_locked("ferry-guest:   r13=0x%016lx r14=0x%016lx r15=0x%016lx", f->r13, f->r14, f->r15);
	exit_locked(FERRY_EXIT_ERROR);
}
