/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A minimal blocking QMP client for the unit tests, plus a temporary
 * directory for socket paths.  Helpers assert with cmocka, so call them
 * from the test thread only.
 */
#ifndef FERRY_TESTS_QMP_TEST_CLIENT_H
#define FERRY_TESTS_QMP_TEST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define TC_TIMEOUT_MS 5000 /* for things that must happen */
#define TC_QUIET_MS   200  /* for things that must not happen */

struct tc {
	int fd;
	char *buf; /* received bytes not yet returned as messages */
	size_t len, cap;
};

/* A fresh directory under $TMPDIR (or /tmp) and "<dir>/qmp.sock" in it. */
void tc_tmpdir(char *dir, size_t dirlen, char *sock, size_t socklen);
/* Remove @dir and what the tests left in it. */
void tc_rmdir(const char *dir);

/* Connect to @path; returns the raw fd (-errno on failure). */
int tc_connect_fd(const char *path);
void tc_open(struct tc *c, const char *path);
void tc_close(struct tc *c);

/* Send all of @data. */
void tc_send_raw(struct tc *c, const void *data, size_t len);
void tc_send(struct tc *c, const char *text);

/*
 * Next message as parsed JSON, or NULL on EOF or after @timeout_ms.
 * Asserts that every line ends with "\r\n".
 */
json_t *tc_recv_timeout(struct tc *c, int timeout_ms);
/* Next message; fails the test on EOF or timeout. */
json_t *tc_recv(struct tc *c);
/* True if the server closes the connection within @timeout_ms (data before it is discarded). */
bool tc_wait_eof(struct tc *c, int timeout_ms);

/* Read and check the greeting, then negotiate capabilities. */
void tc_negotiate(struct tc *c);
/* Send @text and return the next message (the reply, unless an event is pending). */
json_t *tc_cmd(struct tc *c, const char *text);
/*
 * Like tc_cmd(), for readable tests as in QEMU's qtest: every ' in @text
 * becomes ", and a newline is appended.  {'execute': 'stop'}
 */
json_t *tc_qmp(struct tc *c, const char *text);
void tc_sendq(struct tc *c, const char *text);

/* Assertions on replies. */
void tc_assert_return(json_t *msg);
void tc_assert_error(json_t *msg, const char *class, const char *desc_part);
const char *tc_desc(json_t *msg);

#endif
