// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of the command line (src/cli): ferry migrate and its QMP client. */
#include "tests.h"

int main(void)
{
	int failed = 0;

	failed += run_qmp_client_tests();
	failed += run_migrate_tests();
	return failed ? 1 : 0;
}
