/* gw_reads.c: read state (see gw_reads.h): the read and rooms frames, their store jobs (run on
 * gw_store's worker threads) and the delivery of read and receipt frames. */
#include "gw_reads.h"

#include <bson/bson.h>
#include <errno.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_store_doc.h"
#include "gw_access.h"
#include "gw_out.h"
#include "gw_session.h"

enum { GW_Q_READ_SET = GW_READS_KIND_FIRST, GW_Q_READ_ROOMS, GW_Q_READ_JOIN };

/* A join's lookup of (room, user). */
typedef struct join_job {
    gw_handle *h;
    uint32_t gen; /* the join it is for */
    char room[CHAT_ROOM_MAX + 1];
    char user[CHAT_USER_MAX + 1];
    int64_t log_start; /* where the log's coverage of the room's partition began */
    bool count_all;    /* a direct room: with no read state every message is unread */
    /* the worker's answer */
    char upto[CHAT_MSGID_LEN + 1];
    int store_unread; /* -1: the log counts */
} join_job;

/* A read frame's update: filled by the loop, answered by a worker. */
typedef struct read_job {
    gw_handle *h; /* the connection that read (weak) */
    char cid[CHAT_CID_MAX + 1];
    char room[CHAT_ROOM_MAX + 1];
    char user[CHAT_USER_MAX + 1];
    char upto[CHAT_MSGID_LEN + 1];
    int64_t ts_ms;
    bool count; /* the log cannot count what follows upto: the worker counts in the store */
    /* the worker's answer */
    bool moved;
    unsigned unread;
} read_job;

/* One room of a rooms answer. */
typedef struct rooms_entry {
    char room[CHAT_ROOM_MAX + 1];
    char upto[CHAT_MSGID_LEN + 1];
    char last[CHAT_MSGID_LEN + 1];
    unsigned unread;
} rooms_entry;

typedef struct rooms_job {
    gw_handle *h;
    char cid[CHAT_CID_MAX + 1];
    char user[CHAT_USER_MAX + 1];
    rooms_entry rooms[GW_READS_ROOMS_MAX];
    size_t n;
} rooms_job;

const void *gw_reads_owner(const gw_session *s)
{
    return s->handle ? (const char *)s->handle + 1 : NULL;
}

/* --- counting from the room log ---------------------------------------------------------- */

/* Messages of room after upto from the log when it holds all of them (capped); -1 when it
 * does not. */
static int log_unread(gw_ctx *ctx, const char *room, const char *upto)
{
    int32_t p = -1;
    int64_t off = -1, start = 0, next = 0;
    if (!ctx->log || chat_msgid_parse(upto, &p, &off) != 0 ||
        !gw_log_coverage(ctx->log, p, &start, &next) || off + 1 < start)
        return -1;
    gw_log_room *lr = gw_log_room_find(ctx->log, room);
    if (!lr)
        return 0;
    uint64_t n = lr->next_rseq - gw_log_after(lr, off);
    return n > CHAT_UNREAD_MAX ? CHAT_UNREAD_MAX : (int)n;
}

/* The room's newest message id from the log into out (unchanged when the log has none). */
static void log_last(gw_ctx *ctx, const char *room, char *out)
{
    gw_log_room *lr = ctx->log ? gw_log_room_find(ctx->log, room) : NULL;
    if (!lr || lr->next_rseq == lr->first_rseq)
        return;
    gw_log_entry *e = gw_log_at(lr, lr->next_rseq - 1);
    char id[CHAT_MSGID_LEN + 1];
    if (e && chat_msgid_format(id, lr->partition, e->offset) == 0 && strcmp(id, out) > 0)
        memcpy(out, id, sizeof(id));
}

/* --- worker side --------------------------------------------------------------------------- */

/* Messages of room after upto in the store (after anything when upto is ""), at most
 * CHAT_UNREAD_MAX; -1 on error. */
static int64_t store_unread(mongoc_client_t *c, const char *db, const char *room, const char *upto)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, child;
    BSON_APPEND_UTF8(&filter, "room", room);
    if (upto[0]) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &child);
        BSON_APPEND_UTF8(&child, "$gt", upto);
        bson_append_document_end(&filter, &child);
    }
    BSON_APPEND_INT64(&opts, "limit", CHAT_UNREAD_MAX);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, CHAT_STORE_COLLECTION);
    bson_error_t e;
    int64_t n = mongoc_collection_count_documents(coll, &filter, &opts, NULL, NULL, &e);
    if (n < 0)
        chat_log(CHAT_LOG_WARN, "unread count of %s: %s", room, e.message);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return n;
}

