/* test_chat_store_doc.c: the stored message document (chat_store_doc.c): the index spec, the
 * document's shape as the persister builds it, parsing it back as the gateway does (round
 * trip, missing fields, an int64 ts), and refusal of documents we would not have written. */
#include <bson/bson.h>
#include <string.h>

#include "chat_error.h"
#include "chat_store_doc.h"
#include "check.h"

static chat_envelope sample(void)
{
    chat_envelope e;

    memset(&e, 0, sizeof(e));
    e.version = CHAT_ENVELOPE_VERSION;
    e.room = "general";
    e.from = "alice";
    e.name = "Alice";
    e.text = "h\xc3\xa9llo";
    e.text_len = 6;
    e.ts_ms = 1764072000123LL;
    e.cid = "c1";
    return e;
}

static void test_index(void)
{
    bson_t index = BSON_INITIALIZER;
    bson_iter_t it, key;

    CHECK(chat_store_doc_index(&index) == 0);
    CHECK(bson_iter_init_find(&it, &index, "name") && BSON_ITER_HOLDS_UTF8(&it));
    CHECK_STR(bson_iter_utf8(&it, NULL), "room_id_desc");
    CHECK_STR(CHAT_STORE_INDEX_NAME, "room_id_desc");
    CHECK_STR(CHAT_STORE_COLLECTION, "messages");
    CHECK(bson_iter_init_find(&it, &index, "key") && BSON_ITER_HOLDS_DOCUMENT(&it));
    CHECK(bson_iter_recurse(&it, &key));
    /* the order of the keys is the index: room first, then _id descending */
    CHECK(bson_iter_next(&key) && strcmp(bson_iter_key(&key), "room") == 0);
    CHECK(bson_iter_as_int64(&key) == 1);
    CHECK(bson_iter_next(&key) && strcmp(bson_iter_key(&key), "_id") == 0);
    CHECK(bson_iter_as_int64(&key) == -1);
    CHECK(!bson_iter_next(&key));
    CHECK(bson_count_keys(&index) == 2);
    bson_destroy(&index);
}

static void test_build(void)
{
    chat_envelope e = sample();
    bson_t doc;
    bson_iter_t it;
    uint32_t len;

    bson_init(&doc);
    CHECK(chat_store_doc_build("0003-00000000000000000012", &e, &doc) == 0);
    CHECK(bson_iter_init_find(&it, &doc, "_id") && BSON_ITER_HOLDS_UTF8(&it));
    CHECK_STR(bson_iter_utf8(&it, NULL), "0003-00000000000000000012");
    CHECK(bson_iter_init_find(&it, &doc, "room"));
    CHECK_STR(bson_iter_utf8(&it, NULL), "general");
    CHECK(bson_iter_init_find(&it, &doc, "from"));
    CHECK_STR(bson_iter_utf8(&it, NULL), "alice");
    CHECK(bson_iter_init_find(&it, &doc, "name"));
    CHECK_STR(bson_iter_utf8(&it, NULL), "Alice");
    CHECK(bson_iter_init_find(&it, &doc, "text"));
    CHECK_STR(bson_iter_utf8(&it, &len), "h\xc3\xa9llo");
    CHECK(len == 6);
    CHECK(bson_iter_init_find(&it, &doc, "ts") && BSON_ITER_HOLDS_DATE_TIME(&it));
    CHECK(bson_iter_date_time(&it) == 1764072000123LL);
    CHECK(bson_iter_init_find(&it, &doc, "cid"));
    CHECK_STR(bson_iter_utf8(&it, NULL), "c1");
    CHECK(bson_count_keys(&doc) == 7);
    bson_destroy(&doc);

    /* no name: the field is left out; no cid: stored as "" */
    e.name = "";
    e.cid = NULL;
    bson_init(&doc);
    CHECK(chat_store_doc_build("0003-00000000000000000012", &e, &doc) == 0);
    CHECK(!bson_iter_init_find(&it, &doc, "name"));
    CHECK(bson_iter_init_find(&it, &doc, "cid"));
    CHECK_STR(bson_iter_utf8(&it, NULL), "");
    CHECK(bson_count_keys(&doc) == 6);
    bson_destroy(&doc);

    /* text_len bounds the stored text */
    e.text = "abcdef";
    e.text_len = 3;
    bson_init(&doc);
    CHECK(chat_store_doc_build("0003-00000000000000000012", &e, &doc) == 0);
    CHECK(bson_iter_init_find(&it, &doc, "text"));
    CHECK_STR(bson_iter_utf8(&it, &len), "abc");
    bson_destroy(&doc);
}

