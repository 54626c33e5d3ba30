// SPDX-License-Identifier: GPL-2.0-only
#include "machine/machine.h"

#include <errno.h>
#include <stdlib.h>

#include "boot/boot.h"
#include "devices/acpi_pm.h"
#include "devices/misc.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "machine/board.h"
#include "vm/vm.h"

struct machine {
	struct vm *vm;
	struct board_ctl ctl; /* the devices hold pointers to it */
	struct serial *serial;
	struct acpi_pm acpi_pm;
	struct rtc rtc;
	bool rtc_inited;
};

static int machine_irq_line(void *opaque, unsigned irq, bool level)
{
	return vm_irq_line(opaque, irq, level);
}

static void machine_shutdown(void *opaque, const char *reason, bool guest, int exit_status)
{
	vm_request_quit(opaque, reason, guest, exit_status);
}

int machine_create(struct vm *vm, const struct machine_config *cfg, struct machine **out,
		   struct ferr *err)
{
	struct machine *m = calloc(1, sizeof(*m));
	struct iobus *io = vm_iobus(vm);
	int rc;

	if (!m)
		return ferr_set(err, -ENOMEM, "out of memory");
	m->vm = vm;
	m->ctl = (struct board_ctl){machine_irq_line, machine_shutdown, vm};
	rc = serial_create(&m->ctl, io, BOARD_COM1_BASE, BOARD_COM1_IRQ, cfg->serial, &m->serial,
			   err);
	if (!rc)
		rc = vm_add_device(vm, "serial0", &serial_state_ops, m->serial, err);
	if (!rc)
		rc = misc_devices_init(&m->ctl, io, cfg->debugcon, err);
	if (!rc)
		rc = acpi_pm_init(&m->acpi_pm, &m->ctl, io, err);
	if (!rc) {
		rc = rtc_init(&m->rtc, io, err);
		m->rtc_inited = true;
	}
	if (!rc && cfg->kernel)
		rc = boot_load(vm_guest_mem(vm), vm_vcpu_fd(vm, 0), vm_ncpus(vm), cfg->kernel,
			       cfg->initrd, cfg->cmdline, err);
	if (rc) {
		/* the VM has not run: nothing else uses the devices */
		serial_stop_input(m->serial);
		serial_destroy(m->serial);
		if (m->rtc_inited)
			rtc_destroy(&m->rtc);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void machine_destroy(struct machine *m, struct vm *vm)
{
	if (m)
		serial_stop_input(m->serial);
	vm_destroy(vm);
	if (!m)
		return;
	serial_destroy(m->serial);
	if (m->rtc_inited)
		rtc_destroy(&m->rtc);
	free(m);
}
