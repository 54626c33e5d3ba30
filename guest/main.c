/*
 * Kernel entry for the BSP (kmain) and the APs (ap_main). Both do the
 * minimum of ring-0 setup and leave for ring 3, where the workloads and
 * nearly all printing happen.
 */
#include "exitcodes.h"
#include "kernel.h"
#include "serial.h"
#include "x86.h"

struct guest guest;
u8 cpu_apic_id[MAX_CPUS];

u32 cpu_started[MAX_CPUS];
u32 cpus_online;

__noreturn void kfatal(const char *f, ...)
{
	char msg[LINE_MAX - 32];
	va_list ap;

	va_start(ap, f);
	vfmt(msg, sizeof(msg), f, ap);
	va_end(ap);
	say_and_exit(FERRY_EXIT_ERROR, "ferry-guest: error: %s", msg);
}

unsigned this_cpu(void)
{
	u8 id = (u8)(lapic_read(LAPIC_ID) >> 24);

	for (unsigned i = 0; i < guest.ncpus; i++)
		if (cpu_apic_id[i] == id)
			return i;
	return 0;
}

static u64 ustack_top(unsigned cpu)
{
	/* -8: ring-3 entry sees the stack as if it had been called */
	return (u64)ustacks + (u64)(cpu + 1) * USTACK_SIZE - 8;
}

__noreturn void kmain(u32 magic, u32 mbi)
{
	char err[CMDLINE_MAX + 128];

	guest.boot_tsc = rdtsc();
	serial_init();
	desc_init(); /* from here on, faults are reported */
	desc_load(0);
	multiboot_parse(magic, mbi);
	if (cmdline_parse(guest.cmdline, &guest.cfg, err, sizeof(err)))
		kfatal("%s", err);

	mm_init();
	pic_disable();
	lapic_init();
	time_calibrate();
	acpi_find_cpus();
	smp_start();
	workset_layout();
	lapic_timer_start();
	enter_user(user_main, ustack_top(0), 0);
}

__noreturn void ap_main(unsigned cpu)
{
	__atomic_store_n(&cpu_started[cpu], 1, __ATOMIC_RELEASE);
	desc_load(cpu);
	lapic_init();
	lapic_timer_start();
	__atomic_add_fetch(&cpus_online, 1, __ATOMIC_RELEASE);
	enter_user(user_main, ustack_top(cpu), cpu);
}
