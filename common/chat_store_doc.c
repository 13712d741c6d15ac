/* chat_store_doc.c: the stored message document of chat_store_doc.h, built for the persister's
 * inserts and parsed for the gateway's history reads. */
#include "chat_store_doc.h"

#include <errno.h>
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