/* The store's newest message id of room into out ("" when none). Returns 0 or -EIO. */
static int store_last(mongoc_client_t *c, const char *db, const char *room, char *out)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, child;
    BSON_APPEND_UTF8(&filter, "room", room);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &child);
    BSON_APPEND_INT32(&child, "_id", -1);
    bson_append_document_end(&opts, &child);
    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &child);
    BSON_APPEND_INT32(&child, "_id", 1);
    bson_append_document_end(&opts, &child);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, CHAT_STORE_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    out[0] = '\0';
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "_id") &&
        BSON_ITER_HOLDS_UTF8(&it)) {
        uint32_t len = 0;
        const char *id = bson_iter_utf8(&it, &len);
        if (len == CHAT_MSGID_LEN) {
            memcpy(out, id, len);
            out[len] = '\0';
        }
    }
    bson_error_t e;
    int rc = mongoc_cursor_error(cur, &e) ? -EIO : 0;
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

/* The forward-only update; its previous value says whether it moved. */
static int run_set(void *client, const char *db, void *arg)
{
    mongoc_client_t *c = client;
    read_job *j = arg;
    bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, reply;
    bson_error_t e;
    int rc = chat_reads_doc_update(j->room, j->user, j->upto, j->ts_ms, &sel, &upd);
    if (rc) {
        bson_destroy(&sel);
        bson_destroy(&upd);
        return rc;
    }
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, CHAT_READS_COLLECTION);
    /* returns the document as it was before (new: false), null when it was inserted */
    bool ok = mongoc_collection_find_and_modify(coll, &sel, NULL, &upd, NULL, false, true, false,
                                                &reply, &e);
    if (!ok) {
        chat_log(CHAT_LOG_WARN, "read state of %s in %s: %s", j->user, j->room, e.message);
        rc = -EIO;
    } else {
        bson_iter_t it;
        chat_read_state old = {0};
        if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            const uint8_t *data;
            uint32_t len;
            bson_t prev;
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&prev, data, len))
                chat_reads_doc_parse(&prev, &old);
        }
        j->moved = strcmp(j->upto, old.upto) > 0;
    }
    bson_destroy(&reply);
    if (rc == 0 && j->moved && j->count) {
        int64_t n = store_unread(c, db, j->room, j->upto);
        j->unread = n > 0 ? (unsigned)n : 0;
    }
    mongoc_collection_destroy(coll);
    bson_destroy(&sel);
    bson_destroy(&upd);
    return rc;
}

/* The user's read documents (at most GW_READS_ROOMS_MAX), each with its last id and unread. */
static int run_rooms(void *client, const char *db, void *arg)
{
    mongoc_client_t *c = client;
    rooms_job *j = arg;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, child;
    BSON_APPEND_UTF8(&filter, "user", j->user);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &child);
    BSON_APPEND_INT32(&child, "user", 1);
    BSON_APPEND_INT32(&child, "room", 1);
    bson_append_document_end(&opts, &child);
    BSON_APPEND_INT64(&opts, "limit", GW_READS_ROOMS_MAX);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, CHAT_READS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    int rc = 0;
    while (j->n < GW_READS_ROOMS_MAX && mongoc_cursor_next(cur, &doc)) {
        chat_read_state st;
        if (chat_reads_doc_parse(doc, &st) != 0 || strcmp(st.user, j->user) != 0)
            continue;
        rooms_entry *r = &j->rooms[j->n++];
        memcpy(r->room, st.room, sizeof(r->room));
        memcpy(r->upto, st.upto, sizeof(r->upto));
    }
    if (mongoc_cursor_error(cur, &e)) {
        chat_log(CHAT_LOG_WARN, "rooms of %s: %s", j->user, e.message);
        rc = -EIO;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        rooms_entry *r = &j->rooms[i];
        int64_t n = store_unread(c, db, r->room, r->upto);
        if (n < 0 || store_last(c, db, r->room, r->last) != 0)
            rc = -EIO;
        r->unread = n > 0 ? (unsigned)n : 0;
    }
    return rc;
}

