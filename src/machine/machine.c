// SPDX-License-Identifier: GPL-2.0-only
#include "machine/machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "common/sbuf.h"
#include "devices/acpi_pm.h"
#include "devices/misc.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "machine/board.h"
#include "vm/state.h"
#include "vm/vm.h"

struct machine {
	struct vm *vm;
	struct board_ctl ctl; /* the devices hold pointers to it */
	struct serial *serial;
	struct acpi_pm acpi_pm;
	struct rtc rtc;
	bool rtc_inited;
	/* What a reset loads (copies: the caller's strings may go). */
	char *kernel, *initrd, *cmdline;
	/* The vCPUs' and the VM core's state at power-on, for a reset. */
	struct sbuf vm_reset_state;
	struct sbuf *vcpu_reset_state; /* one per vCPU */
	unsigned ncpus;
};

static int machine_irq_line(void *opaque, unsigned irq, bool level)
{
	struct machine *m = opaque;

	return vm_irq_line(m->vm, irq, level);
}

static void machine_shutdown(void *opaque, const char *reason, bool guest, int exit_status)
{
	struct machine *m = opaque;

	vm_request_quit(m->vm, reason, guest, exit_status);
}

static void machine_request_reset(void *opaque, const char *reason)
{
	struct machine *m = opaque;

	vm_request_reset(m->vm, reason);
}

/* The power-on state, captured before anything ran or was loaded. */
static int machine_capture_reset_state(struct machine *m, struct ferr *err)
{
	int rc;

	m->ncpus = vm_ncpus(m->vm);
	m->vcpu_reset_state = calloc(m->ncpus, sizeof(*m->vcpu_reset_state));
	if (!m->vcpu_reset_state)
		return ferr_set(err, -ENOMEM, "out of memory");
	rc = vm_state_save(m->vm, &m->vm_reset_state, err);
	for (unsigned i = 0; !rc && i < m->ncpus; i++)
		rc = vcpu_state_save(m->vm, i, &m->vcpu_reset_state[i], err);
	if (rc)
		ferr_prefix(err, "saving the power-on state: ");
	return rc;
}

/*
 * A reset (vm/vm.h: every vCPU parked): vCPUs and the in-kernel irqchip,
 * PIT and clock back to their power-on state, the devices reset, and the
 * kernel, initrd and boot data loaded again from their files, as at boot.
 * RAM keeps what it held otherwise, as a PC's does.
 */
static int machine_reset(void *opaque, struct ferr *err)
{
	struct machine *m = opaque;
	int rc = 0;

	if (!m->kernel) {
		fprintf(stderr, "ferry: the guest reset, and there is no kernel to boot again (an "
				"incoming VM started without --kernel): ending the VM\n");
		return 1;
	}
	for (unsigned i = 0; !rc && i < m->ncpus; i++)
		rc = vcpu_state_load(m->vm, i, m->vcpu_reset_state[i].data,
				     m->vcpu_reset_state[i].len, err);
	if (!rc)
		rc = vm_state_load(m->vm, m->vm_reset_state.data, m->vm_reset_state.len, err);
	if (rc)
		return rc;
	serial_reset(m->serial);
	acpi_pm_reset(&m->acpi_pm);
	rtc_reset(&m->rtc);
	return boot_load(vm_guest_mem(m->vm), vm_vcpu_fd(m->vm, 0), m->ncpus, m->kernel, m->initrd,
			 m->cmdline, err);
}

static int machine_keep_boot_config(struct machine *m, const struct machine_config *cfg,
				    struct ferr *err)
{
	if (cfg->kernel && !(m->kernel = strdup(cfg->kernel)))
		return ferr_set(err, -ENOMEM, "out of memory");
	if (cfg->initrd && !(m->initrd = strdup(cfg->initrd)))
		return ferr_set(err, -ENOMEM, "out of memory");
	if (cfg->cmdline && !(m->cmdline = strdup(cfg->cmdline)))
		return ferr_set(err, -ENOMEM, "out of memory");
	return 0;
}

static void machine_free(struct machine *m)
{
	serial_destroy(m->serial);
	if (m->rtc_inited)
		rtc_destroy(&m->rtc);
	for (unsigned i = 0; m->vcpu_reset_state && i < m->ncpus; i++)
		sbuf_free(&m->vcpu_reset_state[i]);
	free(m->vcpu_reset_state);
	sbuf_free(&m->vm_reset_state);
	free(m->kernel);
	free(m->initrd);
	free(m->cmdline);
	free(m);
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
	m->ctl = (struct board_ctl){machine_irq_line, machine_shutdown, machine_request_reset, m};
	rc = machine_keep_boot_config(m, cfg, err);
	if (!rc)
		rc = machine_capture_reset_state(m, err);
	if (!rc)
		rc = serial_create(&m->ctl, io, BOARD_COM1_BASE, BOARD_COM1_IRQ, cfg->serial,
				   &m->serial, err);
	if (!rc)
		rc = vm_add_device(vm, "serial0", &serial_state_ops, m->serial, err);
	if (!rc)
		rc = misc_devices_init(&m->ctl, io, cfg->debugcon, err);
	if (!rc)
		rc = acpi_pm_init(&m->acpi_pm, &m->ctl, io, err);
	if (!rc)
		rc = vm_add_device(vm, "acpi-pm", &acpi_pm_state_ops, &m->acpi_pm, err);
	if (!rc) {
		rc = rtc_init(&m->rtc, io, err);
		m->rtc_inited = true;
	}
	if (!rc)
		rc = vm_add_device(vm, "rtc0", &rtc_state_ops, &m->rtc, err);
	if (!rc && cfg->kernel && !cfg->incoming)
		rc = boot_load(vm_guest_mem(vm), vm_vcpu_fd(vm, 0), vm_ncpus(vm), cfg->kernel,
			       cfg->initrd, cfg->cmdline, err);
	if (rc) {
		/* the VM has not run: nothing else uses the devices */
		machine_free(m);
		return rc;
	}
	vm_set_reset_handler(vm, &(struct vm_reset_handler){machine_reset, m});
	*out = m;
	return 0;
}

void machine_destroy(struct machine *m, struct vm *vm)
{
	if (m)
		serial_stop_input(m->serial);
	vm_destroy(vm);
	if (m)
		machine_free(m);
}
