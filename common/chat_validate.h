/* chat_validate.h: validation rules shared by the gateway (client frames) and the envelope
 * decoder, so a room name or a text is judged by one piece of code everywhere.
 * Pure functions; any thread. */
#ifndef CHAT_VALIDATE_H
#define CHAT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define CHAT_ROOM_MAX 64
#define CHAT_CID_MAX 64
#define CHAT_USER_MAX 128 /* JWT sub and name, in bytes */

/* True when s is 1..max bytes, each an ASCII letter, a digit or one of the characters in
 * punct (e.g. "._-"). s need not be NUL-terminated. The one rule behind room names, user
 * names of development tokens and Kafka topic names. */
bool chat_valid_charset(const char *s, size_t len, size_t max, const char *punct);

/* Room names match [A-Za-z0-9._:-]{1,64}. s need not be NUL-terminated. */
bool chat_valid_room(const char *s, size_t len);

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) with no NUL byte. */
bool chat_valid_utf8_nonul(const char *s, size_t len);

/* A client correlation id: 1..CHAT_CID_MAX bytes of printable ASCII (0x20..0x7e). */
bool chat_valid_cid(const char *s, size_t len);

#endif