/* The read document of (room, user); with an upto the log cannot count after, the store's
 * count. */
static int run_join(void *client, const char *db, void *arg)
{
    mongoc_client_t *c = client;
    join_job *j = arg;
    char id[CHAT_READS_ID_MAX + 1];
    j->store_unread = -1;
    if (chat_reads_doc_id(j->room, j->user, id, sizeof(id)) != 0)
        return CHAT_EINVAL;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, CHAT_READS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    chat_read_state st = {0};
    if (mongoc_cursor_next(cur, &doc))
        chat_reads_doc_parse(doc, &st);
    int rc = mongoc_cursor_error(cur, &e) ? -EIO : 0;
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (rc)
        return rc;
    memcpy(j->upto, st.upto, sizeof(j->upto));
    int64_t off = -1;
    if (j->upto[0] ? chat_msgid_parse(j->upto, NULL, &off) == 0 && off + 1 < j->log_start
                   : j->count_all && j->log_start > 0) {
        int64_t n = store_unread(c, db, j->room, j->upto);
        if (n < 0)
            return -EIO;
        j->store_unread = (int)n;
    }
    return 0;
}

/* --- loop side ----------------------------------------------------------------------------- */

void gw_reads_join_begin(gw_session *s, gw_sub *sub)
{
    gw_ctx *ctx = s->ctx;
    if (!ctx->ops->store_job || sub->rd)
        return;
    gw_handle *h = gw_session_handle(s);
    gw_join_read *rd = h ? calloc(1, sizeof(*rd)) : NULL;
    join_job *j = rd ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        free(rd);
        return;
    }
    chat_dm dm;
    int64_t next = 0;
    j->h = gw_handle_ref(h);
    j->gen = sub->gen;
    snprintf(j->room, sizeof(j->room), "%s", sub->lr->name);
    snprintf(j->user, sizeof(j->user), "%s", s->id.sub);
    j->log_start = INT64_MAX;
    gw_log_coverage(ctx->log, sub->lr->partition, &j->log_start, &next);
    j->count_all = chat_dm_parse(j->room, strlen(j->room), &dm);
    /* in the connection's read-state lane: a flood of joins cannot fill the store's queue */
    if (ctx->ops->store_job(ctx->ops_arg, run_join, j, GW_Q_READ_JOIN, gw_reads_owner(s),
                            GW_READS_PER_CONN, j) != 0) {
        gw_handle_unref(j->h);
        free(j);
        free(rd);
        return; /* the store is busy: joined comes without the read state */
    }
    rd->pending = true;
    rd->store_unread = -1;
    sub->rd = rd;
}

bool gw_reads_join_pending(const gw_sub *sub)
{
    return sub->rd && sub->rd->pending;
}

void gw_reads_join_end(gw_sub *sub)
{
    free(sub->rd);
    sub->rd = NULL;
}

/* Every message of room from the log, when it holds the partition from its start; -1 else. */
static int log_count_all(gw_ctx *ctx, const gw_log_room *lr)
{
    int64_t start = 0, next = 0;
    if (!gw_log_coverage(ctx->log, lr->partition, &start, &next) || start > 0)
        return -1;
    uint64_t n = lr->next_rseq - lr->first_rseq;
    return n > CHAT_UNREAD_MAX ? CHAT_UNREAD_MAX : (int)n;
}

void gw_reads_join_fields(gw_ctx *ctx, const gw_sub *sub, char *out, size_t outlen)
{
    const gw_join_read *rd = sub->rd;
    out[0] = '\0';
    if (!rd || !rd->ok)
        return;
    chat_dm dm;
    int n;
    if (rd->upto[0])
        n = log_unread(ctx, sub->lr->name, rd->upto);
    else if (chat_dm_parse(sub->lr->name, strlen(sub->lr->name), &dm))
        n = log_count_all(ctx, sub->lr);
    else
        n = 0; /* a room never read: nothing counts as unread */
    if (n < 0)
        n = rd->store_unread > 0 ? rd->store_unread : 0;
    if (rd->upto[0])
        snprintf(out, outlen, "\"read_upto\":\"%s\",\"unread\":%d", rd->upto, n);
    else
        snprintf(out, outlen, "\"read_upto\":null,\"unread\":%d", n);
}

