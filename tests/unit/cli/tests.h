/* SPDX-License-Identifier: GPL-2.0-only */
/* The groups of the "cli" unit test, one per source file. */
#ifndef FERRY_TESTS_CLI_TESTS_H
#define FERRY_TESTS_CLI_TESTS_H

int run_qmp_client_tests(void);
int run_migrate_tests(void);

#endif
