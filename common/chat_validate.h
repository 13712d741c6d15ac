/* chat_validate.h: validation rules shared by the gateway (client frames) and the envelope
 * decoder, so a room name or a text is judged by one piece of code everywhere.
 * Pure functions; any thread. */
#ifndef CHAT_VALIDATE_H
#define CHAT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* A room name is either a plain room, [A-Za-z0-9._:-]{1,64} not starting with "dm:", or the
 * direct room of two users, dm:<a>:<b> with a < b in byte order, each a direct-room user id
 * ([A-Za-z0-9._@-]{1,64}). CHAT_ROOM_MAX bounds both (3 + 64 + 1 + 64 bytes). */
#define CHAT_ROOM_PLAIN_MAX 64
#define CHAT_DM_USER_MAX 64
#define CHAT_ROOM_MAX (3 + CHAT_DM_USER_MAX + 1 + CHAT_DM_USER_MAX)
#define CHAT_CID_MAX 64
#define CHAT_USER_MAX 128 /* JWT sub and name, in bytes */

/* True when s is 1..max bytes, each an ASCII letter, a digit or one of the characters in
 * punct (e.g. "._-"). s need not be NUL-terminated. The one rule behind room names, user
 * names of development tokens and Kafka topic names. */
bool chat_valid_charset(const char *s, size_t len, size_t max, const char *punct);

/* A plain room name or a well-formed direct room name (see CHAT_ROOM_MAX). s need not be
 * NUL-terminated. */
bool chat_valid_room(const char *s, size_t len);

/* A user id that can have direct rooms: [A-Za-z0-9._@-]{1,64} (no ':'). */
bool chat_valid_dm_user(const char *s, size_t len);

/* The two users of a direct room; the pointers point into the room name (not NUL-terminated). */
typedef struct chat_dm {
    const char *a, *b;
    size_t alen, blen;
} chat_dm;

/* True, with *out set when out is not NULL, when room (len bytes) is a well-formed direct room
 * dm:<a>:<b>. A name that starts with "dm:" but is not well-formed is no room at all
 * (chat_valid_room refuses it). */
bool chat_dm_parse(const char *room, size_t len, chat_dm *out);

/* True when user (NUL-terminated) is a or b of dm. */
bool chat_dm_has_user(const chat_dm *dm, const char *user);

/* Writes the direct room of users u and v (either order) into out, NUL-terminated. Returns its
 * length, or -1 when u or v cannot have direct rooms, u equals v, or outlen is too small
 * (CHAT_ROOM_MAX + 1 always suffices). */
int chat_dm_room(const char *u, const char *v, char *out, size_t outlen);

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) with no NUL byte. */
bool chat_valid_utf8_nonul(const char *s, size_t len);

/* A client correlation id: 1..CHAT_CID_MAX bytes of printable ASCII (0x20..0x7e). */
bool chat_valid_cid(const char *s, size_t len);

#endif
