/*
 * Start the APs: INIT, then SIPI to the trampoline page, all APs at
 * once. Like Linux on current CPUs there is no 10 ms wait after INIT
 * (hypervisors and modern hardware do not need it); an AP that has not
 * checked in after 10 ms gets a second SIPI, as the MP spec prescribes.
 */
#include "kernel.h"
#include "x86.h"

#define ICR_INIT      0x00004500 /* INIT, level assert */
#define ICR_STARTUP   0x00004600 /* Start-up, vector in bits 0-7 */
#define FIRST_WAIT_US 10000
#define LAST_WAIT_US  3000000 /* generous: real mode is emulated */

extern const char tramp_start[], tramp_end[];

static unsigned missing(void)
{
	unsigned n = 0;

	for (unsigned i = 1; i < guest.ncpus; i++)
		n += !__atomic_load_n(&cpu_started[i], __ATOMIC_ACQUIRE);
	return n;
}

static bool wait_for(bool (*done)(void), u64 us)
{
	u64 start = rdtsc(), ticks = us * guest.tsc_khz / 1000;

	while (!done())
		if (rdtsc() - start > ticks)
			return false;
	return true;
}

static bool all_started(void)
{
	return !missing();
}

static bool all_online(void)
{
	return __atomic_load_n(&cpus_online, __ATOMIC_ACQUIRE) == guest.ncpus - 1;
}

static void sipi_missing(void)
{
	for (unsigned i = 1; i < guest.ncpus; i++)
		if (!__atomic_load_n(&cpu_started[i], __ATOMIC_ACQUIRE))
			lapic_ipi(cpu_apic_id[i], ICR_STARTUP | TRAMPOLINE_ADDR >> 12);
}

void smp_start(void)
{
	if (guest.ncpus == 1)
		return;

	memcpy((void *)TRAMPOLINE_ADDR, tramp_start, (size_t)(tramp_end - tramp_start));
	for (unsigned i = 1; i < guest.ncpus; i++)
		lapic_ipi(cpu_apic_id[i], ICR_INIT);
	sipi_missing();
	if (!wait_for(all_started, FIRST_WAIT_US)) {
		sipi_missing();
		if (!wait_for(all_started, LAST_WAIT_US))
			for (unsigned i = 1; i < guest.ncpus; i++)
				if (!cpu_started[i])
					kfatal("CPU %u (APIC ID %u) did not "
					       "start (%u of %u missing)",
					       i, cpu_apic_id[i], missing(), guest.ncpus - 1);
	}
	if (!wait_for(all_online, LAST_WAIT_US))
		kfatal("only %u of %u APs finished their setup", cpus_online, guest.ncpus - 1);
}
