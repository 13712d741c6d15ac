/* chat_presence.c: encode, decode and validate chat.Presence, the value of the presence topic,
 * and its record key (see chat_presence.h). The protobuf wire work is the protobuf-c generated
 * code's; this file enforces the field rules on the raw bytes before anything is copied. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "chat_presence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.pb-c.h"
#include "chat_error.h"

#define US '\x1f' /* separates the parts of a key */

static bool valid_node(const char *s, size_t len)
{
    return len >= 1 && len <= CHAT_NODE_MAX && chat_valid_cid(s, len);
}

static bool valid_user(const char *s, size_t len, size_t min)
{
    return len >= min && len <= CHAT_USER_MAX && (len == 0 || chat_valid_utf8_nonul(s, len));
}

/* The rules on (pointer, length) fields, shared by validate and decode. */
static int check(chat_presence_kind kind, const char *node, size_t nl, uint64_t inc,
                 const char *room, size_t rl, const char *user, size_t ul, const char *name,
                 size_t nml, int64_t ts, uint32_t conns, char *err, size_t errlen)
{
    if (kind != CHAT_PRESENCE_HEARTBEAT && kind != CHAT_PRESENCE_MEMBER &&
        kind != CHAT_PRESENCE_CONNS) {
        chat_errf(err, errlen, "unknown presence kind %d", (int)kind);
        return CHAT_EINVAL;
    }
    if (!valid_node(node, nl)) {
        chat_errf(err, errlen, "invalid node id");
        return CHAT_EINVAL;
    }
    if (inc == 0) {
        chat_errf(err, errlen, "incarnation is 0");
        return CHAT_EINVAL;
    }
    if (ts < 0) {
        chat_errf(err, errlen, "negative timestamp");
        return CHAT_EINVAL;
    }
    if ((kind == CHAT_PRESENCE_CONNS) != (conns != 0) || conns > CHAT_PRESENCE_CONNS_MAX) {
        chat_errf(err, errlen, "conns is 1..%d on CONNS, 0 on the others", CHAT_PRESENCE_CONNS_MAX);
        return CHAT_EINVAL;
    }
    if (kind == CHAT_PRESENCE_HEARTBEAT) {
        if (rl || ul || nml) {
            chat_errf(err, errlen, "a heartbeat has no room, user or name");
            return CHAT_EINVAL;
        }
        return 0;
    }
    if (kind == CHAT_PRESENCE_CONNS) {
        if (rl || nml || !valid_user(user, ul, 1)) {
            chat_errf(err, errlen, "a connection count has a user and no room or name");
            return CHAT_EINVAL;
        }
        return 0;
    }
    if (!chat_valid_room(room, rl)) {
        chat_errf(err, errlen, "invalid room name");
        return CHAT_EINVAL;
    }
    if (!valid_user(user, ul, 1) || !valid_user(name, nml, 0)) {
        chat_errf(err, errlen, "invalid user or name");
        return CHAT_EINVAL;
    }
    return 0;
}

int chat_presence_validate(const chat_presence *p, char *err, size_t errlen)
{
    if (!p) {
        chat_errf(err, errlen, "no record");
        return CHAT_EINVAL;
    }
    return check(p->kind, p->node, strnlen(p->node, sizeof(p->node)), p->incarnation, p->room,
                 strnlen(p->room, sizeof(p->room)), p->user, strnlen(p->user, sizeof(p->user)),
                 p->name, strnlen(p->name, sizeof(p->name)), p->ts_ms, p->conns, err, errlen);
}

static ProtobufCBinaryData bin(const char *s)
{
    ProtobufCBinaryData b = {.len = strlen(s), .data = (uint8_t *)(uintptr_t)s};
    return b;
}

int chat_presence_encode(const chat_presence *p, uint8_t **out, size_t *outlen, char *err,
                         size_t errlen)
{
    Chat__Presence m = CHAT__PRESENCE__INIT;
    int rc;

    *out = NULL;
    *outlen = 0;
    if ((rc = chat_presence_validate(p, err, errlen)))
        return rc;
    m.version = CHAT_PRESENCE_VERSION;
    m.kind = p->kind == CHAT_PRESENCE_HEARTBEAT ? CHAT__PRESENCE__KIND__HEARTBEAT
             : p->kind == CHAT_PRESENCE_MEMBER  ? CHAT__PRESENCE__KIND__MEMBER
                                                : CHAT__PRESENCE__KIND__CONNS;
    m.conns = p->conns;
    m.node = bin(p->node);
    m.incarnation = p->incarnation;
    m.room = bin(p->room);
    m.user = bin(p->user);
    m.name = bin(p->name);
    m.ts_ms = p->ts_ms;
    size_t n = chat__presence__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (chat__presence__pack(&m, buf) != n) {
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
    if (b->len) /* an absent field has data NULL */
        memcpy(dst, b->data, b->len);
    dst[b->len] = '\0';
}

int chat_presence_decode(const uint8_t *buf, size_t len, chat_presence *out, char *err,
                         size_t errlen)
{
    Chat__Presence *m = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!buf && len) {
        chat_errf(err, errlen, "no input");
        return CHAT_EDECODE;
    }
    m = chat__presence__unpack(NULL, len, buf);
    if (!m) {
        chat_errf(err, errlen, "not a valid protobuf Presence");
        return CHAT_EDECODE;
    }
    if (m->version != CHAT_PRESENCE_VERSION) {
        chat_errf(err, errlen, "unknown presence version %" PRIu32, m->version);
        rc = CHAT_EVERSION;
        goto out;
    }
    chat_presence_kind kind = m->kind == CHAT__PRESENCE__KIND__HEARTBEAT ? CHAT_PRESENCE_HEARTBEAT
                              : m->kind == CHAT__PRESENCE__KIND__MEMBER  ? CHAT_PRESENCE_MEMBER
                              : m->kind == CHAT__PRESENCE__KIND__CONNS   ? CHAT_PRESENCE_CONNS
                                                                         : 0;
    /* on the raw bytes: a NUL inside a field would be hidden once it is a C string */
    if ((rc =
             check(kind, (const char *)m->node.data, m->node.len, m->incarnation,
                   (const char *)m->room.data, m->room.len, (const char *)m->user.data, m->user.len,
                   (const char *)m->name.data, m->name.len, m->ts_ms, m->conns, err, errlen)))
        goto out;
    out->kind = kind;
    copy_bin(out->node, &m->node);
    out->incarnation = m->incarnation;
    copy_bin(out->room, &m->room);
    copy_bin(out->user, &m->user);
    copy_bin(out->name, &m->name);
    out->ts_ms = m->ts_ms;
    out->conns = m->conns;
out:
    chat__presence__free_unpacked(m, NULL);
    return rc;
}

