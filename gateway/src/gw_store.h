/* gw_store.h: MongoDB reads for the gateway (room history), done by a small pool of worker
 * threads so the loop never blocks. The loop submits a request; a worker runs the query with
 * a client from a mongoc_client_pool_t and queues the result; the wake callback (which calls
 * lws_cancel_service) tells the loop to collect results with gw_store_drain().
 * The workers also ping MongoDB when idle, for gw_store_ready().
 * Threads: new/free from main; history/drain on the loop thread; ready from any. */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_envelope.h"
#include "chat_validate.h"

typedef struct gw_store gw_store;

#define GW_STORE_QUEUE 1024 /* store reads waiting in a gateway at most */
#define GW_STORE_PER_CONN 8 /* of one connection (its joins and history reads) */

typedef struct gw_store_result {
    void *opaque;      /* as given to gw_store_history */
    int kind;          /* as given in the query */
    int32_t partition; /* as given in the query */
    int64_t fence;     /* every message of the partition below this offset was
                          stored before the query ran; -1 when unknown */
    char room[CHAT_ROOM_MAX + 1];
    int err;            /* 0, or negative: the query failed */
    chat_message *msgs; /* oldest first; owned by the store, valid during the call */
    size_t n;
    double seconds; /* how long the MongoDB read took (0 when it never ran) */
} gw_store_result;

typedef void (*gw_store_result_fn)(gw_store_result *r, void *arg);

/* Connects lazily (a MongoDB that is down is not an error here). wake() is called from worker
 * threads. At most max_queue requests wait, at most max_per_owner of one owner. Returns 0 or
 * CHAT_EINVAL with err naming CHAT_MONGO_URI. */
int gw_store_new(gw_store **out, const char *uri, int workers, size_t max_queue,
                 size_t max_per_owner, void (*wake)(void *), void *wake_arg, char *err,
                 size_t errlen);
/* Stops the workers (waiting for a running query); nothing calls wake() afterwards. NULL is a
 * no-op. gw_store_free does it too. */
void gw_store_stop(gw_store *s);
/* Stops the workers (waiting for a running query), hands every request not yet drained to fn
 * (those that never ran with err -ECANCELED) so their opaque pointers can be released, and
 * frees. NULL is a no-op. */
void gw_store_free(gw_store *s, gw_store_result_fn fn, void *arg);

typedef struct gw_store_query {
    const char *room;
    const char *before; /* NULL: up to the newest */
    const char *after;  /* NULL: the latest `limit` (before `before`); else the first `limit`
                           after it (a forward page) */
    int limit;
    int kind;          /* the caller's, handed back in the result */
    int32_t partition; /* the room's Kafka partition, for the fence; -1: no fence */
} gw_store_query;

/* Queues the query (copied) for owner (any pointer naming who asks, e.g. a connection; owners
 * are served in turn). Returns 0, or -ENOBUFS when max_queue requests, or max_per_owner of this
 * owner's, are already waiting. */
int gw_store_history(gw_store *s, const gw_store_query *q, const void *owner, void *opaque);
/* A job other than a history read (the read state, gw_reads.c): run(client, db, job) runs on a
 * worker with a mongoc_client_t (as void *, so this header needs no libmongoc) and the database
 * name, and returns 0 or a negative code, which comes back as the result's err through
 * gw_store_drain with kind and opaque as given (a job cancelled or never run: -ECANCELED, run not
 * called). The job belongs to the caller; the worker only passes it to run. Queued like a
 * history read for owner, with at most max_per_owner of this owner's waiting, and only while
 * the whole queue is less than half full (history reads keep the other half). Returns 0 or
 * -ENOBUFS / -ENOMEM. */
typedef int (*gw_store_run_fn)(void *client, const char *db, void *job);
int gw_store_job(gw_store *s, gw_store_run_fn run, void *job, int kind, const void *owner,
                 size_t max_per_owner, void *opaque);

/* Drops the owner's requests that have not started (its connection closed): they come back
 * through gw_store_drain with err -ECANCELED, so their opaque pointers can be released. */
void gw_store_cancel(gw_store *s, const void *owner);
/* Requests waiting (for /readyz). Any thread. */
size_t gw_store_queued(gw_store *s);

/* Before each query a worker calls fence(arg, partition) (any thread; it may block briefly):
 * the offset below which the store is known to hold every message of the partition (the
 * persister's committed offset), or -1. Set before the first query. */
void gw_store_set_fence(gw_store *s, int64_t (*fence)(void *arg, int32_t partition), void *arg);

/* Calls fn for every finished request, in completion order. Returns how many. */
size_t gw_store_drain(gw_store *s, gw_store_result_fn fn, void *arg);

/* True while the last ping or query succeeded. */
bool gw_store_ready(const gw_store *s);

#endif
