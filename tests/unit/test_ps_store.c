/* test_ps_store.c: the pure part of the persister's MongoDB writes: how an insert_many reply
 * is judged (duplicates count as stored; any other write error, a write concern error or a
 * missing acknowledgement means retry). The stored document: test_chat_store_doc.c. */
#include <bson/bson.h>
#include <errno.h>
#include <string.h>

#include "check.h"
#include "ps_store.h"

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
    RUN(test_classify);
    return check_summary();
}
