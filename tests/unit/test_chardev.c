// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/chardev.h"

static void test_specs_rejected(void **state)
{
	static const char *const bad[] = {
	    "", "file", "file:", "unix:", "tcp:1", "stdio:x", "nul", "unix:/nonexistent/dir/sock"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferr err = FERR_INIT;
		struct chardev *cd = NULL;
		if (chardev_open(bad[i], &cd, &err) == 0)
			fail_msg("backend '%s' was accepted", bad[i]);
		assert_null(cd);
		assert_true(strlen(err.msg) > 0);
	}
}

static void test_file_backend(void **state)
{
	char path[] = "/tmp/ferry-chardev-XXXXXX";
	char spec[64], buf[16] = {0};
	struct ferr err = FERR_INIT;
	struct chardev *cd;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(chardev_open(spec, &cd, &err), 0);
	chardev_write(cd, "hello", 5);
	chardev_close(cd);
	assert_int_equal(read(fd, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "hello");
	close(fd);
	unlink(path);
}

static void test_unix_backend(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char spec[128], buf[8] = {0};
	struct ferr err = FERR_INIT;
	struct chardev *cd;
	int ls, cs;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/ferry-cd-%d.sock", getpid());
	unlink(sa.sun_path);
	ls = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 1), 0);
	snprintf(spec, sizeof(spec), "unix:%s", sa.sun_path);
	assert_int_equal(chardev_open(spec, &cd, &err), 0);
	cs = accept(ls, NULL, NULL);
	assert_true(cs >= 0);
	chardev_write(cd, "hb", 2);
	assert_int_equal(read(cs, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "hb");
	/* reader gone: writes are dropped, never fatal (SIGPIPE ignored as in main) */
	signal(SIGPIPE, SIG_IGN);
	close(cs);
	chardev_write(cd, "x", 1);
	chardev_write(cd, "y", 1);
	chardev_close(cd);
	close(ls);
	unlink(sa.sun_path);
}

static void test_null_backend(void **state)
{
	struct ferr err = FERR_INIT;
	struct chardev *cd;

	assert_int_equal(chardev_open("null", &cd, &err), 0);
	chardev_write(cd, "ignored", 7);
	chardev_close(cd);
	chardev_write(NULL, "x", 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_specs_rejected),
	    cmocka_unit_test(test_file_backend),
	    cmocka_unit_test(test_unix_backend),
	    cmocka_unit_test(test_null_backend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
