/* gw_out.c: encoding the server's frames (see gw_out.h). Each frame is built as
 * a jansson object and dumped compactly, with non-ASCII text kept as UTF-8, straight into a
 * new gw_buf. A string that is not valid UTF-8 makes the encoder fail (NULL) rather than send
 * invalid JSON; every caller passes validated strings, so that only happens on ENOMEM. */
#include "gw_out.h"

#include <jansson.h>

#include "chat_validate.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_validate.h"

/* Sets key to the string val. An optional value that is NULL or "" is left out; a required
 * NULL is encoded as "". Returns 0 or -1. */
static int put_str(json_t *o, const char *key, const char *val, bool optional)
{
    if (!val || !*val) {
        if (optional)
            return 0;
        val = "";
    }
    return json_object_set_new(o, key, json_string(val));
}

/* Dumps o into a new buffer and drops o. NULL when o is NULL or on ENOMEM. */
static gw_buf *finish(json_t *o)
{
    gw_buf *b = NULL;
    const size_t flags = JSON_COMPACT;

    if (!o)
        return NULL;
    size_t n = json_dumpb(o, NULL, 0, flags);
    if (n == 0)
        goto out;
    b = gw_buf_new(n);
    if (!b)
        goto out;
    if (json_dumpb(o, (char *)gw_buf_payload(b), n, flags) != n) {
        gw_buf_unref(b);
        b = NULL;
    }
out:
    json_decref(o);
    return b;
}

