/* ps_store.h: the persister's MongoDB side: the messages collection, its index (both in
 * chat_store_doc.h, with the document's shape), and idempotent batch inserts (insert_many,
 * unordered, _id = message id, so a replayed message is a duplicate-key no-op that counts as
 * stored). A ps_store wraps one mongoc_client_t: one thread only. mongoc_init() must have
 * been called. */
#ifndef PS_STORE_H
#define PS_STORE_H

#include <bson/bson.h>
#include <stddef.h>

#include "ps_batch.h"

#define PS_DUPLICATE_KEY 11000

typedef struct ps_store ps_store;

typedef struct ps_store_result {
    size_t inserted;   /* new documents */
    size_t duplicates; /* already stored (duplicate key) */
} ps_store_result;

/* Opens a client for uri (not connected yet: the first operation connects). db is the
 * database name. Timeouts the URI does not set are bounded (connect 5 s, socket 30 s,
 * server selection 5 s). Returns 0 or CHAT_EINVAL / -ENOMEM with err. */
int ps_store_open(ps_store **out, const char *uri, const char *db, const char *appname, char *err,
                  size_t errlen);
void ps_store_close(ps_store *s);

/* Round trip to the server. Returns 0 or -EIO with err. */
int ps_store_ping(ps_store *s, char *err, size_t errlen);

/* createIndexes chat_store_doc_index() on CHAT_STORE_COLLECTION (a no-op when it exists).
 * Returns 0 or -EIO with err. */
int ps_store_ensure_index(ps_store *s, char *err, size_t errlen);

/* Stores recs[0..n) (as chat_store_doc_build documents) with one unordered insert_many. Returns 0
 * when every record is now in the collection (inserted or duplicate; counts in *res), else -EIO
 * with err: the caller retries the same records later. */
int ps_store_insert(ps_store *s, const ps_record *recs, size_t n, ps_store_result *res, char *err,
                    size_t errlen);

/* A pure helper, exposed for the unit tests. Judges an insert_many reply for n documents: 0 when
 * every document is inserted or a duplicate (counts in *res), -EIO (with the first other error in
 * err) otherwise. */
int ps_store_classify(const bson_t *reply, size_t n, ps_store_result *res, char *err,
                      size_t errlen);

#endif
