/* gw_out.c: encoding the server's frames (see gw_out.h). Each frame is built as
 * a jansson object and dumped compactly, with non-ASCII text kept as UTF-8, straight into a
 * new gw_buf. A string that is not valid UTF-8 makes the encoder fail (NULL) rather than send
 * invalid JSON; every caller passes validated strings, so that only happens on ENOMEM. */
#include "gw_out.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

gw_buf *gw_out_message(const chat_message *m)
{
    return finish(message_obj(m));
}

gw_buf *gw_out_list(const char *type, const char *key, const char *room, gw_buf *const *frames,
                    size_t n, const char *extra)
{
    char head[160];
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