/* {"type":type} or NULL. */
static json_t *frame(const char *type)
{
    json_t *o = json_object();
    if (o && put_str(o, "type", type, false)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *message_obj(const chat_message *m)
{
    const chat_envelope *e = &m->env;
    json_t *o = frame("message");
    if (!o)
        return NULL;
    json_t *text = e->text ? json_stringn(e->text, e->text_len) : json_string("");
    if (put_str(o, "id", m->id, false) || put_str(o, "room", e->room, false) ||
        put_str(o, "from", e->from, false) || json_object_set_new(o, "text", text) ||
        json_object_set_new(o, "ts", json_integer((json_int_t)e->ts_ms)) ||
        put_str(o, "cid", e->cid, true)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

gw_buf *gw_out_welcome(const char *user, const char *gateway, int64_t exp, const char *epoch)
{
    json_t *o = frame("welcome");
    if (o && (put_str(o, "user", user, false) || put_str(o, "gateway", gateway, false) ||
              json_object_set_new(o, "protocol", json_integer(2)) ||
              json_object_set_new(o, "exp", json_integer((json_int_t)exp)) ||
              put_str(o, "epoch", epoch, false))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_error(const char *code, const char *message, const char *cid)
{
    json_t *o = frame("error");
    if (o && (put_str(o, "code", code, false) || put_str(o, "message", message, false) ||
              put_str(o, "cid", cid, true))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_ack(const char *cid, const char *id)
{
    json_t *o = frame("ack");
    if (o && (put_str(o, "cid", cid, true) || put_str(o, "id", id, false))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_pong(void)
{
    return finish(frame("pong"));
}

gw_buf *gw_out_left(const char *room)
{
    json_t *o = frame("left");
    if (o && put_str(o, "room", room, false)) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

/* --- the message frame, written in one pass ------------------------------------------------
 * Every record fan-out reads is encoded once, whether or not anyone here is in its room (the log
 * answers joins too), so this is the gateway's hottest encoder: building a jansson object cost
 * about half of a record's CPU (perf, bench skip-5000). It writes the exact bytes jansson's
 * compact dump writes for message_obj() (same member order; ", \ and control characters
 * escaped, \u00XX in upper case; UTF-8 and '/' as they are), which test_gw_out.c checks
 * against jansson for awkward strings. */

static size_t esc_len(const char *s, size_t n)
{
    size_t len = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            len += 1;
        else if (c < 0x20)
            len += 5;
    }
    return len;
}

static unsigned char *esc_put(unsigned char *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e = 0;
        switch (c) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '\b':
            e = 'b';
            break;
        case '\f':
            e = 'f';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        case '\t':
            e = 't';
            break;
        default:
            break;
        }
        if (e) {
            *p++ = '\\';
            *p++ = (unsigned char)e;
        } else if (c < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = (unsigned char)hex[c >> 4];
            p[5] = (unsigned char)hex[c & 15];
            p += 6;
        } else {
            *p++ = c;
        }
    }
    return p;
}

/* The frame's fixed parts, in order: before id, room, from, text and ts; then ,"cid":" when
 * there is a cid. */
static const char *const msg_part[5] = {"{\"type\":\"message\",\"id\":\"", "\",\"room\":\"",
                                        "\",\"from\":\"", "\",\"text\":\"", "\",\"ts\":"};
static const char msg_cid[] = ",\"cid\":\"";

gw_buf *gw_out_message(const chat_message *m)
{
    const chat_envelope *e = &m->env;
    const char *f[5] = {m->id, e->room ? e->room : "", e->from ? e->from : "",
                        e->text ? e->text : "", e->cid ? e->cid : ""};
    size_t n[5], pl[5];
    for (int i = 0; i < 5; i++) {
        n[i] = i == 3 && e->text ? e->text_len : strlen(f[i]);
        if (!chat_valid_utf8_nonul(f[i], n[i]))
            return NULL; /* never invalid JSON out */
        pl[i] = strlen(msg_part[i]);
    }
    char ts[24];
    int tl = snprintf(ts, sizeof(ts), "%lld", (long long)e->ts_ms);
    if (tl < 0)
        return NULL;
    size_t len = (size_t)tl + 1; /* the number and the closing brace */
    for (int i = 0; i < 5; i++)
        len += pl[i] + (i < 4 ? esc_len(f[i], n[i]) : 0);
    if (n[4])
        len += sizeof(msg_cid) - 1 + esc_len(f[4], n[4]) + 1;
    gw_buf *b = gw_buf_new(len);
    if (!b)
        return NULL;
    unsigned char *p = gw_buf_payload(b);
    for (int i = 0; i < 4; i++) {
        memcpy(p, msg_part[i], pl[i]);
        p = esc_put(p + pl[i], f[i], n[i]);
    }
    memcpy(p, msg_part[4], pl[4]);
    p += pl[4];
    memcpy(p, ts, (size_t)tl);
    p += tl;
    if (n[4]) {
        memcpy(p, msg_cid, sizeof(msg_cid) - 1);
        p = esc_put(p + sizeof(msg_cid) - 1, f[4], n[4]);
        *p++ = '"';
    }
    *p++ = '}';
    if ((size_t)(p - gw_buf_payload(b)) != len) { /* cannot happen: the sums above */
        gw_buf_unref(b);
        return NULL;
    }
    return b;
}

gw_buf *gw_out_message_jansson(const chat_message *m)
{
    return finish(message_obj(m));
}

gw_buf *gw_out_list(const char *type, const char *key, const char *room, gw_buf *const *frames,
                    size_t n, const char *extra)
{
    char head[64 + CHAT_ROOM_MAX]; /* type, key and room: a direct room name is up to 132 bytes */
    int hl =
        snprintf(head, sizeof(head), "{\"type\":\"%s\",\"room\":\"%s\",\"%s\":[", type, room, key);
    size_t xl = extra ? strlen(extra) : 0;
    if (hl < 0 || (size_t)hl >= sizeof(head))
        return NULL;
    size_t len = (size_t)hl + 1 + (xl ? 1 + xl : 0) + 1; /* head ] [,extra] } */
    for (size_t i = 0; i < n; i++)
        len += frames[i]->len + (i ? 1 : 0);
    gw_buf *b = gw_buf_new(len);
    if (!b)
        return NULL;
    unsigned char *p = gw_buf_payload(b);
    memcpy(p, head, (size_t)hl);
    p += hl;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, gw_buf_payload(frames[i]), frames[i]->len);
        p += frames[i]->len;
    }
    *p++ = ']';
    if (xl) {
        *p++ = ',';
        memcpy(p, extra, xl);
        p += xl;
    }
    *p++ = '}';
    return b;
}

/* [{"user","name"}...] or NULL. */
static json_t *users_arr(const gw_out_user *users, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *u = json_object();
        const char *name = users[i].name && *users[i].name ? users[i].name : users[i].user;
        if (!u || put_str(u, "user", users[i].user, false) || put_str(u, "name", name, false) ||
            json_array_append_new(a, u)) {
            json_decref(u);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Adds "count", "users" and "truncated" to o; 0 or -1. */
static int put_members(json_t *o, const gw_out_user *users, size_t n, size_t count, bool truncated)
{
    json_t *a = users_arr(users, n);
    if (!a)
        return -1;
    if (json_object_set_new(o, "count", json_integer((json_int_t)count)) ||
        json_object_set_new(o, "users", a) ||
        json_object_set_new(o, "truncated", json_boolean(truncated)))
        return -1;
    return 0;
}

char *gw_out_members_field(const gw_out_user *users, size_t n, size_t count, bool truncated)
{
    json_t *m = json_object();
    if (!m || put_members(m, users, n, count, truncated)) {
        json_decref(m);
        return NULL;
    }
    char *body = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (!body)
        return NULL;
    size_t len = strlen(body) + sizeof("\"members\":");
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "\"members\":%s", body);
    free(body);
    return out;
}

gw_buf *gw_out_members(const char *room, const gw_out_user *users, size_t n, size_t count,
                       bool truncated)
{
    json_t *o = frame("members");
    if (o && (put_str(o, "room", room, false) || put_members(o, users, n, count, truncated))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_presence(const char *room, const gw_out_user *joined, size_t nj,
                        const char *const *left, size_t nl, size_t count)
{
    json_t *o = frame("presence");
    if (!o)
        return NULL;
    json_t *l = json_array();
    /* json_*_set_new and append_new take the value's reference even when they fail */
    int bad = put_str(o, "room", room, false) ||
              json_object_set_new(o, "joined", users_arr(joined, nj)) ||
              json_object_set_new(o, "left", l);
    for (size_t i = 0; !bad && i < nl; i++)
        bad = json_array_append_new(l, json_string(left[i]));
    if (bad || json_object_set_new(o, "count", json_integer((json_int_t)count))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_typing(const char *room, const char *user, bool on)
{
    json_t *o = frame("typing");
    if (o && (put_str(o, "room", room, false) || put_str(o, "user", user, false) ||
              json_object_set_new(o, "on", json_boolean(on)))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_read(const char *room, const char *upto, unsigned unread)
{
    json_t *o = frame("read");
    if (o && (put_str(o, "room", room, false) || put_str(o, "upto", upto, false) ||
              json_object_set_new(o, "unread", json_integer(unread)))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

gw_buf *gw_out_receipt(const char *room, const char *user, const char *upto)
{
    json_t *o = frame("receipt");
    if (o && (put_str(o, "room", room, false) || put_str(o, "user", user, false) ||
              put_str(o, "upto", upto, false))) {
        json_decref(o);
        return NULL;
    }
    return finish(o);
}

/* val, or JSON null when it is NULL or "". */
static json_t *str_or_null(const char *val)
{
    return val && *val ? json_string(val) : json_null();
}

gw_buf *gw_out_rooms(const gw_out_room *rooms, size_t n)
{
    json_t *o = frame("rooms");
    json_t *arr = json_array();
    if (!o || !arr || json_object_set_new(o, "rooms", arr)) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_object();
        if (!r || json_array_append_new(arr, r) || put_str(r, "room", rooms[i].room, false) ||
            json_object_set_new(r, "unread", json_integer(rooms[i].unread)) ||
            json_object_set_new(r, "read_upto", str_or_null(rooms[i].read_upto)) ||
            json_object_set_new(r, "last", str_or_null(rooms[i].last))) {
            json_decref(o);
            return NULL;
        }
    }
    return finish(o);
}
