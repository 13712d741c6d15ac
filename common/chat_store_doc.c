/* chat_store_doc.c: the stored message document of chat_store_doc.h, built for the persister's
 * inserts and parsed for the gateway's history reads. */
#include "chat_store_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_msgid.h"

int chat_store_doc_index(bson_t *index)
{
    bson_t key;
    bool ok = true;

    ok = ok && BSON_APPEND_DOCUMENT_BEGIN(index, "key", &key);
    ok = ok && BSON_APPEND_INT32(&key, "room", 1);
    ok = ok && BSON_APPEND_INT32(&key, "_id", -1);
    ok = ok && bson_append_document_end(index, &key);
    ok = ok && BSON_APPEND_UTF8(index, "name", CHAT_STORE_INDEX_NAME);
    return ok ? 0 : -ENOMEM;
}

int chat_store_doc_build(const char *id, const chat_envelope *e, bson_t *doc)
{
    bool ok = true;

    ok = ok && BSON_APPEND_UTF8(doc, "_id", id);
    ok = ok && BSON_APPEND_UTF8(doc, "room", e->room ? e->room : "");
    ok = ok && BSON_APPEND_UTF8(doc, "from", e->from ? e->from : "");
    if (e->name && e->name[0])
        ok = ok && BSON_APPEND_UTF8(doc, "name", e->name);
    ok = ok &&
         bson_append_utf8(doc, "text", 4, e->text ? e->text : "", e->text ? (int)e->text_len : 0);
    ok = ok && BSON_APPEND_DATE_TIME(doc, "ts", e->ts_ms);
    ok = ok && BSON_APPEND_UTF8(doc, "cid", e->cid ? e->cid : "");
    return ok ? 0 : -ENOMEM;
}

/* malloc'd copy of the string field key of doc; "" when it is missing or not a string. */
static char *dup_utf8(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    uint32_t len = 0;
    const char *v = "";
    char *out;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        v = bson_iter_utf8(&it, &len);
    out = malloc(len + 1);
    if (out) {
        memcpy(out, v, len);
        out[len] = '\0';
    }
    return out;
}

int chat_store_doc_parse(const bson_t *doc, chat_message *m)
{
    bson_iter_t it;
    uint32_t idlen;
    const char *id;

    memset(m, 0, sizeof(*m));
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
        return CHAT_EINVAL;
    id = bson_iter_utf8(&it, &idlen);
    if (idlen != CHAT_MSGID_LEN || chat_msgid_parse(id, NULL, NULL) != 0)
        return CHAT_EINVAL;
    memcpy(m->id, id, CHAT_MSGID_LEN + 1);
    m->env.version = CHAT_ENVELOPE_VERSION;
    m->env.room = dup_utf8(doc, "room");
    m->env.from = dup_utf8(doc, "from");
    m->env.name = dup_utf8(doc, "name");
    m->env.text = dup_utf8(doc, "text");
    m->env.cid = dup_utf8(doc, "cid");
    if (!m->env.room || !m->env.from || !m->env.name || !m->env.text || !m->env.cid) {
        chat_envelope_clear(&m->env);
        memset(m, 0, sizeof(*m));
        return -ENOMEM;
    }
    m->env.text_len = strlen(m->env.text);
    if (bson_iter_init_find(&it, doc, "ts")) {
        if (BSON_ITER_HOLDS_DATE_TIME(&it))
            m->env.ts_ms = bson_iter_date_time(&it);
        else if (BSON_ITER_HOLDS_INT64(&it))
            m->env.ts_ms = bson_iter_int64(&it);
    }
    return 0;
}

/* --- read state ------------------------------------------------------------------------- */

int chat_reads_doc_index(bson_t *index)
{
    bson_t key;
    bool ok = true;

    ok = ok && BSON_APPEND_DOCUMENT_BEGIN(index, "key", &key);
    ok = ok && BSON_APPEND_INT32(&key, "user", 1);
    ok = ok && BSON_APPEND_INT32(&key, "room", 1);
    ok = ok && bson_append_document_end(index, &key);
    ok = ok && BSON_APPEND_UTF8(index, "name", CHAT_READS_INDEX_NAME);
    return ok ? 0 : -ENOMEM;
}

int chat_reads_doc_id(const char *room, const char *user, char *out, size_t outlen)
{
    if (!room || !user || !chat_valid_room(room, strlen(room)) || !user[0] ||
        strlen(user) > CHAT_USER_MAX)
        return CHAT_EINVAL;
    int n = snprintf(out, outlen, "%s %s", room, user);
    return n > 0 && (size_t)n < outlen ? 0 : CHAT_EINVAL;
}

int chat_reads_doc_update(const char *room, const char *user, const char *upto, int64_t ts_ms,
                          bson_t *selector, bson_t *update)
{
    char id[CHAT_READS_ID_MAX + 1];
    bson_t child;
    bool ok = true;

    if (chat_reads_doc_id(room, user, id, sizeof(id)) != 0 || !upto ||
        chat_msgid_parse(upto, NULL, NULL) != 0)
        return CHAT_EINVAL;
    ok = ok && BSON_APPEND_UTF8(selector, "_id", id);
    ok = ok && BSON_APPEND_DOCUMENT_BEGIN(update, "$max", &child);
    ok = ok && BSON_APPEND_UTF8(&child, "upto", upto);
    ok = ok && BSON_APPEND_DATE_TIME(&child, "ts", ts_ms);
    ok = ok && bson_append_document_end(update, &child);
    ok = ok && BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &child);
    ok = ok && BSON_APPEND_UTF8(&child, "room", room);
    ok = ok && BSON_APPEND_UTF8(&child, "user", user);
    ok = ok && bson_append_document_end(update, &child);
    return ok ? 0 : -ENOMEM;
}

int chat_reads_doc_touch(const char *room, const char *user, bson_t *selector, bson_t *update)
{
    char id[CHAT_READS_ID_MAX + 1];
    bson_t child;
    bool ok = true;

    if (chat_reads_doc_id(room, user, id, sizeof(id)) != 0)
        return CHAT_EINVAL;
    ok = ok && BSON_APPEND_UTF8(selector, "_id", id);
    ok = ok && BSON_APPEND_DOCUMENT_BEGIN(update, "$setOnInsert", &child);
    ok = ok && BSON_APPEND_UTF8(&child, "room", room);
    ok = ok && BSON_APPEND_UTF8(&child, "user", user);
    ok = ok && bson_append_document_end(update, &child);
    return ok ? 0 : -ENOMEM;
}

/* Copies the string field key of doc into out (size outlen); false when missing, not a string,
 * empty or too long. */
static bool copy_utf8(const bson_t *doc, const char *key, char *out, size_t outlen)
{
    bson_iter_t it;
    uint32_t len = 0;

    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
        return false;
    const char *v = bson_iter_utf8(&it, &len);
    if (len == 0 || len >= outlen || memchr(v, '\0', len))
        return false;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

int chat_reads_doc_parse(const bson_t *doc, chat_read_state *out)
{
    bson_iter_t it;

    memset(out, 0, sizeof(*out));
    if (!copy_utf8(doc, "room", out->room, sizeof(out->room)) ||
        !chat_valid_room(out->room, strlen(out->room)) ||
        !copy_utf8(doc, "user", out->user, sizeof(out->user)))
        goto bad;
    if (bson_iter_init_find(&it, doc, "upto") &&
        (!copy_utf8(doc, "upto", out->upto, sizeof(out->upto)) ||
         chat_msgid_parse(out->upto, NULL, NULL) != 0))
        goto bad;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return CHAT_EINVAL;
}
