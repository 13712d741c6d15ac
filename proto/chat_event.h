/* chat_event.h: the Kafka record value of the events topic (chat.Event in chat.proto) as a C
 * struct, with encode, decode and validation. Events are ephemeral (typing, read state moved):
 * never messages, never stored, no id. The decoder refuses anything a gateway would not have
 * produced, the same strict way as chat_envelope.h: unknown version, bad room, user or upto,
 * NUL or invalid UTF-8, over-long fields. A kind this build does not know decodes to
 * CHAT_EVERSION (skip the record) once the common fields are checked.
 * Pure functions; any thread. */
#ifndef CHAT_EVENT_H
#define CHAT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_msgid.h"
#include "chat_validate.h"

#define CHAT_EVENT_VERSION 1
#define CHAT_EVENT_ORIGIN_MIN 8
#define CHAT_EVENT_ORIGIN_MAX 32
#define CHAT_UNREAD_MAX 1000 /* unread counts stop here */

typedef enum {
    CHAT_EVENT_TYPING = 1, /* room, user, on */
    CHAT_EVENT_READ = 2,   /* room, user, upto, unread */
    CHAT_EVENT_KICK = 3,   /* user only (room ""): the server API's kick */
} chat_event_kind;

/* Fixed-size: no ownership, copy freely. Strings are NUL-terminated. */
typedef struct chat_event {
    uint32_t version; /* CHAT_EVENT_VERSION */
    chat_event_kind kind;
    char room[CHAT_ROOM_MAX + 1];
    char user[CHAT_USER_MAX + 1];
    bool on;
    char upto[CHAT_MSGID_LEN + 1]; /* READ: a message id; "" otherwise */
    uint32_t unread;               /* READ: 0..CHAT_UNREAD_MAX */
    char origin[CHAT_EVENT_ORIGIN_MAX + 1];
    int64_t ts_ms;
} chat_event;

/* Checks every field for its kind. Returns 0 or CHAT_EINVAL with a reason in err. */
int chat_event_validate(const chat_event *e, char *err, size_t errlen);

/* Encodes into a malloc'd buffer (*out, owned by the caller, free()). Returns 0, -ENOMEM or
 * CHAT_EINVAL (fails validation). */
int chat_event_encode(const chat_event *e, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Decodes and validates into *out (zeroed on failure). Returns 0, CHAT_EDECODE (not an Event),
 * CHAT_EVERSION (unknown version or kind: skip it) or CHAT_EINVAL. */
int chat_event_decode(const uint8_t *buf, size_t len, chat_event *out, char *err, size_t errlen);

#endif
