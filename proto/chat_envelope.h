/* chat_envelope.h: the Kafka record value (chat.Envelope in chat.proto) as a C struct, with
 * encode, decode and validation. The decoder refuses anything a gateway would not have
 * produced: unknown version, bad room, invalid UTF-8 or NUL in text, over-long fields.
 * Pure functions; any thread. */
#ifndef CHAT_ENVELOPE_H
#define CHAT_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "chat_msgid.h"

#define CHAT_ENVELOPE_VERSION 1
#define CHAT_TEXT_HARD_MAX (64 * 1024) /* no configuration may allow longer texts */

/* All strings are NUL-terminated. After chat_envelope_decode() they are owned by the struct
 * (free with chat_envelope_clear()); for encode the caller owns them. name and cid may be ""
 * (never NULL after decode; NULL is treated as "" by encode). text_len is the
 * length of text in bytes (decode sets it; for encode, 0 means strlen(text)). version must be
 * CHAT_ENVELOPE_VERSION for validate and encode. */
typedef struct chat_envelope {
    uint32_t version;
    char *room;
    char *from;
    char *name;
    char *text;
    size_t text_len;
    int64_t ts_ms;
    char *cid;
} chat_envelope;

/* A stored or delivered message: an envelope plus its id. */
typedef struct chat_message {
    char id[CHAT_MSGID_LEN + 1];
    chat_envelope env;
} chat_message;

/* Checks the fields (version, room, from, text <= max_text bytes, cid). Returns 0 or
 * CHAT_EINVAL with a reason in err. */
int chat_envelope_validate(const chat_envelope *e, size_t max_text, char *err, size_t errlen);

/* Encodes into a malloc'd buffer (*out, owned by the caller, free()). Returns 0, -ENOMEM or
 * CHAT_EINVAL (fails validation with max_text = CHAT_TEXT_HARD_MAX). */
int chat_envelope_encode(const chat_envelope *e, uint8_t **out, size_t *outlen, char *err,
                         size_t errlen);

/* Decodes and validates (max_text = CHAT_TEXT_HARD_MAX). On success *out owns its strings.
 * On failure *out is left zeroed. Returns 0, CHAT_EDECODE, CHAT_EVERSION, CHAT_EINVAL or
 * -ENOMEM. */
int chat_envelope_decode(const uint8_t *buf, size_t len, chat_envelope *out, char *err,
                         size_t errlen);

/* Frees the strings of a decoded envelope and zeroes it. Safe on a zeroed struct. */
void chat_envelope_clear(chat_envelope *e);

/* Deep copy (for handing a message to another thread). Returns 0 or -ENOMEM. */
int chat_envelope_copy(chat_envelope *dst, const chat_envelope *src);

#endif
