/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A stand-in for src/vm: the vm.h calls the control commands make, backed
 * by a struct the test inspects.  State changes call the listener, as the
 * real VM does.
 */
#ifndef FERRY_TESTS_FAKE_VM_H
#define FERRY_TESTS_FAKE_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/vm.h"

#define FAKE_VM_MEM 4096

struct vm {
	enum vm_runstate state;
	const char *name;
	struct vm_listener listener;
	uint8_t mem[FAKE_VM_MEM];
	int stop_calls, cont_calls;
	/* vm_request_quit() */
	char quit_reason[64];
	bool quit_saw_reply;   /* data was readable on @peek_fd at that point */
	atomic_int quit_calls; /* last: set once the fields above are */
	int peek_fd;	       /* client socket to look at when quit is requested */
	/* vm_pmemsave() */
	uint64_t pmem_gpa, pmem_size;
	char pmem_path[256];
};

#endif