static void test_round_trip(void)
{
    chat_envelope e = sample();
    chat_message m;
    bson_t doc;

    bson_init(&doc);
    CHECK(chat_store_doc_build("0011-00000000000000000345", &e, &doc) == 0);
    CHECK(chat_store_doc_parse(&doc, &m) == 0);
    CHECK_STR(m.id, "0011-00000000000000000345");
    CHECK(m.env.version == CHAT_ENVELOPE_VERSION);
    CHECK_STR(m.env.room, "general");
    CHECK_STR(m.env.from, "alice");
    CHECK_STR(m.env.name, "Alice");
    CHECK_STR(m.env.text, "h\xc3\xa9llo");
    CHECK(m.env.text_len == 6);
    CHECK(m.env.ts_ms == 1764072000123LL);
    CHECK_STR(m.env.cid, "c1");
    chat_envelope_clear(&m.env);
    bson_destroy(&doc);

    /* without name and cid: both come back as "", never NULL */
    e.name = NULL;
    e.cid = NULL;
    bson_init(&doc);
    CHECK(chat_store_doc_build("0011-00000000000000000346", &e, &doc) == 0);
    CHECK(chat_store_doc_parse(&doc, &m) == 0);
    CHECK_STR(m.env.name, "");
    CHECK_STR(m.env.cid, "");
    chat_envelope_clear(&m.env);
    bson_destroy(&doc);
}

/* Parses doc (built with BCON_NEW) and frees it. */
static int parse_doc(bson_t *doc, chat_message *m)
{
    int rc = chat_store_doc_parse(doc, m);

    bson_destroy(doc);
    return rc;
}

static void test_parse(void)
{
    const char *id = "0000-00000000000000000001";
    bson_oid_t oid;
    chat_message m;

    /* missing or non-string fields are "", a missing ts is 0 */
    CHECK(parse_doc(BCON_NEW("_id", BCON_UTF8(id), "room", BCON_INT32(5)), &m) == 0);
    CHECK_STR(m.id, id);
    CHECK_STR(m.env.room, "");
    CHECK_STR(m.env.from, "");
    CHECK_STR(m.env.text, "");
    CHECK(m.env.text_len == 0);
    CHECK(m.env.ts_ms == 0);
    chat_envelope_clear(&m.env);

    /* an int64 ts is taken as ms; a ts of another type is ignored */
    CHECK(parse_doc(BCON_NEW("_id", BCON_UTF8(id), "text", BCON_UTF8("hi"), "ts", BCON_INT64(42)),
                    &m) == 0);
    CHECK(m.env.ts_ms == 42);
    CHECK_STR(m.env.text, "hi");
    CHECK(m.env.text_len == 2);
    chat_envelope_clear(&m.env);
    CHECK(parse_doc(BCON_NEW("_id", BCON_UTF8(id), "ts", BCON_UTF8("yesterday")), &m) == 0);
    CHECK(m.env.ts_ms == 0);
    chat_envelope_clear(&m.env);

    /* not a document we wrote: refused, and m left zeroed */
    CHECK(parse_doc(BCON_NEW("room", BCON_UTF8("general"), "text", BCON_UTF8("hi")), &m) ==
          CHAT_EINVAL);
    CHECK(m.env.room == NULL && m.id[0] == '\0');
    CHECK(parse_doc(BCON_NEW("_id", BCON_INT32(7), "room", BCON_UTF8("general")), &m) ==
          CHAT_EINVAL);
    CHECK(parse_doc(BCON_NEW("_id", BCON_UTF8("0000-0001"), "room", BCON_UTF8("general")), &m) ==
          CHAT_EINVAL);
    CHECK(parse_doc(BCON_NEW("_id", BCON_UTF8("000x-00000000000000000001")), &m) == CHAT_EINVAL);
    bson_oid_init_from_string(&oid, "0123456789abcdef01234567");
    CHECK(parse_doc(BCON_NEW("_id", BCON_OID(&oid)), &m) == CHAT_EINVAL);
    CHECK(m.env.room == NULL && m.env.text == NULL);
}

int main(void)
{
    RUN(test_index);
    RUN(test_build);
    RUN(test_round_trip);
    RUN(test_parse);
    return check_summary();
}
