/* SPDX-License-Identifier: GPL-2.0-only */
/* Building and serializing the messages the server sends. */
#ifndef FERRY_CONTROL_QMP_MESSAGE_H
#define FERRY_CONTROL_QMP_MESSAGE_H

#include <stddef.h>

#include <jansson.h>

/* {"QMP": {"version": ..., "capabilities": []}} */
json_t *qmp_greeting(void);

/* {"return": @ret, "id": @id}; steals @ret (NULL means {}), @id may be NULL. */
json_t *qmp_return_reply(json_t *ret, json_t *id);

/* {"error": {"class": @class, "desc": @desc}, "id": @id}; @id may be NULL. */
json_t *qmp_error_reply(const char *class, const char *desc, json_t *id);

/*
 * {"timestamp": {"seconds": S, "microseconds": US}, "event": @event,
 *  "data": @data}, timestamp from the wall clock now; "data" is left out
 * when @data is NULL, as QEMU does.  Steals @data.
 */
json_t *qmp_event(const char *event, json_t *data);

/*
 * One wire line: @msg serialized on a single line followed by "\r\n".
 * Steals @msg.  Returns a malloc'd buffer and its length in *@len, or NULL.
 */
char *qmp_message_line(json_t *msg, size_t *len);

#endif
