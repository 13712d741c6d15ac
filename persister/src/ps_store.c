/* ps_store.c: MongoDB writes of the persister: one client, the messages collection and its
 * index (chat_store_doc.h) and idempotent unordered batch inserts. A failed insert is judged from
 * its reply: it succeeded for our purposes when every document is either inserted or
 * refused as a duplicate key (stored by an earlier attempt or another instance); anything
 * else is reported so the caller retries the same batch. A batch with direct rooms also makes
 * sure both users of each have a read-state document (so the rooms frame lists the room for a
 * user who never read it); that upsert is idempotent and retried with the batch. */
#include "ps_store.h"

#include <errno.h>
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_mongo.h"
#include "chat_store_doc.h"

struct ps_store {
    mongoc_client_t *client;
    mongoc_database_t *db;
    mongoc_collection_t *coll;
    mongoc_collection_t *reads; /* the read state (direct rooms' documents) */
};

int ps_store_open(ps_store **out, const char *uri, const char *db, const char *appname, char *err,
                  size_t errlen)
{
    bson_error_t berr;
    mongoc_uri_t *u = NULL;
    ps_store *s = NULL;
    int rc = 0;

    *out = NULL;
    u = chat_mongo_uri_new(uri, appname, err, errlen);
    if (!u)
        return CHAT_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        chat_errf(err, errlen, "out of memory");
        goto out;
    }
    s->client = mongoc_client_new_from_uri_with_error(u, &berr);
    if (!s->client) {
        chat_errf(err, errlen, "CHAT_MONGO_URI: %s", berr.message);
        rc = CHAT_EINVAL;
        goto out;
    }
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
    s->db = mongoc_client_get_database(s->client, db);
    s->coll = mongoc_client_get_collection(s->client, db, CHAT_STORE_COLLECTION);
    s->reads = mongoc_client_get_collection(s->client, db, CHAT_READS_COLLECTION);
    if (!s->db || !s->coll || !s->reads) {
        chat_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    ps_store_close(s);
    mongoc_uri_destroy(u);
    return rc;
}

void ps_store_close(ps_store *s)
{
    if (!s)
        return;
    if (s->coll)
        mongoc_collection_destroy(s->coll);
    if (s->reads)
        mongoc_collection_destroy(s->reads);
    if (s->db)
        mongoc_database_destroy(s->db);
    if (s->client)
        mongoc_client_destroy(s->client);
    free(s);
}

int ps_store_ping(ps_store *s, char *err, size_t errlen)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t berr;
    int rc = 0;

    BSON_APPEND_INT32(&cmd, "ping", 1);
    if (!mongoc_database_command_simple(s->db, &cmd, NULL, NULL, &berr)) {
        chat_errf(err, errlen, "%s", berr.message);
        rc = -EIO;
    }
    bson_destroy(&cmd);
    return rc;
}

int ps_store_ensure_index(ps_store *s, char *err, size_t errlen)
{
    bson_t cmd = BSON_INITIALIZER, indexes, index;
    bson_error_t berr;
    int rc = 0;

    BSON_APPEND_UTF8(&cmd, "createIndexes", CHAT_STORE_COLLECTION);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    chat_store_doc_index(&index);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);
    if (!mongoc_database_write_command_with_opts(s->db, &cmd, NULL, NULL, &berr)) {
        chat_errf(err, errlen, "createIndexes %s: %s", CHAT_STORE_INDEX_NAME, berr.message);
        rc = -EIO;
    }
    bson_destroy(&cmd);
    if (rc)
        return rc;
    /* the read state's collection and index (chat_store_doc.h) */
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "createIndexes", CHAT_READS_COLLECTION);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    chat_reads_doc_index(&index);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);
    if (!mongoc_database_write_command_with_opts(s->db, &cmd, NULL, NULL, &berr)) {
        chat_errf(err, errlen, "createIndexes %s: %s", CHAT_READS_INDEX_NAME, berr.message);
        rc = -EIO;
    }
    bson_destroy(&cmd);
    return rc;
}

