/* gw_out.c: encoding the server's frames of protocol v1 (see gw_out.h). Each frame is built as
 * a jansson object and dumped compactly, with non-ASCII text kept as UTF-8, straight into a
 * new gw_buf. A string that is not valid UTF-8 makes the encoder fail (NULL) rather than send
 * invalid JSON; every caller passes validated strings, so that only happens on ENOMEM. */
#include "gw_out.h"

#include <jansson.h>
#include <stdbool.h>

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
        put_str(o, "from", e->from, false) ||
        json_object_set_new(o, "text", text) ||
        json_object_set_new(o, "ts", json_integer((json_int_t)e->ts_ms)) ||
        put_str(o, "cid", e->cid, true)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"type":type,"room":room,key:[message...]} */
static gw_buf *message_list(const char *type, const char *key, const char *room,
                            const chat_message *msgs, size_t n)
{
    json_t *o = frame(type);
    json_t *arr = json_array();

    if (!o || !arr || put_str(o, "room", room, false))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, message_obj(&msgs[i])))
            goto fail;
    if (json_object_set_new(o, key, arr)) {
        arr = NULL; /* set_new consumed it */
        goto fail;
    }
    return finish(o);
fail:
    json_decref(arr);
    json_decref(o);
    return NULL;
}

gw_buf *gw_out_welcome(const char *user, const char *gateway)
{
    json_t *o = frame("welcome");
    if (o && (put_str(o, "user", user, false) || put_str(o, "gateway", gateway, false))) {
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

gw_buf *gw_out_joined(const char *room, const chat_message *msgs, size_t n)
{
    return message_list("joined", "history", room, msgs, n);
}

gw_buf *gw_out_history(const char *room, const chat_message *msgs, size_t n)
{
    return message_list("history", "messages", room, msgs, n);
}
