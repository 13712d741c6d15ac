/* test_ps_store.c: the pure parts of the persister's MongoDB writes: the stored document's
 * shape, and how an insert_many reply is judged (duplicates count as stored; any other
 * write error, a write concern error or a missing acknowledgement means retry). */
#include <bson/bson.h>
#include <errno.h>
#include <string.h>

#include "check.h"
#include "ps_store.h"

static void test_build_doc(void)
{
    ps_record r;
    bson_t doc;
    bson_iter_t it;
    uint32_t len;

    memset(&r, 0, sizeof(r));
    strcpy(r.id, "0003-00000000000000000012");
    r.env.version = 1;
    r.env.room = "general";
    r.env.from = "alice";
    r.env.name = "Alice";
    r.env.text = "h\xc3\xa9llo";
    r.env.text_len = 6;
    r.env.ts_ms = 1764072000123LL;
    r.env.cid = "c1";
    bson_init(&doc);
    CHECK(ps_store_build_doc(&r, &doc) == 0);
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
    r.env.name = "";
    r.env.cid = NULL;
    bson_init(&doc);
    CHECK(ps_store_build_doc(&r, &doc) == 0);
    CHECK(!bson_iter_init_find(&it, &doc, "name"));
    CHECK(bson_iter_init_find(&it, &doc, "cid"));
    CHECK_STR(bson_iter_utf8(&it, NULL), "");
    CHECK(bson_count_keys(&doc) == 6);
    bson_destroy(&doc);

    /* text_len bounds the stored text */
    r.env.text = "abcdef";
    r.env.text_len = 3;
    bson_init(&doc);
    CHECK(ps_store_build_doc(&r, &doc) == 0);
    CHECK(bson_iter_init_find(&it, &doc, "text"));
    CHECK_STR(bson_iter_utf8(&it, &len), "abc");
    bson_destroy(&doc);
}

static int classify_json(const char *json, size_t n, ps_store_result *res, char *err)
{
    bson_error_t berr;
    bson_t *reply = bson_new_from_json((const uint8_t *)json, -1, &berr);
    int rc;

    if (!reply) {
        fprintf(stderr, "bad test json: %s\n", berr.message);
        return 12345;
    }
    rc = ps_store_classify(reply, n, res, err, 256);
    bson_destroy(reply);
    return rc;
}

static void test_classify(void)
{
    ps_store_result res;
    char err[256];

    CHECK(classify_json("{\"insertedCount\": 3}", 3, &res, err) == 0);
    CHECK(res.inserted == 3 && res.duplicates == 0);

    CHECK(classify_json("{\"insertedCount\": 1, \"writeErrors\": ["
                        "{\"index\": 0, \"code\": 11000, \"errmsg\": \"E11000 dup\"},"
                        "{\"index\": 2, \"code\": 11000, \"errmsg\": \"E11000 dup\"}]}",
                        3, &res, err) == 0);
    CHECK(res.inserted == 1 && res.duplicates == 2);

    /* all duplicates (a full replay) */
    CHECK(classify_json("{\"insertedCount\": 0, \"writeErrors\": ["
                        "{\"index\": 0, \"code\": {\"$numberLong\": \"11000\"}}]}",
                        1, &res, err) == 0);
    CHECK(res.inserted == 0 && res.duplicates == 1);

    /* another write error: retry, and the message names it */
    CHECK(classify_json("{\"insertedCount\": 1, \"writeErrors\": ["
                        "{\"index\": 0, \"code\": 11000, \"errmsg\": \"dup\"},"
                        "{\"index\": 1, \"code\": 2, \"errmsg\": \"bad value\"}]}",
                        3, &res, err) == -EIO);
    CHECK(strstr(err, "code 2: bad value") != NULL);
    CHECK(res.inserted == 0 && res.duplicates == 0);

    /* a write concern error: retry */
    CHECK(classify_json("{\"insertedCount\": 2, \"writeConcernErrors\": ["
                        "{\"code\": 64, \"errmsg\": \"waiting for replication timed out\"}]}",
                        2, &res, err) == -EIO);
    CHECK(classify_json("{\"insertedCount\": 2, \"writeConcernErrors\": []}", 2, &res, err) == 0);

    /* not every document accounted for (e.g. the connection broke half-way) */
    CHECK(classify_json("{\"insertedCount\": 1}", 3, &res, err) == -EIO);
    CHECK(classify_json("{}", 3, &res, err) == -EIO);
    CHECK(classify_json("{\"insertedCount\": 1, \"writeErrors\": ["
                        "{\"index\": 0, \"code\": 11000}]}",
                        3, &res, err) == -EIO);
    CHECK(ps_store_classify(NULL, 1, &res, err, sizeof(err)) == -EIO);
}

int main(void)
{
    RUN(test_build_doc);
    RUN(test_classify);
    return check_summary();
}