/* An int64 from a numeric field of reply, or -1. */
static int64_t reply_count(const bson_t *reply, const char *key)
{
    bson_iter_t it;

    if (reply && bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return -1;
}

int ps_store_classify(const bson_t *reply, size_t n, ps_store_result *res, char *err, size_t errlen)
{
    bson_iter_t it, arr;
    int64_t inserted = reply_count(reply, "insertedCount");
    size_t dups = 0, others = 0;
    char first[256] = "";

    memset(res, 0, sizeof(*res));
    if (!reply) {
        chat_errf(err, errlen, "no reply");
        return -EIO;
    }
    if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr) && bson_iter_next(&arr)) {
        chat_errf(err, errlen, "write concern error");
        return -EIO;
    }
    if (bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            bson_iter_t e;
            int64_t code = -1;

            if (BSON_ITER_HOLDS_DOCUMENT(&arr) && bson_iter_recurse(&arr, &e)) {
                bson_iter_t c = e;
                if (bson_iter_find(&c, "code") && BSON_ITER_HOLDS_NUMBER(&c))
                    code = bson_iter_as_int64(&c);
                if (code != PS_DUPLICATE_KEY && !first[0]) {
                    bson_iter_t m = e;
                    if (bson_iter_find(&m, "errmsg") && BSON_ITER_HOLDS_UTF8(&m))
                        snprintf(first, sizeof(first), "code %" PRId64 ": %s", code,
                                 bson_iter_utf8(&m, NULL));
                    else
                        snprintf(first, sizeof(first), "code %" PRId64, code);
                }
            }
            if (code == PS_DUPLICATE_KEY)
                dups++;
            else
                others++;
        }
    }
    if (others) {
        chat_errf(err, errlen, "%zu write errors, first %s", others, first);
        return -EIO;
    }
    if (inserted < 0 || (size_t)inserted + dups != n) {
        chat_errf(err, errlen, "only %" PRId64 " of %zu documents acknowledged",
                  inserted < 0 ? 0 : inserted + (int64_t)dups, n);
        return -EIO;
    }
    res->inserted = (size_t)inserted;
    res->duplicates = dups;
    return 0;
}

/* For every direct room of the batch (once each), the read-state documents of both its users
 * exist afterwards (chat_reads_doc_touch): one unordered bulk of upserts. Returns 0 or -EIO. */
static int touch_direct_rooms(ps_store *s, const ps_record *recs, size_t n, char *err,
                              size_t errlen)
{
    mongoc_bulk_operation_t *bulk = NULL;
    size_t ops = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *room = recs[i].env.room;
        chat_dm dm;
        bool seen = false;
        if (!room || !chat_dm_parse(room, strlen(room), &dm))
            continue;
        for (size_t k = 0; k < i && !seen; k++)
            seen = recs[k].env.room && strcmp(recs[k].env.room, room) == 0;
        if (seen)
            continue;
        if (!bulk) {
            bson_t opts = BSON_INITIALIZER;
            BSON_APPEND_BOOL(&opts, "ordered", false);
            bulk = mongoc_collection_create_bulk_operation_with_opts(s->reads, &opts);
            bson_destroy(&opts);
        }
        for (int u = 0; u < 2; u++) {
            char user[CHAT_DM_USER_MAX + 1];
            size_t len = u ? dm.blen : dm.alen;
            memcpy(user, u ? dm.b : dm.a, len);
            user[len] = '\0';
            bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, uopts = BSON_INITIALIZER;
            bson_error_t berr;
            BSON_APPEND_BOOL(&uopts, "upsert", true);
            if (chat_reads_doc_touch(room, user, &sel, &upd) != 0 ||
                !mongoc_bulk_operation_update_one_with_opts(bulk, &sel, &upd, &uopts, &berr)) {
                chat_errf(err, errlen, "read state of %s: cannot build the upsert", room);
                rc = -EIO;
            }
            ops++;
            bson_destroy(&sel);
            bson_destroy(&upd);
            bson_destroy(&uopts);
        }
    }
    if (bulk && rc == 0 && ops) {
        bson_t reply;
        bson_error_t berr;
        if (!mongoc_bulk_operation_execute(bulk, &reply, &berr)) {
            chat_errf(err, errlen, "read state of direct rooms: %s", berr.message);
            rc = -EIO;
        }
        bson_destroy(&reply);
    }
    if (bulk)
        mongoc_bulk_operation_destroy(bulk);
    return rc;
}

int ps_store_insert(ps_store *s, const ps_record *recs, size_t n, ps_store_result *res, char *err,
                    size_t errlen)
{
    bson_t *docs = NULL, opts = BSON_INITIALIZER, reply;
    const bson_t **ptrs = NULL;
    bson_error_t berr;
    size_t built = 0;
    bool ok;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    bson_init(&reply);
    if (n == 0)
        goto out;
    docs = calloc(n, sizeof(*docs));
    ptrs = calloc(n, sizeof(*ptrs));
    if (!docs || !ptrs) {
        chat_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    for (; built < n; built++) {
        bson_init(&docs[built]);
        ptrs[built] = &docs[built];
        if (chat_store_doc_build(recs[built].id, &recs[built].env, &docs[built]) != 0) {
            built++;
            chat_errf(err, errlen, "document too large");
            rc = -ENOMEM;
            goto out;
        }
    }
    BSON_APPEND_BOOL(&opts, "ordered", false);
    bson_destroy(&reply);
    memset(&berr, 0, sizeof(berr));
    ok = mongoc_collection_insert_many(s->coll, ptrs, n, &opts, &reply, &berr);
    rc = ps_store_classify(&reply, n, res, err, errlen);
    if (rc != 0 && !ok && berr.message[0]) /* the driver's message says more (network...) */
        chat_errf(err, errlen, "%s", berr.message);
    if (rc == 0)
        rc = touch_direct_rooms(s, recs, n, err, errlen);
out:
    for (size_t i = 0; i < built; i++)
        bson_destroy(&docs[i]);
    free(docs);
    free(ptrs);
    bson_destroy(&opts);
    bson_destroy(&reply);
    return rc;
}