int chat_presence_key(const chat_presence *p, char *key, size_t cap)
{
    char buf[CHAT_PRESENCE_KEY_MAX + 1]; /* snprintf's NUL is not part of the key */
    if (cap < CHAT_PRESENCE_KEY_MAX || chat_presence_validate(p, NULL, 0) != 0)
        return CHAT_EINVAL;
    int n;
    if (p->kind == CHAT_PRESENCE_HEARTBEAT)
        n = snprintf(buf, sizeof(buf), "h%c%s", US, p->node);
    else if (p->kind == CHAT_PRESENCE_CONNS)
        n = snprintf(buf, sizeof(buf), "c%c%s%c%016" PRIx64 "%c%s", US, p->node, US, p->incarnation,
                     US, p->user);
    else
        n = snprintf(buf, sizeof(buf), "m%c%s%c%016" PRIx64 "%c%s%c%s", US, p->node, US,
                     p->incarnation, US, p->room, US, p->user);
    if (n <= 0 || (size_t)n > CHAT_PRESENCE_KEY_MAX)
        return CHAT_EINVAL;
    memcpy(key, buf, (size_t)n);
    return n;
}

/* The next part of a key: [*pos, separator or end). Returns its length. */
static size_t part(const char *key, size_t len, size_t *pos, bool last)
{
    size_t start = *pos, i = start;
    while (i < len && (last || key[i] != US))
        i++;
    *pos = i < len ? i + 1 : i;
    return i - start;
}

int chat_presence_key_parse(const char *key, size_t len, chat_presence *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!key || len < 3 || key[1] != US || (key[0] != 'h' && key[0] != 'm' && key[0] != 'c')) {
        chat_errf(err, errlen, "not a presence key");
        return CHAT_EINVAL;
    }
    size_t pos = 2;
    const char *node = key + pos;
    size_t nl = part(key, len, &pos, key[0] == 'h');
    if (!valid_node(node, nl)) {
        chat_errf(err, errlen, "invalid node id in key");
        return CHAT_EINVAL;
    }
    memcpy(out->node, node, nl);
    if (key[0] == 'h') {
        out->kind = CHAT_PRESENCE_HEARTBEAT;
        return 0;
    }
    if (pos >= len || key[pos - 1] != US) {
        chat_errf(err, errlen, "member key without incarnation");
        return CHAT_EINVAL;
    }
    const char *inc = key + pos;
    size_t il = part(key, len, &pos, false);
    uint64_t v = 0;
    for (size_t i = 0; i < il; i++) {
        char c = inc[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) {
            il = 0;
            break;
        }
        v = v << 4 | (uint64_t)d;
    }
    if (il != 16 || v == 0 || pos >= len || key[pos - 1] != US) {
        chat_errf(err, errlen, "invalid incarnation in key");
        return CHAT_EINVAL;
    }
    if (key[0] == 'c') {
        const char *cuser = key + pos;
        size_t cl = part(key, len, &pos, true);
        if (!valid_user(cuser, cl, 1)) {
            chat_errf(err, errlen, "invalid user in key");
            return CHAT_EINVAL;
        }
        out->kind = CHAT_PRESENCE_CONNS;
        out->incarnation = v;
        memcpy(out->user, cuser, cl);
        return 0;
    }
    const char *room = key + pos;
    size_t rl = part(key, len, &pos, false);
    if (!chat_valid_room(room, rl) || pos >= len || key[pos - 1] != US) {
        chat_errf(err, errlen, "invalid room in key");
        return CHAT_EINVAL;
    }
    const char *user = key + pos;
    size_t ul = part(key, len, &pos, true);
    if (!valid_user(user, ul, 1)) {
        chat_errf(err, errlen, "invalid user in key");
        return CHAT_EINVAL;
    }
    out->kind = CHAT_PRESENCE_MEMBER;
    out->incarnation = v;
    memcpy(out->room, room, rl);
    memcpy(out->user, user, ul);
    return 0;
}
