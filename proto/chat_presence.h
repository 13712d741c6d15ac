/* chat_presence.h: the records of the presence topic (chat.Presence in chat.proto) as a C
 * struct, with encode, decode and validation, and the record key that goes with each one.
 * A record is a heartbeat of a gateway (key "h" US node), a member entry (key "m" US node US
 * incarnation US room US user, US being the byte 0x1f, which no node id, incarnation or room can
 * contain, and the user is last) or a user's connection count on a gateway (key "c" US node US
 * incarnation US user): the topic is compacted, so the latest record of each key is
 * what a restarted gateway reads back, and a key with a null value (tombstone) withdraws it.
 * The decoder refuses anything a gateway would not have produced, like chat_envelope's.
 * Pure functions; any thread. */
#ifndef CHAT_PRESENCE_H
#define CHAT_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "chat_validate.h"

#define CHAT_PRESENCE_VERSION 1
#define CHAT_NODE_MAX 63 /* bytes of a node id (printable ASCII) */
/* "m" US node US 16 hex digits US room US user */
#define CHAT_PRESENCE_KEY_MAX                                                                      \
    (1 + 1 + CHAT_NODE_MAX + 1 + 16 + 1 + CHAT_ROOM_MAX + 1 + CHAT_USER_MAX)

typedef enum {
    CHAT_PRESENCE_HEARTBEAT = 1, /* a gateway is alive */
    CHAT_PRESENCE_MEMBER = 2,    /* user has a connection joined to room on that gateway */
    CHAT_PRESENCE_CONNS = 3,     /* user has conns connections on that gateway */
} chat_presence_kind;

#define CHAT_PRESENCE_CONNS_MAX 1000000

/* Every string is NUL-terminated (none may contain NUL). room, user and name are "" for a
 * heartbeat; room and name are "" for CONNS. conns is 0 except for CONNS (1..CONNS_MAX). */
typedef struct chat_presence {
    chat_presence_kind kind;
    char node[CHAT_NODE_MAX + 1];
    uint64_t incarnation; /* not 0 */
    char room[CHAT_ROOM_MAX + 1];
    char user[CHAT_USER_MAX + 1];
    char name[CHAT_USER_MAX + 1];
    int64_t ts_ms;
    uint32_t conns;
} chat_presence;

/* Checks the fields for its kind. Returns 0 or CHAT_EINVAL with a reason in err. */
int chat_presence_validate(const chat_presence *p, char *err, size_t errlen);

/* Encodes into a malloc'd buffer (*out, owned by the caller, free()). Returns 0, -ENOMEM or
 * CHAT_EINVAL (fails validation). */
int chat_presence_encode(const chat_presence *p, uint8_t **out, size_t *outlen, char *err,
                         size_t errlen);

/* Decodes and validates. On failure *out is zeroed. Returns 0, CHAT_EDECODE, CHAT_EVERSION or
 * CHAT_EINVAL. */
int chat_presence_decode(const uint8_t *buf, size_t len, chat_presence *out, char *err,
                         size_t errlen);

/* The record key of p (its kind, node, and for the others incarnation, [room,] user) into key
 * (at least CHAT_PRESENCE_KEY_MAX bytes; not NUL-terminated). Returns its length, or
 * CHAT_EINVAL when p does not validate. */
int chat_presence_key(const chat_presence *p, char *key, size_t cap);

/* Parses a record key into the fields it names (name "", ts_ms 0; incarnation 0 for a
 * heartbeat key). Returns 0 or CHAT_EINVAL with a reason in err. */
int chat_presence_key_parse(const char *key, size_t len, chat_presence *out, char *err,
                            size_t errlen);

#endif
