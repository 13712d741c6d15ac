/* gw_store.c: the MongoDB worker pool behind gw_store.h. Requests and results are linked
 * lists under one mutex. Queued requests wait in one FIFO per owner (a connection), and the
 * owners are served in turn, so one connection's flood delays everyone else by at most one
 * request each; the queue is bounded in total and per owner, a result by its limit. */
#define _DEFAULT_SOURCE /* gethostname, strncasecmp, strdup, pipe, clock_gettime */
#include "gw_store.h"

#include <bson/bson.h>
#include <errno.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_mongo.h"
#include "chat_store_doc.h"

typedef struct gw_store_req {
    struct gw_store_req *next;
    const void *owner;
    gw_store_result r;
    char before[CHAT_MSGID_LEN + 1]; /* "" = newest */
    char after[CHAT_MSGID_LEN + 1];  /* "" = no lower bound */
    int limit;
    gw_store_run_fn run; /* a job (gw_store_job), else a history read */
    void *job;
} gw_store_req;

/* One owner's queued requests, oldest first; the ring is circular (ring points at the next owner
 * served). */
typedef struct gw_store_owner {
    struct gw_store_owner *next, *prev;
    const void *owner;
    gw_store_req *head, *tail;
    size_t n;
} gw_store_owner;

struct gw_store {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    char db[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gw_store_owner *ring; /* owners with queued requests, served in turn */
    size_t req_count, max_queue, max_per_owner;
    gw_store_req *done_head, *done_tail;
    pthread_t *threads;
    int nthreads;
    bool stop;
    atomic_bool ready;
    int64_t last_check_ms;
    void (*wake)(void *);
    void *wake_arg;
    int64_t (*fence)(void *, int32_t);
    void *fence_arg;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_ready(gw_store *s, bool ok, const char *why)
{
    if (atomic_exchange(&s->ready, ok) != ok)
        chat_log(ok ? CHAT_LOG_INFO : CHAT_LOG_WARN, "mongodb is %s%s%s",
                 ok ? "reachable" : "unreachable", ok ? "" : ": ", ok ? "" : why);
}

static void ping(gw_store *s, mongoc_client_t *c)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t e;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bool ok = mongoc_client_command_simple(c, "admin", &cmd, NULL, NULL, &e);
    bson_destroy(&cmd);
    set_ready(s, ok, ok ? "" : e.message);
}

static void run_query(gw_store *s, mongoc_client_t *c, gw_store_req *q)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, child;
    /* the fence first: what the persister had stored when the query starts is all in it */
    q->r.fence = (s->fence && q->r.partition >= 0) ? s->fence(s->fence_arg, q->r.partition) : -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* a forward page (after) reads oldest first; otherwise newest first, reversed below */
    bool forward = q->after[0] != '\0';
    BSON_APPEND_UTF8(&filter, "room", q->r.room);
    if (q->before[0] || q->after[0]) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &child);
        if (q->before[0])
            BSON_APPEND_UTF8(&child, "$lt", q->before);
        if (q->after[0])
            BSON_APPEND_UTF8(&child, "$gt", q->after);
        bson_append_document_end(&filter, &child);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &child);
    BSON_APPEND_INT32(&child, "_id", forward ? 1 : -1);
    bson_append_document_end(&opts, &child);
    BSON_APPEND_INT64(&opts, "limit", q->limit);

    mongoc_collection_t *coll = mongoc_client_get_collection(c, s->db, CHAT_STORE_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    q->r.msgs = q->limit > 0 ? calloc((size_t)q->limit, sizeof(chat_message)) : NULL;
    q->r.n = 0;
    const bson_t *doc;
    bson_error_t e;
    if (q->limit > 0 && !q->r.msgs) {
        q->r.err = -ENOMEM;
    } else {
        while (q->r.n < (size_t)q->limit && mongoc_cursor_next(cur, &doc)) {
            /* a document we would not have written is skipped */
            if (chat_store_doc_parse(doc, &q->r.msgs[q->r.n]) == 0)
                q->r.n++;
        }
        if (mongoc_cursor_error(cur, &e)) {
            chat_log(CHAT_LOG_WARN, "history of %s: %s", q->r.room, e.message);
            q->r.err = -EIO;
            set_ready(s, false, e.message);
        } else {
            set_ready(s, true, "");
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    q->r.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* newest first from the query; the protocol wants oldest first */
    for (size_t i = 0; !forward && i < q->r.n / 2; i++) {
        chat_message t = q->r.msgs[i];
        q->r.msgs[i] = q->r.msgs[q->r.n - 1 - i];
        q->r.msgs[q->r.n - 1 - i] = t;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
}

static gw_store_owner *owner_find(gw_store *s, const void *owner)
{
    gw_store_owner *o = s->ring;
    if (!o)
        return NULL;
    do {
        if (o->owner == owner)
            return o;
        o = o->next;
    } while (o != s->ring);
    return NULL;
}

static void owner_unlink(gw_store *s, gw_store_owner *o)
{
    if (o->next == o) {
        s->ring = NULL;
    } else {
        o->prev->next = o->next;
        o->next->prev = o->prev;
        if (s->ring == o)
            s->ring = o->next;
    }
    free(o);
}

/* The next request to run: the oldest of the owner whose turn it is; that owner goes to the back
 * of the ring. Caller holds mu; NULL when nothing is queued. */
static gw_store_req *queue_pop(gw_store *s)
{
    gw_store_owner *o = s->ring;
    if (!o)
        return NULL;
    gw_store_req *q = o->head;
    o->head = q->next;
    if (!o->head)
        o->tail = NULL;
    o->n--;
    s->req_count--;
    if (o->n == 0)
        owner_unlink(s, o);
    else
        s->ring = o->next;
    q->next = NULL;
    return q;
}

/* Appends q to the finished list (caller holds mu). */
static void done_push(gw_store *s, gw_store_req *q)
{
    q->next = NULL;
    if (s->done_tail)
        s->done_tail->next = q;
    else
        s->done_head = q;
    s->done_tail = q;
}

static void free_result(gw_store_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        chat_envelope_clear(&r->msgs[i].env);
    free(r->msgs);
    r->msgs = NULL;
    r->n = 0;
}

static void *worker_main(void *arg)
{
    gw_store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (!s->ring) {
            /* idle: ping every 2 s (one worker does it), else wait for work */
            int64_t now = mono_ms();
            if (now - s->last_check_ms >= 2000) {
                s->last_check_ms = now;
                pthread_mutex_unlock(&s->mu);
                mongoc_client_t *c = mongoc_client_pool_pop(s->pool);
                ping(s, c);
                mongoc_client_pool_push(s->pool, c);
                pthread_mutex_lock(&s->mu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 500 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            continue;
        }
        gw_store_req *q = queue_pop(s);
        pthread_mutex_unlock(&s->mu);

        mongoc_client_t *c = mongoc_client_pool_pop(s->pool);
        if (q->run) {
            q->r.err = q->run(c, s->db, q->job);
            if (q->r.err == 0 || q->r.err == -EIO)
                set_ready(s, q->r.err == 0, "a read-state query failed");
        } else {
            run_query(s, c, q);
        }
        mongoc_client_pool_push(s->pool, c);

        pthread_mutex_lock(&s->mu);
        s->last_check_ms = mono_ms();
        done_push(s, q);
        pthread_mutex_unlock(&s->mu);
        s->wake(s->wake_arg);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int gw_store_new(gw_store **out, const char *uri, int workers, size_t max_queue,
                 size_t max_per_owner, void (*wake)(void *), void *wake_arg, char *err,
                 size_t errlen)
{
    gw_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max_queue = max_queue;
    s->max_per_owner = max_per_owner;
    s->wake = wake;
    s->wake_arg = wake_arg;
    s->uri = chat_mongo_uri_new(uri, "chat-gateway", err, errlen);
    if (!s->uri)
        goto fail;
    const char *db = mongoc_uri_get_database(s->uri);
    snprintf(s->db, sizeof(s->db), "%s", db && *db ? db : "chat");
    s->pool = mongoc_client_pool_new(s->uri);
    if (!s->pool) {
        chat_errf(err, errlen, "CHAT_MONGO_URI: cannot create a client pool");
        goto fail;
    }
    mongoc_client_pool_max_size(s->pool, (uint32_t)workers + 1);
    s->threads = calloc((size_t)workers, sizeof(pthread_t));
    if (!s->threads)
        goto fail;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0) {
            chat_errf(err, errlen, "cannot start a MongoDB worker thread");
            goto fail;
        }
        s->nthreads++;
    }
    *out = s;
    return 0;
fail:
    gw_store_free(s, NULL, NULL);
    return CHAT_EINVAL;
}

void gw_store_stop(gw_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    s->nthreads = 0;
}

void gw_store_free(gw_store *s, gw_store_result_fn fn, void *arg)
{
    if (!s)
        return;
    gw_store_stop(s);
    free(s->threads);
    /* the never-run requests join the finished ones, so one loop releases both */
    for (gw_store_req *q; (q = queue_pop(s));) {
        q->r.err = -ECANCELED;
        done_push(s, q);
    }
    for (gw_store_req *q = s->done_head, *n; q; q = n) {
        n = q->next;
        if (fn)
            fn(&q->r, arg);
        free_result(&q->r);
        free(q);
    }
    if (s->pool)
        mongoc_client_pool_destroy(s->pool);
    if (s->uri)
        mongoc_uri_destroy(s->uri);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void gw_store_set_fence(gw_store *s, int64_t (*fence)(void *arg, int32_t partition), void *arg)
{
    s->fence = fence;
    s->fence_arg = arg;
}

static int enqueue(gw_store *s, gw_store_req *q, size_t max_per_owner);

int gw_store_job(gw_store *s, gw_store_run_fn run, void *job, int kind, const void *owner,
                 size_t max_per_owner, void *opaque)
{
    gw_store_req *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->r.opaque = opaque;
    q->r.kind = kind;
    q->r.partition = -1;
    q->r.fence = -1;
    q->run = run;
    q->job = job;
    q->owner = owner;
    pthread_mutex_lock(&s->mu);
    bool room = s->req_count < s->max_queue / 2;
    pthread_mutex_unlock(&s->mu);
    if (!room) {
        free(q);
        return -ENOBUFS;
    }
    return enqueue(s, q, max_per_owner);
}

int gw_store_history(gw_store *s, const gw_store_query *query, const void *owner, void *opaque)
{
    gw_store_req *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->r.opaque = opaque;
    q->r.kind = query->kind;
    q->r.partition = query->partition;
    q->r.fence = -1;
    snprintf(q->r.room, sizeof(q->r.room), "%s", query->room);
    snprintf(q->before, sizeof(q->before), "%s", query->before ? query->before : "");
    snprintf(q->after, sizeof(q->after), "%s", query->after ? query->after : "");
    q->limit = query->limit;
    q->owner = owner;
    return enqueue(s, q, s->max_per_owner);
}

static int enqueue(gw_store *s, gw_store_req *q, size_t max_per_owner)
{
    const void *owner = q->owner;
    pthread_mutex_lock(&s->mu);
    gw_store_owner *o = owner_find(s, owner);
    if (s->req_count >= s->max_queue || (o && o->n >= max_per_owner) ||
        (!o && !(o = calloc(1, sizeof(*o))))) {
        pthread_mutex_unlock(&s->mu);
        free(q);
        return -ENOBUFS;
    }
    if (o->n == 0) { /* a new owner joins the back of the ring */
        o->owner = owner;
        if (!s->ring) {
            o->next = o->prev = o;
            s->ring = o;
        } else {
            o->next = s->ring;
            o->prev = s->ring->prev;
            o->prev->next = o;
            s->ring->prev = o;
        }
    }
    if (o->tail)
        o->tail->next = q;
    else
        o->head = q;
    o->tail = q;
    o->n++;
    s->req_count++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

size_t gw_store_drain(gw_store *s, gw_store_result_fn fn, void *arg)
{
    pthread_mutex_lock(&s->mu);
    gw_store_req *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    size_t n = 0;
    for (gw_store_req *q = list, *next; q; q = next, n++) {
        next = q->next;
        fn(&q->r, arg);
        free_result(&q->r);
        free(q);
    }
    return n;
}

bool gw_store_ready(const gw_store *s)
{
    return atomic_load(&s->ready);
}

void gw_store_cancel(gw_store *s, const void *owner)
{
    pthread_mutex_lock(&s->mu);
    gw_store_owner *o = owner_find(s, owner);
    size_t n = 0;
    if (o) {
        for (gw_store_req *q = o->head, *next; q; q = next, n++) {
            next = q->next;
            q->r.err = -ECANCELED;
            done_push(s, q);
        }
        s->req_count -= o->n;
        owner_unlink(s, o);
    }
    pthread_mutex_unlock(&s->mu);
    if (n)
        s->wake(s->wake_arg);
}

size_t gw_store_queued(gw_store *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->req_count;
    pthread_mutex_unlock(&s->mu);
    return n;
}
