/*
 * Exit codes written to the isa-debug-exit port. The host sees
 * (code << 1) | 1 as the exit status of QEMU or ferry.
 */
#ifndef FERRY_GUEST_EXITCODES_H
#define FERRY_GUEST_EXITCODES_H

#define DEBUG_EXIT_PORT 0xf4

#define FERRY_EXIT_VERIFY 0x10 /* verify workload found a bad page: 33 */
#define FERRY_EXIT_ERROR  0x20 /* bad cmdline, exception, boot error: 65 */
#define FERRY_EXIT_CLOCK  0x30 /* TSC went backwards on a CPU: 97 */

#endif