static void on_join_lookup(gw_ctx *ctx, gw_store_result *res, join_job *j)
{
    gw_session *s = j->h->s;
    gw_sub *sub = s && s->state != GW_S_CLOSING ? gw_session_sub(s, j->room) : NULL;
    if (!sub || sub->gen != j->gen || !sub->rd || !sub->rd->pending)
        return;
    gw_join_read *rd = sub->rd;
    rd->pending = false;
    rd->ok = res->err == 0;
    memcpy(rd->upto, j->upto, sizeof(rd->upto));
    rd->store_unread = j->store_unread;
    gw_sessions_tick(ctx); /* the join may go on now */
}

/* The read frame to user's connections here (but skip), the receipt to the other user's in a
 * direct room. */
static void deliver(gw_ctx *ctx, const char *room, const char *user, const char *upto,
                    unsigned unread, gw_session *skip)
{
    gw_user_link *link = gw_users_first(&ctx->users, user);
    if (link) {
        gw_buf *b = gw_out_read(room, upto, unread);
        for (; b && link; link = link->next) {
            gw_session *s = gw_htab_entry(link, gw_session, ulink);
            if (s != skip)
                gw_session_push(s, b);
        }
        gw_buf_unref(b);
    }
    chat_dm dm;
    if (!chat_dm_parse(room, strlen(room), &dm))
        return;
    char other[CHAT_DM_USER_MAX + 1];
    bool first = strlen(user) == dm.alen && memcmp(user, dm.a, dm.alen) == 0;
    const char *o = first ? dm.b : dm.a;
    size_t olen = first ? dm.blen : dm.alen;
    memcpy(other, o, olen);
    other[olen] = '\0';
    if (strcmp(other, user) == 0)
        return;
    link = gw_users_first(&ctx->users, other);
    if (!link)
        return;
    gw_buf *b = gw_out_receipt(room, user, upto);
    for (; b && link; link = link->next)
        gw_session_push(gw_htab_entry(link, gw_session, ulink), b);
    gw_buf_unref(b);
}

void gw_reads_on_read(gw_session *s, const gw_frame *f)
{
    gw_ctx *ctx = s->ctx;
    int32_t p = -1;
    const char *code = NULL;
    char why[96];
    if (!gw_access_may_join_as(s->id.sub, gw_session_id_rooms(&s->id), f->room, &code, why,
                               sizeof(why))) {
        gw_session_error(s, code, why, f->cid); /* read state is for rooms the user may join */
        return;
    }
    if (chat_msgid_parse(f->upto, &p, NULL) != 0 ||
        p != ctx->ops->partition_of(ctx->ops_arg, f->room)) {
        gw_session_error(s, GW_ERR_INVALID_FIELD, "field \"upto\" is not a message id of this room",
                         f->cid);
        return;
    }
    gw_handle *h = gw_session_handle(s);
    read_job *j = ctx->ops->store_job && h ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        gw_session_error(s, GW_ERR_UNAVAILABLE, "read state is unavailable; try again", f->cid);
        return;
    }
    j->h = gw_handle_ref(h);
    snprintf(j->cid, sizeof(j->cid), "%s", f->cid ? f->cid : "");
    snprintf(j->room, sizeof(j->room), "%s", f->room);
    snprintf(j->user, sizeof(j->user), "%s", s->id.sub);
    snprintf(j->upto, sizeof(j->upto), "%s", f->upto);
    j->ts_ms = gw_wall_ms();
    j->count = log_unread(ctx, f->room, f->upto) < 0;
    if (ctx->ops->store_job(ctx->ops_arg, run_set, j, GW_Q_READ_SET, gw_reads_owner(s),
                            GW_READS_PER_CONN, j) != 0) {
        gw_handle_unref(j->h);
        free(j);
        gw_session_error(s, GW_ERR_UNAVAILABLE, "read state is busy; try again", f->cid);
    }
}

