/* chat_event.c: encode, decode and validate chat.Event, the events topic's record value (see
 * chat_event.h). The protobuf wire work is protobuf-c's generated code; this file checks every
 * field on the raw bytes before copying it into the fixed-size struct, so a NUL or an over-long
 * value is refused rather than truncated. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "chat_event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat.pb-c.h"
#include "chat_error.h"

static bool valid_origin(const char *s, size_t len)
{
    if (len < CHAT_EVENT_ORIGIN_MIN || len > CHAT_EVENT_ORIGIN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The checks of every kind, on (pointer, length) fields: shared by validate and decode. */
static int check(uint32_t version, int kind, const char *room, size_t room_len, const char *user,
                 size_t user_len, const char *upto, size_t upto_len, uint32_t unread,
                 const char *origin, size_t origin_len, int64_t ts_ms, char *err, size_t errlen)
{
    if (version != CHAT_EVENT_VERSION) {
        chat_errf(err, errlen, "unknown event version %" PRIu32, version);
        return CHAT_EVERSION;
    }
    if (user_len < 1 || user_len > CHAT_USER_MAX || !chat_valid_utf8_nonul(user, user_len)) {
        chat_errf(err, errlen, "invalid user");
        return CHAT_EINVAL;
    }
    if (!valid_origin(origin, origin_len)) {
        chat_errf(err, errlen, "invalid origin");
        return CHAT_EINVAL;
    }
    if (ts_ms < 0) {
        chat_errf(err, errlen, "negative timestamp");
        return CHAT_EINVAL;
    }
    if (kind != CHAT_EVENT_TYPING && kind != CHAT_EVENT_READ && kind != CHAT_EVENT_KICK) {
        chat_errf(err, errlen, "unknown event kind %d", kind);
        return kind == 0 ? CHAT_EINVAL : CHAT_EVERSION;
    }
    if (kind == CHAT_EVENT_KICK) {
        if (room_len || upto_len || unread) {
            chat_errf(err, errlen, "a kick carries the user only");
            return CHAT_EINVAL;
        }
        return 0;
    }
    if (!chat_valid_room(room, room_len)) {
        chat_errf(err, errlen, "invalid room name");
        return CHAT_EINVAL;
    }
    if (kind == CHAT_EVENT_READ) {
        char id[CHAT_MSGID_LEN + 1];
        if (upto_len != CHAT_MSGID_LEN) {
            chat_errf(err, errlen, "upto is not a message id");
            return CHAT_EINVAL;
        }
        memcpy(id, upto, upto_len);
        id[upto_len] = '\0';
        if (chat_msgid_parse(id, NULL, NULL) != 0) {
            chat_errf(err, errlen, "upto is not a message id");
            return CHAT_EINVAL;
        }
        if (unread > CHAT_UNREAD_MAX) {
            chat_errf(err, errlen, "unread over %d", CHAT_UNREAD_MAX);
            return CHAT_EINVAL;
        }
    } else if (upto_len || unread) {
        chat_errf(err, errlen, "upto or unread on a typing event");
        return CHAT_EINVAL;
    }
    return 0;
}

int chat_event_validate(const chat_event *e, char *err, size_t errlen)
{
    if (!e) {
        chat_errf(err, errlen, "no event");
        return CHAT_EINVAL;
    }
    int rc =
        check(e->version, (int)e->kind, e->room, strnlen(e->room, sizeof(e->room)), e->user,
              strnlen(e->user, sizeof(e->user)), e->upto, strnlen(e->upto, sizeof(e->upto)),
              e->unread, e->origin, strnlen(e->origin, sizeof(e->origin)), e->ts_ms, err, errlen);
    return rc == CHAT_EVERSION ? CHAT_EINVAL : rc;
}

static ProtobufCBinaryData bin(const char *s)
{
    ProtobufCBinaryData b = {.len = strlen(s), .data = (uint8_t *)(uintptr_t)s};
    return b;
}

int chat_event_encode(const chat_event *e, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    Chat__Event m = CHAT__EVENT__INIT;
    int rc;
    if (!out || !outlen) {
        chat_errf(err, errlen, "no output buffer");
        return CHAT_EINVAL;
    }
    *out = NULL;
    *outlen = 0;
    if ((rc = chat_event_validate(e, err, errlen)))
        return rc;
    m.version = e->version;
    m.kind = (Chat__Event__Kind)e->kind;
    m.room = bin(e->room);
    m.user = bin(e->user);
    m.on = e->on;
    m.upto = bin(e->upto);
    m.unread = e->unread;
    m.origin = bin(e->origin);
    m.ts_ms = e->ts_ms;
    size_t n = chat__event__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (chat__event__pack(&m, buf) != n) {
        free(buf);
        chat_errf(err, errlen, "protobuf pack size mismatch");
        return CHAT_EINVAL;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

static void copy_bin(char *dst, const ProtobufCBinaryData *b)
{
    if (b->len)
        memcpy(dst, b->data, b->len);
    dst[b->len] = '\0';
}

int chat_event_decode(const uint8_t *buf, size_t len, chat_event *out, char *err, size_t errlen)
{
    if (!out) {
        chat_errf(err, errlen, "no output event");
        return CHAT_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!buf && len) {
        chat_errf(err, errlen, "no input");
        return CHAT_EDECODE;
    }
    Chat__Event *m = chat__event__unpack(NULL, len, buf);
    if (!m) {
        chat_errf(err, errlen, "not a valid protobuf Event");
        return CHAT_EDECODE;
    }
    int rc = check(m->version, (int)m->kind, (const char *)m->room.data, m->room.len,
                   (const char *)m->user.data, m->user.len, (const char *)m->upto.data, m->upto.len,
                   m->unread, (const char *)m->origin.data, m->origin.len, m->ts_ms, err, errlen);
    if (rc == 0) {
        /* the lengths were checked above: each fits its array */
        out->version = m->version;
        out->kind = (chat_event_kind)m->kind;
        copy_bin(out->room, &m->room);
        copy_bin(out->user, &m->user);
        out->on = m->on;
        copy_bin(out->upto, &m->upto);
        out->unread = m->unread;
        copy_bin(out->origin, &m->origin);
        out->ts_ms = m->ts_ms;
    }
    chat__event__free_unpacked(m, NULL);
    return rc;
}