void gw_reads_on_rooms(gw_session *s, const gw_frame *f)
{
    gw_ctx *ctx = s->ctx;
    gw_handle *h = gw_session_handle(s);
    rooms_job *j = ctx->ops->store_job && h ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        gw_session_error(s, GW_ERR_UNAVAILABLE, "read state is unavailable; try again", f->cid);
        return;
    }
    j->h = gw_handle_ref(h);
    snprintf(j->cid, sizeof(j->cid), "%s", f->cid ? f->cid : "");
    snprintf(j->user, sizeof(j->user), "%s", s->id.sub);
    if (ctx->ops->store_job(ctx->ops_arg, run_rooms, j, GW_Q_READ_ROOMS, gw_reads_owner(s),
                            GW_READS_PER_CONN, j) != 0) {
        gw_handle_unref(j->h);
        free(j);
        gw_session_error(s, GW_ERR_UNAVAILABLE, "read state is busy; try again", f->cid);
    }
}

static void on_set(gw_ctx *ctx, gw_store_result *res, read_job *j)
{
    gw_session *s = j->h->s;
    if (res->err) {
        if (s && res->err != -ECANCELED)
            gw_session_error(s, GW_ERR_UNAVAILABLE, "the read state was not stored; try again",
                             j->cid[0] ? j->cid : NULL);
        return;
    }
    if (!j->moved) {
        ctx->stats.reads_unmoved++;
        return; /* not newer than what is stored: nothing changes, nothing is answered */
    }
    ctx->stats.reads_moved++;
    int n = log_unread(ctx, j->room, j->upto);
    unsigned unread = n >= 0 ? (unsigned)n : j->unread;
    deliver(ctx, j->room, j->user, j->upto, unread, s);
    if (!ctx->ops->publish)
        return;
    chat_event e = {.kind = CHAT_EVENT_READ, .unread = unread};
    memcpy(e.room, j->room, sizeof(e.room));
    memcpy(e.user, j->user, sizeof(e.user));
    memcpy(e.upto, j->upto, sizeof(e.upto));
    char err[160];
    if (ctx->ops->publish(ctx->ops_arg, &e, err, sizeof(err)) != 0)
        chat_log(CHAT_LOG_WARN, "read state of %s in %s not published: %s", j->user, j->room, err);
}

static void on_rooms(gw_ctx *ctx, gw_store_result *res, rooms_job *j)
{
    gw_session *s = j->h->s;
    if (!s || res->err == -ECANCELED)
        return;
    if (res->err) {
        gw_session_error(s, GW_ERR_UNAVAILABLE, "read state is unavailable; try again",
                         j->cid[0] ? j->cid : NULL);
        return;
    }
    gw_out_room out[GW_READS_ROOMS_MAX];
    size_t nout = 0;
    for (size_t i = 0; i < j->n; i++) {
        rooms_entry *r = &j->rooms[i];
        const char *code = NULL;
        if (!gw_access_may_join_as(s->id.sub, gw_session_id_rooms(&s->id), r->room, &code, NULL, 0))
            continue; /* read once, but the token no longer allows it */
        /* the log is ahead of the store: its newest id and count win when it has them */
        log_last(ctx, r->room, r->last);
        int n = r->upto[0] ? log_unread(ctx, r->room, r->upto) : -1;
        if (n >= 0 || (r->upto[0] && strcmp(r->last, r->upto) <= 0))
            r->unread = n > 0 ? (unsigned)n : 0;
        out[nout++] = (gw_out_room){
            .room = r->room, .read_upto = r->upto, .last = r->last, .unread = r->unread};
    }
    gw_buf *b = gw_out_rooms(out, nout);
    gw_session_push(s, b);
    gw_buf_unref(b);
}

void gw_reads_on_result(gw_ctx *ctx, gw_store_result *res)
{
    if (res->kind == GW_Q_READ_SET) {
        read_job *j = res->opaque;
        on_set(ctx, res, j);
        gw_handle_unref(j->h);
        free(j);
    } else if (res->kind == GW_Q_READ_JOIN) {
        join_job *j = res->opaque;
        on_join_lookup(ctx, res, j);
        gw_handle_unref(j->h);
        free(j);
    } else if (res->kind == GW_Q_READ_ROOMS) {
        rooms_job *j = res->opaque;
        on_rooms(ctx, res, j);
        gw_handle_unref(j->h);
        free(j);
    }
}

void gw_reads_on_event(gw_ctx *ctx, const chat_event *e)
{
    deliver(ctx, e->room, e->user, e->upto, e->unread, NULL);
}
