/* gw_session.c: one client session (docs/protocol.md): the auth state, reassembly of fragmented
 * frames up to CHAT_MAX_FRAME, rate limiting, and the frames join/leave/send/history/ping, on
 * top of the room logs (gw_log.h):
 *
 *  - a joined room is a cursor into its room log; writing copies the frames after the cursor,
 *    so fan-out is "append to the log, wake the members" and a slow reader only lags its
 *    cursor. One that falls off the log's tail is closed with 4008 and resumes with since;
 *  - a join is answered from the log when the log covers what it asks (the latest `limit`,
 *    or everything after `since`), else by one store read per room shared by every joiner
 *    waiting for it (single flight), merged with the log by id;
 *  - a send whose cid the log (or this gateway's in-flight table) already knows for that user
 *    and room is acked with the original id and not produced again.
 * Replies (acks, joined, history, errors) go through a small bounded queue written before the
 * room frames, so a joined answer always precedes the room's live messages. */
#define _DEFAULT_SOURCE /* strdup */
#include "gw_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_error.h"
#include "chat_log.h"
#include "gw_access.h"
#include "gw_hash.h"
#include "gw_metrics.h"
#include "gw_out.h"
#include "gw_presence.h"
#include "gw_reads.h"
#include "gw_typing.h"

/* What a store read answers: a room's latest page for every joiner waiting (single flight), one
 * session's resume (messages after since) or its history request. */
enum { GW_Q_JOIN = 1, GW_Q_RESUME = 2, GW_Q_HISTORY = 3 };

#define GW_CLOSE_AUTH 4001
#define GW_CLOSE_EXPIRED 4003
#define GW_CLOSE_TOO_SLOW 4008
#define GW_CLOSE_TOO_MANY_CONNS 4029
#define GW_CLOSE_KICKED 4004
#define GW_CLOSE_INTERNAL 1011
#define GW_CLOSE_BROKEN (-1) /* a write failed: close without a close frame */
#define GW_SESSION_MAX_READS                                                                       \
    1                             /* history store reads one session may wait for at once (its     \
                                     joins are bounded by its rooms: one under way per room) */
#define GW_BATCH_BYTES 32768      /* bytes of frames gathered into one write */
#define GW_INFLIGHT_SLOTS 4096    /* buckets of the in-flight send table */
#define GW_INFLIGHT_KEEP_MS 30000 /* an acked send not seen in the log is forgotten after this */
#define GW_ACK_WAIT_MS 1000       /* longest an ack waits for fan-out to read its record */

/* A reply that arrives later (Kafka delivery report, store result): the session (weakly),
 * the request's cid, and for joins which join it answers. */
typedef struct gw_pending_reply {
    struct gw_pending_reply *next; /* waiters of one store read */
    gw_handle *h;
    char cid[CHAT_CID_MAX + 1];
    char room[CHAT_ROOM_MAX + 1];
    char since[CHAT_MSGID_LEN + 1];  /* join: resume after it; history: after */
    char before[CHAT_MSGID_LEN + 1]; /* history: before */
    struct gw_inflight *inf;         /* a send with a cid: its in-flight record */
    uint32_t gen;
    int limit;
    int32_t partition; /* a parked join: its room's partition */
    uint64_t ticket;   /* a parked join: its end-offset query */
    bool since_ok;     /* a join: since is an id of this epoch and room */
    int64_t t0_us;     /* when the frame that asked for it arrived (ack latency) */
} gw_pending_reply;

/* A send produced by this gateway and not yet seen in the room log, keyed by (room, from,
 * cid), so that a retry waits for the same ack instead of producing again. */
struct gw_inflight {
    gw_inflight *next;
    uint64_t hash;
    gw_pending_reply *waiters;   /* the first is the original send */
    char id[CHAT_MSGID_LEN + 1]; /* "" until acked */
    int64_t acked_ms;
    /* acked by Kafka, its answer waiting for fan-out to read the record (ctx->acks_waiting) */
    char waiting_id[CHAT_MSGID_LEN + 1];
    int64_t waiting_ms;
    gw_inflight *waiting_next;
    char room[CHAT_ROOM_MAX + 1];
    char from[CHAT_USER_MAX + 1];
    char cid[CHAT_CID_MAX + 1];
};

static gw_pending_reply *reply_on(gw_handle *h, const char *cid, const char *room)
{
    gw_pending_reply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->h = gw_handle_ref(h);
    r->t0_us = gw_now_us();
    snprintf(r->cid, sizeof(r->cid), "%s", cid ? cid : "");
    snprintf(r->room, sizeof(r->room), "%s", room ? room : "");
    return r;
}

gw_handle *gw_session_handle(gw_session *s)
{
    if (!s->handle && (s->handle = calloc(1, sizeof(*s->handle)))) {
        s->handle->s = s;
        s->handle->refs = 1;
    }
    return s->handle;
}

/* Drops the session's handle when nothing but the session holds it: an idle connection keeps
 * no handle (docs/internals.md, "Memory per connection"). Only where no caller up the stack
 * holds the pointer: the start of the writeable callback. */
static void handle_trim(gw_session *s)
{
    if (s->handle && s->handle->refs == 1) {
        free(s->handle);
        s->handle = NULL;
    }
}

static gw_pending_reply *reply_new(gw_session *s, const char *cid, const char *room)
{
    gw_handle *h = gw_session_handle(s);
    return h ? reply_on(h, cid, room) : NULL;
}

static void reply_free(gw_pending_reply *r)
{
    gw_handle_unref(r->h);
    free(r);
}

gw_handle *gw_handle_ref(gw_handle *h)
{
    h->refs++;
    return h;
}

void gw_handle_unref(gw_handle *h)
{
    if (h && --h->refs == 0)
        free(h);
}

/* Bytes of a packed rooms claim, its closing empty string included. */
static size_t claim_len(const char *rooms)
{
    size_t n = 0;
    while (rooms[n])
        n += strlen(rooms + n) + 1;
    return n + 1;
}

/* A gw_session_id block of sub, name and the packed claim rooms (NULL: none); NULL on ENOMEM. */
static char *id_block(const char *sub, const char *name, const char *rooms)
{
    size_t ls = strlen(sub), ln = strlen(name), lr = rooms ? claim_len(rooms) : 0;
    char *b = malloc(ls + 1 + ln + 1 + 1 + lr);
    if (!b)
        return NULL;
    memcpy(b, sub, ls + 1);
    memcpy(b + ls + 1, name, ln + 1);
    b[ls + 1 + ln + 1] = rooms ? 1 : 0;
    if (rooms)
        memcpy(b + ls + 1 + ln + 2, rooms, lr);
    return b;
}

/* Copies id's sub, name and rooms claim into one block (gw_session_id): 0, or -1 (ENOMEM).
 * id keeps what it owns. */
static int id_take(gw_session_id *sid, const gw_identity *id)
{
    if (!(sid->sub = id_block(id->sub, id->name, id->rooms)))
        return -1;
    sid->exp = id->exp;
    return 0;
}

static void id_clear(gw_session_id *sid)
{
    free(sid->sub);
    memset(sid, 0, sizeof(*sid));
}

static const char *who(const gw_session *s)
{
    return s->id.sub && s->id.sub[0] ? s->id.sub : "-";
}

/* The close frame's reason takes the block a fragmented message was reassembled in (gw_session:
 * the reassembly is dropped, and nothing is reassembled once closing). A message being handled
 * is not in it: gw_session_receive takes it out first. */
static void set_close_reason(gw_session *s, const char *reason)
{
    free(s->rx);
    s->close_reason = strdup(reason); /* NULL: the close frame goes without one */
}

/* Schedules a close with code and reason at the next writeable; queued replies are dropped. */
static void fail_session(gw_session *s, int code, const char *reason)
{
    if (s->state == GW_S_CLOSING)
        return;
    s->state = GW_S_CLOSING;
    gw_metrics_close(&s->ctx->stats, code);
    s->close_code = (int16_t)code;
    set_close_reason(s, reason);
    gw_sendq_clear(&s->q);
    s->ctx->ops->want_write(s->conn);
    /* a client that never reads never becomes writeable: make sure it goes anyway */
    s->ctx->ops->close_within(s->conn, 5);
}

static void too_slow(gw_session *s, const char *what)
{
    s->ctx->stats.dropped_slow++;
    chat_log_kv(CHAT_LOG_WARN,
                CHAT_LOG_FIELDS(CHAT_LOG_STR("user", who(s)), CHAT_LOG_INT("code", 4008)),
                "session %s: %s; closing with 4008", who(s), what);
    fail_session(s, GW_CLOSE_TOO_SLOW, "too slow: reconnect and resume with since");
}

/* Queues reply b (a new reference is taken) or drops the slow client. */
static void send_buf(gw_session *s, gw_buf *b)
{
    if (s->state == GW_S_CLOSING || !b)
        return;
    if (gw_sendq_push(&s->q, &s->ctx->sendq_limits, b) != 0) {
        too_slow(s, "reply queue full");
        return;
    }
    s->ctx->ops->want_write(s->conn);
}

/* Queues a freshly built buffer and drops our reference to it. */
static void send_new(gw_session *s, gw_buf *b)
{
    if (!b) {
        chat_log(CHAT_LOG_ERROR, "session %s: out of memory building a frame", who(s));
        fail_session(s, 1011, "internal error");
        return;
    }
    send_buf(s, b);
    gw_buf_unref(b);
}

static void send_error(gw_session *s, const char *code, const char *message, const char *cid)
{
    chat_label_counts_add(&s->ctx->stats.refused, code, 1);
    send_new(s, gw_out_error(code, message, cid));
}

/* The session's handle for a request (cid) whose answer comes later; NULL, with the request
 * answered internal, when there is no memory for one. */
static gw_handle *handle_or_error(gw_session *s, const char *cid)
{
    gw_handle *h = gw_session_handle(s);
    if (!h)
        send_error(s, GW_ERR_INTERNAL, "out of memory", cid);
    return h;
}

/* Hands frame b (our reference) to whoever h stands for: a session's reply queue or a server
 * API request; to nobody when it went away. */
static void answer(gw_handle *h, gw_buf *b)
{
    if (h->s) {
        send_new(h->s, b);
        return;
    }
    if (h->answer)
        h->answer(h, b);
    gw_buf_unref(b);
}

/* An error answered to h, counted like a session's (send_error). */
static void answer_error(gw_ctx *ctx, gw_handle *h, const char *code, const char *message,
                         const char *cid)
{
    chat_label_counts_add(&ctx->stats.refused, code, 1);
    answer(h, gw_out_error(code, message, cid));
}

/* Whether the session may use room (gw_access.h); when not, answers the frame (cid) with
 * forbidden or invalid_user. */
static bool may_use(gw_session *s, const char *room, const char *cid)
{
    const char *code = NULL;
    char why[96];
    if (gw_access_may_join_as(s->id.sub, gw_session_id_rooms(&s->id), room, &code, why,
                              sizeof(why)))
        return true;
    send_error(s, code, why, cid);
    return false;
}

void gw_session_push(gw_session *s, gw_buf *b)
{
    if (!b)
        send_new(s, NULL);
    else
        send_buf(s, b);
}

void gw_session_error(gw_session *s, const char *code, const char *message, const char *cid)
{
    send_error(s, code, message, cid);
}

/* --- subscriptions ----------------------------------------------------------------------- */

static gw_sub *sub_find(gw_session *s, const char *room)
{
    for (uint16_t i = 0; i < s->nsubs; i++)
        if (strcmp(s->subs[i].lr->name, room) == 0)
            return &s->subs[i];
    return NULL;
}

/* A new sub on lr (the caller's reference, which the sub takes), the session a member of its
 * room in ctx->rooms; NULL on ENOMEM (the reference stays the caller's). */
static gw_sub *sub_add(gw_session *s, gw_log_room *lr)
{
    if (s->nsubs == s->capsubs) {
        /* one room first: most connections join one (an idle connection's memory) */
        uint16_t cap = s->capsubs ? (uint16_t)(s->capsubs * 2) : 1;
        gw_sub *subs = realloc(s->subs, cap * sizeof(*subs));
        if (!subs)
            return NULL;
        s->subs = subs;
        s->capsubs = cap;
        for (uint16_t i = 0; i < s->nsubs; i++) /* the room members' lists follow the move */
            gw_rooms_moved(&subs[i].rl);
    }
    gw_sub *sub = &s->subs[s->nsubs];
    memset(sub, 0, sizeof(*sub));
    if (gw_rooms_join(s->ctx->rooms, lr->name, &sub->rl, s) != 0) {
        if (s->nsubs == 0) {
            free(s->subs);
            s->subs = NULL;
            s->capsubs = 0;
        }
        return NULL;
    }
    s->nsubs++;
    sub->lr = lr;
    sub->skip_to = -1;
    sub->gen = ++s->gen;
    if (s->ctx->presence) /* full table: the user is not counted here (gw_presence.h) */
        gw_presence_join(s->ctx->presence, lr->name, s->id.sub, gw_session_id_name(&s->id));
    return sub;
}

bool gw_session_in_room(gw_session *s, const char *room)
{
    return sub_find(s, room) != NULL;
}

gw_sub *gw_session_sub(gw_session *s, const char *room)
{
    return sub_find(s, room);
}

static void sub_remove(gw_session *s, gw_sub *sub)
{
    if (s->ctx->presence) {
        if (sub->presence)
            gw_presence_watch(s->ctx->presence, sub->lr->name, -1);
        gw_presence_leave(s->ctx->presence, sub->lr->name, s->id.sub);
    }
    gw_reads_join_end(sub);
    gw_log_room_unref(s->ctx->log, sub->lr);
    gw_rooms_leave(s->ctx->rooms, &sub->rl);
    gw_sub *last = &s->subs[--s->nsubs];
    if (sub != last) {
        *sub = *last;
        gw_rooms_moved(&sub->rl);
    }
    if (s->nsubs == 0) {
        free(s->subs);
        s->subs = NULL;
        s->capsubs = 0;
    }
}

/* The sub starts its live stream after the history it was just answered with. */
static void sub_go_live(gw_session *s, gw_sub *sub, int64_t last_offset)
{
    sub->live = true;
    gw_reads_join_end(sub);
    sub->next = sub->lr->next_rseq;
    sub->skip_to = last_offset;
    s->ctx->ops->want_write(s->conn);
}

/* --- answers built from the log and the store -------------------------------------------- */

/* Frames in stream order with their offsets: what a join or history answer is made of. */
typedef struct gw_page {
    gw_buf **frames;
    int64_t *offsets;
    size_t n, cap;
} gw_page;

/* What the sessions keep per room (gw_log_room.user, freed with the room): the joiners waiting
 * for the room's store read under way (single flight), and the page that read produced: the
 * room's latest messages as of page_rseq. With the log entries appended since, that page
 * answers later joins without reading the store again, while the log still holds every entry
 * from page_rseq on. */
typedef struct gw_room_state {
    gw_pending_reply *waiters;
    bool reading;
    bool has_page;
    bool wake_queued; /* on ctx->wakes: its members are woken at the next tick */
    gw_page page;
    uint64_t page_rseq;
    int64_t last_wake_ms; /* CHAT_COALESCE_MS: when its members were last woken */
    gw_log_room *lr;      /* (for the wake list) */
    struct gw_room_state *wake_next;
} gw_room_state;

static void page_free(gw_page *pg);

static void gw_session_room_state_free(void *p)
{
    gw_room_state *st = p;
    while (st->waiters) {
        gw_pending_reply *w = st->waiters;
        st->waiters = w->next;
        gw_handle_unref(w->h);
        free(w);
    }
    page_free(&st->page);
    free(st);
}

static void page_free(gw_page *pg)
{
    for (size_t i = 0; i < pg->n; i++)
        gw_buf_unref(pg->frames[i]);
    free(pg->frames);
    free(pg->offsets);
    memset(pg, 0, sizeof(*pg));
}

static int page_push(gw_page *pg, gw_buf *b, int64_t offset)
{
    if (pg->n == pg->cap) {
        size_t cap = pg->cap ? pg->cap * 2 : 64;
        gw_buf **f = realloc(pg->frames, cap * sizeof(*f));
        if (!f)
            return -ENOMEM;
        pg->frames = f;
        int64_t *o = realloc(pg->offsets, cap * sizeof(*o));
        if (!o)
            return -ENOMEM;
        pg->offsets = o;
        pg->cap = cap;
    }
    pg->frames[pg->n] = gw_buf_ref(b);
    pg->offsets[pg->n++] = offset;
    return 0;
}

/* The log entries of lr in [from, to) rseq. */
static int page_from_log(gw_page *pg, const gw_log_room *lr, uint64_t from, uint64_t to)
{
    for (uint64_t q = from; q < to; q++) {
        gw_log_entry *e = gw_log_at(lr, q);
        if (e && page_push(pg, e->frame, e->offset) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Merges store messages (oldest first) with the log entries of lr that fall in (after, before)
 * by offset, each message once, in stream order. */
static int page_merge(gw_page *pg, const chat_message *msgs, size_t n, const gw_log_room *lr,
                      int64_t after, int64_t before)
{
    uint64_t q = lr ? gw_log_after(lr, after) : 0, end = lr ? lr->next_rseq : 0;
    size_t i = 0;
    while (i < n || q < end) {
        int64_t so = -1;
        if (i < n && chat_msgid_parse(msgs[i].id, NULL, &so) != 0) {
            i++;
            continue;
        }
        gw_log_entry *e = q < end ? gw_log_at(lr, q) : NULL;
        if (e && e->offset >= before)
            e = NULL, q = end;
        if (i < n && (!e || so < e->offset)) {
            gw_buf *b = gw_out_message(&msgs[i]);
            int rc = b ? page_push(pg, b, so) : -ENOMEM;
            gw_buf_unref(b);
            if (rc)
                return rc;
            i++;
            continue;
        }
        if (!e) {
            q++;
            continue;
        }
        if (i < n && so == e->offset)
            i++; /* the same message in both */
        if (page_push(pg, e->frame, e->offset) != 0)
            return -ENOMEM;
        q++;
    }
    return 0;
}

/* "recovered":..., and "gap" when a resume could not be recovered. */
static void resume_fields(char *out, size_t len, const char *since, bool recovered,
                          const char *first_id)
{
    if (!since || !*since)
        out[0] = '\0';
    else if (recovered)
        snprintf(out, len, "\"recovered\":true");
    else
        snprintf(out, len, "\"recovered\":false,\"gap\":{\"after\":\"%s\",\"before\":\"%s\"}",
                 since, first_id && *first_id ? first_id : since);
}

/* A join with "presence":true: extra plus the room's "members" snapshot (malloc'd), else NULL
 * (then extra alone). */
static char *presence_fields(gw_session *s, gw_sub *sub, const char *extra)
{
    if (!sub->presence || !s->ctx->presence)
        return NULL;
    gw_presence_view v;
    gw_presence_members(s->ctx->presence, sub->lr->name, s->id.sub, &v);
    char *m = gw_out_members_field(v.users, v.n, v.count, v.truncated);
    if (!m || !*extra)
        return m;
    size_t len = strlen(extra) + 1 + strlen(m) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s,%s", extra, m);
    free(m);
    return out;
}

/* Answers a join with the last `limit` frames of pg (or every one, for a recovered resume),
 * and starts the sub's live stream after them. Returns the answer (a new reference, for a
 * cache) or NULL. */
static gw_buf *answer_join(gw_session *s, gw_sub *sub, const gw_page *pg, int limit,
                           const char *since, bool recovered)
{
    size_t first =
        (!recovered || !since || !*since) && pg->n > (size_t)limit ? pg->n - (size_t)limit : 0;
    char extra[256], first_id[CHAT_MSGID_LEN + 1] = "";
    if (first < pg->n)
        chat_msgid_format(first_id, sub->lr->partition, pg->offsets[first]);
    resume_fields(extra, sizeof(extra), since, recovered, first_id);
    if (sub->rd) { /* the user's read state: this answer is this user's alone */
        size_t used = strlen(extra);
        if (used)
            extra[used++] = ',';
        gw_reads_join_fields(s->ctx, sub, extra + used, sizeof(extra) - used);
        if (used && !extra[used])
            extra[used - 1] = '\0';
    }
    char *fields = presence_fields(s, sub, extra);
    gw_buf *b = gw_out_list("joined", "history", sub->lr->name, pg->n ? pg->frames + first : NULL,
                            pg->n - first, fields ? fields : extra);
    free(fields);
    send_new(s, gw_buf_ref(b));
    int64_t last = pg->n ? pg->offsets[pg->n - 1] : -1;
    if (since && *since && recovered) {
        int64_t so = -1;
        chat_msgid_parse(since, NULL, &so);
        if (so > last)
            last = so;
    }
    sub_go_live(s, sub, last);
    return b;
}

/* The latest `limit` of a room, when the log alone knows them: it holds at least that many, or
 * it has read the partition from its very first record. */
static bool log_has_latest(gw_ctx *ctx, const gw_log_room *lr, int32_t p, int limit)
{
    int64_t start, next;
    if (!gw_log_coverage(ctx->log, p, &start, &next))
        return false;
    return start == 0 || (lr && lr->next_rseq - lr->first_rseq >= (uint64_t)limit);
}

/* A join answered from the log with the room's latest page; the page is cached on the room
 * for the next joiner with the same limit until the room changes. */
static void join_from_log(gw_session *s, gw_sub *sub, int limit, const char *since)
{
    gw_log_room *lr = sub->lr;
    uint64_t key = (lr->next_rseq << 8) ^ (uint64_t)limit;
    s->ctx->stats.joins_from_log++;
    bool cacheable = (!since || !*since) && !sub->presence && !sub->rd; /* per-join fields */
    if (cacheable && lr->cache && lr->cache_key == key) {
        send_buf(s, lr->cache);
        int64_t last = -1;
        gw_log_entry *e = gw_log_at(lr, lr->next_rseq - 1);
        if (e)
            last = e->offset;
        sub_go_live(s, sub, last);
        return;
    }
    gw_page pg = {0};
    uint64_t from = lr->next_rseq - lr->first_rseq > (uint64_t)limit
                        ? lr->next_rseq - (uint64_t)limit
                        : lr->first_rseq;
    if (page_from_log(&pg, lr, from, lr->next_rseq) != 0) {
        page_free(&pg);
        send_error(s, GW_ERR_INTERNAL, "out of memory", NULL);
        return;
    }
    gw_buf *b = answer_join(s, sub, &pg, limit, since, false);
    if (b && cacheable) {
        gw_buf_unref(lr->cache);
        lr->cache = gw_buf_ref(b);
        lr->cache_key = key;
    }
    gw_buf_unref(b);
    page_free(&pg);
}

static int store_read_for(gw_ctx *ctx, gw_handle *owner, const gw_store_query *q,
                          gw_pending_reply *r)
{
    int rc = ctx->ops->store_read(ctx->ops_arg, q, owner, r);
    if (rc == 0)
        ctx->stats.store_reads++;
    return rc;
}

static int store_read(gw_session *s, const gw_store_query *q, gw_pending_reply *r)
{
    gw_handle *h = gw_session_handle(s);
    return h ? store_read_for(s->ctx, h, q, r) : -ENOMEM;
}

static gw_room_state *room_state(gw_log_room *lr)
{
    if (!lr->user) {
        gw_room_state *st = calloc(1, sizeof(*st));
        if (st)
            st->lr = lr;
        lr->user = st;
    }
    return lr->user;
}

/* The room's latest page from memory: the page of its last store read plus the log entries
 * appended since, when the log still holds all of those. */
static bool page_from_memory(gw_page *out, gw_log_room *lr)
{
    gw_room_state *st = lr->user;
    if (!st || !st->has_page)
        return false;
    if (lr->first_rseq > st->page_rseq) {
        st->has_page = false; /* entries newer than the page were dropped: it has a hole */
        page_free(&st->page);
        return false;
    }
    int64_t last = st->page.n ? st->page.offsets[st->page.n - 1] : -1;
    for (size_t i = 0; i < st->page.n; i++)
        if (page_push(out, st->page.frames[i], st->page.offsets[i]) != 0)
            return false;
    for (uint64_t q = st->page_rseq; q < lr->next_rseq; q++) {
        gw_log_entry *e = gw_log_at(lr, q);
        if (e && e->offset > last && page_push(out, e->frame, e->offset) != 0)
            return false;
    }
    return true;
}

/* Joins the room's single-flight store read, starting it when none is under way. */
static int join_via_store(gw_session *s, gw_sub *sub, gw_pending_reply *r)
{
    gw_ctx *ctx = s->ctx;
    gw_log_room *lr = sub->lr;
    gw_room_state *st = room_state(lr);
    if (!st)
        return -ENOMEM;
    if (!st->reading) {
        gw_pending_reply *key = calloc(1, sizeof(*key));
        if (!key)
            return -ENOMEM;
        snprintf(key->room, sizeof(key->room), "%s", lr->name);
        gw_store_query q = {.room = lr->name,
                            .limit = ctx->limits.max_history,
                            .kind = GW_Q_JOIN,
                            .partition = lr->partition};
        int rc = store_read(s, &q, key);
        if (rc != 0) {
            free(key);
            return rc;
        }
        st->reading = true;
        lr->refs++; /* the read holds the room until its answer */
    } else {
        ctx->stats.store_waiters++;
    }
    r->gen = sub->gen;
    r->next = st->waiters;
    st->waiters = r;
    return 0;
}

/* Answers a join with the room's latest page: from the log alone, from memory (the last store
 * read's page and the log since), or by the room's single-flight store read. since is the
 * resume that could not be recovered (its gap is reported), or NULL. Returns 0 or an error
 * already answered to the client (the sub is gone then). */
static int join_latest(gw_session *s, gw_sub *sub, int limit, const char *since, const char *cid)
{
    gw_ctx *ctx = s->ctx;
    gw_log_room *lr = sub->lr;
    if (log_has_latest(ctx, lr, lr->partition, limit)) {
        join_from_log(s, sub, limit, since);
        return 0;
    }
    gw_page pg = {0};
    if (page_from_memory(&pg, lr)) {
        ctx->stats.joins_from_log++;
        gw_buf_unref(answer_join(s, sub, &pg, limit, since, false));
        page_free(&pg);
        return 0;
    }
    page_free(&pg);
    gw_pending_reply *r = reply_new(s, cid, lr->name);
    if (r) {
        r->limit = limit;
        snprintf(r->since, sizeof(r->since), "%s", since ? since : "");
    }
    if (!r || join_via_store(s, sub, r) != 0) {
        if (r)
            reply_free(r);
        send_error(s, GW_ERR_UNAVAILABLE, "history is busy; try again", cid);
        sub_remove(s, sub);
        return -EAGAIN;
    }
    return 0;
}

/* --- frame handlers ---------------------------------------------------------------------- */

static bool epoch_matches(gw_ctx *ctx, const char *epoch)
{
    return epoch && strcmp(epoch, ctx->ops->epoch(ctx->ops_arg)) == 0;
}

/* A join, once this gateway has read everything acknowledged before it arrived (see
 * gw_sessions_tick): the page from the log, the store, or both. r is the parked request. */
static void join_proceed(gw_session *s, gw_sub *sub, gw_pending_reply *r)
{
    gw_ctx *ctx = s->ctx;
    gw_log_room *lr = sub->lr;
    int64_t start = 0, next = 0, since_off = -1;
    gw_log_coverage(ctx->log, lr->partition, &start, &next);
    const char *since = r->since[0] ? r->since : NULL;
    if (since && r->since_ok && chat_msgid_parse(since, NULL, &since_off) == 0) {
        if (since_off + 1 >= start) {
            uint64_t from = gw_log_after(lr, since_off);
            if (lr->next_rseq - from <= (uint64_t)ctx->cfg.resume_max) {
                gw_page pg = {0};
                if (page_from_log(&pg, lr, from, lr->next_rseq) == 0) {
                    ctx->stats.resumes_recovered++;
                    ctx->stats.joins_from_log++;
                    gw_buf_unref(answer_join(s, sub, &pg, r->limit, since, true));
                } else {
                    send_error(s, GW_ERR_INTERNAL, "out of memory", r->cid);
                }
                page_free(&pg);
                return;
            }
            /* more were missed than a resume carries: the latest page and the gap */
        } else {
            /* older than the log: the store holds what came after since */
            gw_pending_reply *q = reply_new(s, r->cid, lr->name);
            gw_store_query sq = {.room = lr->name,
                                 .after = since,
                                 .limit = (int)ctx->cfg.resume_max + 1,
                                 .kind = GW_Q_RESUME,
                                 .partition = lr->partition};
            if (q) {
                q->gen = sub->gen;
                q->limit = r->limit;
                snprintf(q->since, sizeof(q->since), "%s", since);
            }
            if (!q || store_read(s, &sq, q) != 0) {
                if (q)
                    reply_free(q);
                send_error(s, GW_ERR_UNAVAILABLE, "history is busy; try again", r->cid);
                sub_remove(s, sub);
                return;
            }
            return;
        }
    }
    if (join_latest(s, sub, r->limit, since, r->cid) == 0)
        chat_log(CHAT_LOG_DEBUG, "session %s joins %s", who(s), lr->name);
}

static void on_join(gw_session *s, const gw_frame *f)
{
    gw_ctx *ctx = s->ctx;
    if (!may_use(s, f->room, f->cid))
        return;
    gw_sub *sub = sub_find(s, f->room);
    if (!sub && s->nsubs >= (size_t)ctx->cfg.max_rooms) {
        send_error(s, GW_ERR_TOO_MANY_ROOMS, "this session has joined too many rooms", f->cid);
        return;
    }
    if (sub && !sub->live)
        return; /* the join under way answers */
    int32_t p = ctx->ops->partition_of(ctx->ops_arg, f->room);
    gw_pending_reply *r = reply_new(s, f->cid, f->room);
    if (!r) {
        send_error(s, GW_ERR_INTERNAL, "out of memory", f->cid);
        return;
    }
    if (!sub) {
        gw_log_room *lr = gw_log_room_ref(ctx->log, f->room, p);
        if (!lr || !(sub = sub_add(s, lr))) {
            gw_log_room_unref(ctx->log, lr);
            reply_free(r);
            send_error(s, GW_ERR_INTERNAL, "out of memory", f->cid);
            return;
        }
    } else {
        sub->live = false; /* joined again: a new page, then live from there */
        sub->gen = ++s->gen;
    }
    if (ctx->presence && sub->presence != f->presence) /* watch the room's presence or stop */
        gw_presence_watch(ctx->presence, f->room, f->presence ? 1 : -1);
    sub->presence = f->presence;
    ctx->stats.joins++;
    r->gen = sub->gen;
    r->limit = f->limit;
    r->partition = p;
    if (f->since) {
        int32_t since_p = -1;
        ctx->stats.resumes++;
        snprintf(r->since, sizeof(r->since), "%s", f->since);
        /* an id of another epoch or another room's partition: nothing after it is recoverable */
        r->since_ok = epoch_matches(ctx, f->epoch) &&
                      chat_msgid_parse(f->since, &since_p, NULL) == 0 && since_p == p;
    }
    gw_reads_join_end(sub); /* a join again: a fresh lookup */
    gw_reads_join_begin(s, sub);
    /* park it until this gateway has read what was acknowledged before it arrived */
    r->ticket = ctx->ops->sync_begin(ctx->ops_arg, p);
    r->next = NULL;
    if (ctx->parked_tail)
        ctx->parked_tail->next = r;
    else
        ctx->parked = r;
    ctx->parked_tail = r;
}

void gw_sessions_tick(gw_ctx *ctx)
{
    gw_pending_reply **pp = &ctx->parked, *prev = NULL;
    while (*pp) {
        gw_pending_reply *r = *pp;
        gw_session *s = r->h->s;
        int64_t end = -1, start = 0, next = 0;
        bool gone = !s || s->state == GW_S_CLOSING;
        if (!gone && !ctx->ops->sync_done(ctx->ops_arg, r->partition, r->ticket, &end)) {
            prev = r, pp = &r->next;
            continue;
        }
        gw_log_coverage(ctx->log, r->partition, &start, &next);
        if (!gone && end >= 0 && next < end) {
            prev = r, pp = &r->next; /* fan-out has not read that far yet */
            continue;
        }
        gw_sub *wsub = gone ? NULL : sub_find(s, r->room);
        if (wsub && wsub->gen == r->gen && gw_reads_join_pending(wsub)) {
            prev = r, pp = &r->next; /* the read state's lookup has not answered yet */
            continue;
        }
        *pp = r->next;
        if (ctx->parked_tail == r)
            ctx->parked_tail = prev;
        if (!gone) {
            gw_sub *sub = sub_find(s, r->room);
            if (sub && sub->gen == r->gen && !sub->live)
                join_proceed(s, sub, r);
        }
        reply_free(r);
    }
}

static void on_leave(gw_session *s, const gw_frame *f)
{
    gw_sub *sub = sub_find(s, f->room);
    if (!sub) {
        send_error(s, GW_ERR_NOT_JOINED, "you have not joined this room", f->cid);
        return;
    }
    sub_remove(s, sub);
    send_new(s, gw_out_left(f->room));
}

/* --- sends and their retries ------------------------------------------------------------- */

static uint64_t inflight_hash(gw_ctx *ctx, const char *room, const char *from, const char *cid)
{
    char buf[CHAT_ROOM_MAX + CHAT_USER_MAX + CHAT_CID_MAX + 3];
    int n = snprintf(buf, sizeof(buf), "%s%c%s%c%s", room, 0, from, 0, cid);
    return gw_hash_sip(ctx->inflight_key, buf, n > 0 ? (size_t)n : 0);
}

static gw_inflight *inflight_find(gw_ctx *ctx, uint64_t h, const char *room, const char *from,
                                  const char *cid, gw_inflight ***link)
{
    gw_inflight **pp = &ctx->inflight[h & (GW_INFLIGHT_SLOTS - 1)];
    for (; *pp; pp = &(*pp)->next) {
        gw_inflight *f = *pp;
        if (f->hash == h && !strcmp(f->cid, cid) && !strcmp(f->from, from) &&
            !strcmp(f->room, room)) {
            if (link)
                *link = pp;
            return f;
        }
    }
    return NULL;
}

static void inflight_drop(gw_ctx *ctx, gw_inflight **link)
{
    gw_inflight *f = *link;
    *link = f->next;
    ctx->ninflight--;
    while (f->waiters) {
        gw_pending_reply *w = f->waiters;
        f->waiters = w->next;
        reply_free(w);
    }
    free(f);
}

/* A send from user from (display name name) answered to h: the original id for a retry (a cid
 * the log or the in-flight table knows), else produced and answered by its delivery report. */
static void publish(gw_ctx *ctx, gw_handle *h, const gw_frame *f, const char *from,
                    const char *name)
{
    gw_inflight *inf = NULL;
    uint64_t hh = 0;
    if (f->cid) {
        /* a retry of a send the cluster already has: the original id, nothing produced */
        const gw_log_entry *e = gw_log_find_cid(ctx->log, f->room, from, f->cid);
        if (e) {
            char id[CHAT_MSGID_LEN + 1];
            chat_msgid_format(id, e->room->partition, e->offset);
            ctx->stats.retries_deduplicated++;
            answer(h, gw_out_ack(f->cid, id));
            return;
        }
        hh = inflight_hash(ctx, f->room, from, f->cid);
        inf = inflight_find(ctx, hh, f->room, from, f->cid, NULL);
        if (inf) {
            ctx->stats.retries_deduplicated++;
            if (inf->id[0]) {
                answer(h, gw_out_ack(f->cid, inf->id));
                return;
            }
            gw_pending_reply *w = reply_on(h, f->cid, f->room);
            if (!w) {
                answer_error(ctx, h, GW_ERR_INTERNAL, "out of memory", f->cid);
                return;
            }
            w->next = inf->waiters->next; /* the original stays first */
            inf->waiters->next = w;
            return;
        }
    }
    gw_pending_reply *a = reply_on(h, f->cid, f->room);
    if (f->cid && a) {
        inf = calloc(1, sizeof(*inf));
        if (!inf) {
            reply_free(a);
            a = NULL;
        }
    }
    if (!a) {
        answer_error(ctx, h, GW_ERR_INTERNAL, "out of memory", f->cid);
        return;
    }
    chat_envelope e = {
        .version = CHAT_ENVELOPE_VERSION,
        .room = (char *)f->room,
        .from = (char *)from,
        .name = (char *)name,
        .text = (char *)f->text,
        .text_len = f->text_len,
        .ts_ms = gw_wall_ms(),
        .cid = a->cid,
    };
    char err[256];
    if (inf) {
        inf->hash = hh;
        inf->waiters = a;
        a->inf = inf;
        snprintf(inf->room, sizeof(inf->room), "%s", f->room);
        snprintf(inf->from, sizeof(inf->from), "%s", from);
        snprintf(inf->cid, sizeof(inf->cid), "%s", f->cid);
    }
    int rc = ctx->ops->produce(ctx->ops_arg, &e, a, err, sizeof(err));
    if (rc != 0) {
        reply_free(a);
        free(inf);
        ctx->stats.produce_failed++;
        chat_log(CHAT_LOG_WARN, "send of %s: produce failed: %s", from, err);
        answer_error(ctx, h, GW_ERR_UNAVAILABLE, "the message could not be queued; try again",
                     f->cid);
        return;
    }
    if (inf) {
        gw_inflight **slot = &ctx->inflight[hh & (GW_INFLIGHT_SLOTS - 1)];
        inf->next = *slot;
        *slot = inf;
        ctx->ninflight++;
    }
    ctx->stats.produced++;
}

static void on_send(gw_session *s, const gw_frame *f)
{
    if (!may_use(s, f->room, f->cid))
        return;
    /* a direct room needs no join to send to: it reaches both users' connections anyway */
    if (!sub_find(s, f->room) && !chat_dm_parse(f->room, strlen(f->room), NULL)) {
        send_error(s, GW_ERR_NOT_JOINED, "join the room before sending to it", f->cid);
        return;
    }
    gw_handle *h = handle_or_error(s, f->cid);
    if (h)
        publish(s->ctx, h, f, s->id.sub, gw_session_id_name(&s->id));
}

void gw_sessions_publish(gw_ctx *ctx, gw_handle *h, const gw_frame *f, const char *from)
{
    publish(ctx, h, f, from, "");
}

/* Answers a delivery report: opaque (a) is the send's gw_pending_reply; for a send with a cid,
 * the reply's in-flight record holds it first, then the retries that wait for the same answer.
 * When fan-out has read an earlier record of the same (room, from, cid), that one is the
 * message and this record a copy it drops (gw_log_skip_copy): the answer is the first id. */
static void ack_answer(gw_ctx *ctx, gw_pending_reply *a, const char *id, const char *errstr)
{
    gw_inflight *inf = a->inf;
    if (id)
        ctx->stats.acked++;
    else
        ctx->stats.produce_failed++;
    char orig[CHAT_MSGID_LEN + 1];
    const gw_log_entry *first =
        id && inf ? gw_log_find_cid(ctx->log, inf->room, inf->from, inf->cid) : NULL;
    if (first && chat_msgid_format(orig, first->room->partition, first->offset) == 0 &&
        strcmp(orig, id) != 0)
        id = orig;
    for (gw_pending_reply *w = inf ? inf->waiters : a; w; w = inf ? w->next : NULL) {
        if (!w->h->s && !w->h->answer)
            continue;
        if (id) {
            chat_hist_observe(&ctx->stats.ack_latency, (double)(gw_now_us() - w->t0_us) / 1e6);
            answer(w->h, gw_out_ack(w->cid, id));
        } else {
            chat_log(CHAT_LOG_WARN, "delivery failed: %s", errstr);
            answer_error(ctx, w->h, GW_ERR_UNAVAILABLE, "the message was not stored; try again",
                         w->cid);
        }
    }
    if (!inf) {
        reply_free(a);
        return;
    }
    gw_inflight **link = NULL;
    if (!inflight_find(ctx, inf->hash, inf->room, inf->from, inf->cid, &link)) {
        /* cannot happen: a send's record stays in the table until its report came */
        chat_log(CHAT_LOG_ERROR, "delivery report of an unknown in-flight send (%s)", inf->cid);
        return;
    }
    if (!id || first) {
        inflight_drop(ctx, link); /* failed (a retry may produce again), or already in the log */
        return;
    }
    /* acked but not yet read back into the log: a retry meanwhile gets this id */
    snprintf(inf->id, sizeof(inf->id), "%s", id);
    inf->acked_ms = gw_now_ms();
    while (inf->waiters) {
        gw_pending_reply *w = inf->waiters;
        inf->waiters = w->next;
        reply_free(w);
    }
}

/* Whether fan-out has read the record of message id (so the log knows whether an earlier record
 * has the same cid). An id that does not parse, or a partition the log does not know, counts as
 * read: nothing would make it readable later. */
static bool ack_read(gw_ctx *ctx, const char *id)
{
    int32_t p;
    int64_t off, start, next;
    if (chat_msgid_parse(id, &p, &off) != 0 || !gw_log_coverage(ctx->log, p, &start, &next))
        return true;
    return next > off;
}

/* Answers the waiting acks whose records fan-out has read, and (expired) those that waited
 * GW_ACK_WAIT_MS (with their own id). */
static void acks_release(gw_ctx *ctx, bool expired)
{
    int64_t now = gw_now_ms();
    gw_inflight **pp = &ctx->acks_waiting, *last = NULL;
    while (*pp) {
        gw_inflight *inf = *pp;
        if (!ack_read(ctx, inf->waiting_id) &&
            !(expired && now - inf->waiting_ms >= GW_ACK_WAIT_MS)) {
            last = inf;
            pp = &inf->waiting_next;
            continue;
        }
        *pp = inf->waiting_next;
        inf->waiting_next = NULL;
        char id[CHAT_MSGID_LEN + 1];
        memcpy(id, inf->waiting_id, sizeof(id));
        inf->waiting_id[0] = '\0';
        ack_answer(ctx, inf->waiters, id, NULL); /* may free inf */
    }
    ctx->acks_waiting_tail = last;
}

static void ack_expire(lws_sorted_usec_list_t *sul)
{
    gw_ctx *ctx = lws_container_of(sul, gw_ctx, ack_sul);
    acks_release(ctx, true);
    if (ctx->acks_waiting)
        lws_sul_schedule(ctx->lws, 0, &ctx->ack_sul, ack_expire,
                         GW_ACK_WAIT_MS * LWS_US_PER_MS / 4);
}

/* Acks wait for fan-out: the report of a send with a cid is answered once fan-out has read its
 * record, so that a copy (Kafka wrote an attempt it reported as failed, and the retry with the
 * same cid was written too) is answered with the first record's id, the one every member gets
 * (gw_log_skip_copy). The wait is the time from the broker's answer to the producer to its
 * answer to the fan-out consumer's fetch: usually under a millisecond. */
void gw_session_on_ack(void *opaque, const char *id, const char *errstr, void *arg)
{
    gw_ctx *ctx = arg;
    gw_pending_reply *a = opaque;
    gw_inflight *inf = a->inf;
    if (id && inf && ctx->log && !ack_read(ctx, id)) {
        snprintf(inf->waiting_id, sizeof(inf->waiting_id), "%s", id);
        inf->waiting_ms = gw_now_ms();
        inf->waiting_next = NULL;
        if (ctx->acks_waiting_tail) {
            ctx->acks_waiting_tail->waiting_next = inf;
        } else {
            ctx->acks_waiting = inf;
            if (ctx->lws) /* (re)scheduled whenever the list starts again */
                lws_sul_schedule(ctx->lws, 0, &ctx->ack_sul, ack_expire,
                                 GW_ACK_WAIT_MS * LWS_US_PER_MS / 4);
        }
        ctx->acks_waiting_tail = inf;
        return;
    }
    ack_answer(ctx, a, id, errstr);
}

/* Forgets acked sends that the log never showed (the record went to a partition this gateway
 * reads late, or the log dropped it at once). */
static void inflight_expire(lws_sorted_usec_list_t *sul)
{
    gw_ctx *ctx = lws_container_of(sul, gw_ctx, inflight_sul);
    int64_t now = gw_now_ms();
    for (size_t i = 0; i < GW_INFLIGHT_SLOTS && ctx->ninflight; i++) {
        gw_inflight **pp = &ctx->inflight[i];
        while (*pp) {
            if ((*pp)->id[0] && now - (*pp)->acked_ms > GW_INFLIGHT_KEEP_MS)
                inflight_drop(ctx, pp);
            else
                pp = &(*pp)->next;
        }
    }
    lws_sul_schedule(ctx->lws, 0, &ctx->inflight_sul, inflight_expire, 10 * LWS_US_PER_SEC);
}

int gw_sessions_init(gw_ctx *ctx, int32_t partitions)
{
    gw_rate_spec_init(&ctx->frame_rate, (double)ctx->cfg.rate, (double)ctx->cfg.rate_burst);
    if (gw_sendq_limits_init(&ctx->sendq_limits, (size_t)ctx->cfg.send_queue,
                             (size_t)ctx->cfg.send_queue_bytes) != 0)
        return -EINVAL;
    ctx->log = gw_log_new((size_t)ctx->cfg.log_bytes, partitions, gw_session_room_state_free);
    ctx->inflight = calloc(GW_INFLIGHT_SLOTS, sizeof(*ctx->inflight));
    ctx->batch_cap = GW_BATCH_BYTES;
    ctx->batch = malloc(ctx->batch_cap);
    if (!ctx->log || !ctx->inflight || !ctx->batch || gw_users_init(&ctx->users) != 0 ||
        gw_throttle_init(&ctx->typing, GW_TYPING_BUCKETS, GW_TYPING_WINDOW_MS) != 0)
        return -ENOMEM;
    gw_hash_seed(ctx->inflight_key, ctx);
    return 0;
}

void gw_sessions_start_timers(gw_ctx *ctx)
{
    lws_sul_schedule(ctx->lws, 0, &ctx->inflight_sul, inflight_expire, 10 * LWS_US_PER_SEC);
}

static void wake_due_rooms(gw_ctx *ctx);

void gw_sessions_free(gw_ctx *ctx)
{
    wake_due_rooms(ctx); /* releases the rooms the wake list holds */
    free(ctx->dirty);
    ctx->dirty = NULL;
    ctx->ndirty = ctx->capdirty = 0;
    while (ctx->parked) {
        gw_pending_reply *r = ctx->parked;
        ctx->parked = r->next;
        reply_free(r);
    }
    ctx->parked_tail = NULL;
    ctx->acks_waiting = ctx->acks_waiting_tail = NULL; /* their records go with the table */
    if (ctx->inflight) {
        for (size_t i = 0; i < GW_INFLIGHT_SLOTS; i++)
            while (ctx->inflight[i])
                inflight_drop(ctx, &ctx->inflight[i]);
        free(ctx->inflight);
        ctx->inflight = NULL;
    }
    gw_log_free(ctx->log);
    ctx->log = NULL;
    free(ctx->batch);
    ctx->batch = NULL;
    gw_users_free(&ctx->users);
    gw_throttle_free(&ctx->typing);
}

/* --- history ----------------------------------------------------------------------------- */

/* A history page of room f->room (lr: its log room, or NULL when the log holds none of it; p:
 * its partition) answered to h: from the log when it covers the page, else by a store read
 * merged with the log. reads (may be NULL) counts the store reads its owner waits for. */
static void history_page(gw_ctx *ctx, gw_handle *h, const gw_frame *f, gw_log_room *lr, int32_t p,
                         uint16_t *reads)
{
    int64_t start = 0, next = 0, before = INT64_MAX, after = -1;
    if (!gw_log_coverage(ctx->log, p, &start, &next))
        start = INT64_MAX; /* fan-out does not read the partition yet: only the store knows */
    int32_t bp = p, ap = p;
    if (f->before)
        chat_msgid_parse(f->before, &bp, &before);
    if (f->after)
        chat_msgid_parse(f->after, &ap, &after);
    if (bp != p || ap != p) {
        /* not an id of this room: nothing of the room lies around it */
        answer(h, gw_out_list("history", "messages", f->room, NULL, 0, NULL));
        return;
    }
    /* from the log when it covers the page */
    uint64_t lo = lr ? gw_log_after(lr, after) : 0, hi = lr ? gw_log_from(lr, before) : 0,
             first = lr ? lr->first_rseq : 0;
    bool covered;
    if (f->after)
        covered = start != INT64_MAX && after + 1 >= start;
    else
        covered = start == 0 || hi - first >= (uint64_t)f->limit;
    if (covered) {
        if (f->after && hi - lo > (uint64_t)f->limit)
            hi = lo + (uint64_t)f->limit;
        else if (!f->after && hi - lo > (uint64_t)f->limit)
            lo = hi - (uint64_t)f->limit;
        gw_page pg = {0};
        if (!lr || page_from_log(&pg, lr, lo, hi) == 0)
            answer(h, gw_out_list("history", "messages", f->room, pg.frames, pg.n, NULL));
        else
            answer_error(ctx, h, GW_ERR_INTERNAL, "out of memory", f->cid);
        page_free(&pg);
        return;
    }
    if (reads && *reads >= GW_SESSION_MAX_READS) {
        answer_error(ctx, h, GW_ERR_UNAVAILABLE,
                     "a history read is under way on this connection; wait for its "
                     "answer",
                     f->cid);
        return;
    }
    gw_pending_reply *r = reply_on(h, f->cid, f->room);
    gw_store_query q = {.room = f->room,
                        .before = f->before,
                        .after = f->after,
                        .limit = f->limit,
                        .kind = GW_Q_HISTORY,
                        .partition = p};
    if (r) {
        r->limit = f->limit;
        snprintf(r->since, sizeof(r->since), "%s", f->after ? f->after : "");
        snprintf(r->before, sizeof(r->before), "%s", f->before ? f->before : "");
    }
    if (!r || store_read_for(ctx, h, &q, r) != 0) {
        if (r)
            reply_free(r);
        answer_error(ctx, h, GW_ERR_UNAVAILABLE, "history is busy; try again", f->cid);
        return;
    }
    if (reads)
        (*reads)++;
}

static void on_history(gw_session *s, const gw_frame *f)
{
    if (!may_use(s, f->room, f->cid))
        return;
    gw_handle *h = handle_or_error(s, f->cid);
    if (!h)
        return;
    gw_sub *sub = sub_find(s, f->room);
    if (!sub && chat_dm_parse(f->room, strlen(f->room), NULL)) {
        /* one's own direct room needs no join */
        gw_ctx *ctx = s->ctx;
        history_page(ctx, h, f, gw_log_room_find(ctx->log, f->room),
                     ctx->ops->partition_of(ctx->ops_arg, f->room), &s->reads);
        return;
    }
    if (!sub) {
        send_error(s, GW_ERR_NOT_JOINED, "join the room before reading its history", f->cid);
        return;
    }
    history_page(s->ctx, h, f, sub->lr, sub->lr->partition, &s->reads);
}

void gw_sessions_history(gw_ctx *ctx, gw_handle *h, const gw_frame *f)
{
    int32_t p = ctx->ops->partition_of(ctx->ops_arg, f->room);
    history_page(ctx, h, f, gw_log_room_find(ctx->log, f->room), p, NULL);
}

/* The session's timer (the auth timer, free once authenticated) watches the token's expiry:
 * it fires CHAT_JWT_LEEWAY seconds after exp, when the connection closes with 4003 unless a
 * refresh moved exp on. Capped at a day per arm; it re-arms until then. */
static void watch_expiry(gw_session *s)
{
    long long left = s->id.exp + s->ctx->cfg.jwt_leeway - (long long)time(NULL);
    if (left < 1)
        left = 1;
    if (left > 86400)
        left = 86400;
    s->ctx->ops->auth_timer(s, (int)left);
}

/* After a refresh: leaves (with a left frame) the rooms the new token no longer allows. */
static void leave_forbidden(gw_session *s)
{
    for (uint16_t i = s->nsubs; i-- > 0;) {
        gw_sub *sub = &s->subs[i];
        const char *code;
        if (gw_access_may_join_as(s->id.sub, gw_session_id_rooms(&s->id), sub->lr->name, &code,
                                  NULL, 0))
            continue;
        char room[CHAT_ROOM_MAX + 1];
        snprintf(room, sizeof(room), "%s", sub->lr->name);
        sub_remove(s, sub);
        send_new(s, gw_out_left(room));
    }
}

static void on_refresh(gw_session *s, const gw_frame *f)
{
    gw_identity id;
    char why[160];
    if (gw_auth_verify(s->ctx->auth, f->token, time(NULL), &id, why, sizeof(why)) != 0) {
        char msg[240];
        snprintf(msg, sizeof(msg), "the token was refused (%.150s); the current one stays", why);
        send_error(s, GW_ERR_INVALID_TOKEN, msg, f->cid);
        return;
    }
    if (strcmp(id.sub, s->id.sub) != 0) {
        gw_identity_clear(&id);
        send_error(s, GW_ERR_TOKEN_MISMATCH, "the token is for another user; the current one stays",
                   f->cid);
        return;
    }
    /* the new token's claims replace the old ones (the name stays the one the session began
     * with) */
    char *b = id_block(s->id.sub, gw_session_id_name(&s->id), id.rooms);
    long long exp = id.exp;
    gw_identity_clear(&id);
    if (!b) {
        send_error(s, GW_ERR_INTERNAL, "out of memory; the current token stays", f->cid);
        return;
    }
    free(s->id.sub);
    s->id.sub = b;
    s->id.exp = exp;
    leave_forbidden(s);
    watch_expiry(s);
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "{\"type\":\"refreshed\",\"exp\":%lld}", exp);
    send_new(s, gw_buf_from(buf, (size_t)n));
}

/* --- presence ---------------------------------------------------------------------------- */

/* The members of any room the user may join, joined or not (docs/protocol.md, "Presence"). */
static void on_members(gw_session *s, const gw_frame *f)
{
    chat_dm dm;
    if (chat_dm_parse(f->room, strlen(f->room), &dm) && !chat_dm_has_user(&dm, s->id.sub)) {
        send_error(s, GW_ERR_FORBIDDEN, "this is someone else's direct room", f->cid);
        return;
    }
    gw_presence_view v = {0};
    if (s->ctx->presence)
        gw_presence_members(s->ctx->presence, f->room, s->id.sub, &v);
    send_new(s, gw_out_members(f->room, v.users, v.n, v.count, v.truncated));
}

typedef struct presence_out {
    const char *room;
    gw_buf *frame;
} presence_out;

/* A presence frame goes to the room's members that asked for presence once their joined answer
 * is out (that answer's snapshot already holds what came before). */
static void presence_member(void *member, void *arg)
{
    gw_session *s = member;
    presence_out *o = arg;
    gw_sub *sub = sub_find(s, o->room);
    if (sub && sub->presence && sub->live)
        send_buf(s, o->frame);
}

void gw_sessions_presence_frame(void *arg, const char *room, gw_buf *frame)
{
    gw_ctx *ctx = arg;
    presence_out o = {room, frame};
    gw_rooms_foreach(ctx->rooms, room, presence_member, &o);
}

/* CHAT_MAX_USER_CONNS, counted across the cluster (this gateway's connections of the user, this
 * one included, and the other gateways' as their latest presence records say): one more closes
 * with 4029. Returns true when the session is closing for it. */
static bool too_many_conns(gw_session *s)
{
    gw_ctx *ctx = s->ctx;
    size_t n = gw_users_count(&ctx->users, s->id.sub) + 1;
    if (ctx->presence)
        n += gw_presence_remote_conns(ctx->presence, s->id.sub);
    if (ctx->cfg.max_user_conns <= 0 || n <= (size_t)ctx->cfg.max_user_conns)
        return false;
    chat_log(CHAT_LOG_INFO, "session %s: connection %zu of the user; closing with 4029", who(s), n);
    fail_session(s, GW_CLOSE_TOO_MANY_CONNS, "too many connections for this user");
    return true;
}

/* The user's connections on this gateway changed: the cluster hears of it. */
static void conns_changed(gw_session *s)
{
    if (s->ctx->presence)
        gw_presence_set_conns(s->ctx->presence, s->id.sub,
                              (uint32_t)gw_users_count(&s->ctx->users, s->id.sub));
}

static int on_auth(gw_session *s, const gw_frame *f)
{
    char why[160];
    gw_identity id;
    if (gw_auth_verify(s->ctx->auth, f->token, time(NULL), &id, why, sizeof(why)) != 0) {
        chat_log(CHAT_LOG_INFO, "first-frame auth refused: %s", why);
        char reason[64];
        snprintf(reason, sizeof(reason), "authentication failed: %.40s", why);
        fail_session(s, GW_CLOSE_AUTH, reason);
        return 0;
    }
    int taken = id_take(&s->id, &id);
    gw_identity_clear(&id);
    if (taken != 0) {
        fail_session(s, GW_CLOSE_INTERNAL, "out of memory");
        return 0;
    }
    if (too_many_conns(s))
        return 0;
    if (gw_users_add(&s->ctx->users, s->id.sub, &s->ulink) != 0) {
        fail_session(s, GW_CLOSE_INTERNAL, "out of memory");
        return 0;
    }
    conns_changed(s);
    s->state = GW_S_READY;
    watch_expiry(s);
    chat_log(CHAT_LOG_DEBUG, "session %s authenticated by its first frame", who(s));
    send_new(s, gw_out_welcome(s->id.sub, s->ctx->cfg.node_id, s->id.exp,
                               s->ctx->ops->epoch(s->ctx->ops_arg)));
    return 0;
}

static void dispatch(gw_session *s, const char *data, size_t len)
{
    gw_frame f;
    gw_frame_error fe;
    if (gw_frame_parse(data, len, &s->ctx->limits, &f, &fe) != 0) {
        if (s->state == GW_S_AUTH) {
            fail_session(s, GW_CLOSE_AUTH, "the first frame must be auth");
            return;
        }
        send_error(s, fe.code, fe.message, fe.cid);
        return;
    }
    if (s->state == GW_S_AUTH) {
        if (f.type == GW_FRAME_AUTH)
            on_auth(s, &f);
        else
            fail_session(s, GW_CLOSE_AUTH, "the first frame must be auth");
        gw_frame_free(&f);
        return;
    }
    switch (f.type) {
    case GW_FRAME_AUTH:
        send_error(s, GW_ERR_ALREADY_AUTH, "this session is already authenticated", f.cid);
        break;
    case GW_FRAME_JOIN:
        on_join(s, &f);
        break;
    case GW_FRAME_LEAVE:
        on_leave(s, &f);
        break;
    case GW_FRAME_SEND:
        on_send(s, &f);
        break;
    case GW_FRAME_HISTORY:
        on_history(s, &f);
        break;
    case GW_FRAME_PING:
        send_new(s, gw_out_pong());
        break;
    case GW_FRAME_MEMBERS:
        on_members(s, &f);
        break;
    case GW_FRAME_REFRESH:
        on_refresh(s, &f);
        break;
    case GW_FRAME_TYPING:
        gw_typing_on_frame(s, &f);
        break;
    case GW_FRAME_READ:
        gw_reads_on_read(s, &f);
        break;
    case GW_FRAME_ROOMS:
        gw_reads_on_rooms(s, &f);
        break;
    }
    gw_frame_free(&f);
}

/* --- lifecycle --------------------------------------------------------------------------- */

void gw_session_auth_expired(gw_session *s)
{
    if (s->state == GW_S_AUTH) {
        chat_log(CHAT_LOG_INFO, "closing a session that did not authenticate in time");
        fail_session(s, GW_CLOSE_AUTH, "authentication timeout");
    } else if (s->state == GW_S_READY) {
        if ((long long)time(NULL) < s->id.exp + s->ctx->cfg.jwt_leeway) {
            watch_expiry(s); /* refreshed meanwhile, or a long token */
            return;
        }
        chat_log(CHAT_LOG_INFO, "session %s: token expired; closing with 4003", who(s));
        fail_session(s, GW_CLOSE_EXPIRED, "token expired: get a new token and reconnect");
    }
}

int gw_session_open(gw_ctx *ctx, gw_session *s, void *conn, gw_identity *id)
{
    memset(s, 0, sizeof(*s));
    int taken = id ? id_take(&s->id, id) : 0;
    if (id)
        gw_identity_clear(id);
    if (taken != 0)
        return -1; /* s->ctx NULL: gw_session_closed has nothing to undo */
    s->ctx = ctx;
    s->conn = conn;
    gw_rate_init(&s->rate, &ctx->frame_rate, gw_now_ms());
    s->next = ctx->sessions;
    if (s->next)
        s->next->prev = s;
    ctx->sessions = s;
    ctx->stats.connections++;
    ctx->stats.sessions_open++;
    if (id) {
        if (too_many_conns(s))
            return 0;
        if (gw_users_add(&ctx->users, s->id.sub, &s->ulink) != 0) {
            gw_session_closed(s);
            return -1;
        }
        conns_changed(s);
        s->state = GW_S_READY;
        send_new(s, gw_out_welcome(s->id.sub, ctx->cfg.node_id, s->id.exp,
                                   ctx->ops->epoch(ctx->ops_arg)));
        watch_expiry(s);
    } else {
        s->state = GW_S_AUTH;
        ctx->ops->auth_timer(s, (int)ctx->cfg.auth_timeout);
    }
    return 0;
}

void gw_session_closed(gw_session *s)
{
    gw_ctx *ctx = s->ctx;
    if (!ctx)
        return; /* never opened */
    ctx->ops->auth_timer(s, 0);
    if (s->dirty) /* closed between a fan-out batch and its flush */
        for (size_t i = 0; i < ctx->ndirty; i++)
            if (ctx->dirty[i] == s)
                ctx->dirty[i] = NULL;
    s->dirty = false;
    if (s->handle) { /* what has not started never will */
        ctx->ops->cancel_reads(ctx->ops_arg, s->handle);
        ctx->ops->cancel_reads(ctx->ops_arg, gw_reads_owner(s));
    }
    bool counted = gw_users_sub(&s->ulink) != NULL;
    gw_users_remove(&ctx->users, &s->ulink);
    if (counted)
        conns_changed(s);
    while (s->nsubs)
        sub_remove(s, &s->subs[s->nsubs - 1]);
    gw_sendq_clear(&s->q);
    free(s->rx); /* or the close reason: one block */
    s->rx = NULL;
    id_clear(&s->id);
    if (s->handle) {
        s->handle->s = NULL;
        gw_handle_unref(s->handle);
        s->handle = NULL;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        ctx->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ctx->stats.sessions_open--;
    s->ctx = NULL;
}

/* A whole message: counted against the rate first (docs/protocol.md, "Rate limiting"), so a
 * frame over the rate costs no parse, valid or not. The first frame of an unauthenticated
 * session is exempt: it must be auth, and anything else closes the session with 4001. */
static void on_message(gw_session *s, const char *data, size_t len, bool binary)
{
    s->ctx->stats.frames_in++;
    if (s->state == GW_S_CLOSING)
        return;
    if (s->state == GW_S_AUTH) {
        if (binary)
            fail_session(s, GW_CLOSE_AUTH, "the first frame must be auth");
        else
            dispatch(s, data, len);
        return;
    }
    if (!gw_rate_take(&s->rate, &s->ctx->frame_rate, gw_now_ms())) {
        send_error(s, GW_ERR_RATE_LIMITED, "too many frames; slow down", NULL);
        return;
    }
    if (binary)
        send_error(s, GW_ERR_INVALID_JSON, "frames must be JSON text", NULL);
    else
        dispatch(s, data, len);
}

/* A fragmented message being reassembled: its bytes so far, in a block of cap. */
struct gw_rx {
    uint32_t len, cap; /* within CHAT_MAX_FRAME */
    char data[];
};

static void rx_reset(gw_session *s)
{
    free(s->rx);
    s->rx = NULL;
}

int gw_session_receive(gw_session *s, const void *in, size_t len, bool first, bool final,
                       bool binary)
{
    size_t max = (size_t)s->ctx->cfg.max_frame;
    /* closing: what still arrives is read and dropped while the close frame goes out (and the
     * block that held a reassembly may hold the close reason now) */
    if (s->state == GW_S_CLOSING)
        return 0;
    if (first)
        rx_reset(s);
    if (!s->rx && first && final) {
        if (len > max)
            goto too_big;
        on_message(s, in, len, binary);
        return 0;
    }
    /* fragmented: reassemble within the bound */
    size_t have = s->rx ? s->rx->len : 0;
    if (have + len > max)
        goto too_big;
    if (!s->rx || have + len > s->rx->cap) {
        size_t cap = s->rx ? s->rx->cap : 4096;
        while (cap < have + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        gw_rx *rx = realloc(s->rx, sizeof(*rx) + cap);
        if (!rx) {
            rx_reset(s);
            fail_session(s, 1011, "internal error");
            return 0;
        }
        rx->len = (uint32_t)have;
        rx->cap = (uint32_t)cap; /* at most max, CHAT_MAX_FRAME */
        s->rx = rx;
    }
    if (len)
        memcpy(s->rx->data + s->rx->len, in, len);
    s->rx->len += (uint32_t)len;
    if (!final)
        return 0;
    /* taken out of the session while it is handled: a close decided meanwhile puts its reason
     * where the reassembly was */
    gw_rx *whole = s->rx;
    s->rx = NULL;
    on_message(s, whole->data, whole->len, binary);
    free(whole);
    return 0;
too_big:
    /* Closed through the session's close path (the close frame at the next writeable, what
     * still arrives read and dropped meanwhile), not by returning -1 from the receive callback:
     * with lws 4.1.6 that gave a close frame for one oversized frame, but a bare EOF for a
     * message in fragments (7 or 1000 bytes each, tests/e2e/test_conformance.py), which a
     * client reports as 1006 and retries. */
    chat_log(CHAT_LOG_INFO, "session %s: frame over %zu bytes, closing with 1009", who(s), max);
    rx_reset(s);
    fail_session(s, 1009, "frame too large");
    return 0;
}

/* Frames for one connection gathered into as few writes as possible: whole WebSocket frames
 * copied into the gateway's batch buffer, written when it is full or at the end; a frame larger
 * than the buffer is written alone, straight from its gw_buf. So at a few messages per second
 * a connection gets each frame at once (every writeable callback finds one), and under load
 * what piled up since the last callback (a fan-out batch, a history answer and the live frames
 * after it) goes out in one system call: coalescing costs no added latency. */
typedef struct gw_batch {
    gw_session *s;
    size_t used;
    bool failed;  /* the connection failed: close it */
    bool stopped; /* the socket took all it could: wait for the next writeable */
} gw_batch;

/* Writes what the batch holds. more: something else is to be written in this callback, so ask
 * whether the socket still takes it (a poll() each time: only when it matters; the first write of
 * a callback never needs it, as lws calls back only once its own buffer is empty). */
static void batch_flush(gw_batch *w, bool more)
{
    gw_ctx *ctx = w->s->ctx;
    if (!w->used || w->failed)
        return;
    if (ctx->ops->write(w->s->conn, ctx->batch, w->used) != 0)
        w->failed = true;
    ctx->stats.writes++;
    ctx->stats.bytes_out += w->used;
    w->used = 0;
    if (more && !w->failed && ctx->ops->choked(w->s->conn))
        w->stopped = true;
}

/* Adds b to the batch: 1 when it was taken, 0 when it was taken but nothing more should be
 * added now, -1 when it was not taken (the socket is full or failed). */
static int batch_add(gw_batch *w, gw_buf *b)
{
    gw_ctx *ctx = w->s->ctx;
    size_t len;
    const unsigned char *f = gw_buf_frame(b, &len);
    if (w->used + len > ctx->batch_cap)
        batch_flush(w, true);
    if (w->failed || w->stopped)
        return -1;
    ctx->stats.messages_out++;
    if (len > ctx->batch_cap) {
        if (ctx->ops->write(w->s->conn, f, len) != 0)
            w->failed = true;
        ctx->stats.writes++;
        ctx->stats.bytes_out += len;
        if (!w->failed && ctx->ops->choked(w->s->conn))
            w->stopped = true;
        return w->failed || w->stopped ? 0 : 1;
    }
    memcpy(ctx->batch + w->used, f, len);
    w->used += len;
    return 1;
}

/* Every live cursor is at its room log's end. */
static bool caught_up(const gw_session *s)
{
    for (uint16_t i = 0; i < s->nsubs; i++)
        if (s->subs[i].live && s->subs[i].next < s->subs[i].lr->next_rseq)
            return false;
    return true;
}

void gw_session_peer_closing(gw_session *s)
{
    if (s->ctx && s->state != GW_S_CLOSING) {
        s->state = GW_S_CLOSING; /* frames that still arrive are dropped; fan-out leaves it */
        rx_reset(s);             /* closing: the block holds no reassembly (gw_session) */
    }
}

int gw_session_writeable(gw_session *s)
{
    handle_trim(s);
    if (s->close_code == GW_CLOSE_BROKEN)
        return -1;
    if (s->close_code) {
        s->ctx->ops->close_reason(s->conn, s->close_code, s->close_reason ? s->close_reason : "");
        return -1;
    }
    gw_batch w = {.s = s};
    /* replies first: a joined answer precedes its room's live frames */
    gw_buf *b;
    while ((b = gw_sendq_peek(&s->q))) {
        int taken = batch_add(&w, b);
        if (taken >= 0)
            gw_sendq_pop(&s->q);
        if (taken <= 0)
            goto out;
    }
    for (uint16_t i = 0; i < s->nsubs; i++) {
        gw_sub *sub = &s->subs[i];
        gw_log_room *lr = sub->lr;
        if (!sub->live)
            continue;
        if (sub->next < lr->first_rseq) {
            batch_flush(&w, false);
            too_slow(s, "fell behind the room log");
            return w.failed ? -1 : 0;
        }
        while (sub->next < lr->next_rseq) {
            gw_log_entry *e = gw_log_at(lr, sub->next);
            bool deliver = e && e->offset > sub->skip_to;
            int taken = deliver ? batch_add(&w, e->frame) : 1;
            if (taken >= 0)
                sub->next++;
            if (taken >= 0 && deliver)
                s->ctx->stats.deliveries++;
            if (taken <= 0)
                goto out;
        }
    }
out:
    batch_flush(&w, false);
    if (w.failed)
        return -1;
    if (w.stopped)
        s->ctx->ops->want_write(s->conn);
    else if (s->close_after && !gw_sendq_peek(&s->q) && caught_up(s)) {
        s->close_code = (int16_t)s->close_after; /* all written: the close frame goes next */
        s->ctx->ops->want_write(s->conn);
    }
    return 0;
}

void gw_sessions_shutdown(gw_ctx *ctx)
{
    for (gw_session *s = ctx->sessions; s; s = s->next)
        fail_session(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

void gw_sessions_drain(gw_ctx *ctx, int close_within_s)
{
    for (gw_session *s = ctx->sessions; s; s = s->next) {
        if (s->state == GW_S_CLOSING)
            continue;
        s->state = GW_S_CLOSING; /* frames that still arrive are dropped */
        s->close_after = LWS_CLOSE_STATUS_GOINGAWAY;
        set_close_reason(s, "gateway going away: reconnect and resume with since");
        ctx->ops->want_write(s->conn);
        ctx->ops->close_within(s->conn, close_within_s);
    }
}

/* --- fan-out ----------------------------------------------------------------------------- */

/* A member of a room that got a record: written at gw_sessions_flush, once the batch of records
 * is in the log. */
static void wake_member(void *member, void *arg)
{
    gw_ctx *ctx = arg;
    gw_session *s = member;
    if (s->dirty)
        return;
    if (ctx->ndirty == ctx->capdirty) {
        size_t cap = ctx->capdirty ? ctx->capdirty * 2 : 64;
        gw_session **d = realloc(ctx->dirty, cap * sizeof(*d));
        if (!d) {
            ctx->ops->want_write(s->conn); /* written at its writeable callback instead */
            return;
        }
        ctx->dirty = d;
        ctx->capdirty = cap;
    }
    s->dirty = true;
    ctx->dirty[ctx->ndirty++] = s;
}

/* Try-write-first (redis networking.c, libuv): a member whose connection holds nothing unsent
 * is written from here, the frames going out in the write(s) of gw_session_writeable; only one
 * the socket does not take at once (lws then keeps the rest and asks for POLLOUT itself), or
 * one that is closing or draining, waits for its writeable callback. The callback path costs
 * two poll-set changes (POLLOUT on, then off) and a wake-up per member per record, which were
 * a sixth of the gateway's CPU at 1,000 members x 200 msg/s. */
void gw_sessions_flush(gw_ctx *ctx)
{
    if (ctx->acks_waiting)
        acks_release(ctx, false); /* the batch may hold their records */
    for (size_t i = 0; i < ctx->ndirty; i++) {
        gw_session *s = ctx->dirty[i];
        if (!s)
            continue; /* closed since it was woken */
        s->dirty = false;
        if (s->state != GW_S_READY || s->close_code || s->close_after ||
            !ctx->ops->writable_now(s->conn)) {
            ctx->ops->want_write(s->conn);
            continue;
        }
        ctx->stats.writes_direct++;
        if (gw_session_writeable(s) != 0) {
            /* the connection failed: lws closes it at its next event on the socket (the close
             * frame could not be written either); a callback before that closes it too */
            s->state = GW_S_CLOSING;
            s->close_code = GW_CLOSE_BROKEN;
            rx_reset(s); /* closing: the block holds no reassembly (gw_session) */
            ctx->ops->want_write(s->conn);
        }
    }
    ctx->ndirty = 0;
}

/* A direct room's record reaches every connection of both its users on this gateway, joined to
 * it or not. A connection of a or b that has not joined the room (and may use it) is joined to
 * it here, its cursor at this record: an implicit join, with no joined answer. From here on it
 * writes this message and every later one of the room exactly once, in order, as any member
 * does; a later join frame is answered like a join of a joined room (a new page, then live
 * after it). A connection at CHAT_MAX_ROOMS gets the frame on its reply queue instead. */
static void dm_reach(gw_ctx *ctx, gw_log_entry *e)
{
    gw_log_room *lr = e->room;
    chat_dm dm;
    if (!ctx->users.links || !chat_dm_parse(lr->name, strlen(lr->name), &dm))
        return;
    uint64_t rseq = lr->next_rseq - 1;
    if (gw_log_at(lr, rseq) != e)
        return; /* dropped at once: larger than the whole log */
    char user[CHAT_DM_USER_MAX + 1];
    for (int u = 0; u < 2; u++) {
        size_t n = u ? dm.blen : dm.alen;
        memcpy(user, u ? dm.b : dm.a, n);
        user[n] = '\0';
        for (gw_user_link *l = gw_users_first(&ctx->users, user); l; l = l->next) {
            gw_session *s = gw_htab_entry(l, gw_session, ulink);
            const char *code;
            if (s->state != GW_S_READY || sub_find(s, lr->name) ||
                !gw_access_may_join_as(s->id.sub, gw_session_id_rooms(&s->id), lr->name, &code,
                                       NULL, 0))
                continue;
            if (s->nsubs >= (size_t)ctx->cfg.max_rooms) {
                send_buf(s, e->frame);
                continue;
            }
            gw_log_room *ref = gw_log_room_ref(ctx->log, lr->name, lr->partition);
            gw_sub *sub = ref ? sub_add(s, ref) : NULL;
            if (!sub) {
                if (ref)
                    gw_log_room_unref(ctx->log, ref);
                chat_log(CHAT_LOG_ERROR, "session %s: out of memory joining %s", who(s), lr->name);
                continue;
            }
            sub->live = true;
            sub->next = rseq;
            sub->skip_to = e->offset - 1;
            ctx->stats.dm_joins++;
        }
    }
}

void gw_session_on_record(const chat_message *m, int32_t partition, int64_t offset, void *arg)
{
    gw_ctx *ctx = arg;
    ctx->stats.fanout_records++;
    if (gw_log_skip_copy(ctx->log, partition, offset, m->env.room, m->env.from, m->env.cid)) {
        /* a second record of one send (Kafka wrote a send it refused, and the client's retry
         * with the same cid): every gateway reads the same records in the same order, so each
         * drops the same copy, and the persister does too (ps_persister.c) */
        ctx->stats.copies_dropped++;
        return;
    }
    gw_buf *b = gw_out_message(m);
    if (!b) {
        chat_log(CHAT_LOG_ERROR, "out of memory encoding a message for fan-out");
        return;
    }
    gw_log_entry *e =
        gw_log_append(ctx->log, partition, offset, m->env.room, m->env.from, m->env.cid, b);
    gw_buf_unref(b);
    if (!e)
        return;
    if (e->dkey && ctx->ninflight) {
        uint64_t h = inflight_hash(ctx, m->env.room, m->env.from, m->env.cid);
        gw_inflight **link = NULL;
        gw_inflight *inf = inflight_find(ctx, h, m->env.room, m->env.from, m->env.cid, &link);
        if (inf && inf->id[0])
            inflight_drop(ctx, link); /* the log answers its retries from now on */
    }
    dm_reach(ctx, e);
    if (gw_rooms_member_count(ctx->rooms, m->env.room) == 0)
        return;
    /* CHAT_COALESCE_MS: a room whose members were woken less than that ago waits for the next
     * tick, so that what arrives meanwhile goes out in one write per member */
    gw_room_state *st = ctx->cfg.coalesce_ms > 0 ? room_state(e->room) : NULL;
    if (st) {
        int64_t now = gw_now_ms();
        if (st->wake_queued)
            return;
        if (now - st->last_wake_ms < ctx->cfg.coalesce_ms) {
            st->wake_queued = true;
            e->room->refs++; /* the wake list holds the room */
            st->wake_next = ctx->wakes;
            if (!ctx->wakes)
                ctx->ops->arm(ctx->ops_arg, (int)(st->last_wake_ms + ctx->cfg.coalesce_ms - now));
            ctx->wakes = st;
            return;
        }
        st->last_wake_ms = now;
    }
    gw_rooms_foreach(ctx->rooms, m->env.room, wake_member, ctx);
}

static void wake_due_rooms(gw_ctx *ctx)
{
    gw_room_state *st = ctx->wakes;
    ctx->wakes = NULL;
    int64_t now = gw_now_ms();
    while (st) {
        gw_room_state *next = st->wake_next;
        gw_log_room *lr = st->lr;
        st->wake_queued = false;
        st->wake_next = NULL;
        st->last_wake_ms = now;
        gw_rooms_foreach(ctx->rooms, lr->name, wake_member, ctx);
        gw_log_room_unref(ctx->log, lr); /* may free lr and st */
        st = next;
    }
}

void gw_sessions_wake_due(gw_ctx *ctx)
{
    wake_due_rooms(ctx);
    gw_sessions_flush(ctx);
}

/* --- store results ----------------------------------------------------------------------- */

/* The session and sub a join reply is for, or NULL when it left, rejoined or closed. */
static gw_sub *reply_sub(gw_pending_reply *r, gw_session **out)
{
    gw_session *s = r->h->s;
    if (!s || s->state == GW_S_CLOSING)
        return NULL;
    gw_sub *sub = sub_find(s, r->room);
    if (!sub || sub->gen != r->gen || sub->live)
        return NULL;
    *out = s;
    return sub;
}

/* Whether the store and the log together hold every message of the partition: the store up
 * to the fence, the log from its start. */
static bool exact(gw_ctx *ctx, const gw_store_result *res)
{
    int64_t start, next;
    if (!gw_log_coverage(ctx->log, res->partition, &start, &next))
        return false;
    if (res->fence >= start)
        return true;
    ctx->stats.inexact_reads++;
    chat_log(CHAT_LOG_WARN,
             "store read of %s: the persister has stored partition %d up to offset %lld but "
             "this gateway's log starts at %lld; messages in between may be missing",
             res->room, (int)res->partition, (long long)res->fence, (long long)start);
    return false;
}

static void on_join_flight(gw_ctx *ctx, gw_store_result *res)
{
    gw_log_room *lr = gw_log_room_find(ctx->log, res->room);
    gw_room_state *st = lr ? lr->user : NULL;
    if (!st || !st->reading)
        return;
    st->reading = false;
    gw_pending_reply *waiters = st->waiters;
    st->waiters = NULL;
    gw_page pg = {0};
    int rc = res->err ? res->err : page_merge(&pg, res->msgs, res->n, lr, -1, INT64_MAX);
    if (rc == 0) {
        exact(ctx, res);
        /* the room's page from now on: its newest max_history messages */
        page_free(&st->page);
        size_t keep = (size_t)ctx->limits.max_history, drop = pg.n > keep ? pg.n - keep : 0;
        for (size_t i = drop; i < pg.n; i++)
            page_push(&st->page, pg.frames[i], pg.offsets[i]);
        st->page_rseq = lr->next_rseq;
        st->has_page = st->page.n == pg.n - drop;
    }
    /* one answer per limit, shared by every joiner that asked for it */
    gw_buf *cached = NULL;
    int cached_limit = 0;
    while (waiters) {
        gw_pending_reply *w = waiters;
        waiters = w->next;
        gw_session *s = NULL;
        gw_sub *sub = reply_sub(w, &s);
        if (sub && rc) {
            sub_remove(s, sub);
            send_error(s, GW_ERR_UNAVAILABLE,
                       "history is unavailable, so the join failed; try again", w->cid);
        } else if (sub && !w->since[0] && !sub->presence && !sub->rd && cached &&
                   cached_limit == w->limit) {
            send_buf(s, cached);
            sub_go_live(s, sub, pg.n ? pg.offsets[pg.n - 1] : -1);
        } else if (sub) {
            bool own = sub->rd != NULL;
            gw_buf *b = answer_join(s, sub, &pg, w->limit, w->since, false);
            if (b && !w->since[0] && !sub->presence && !own) {
                gw_buf_unref(cached);
                cached = gw_buf_ref(b);
                cached_limit = w->limit;
            }
            gw_buf_unref(b);
        }
        reply_free(w);
    }
    gw_buf_unref(cached);
    page_free(&pg);
    gw_log_room_unref(ctx->log, lr); /* the read's reference */
}

static void on_resume(gw_ctx *ctx, gw_store_result *res, gw_pending_reply *r)
{
    gw_session *s = NULL;
    gw_sub *sub = reply_sub(r, &s);
    if (!sub)
        return;
    if (res->err) {
        sub_remove(s, sub);
        send_error(s, GW_ERR_UNAVAILABLE,
                   "history is unavailable, so the join failed; try "
                   "again",
                   r->cid);
        return;
    }
    int64_t since = -1;
    chat_msgid_parse(r->since, NULL, &since);
    gw_page pg = {0};
    if (page_merge(&pg, res->msgs, res->n, sub->lr, since, INT64_MAX) != 0) {
        page_free(&pg);
        send_error(s, GW_ERR_INTERNAL, "out of memory", r->cid);
        return;
    }
    bool ok = exact(ctx, res) && pg.n <= (size_t)ctx->cfg.resume_max;
    if (ok) {
        ctx->stats.resumes_recovered++;
        gw_buf_unref(answer_join(s, sub, &pg, r->limit, r->since, true));
        page_free(&pg);
        return;
    }
    page_free(&pg);
    /* not recoverable: the latest page, with the gap */
    join_latest(s, sub, r->limit, r->since, r->cid);
}

static void on_history_result(gw_ctx *ctx, gw_store_result *res, gw_pending_reply *r)
{
    gw_session *s = r->h->s;
    if (s && s->state == GW_S_CLOSING)
        return;
    if (!s && !r->h->answer)
        return; /* the session or the server API request went away */
    if (s && s->reads)
        s->reads--;
    if (res->err) {
        answer_error(ctx, r->h, GW_ERR_UNAVAILABLE, "history is unavailable; try again", r->cid);
        return;
    }
    /* the store may lag the log: merge the log's part of the page in */
    gw_log_room *lr = gw_log_room_find(ctx->log, res->room);
    int64_t after = -1, before = INT64_MAX;
    if (r->since[0])
        chat_msgid_parse(r->since, NULL, &after);
    if (r->before[0])
        chat_msgid_parse(r->before, NULL, &before);
    gw_page pg = {0};
    if (page_merge(&pg, res->msgs, res->n, lr, after, before) != 0) {
        page_free(&pg);
        answer_error(ctx, r->h, GW_ERR_INTERNAL, "out of memory", r->cid);
        return;
    }
    /* the page the request asked for: the first `limit` after, or the last `limit` */
    size_t lo = 0, n = pg.n;
    if (n > (size_t)r->limit) {
        if (!r->since[0])
            lo = n - (size_t)r->limit;
        n = (size_t)r->limit;
    }
    answer(r->h, gw_out_list("history", "messages", res->room, n ? pg.frames + lo : NULL, n, NULL));
    page_free(&pg);
}

size_t gw_sessions_kick(gw_ctx *ctx, const char *user)
{
    size_t n = 0;
    for (gw_user_link *l = gw_users_first(&ctx->users, user); l; l = l->next) {
        gw_session *s = gw_htab_entry(l, gw_session, ulink);
        if (s->state == GW_S_CLOSING)
            continue;
        fail_session(s, GW_CLOSE_KICKED, "kicked by the server: do not reconnect by yourself");
        n++;
    }
    if (n)
        chat_log(CHAT_LOG_INFO, "kick: closing %zu connections of a user with 4004", n);
    return n;
}

void gw_session_on_event(const chat_event *e, void *arg)
{
    if (e->kind == CHAT_EVENT_KICK) {
        gw_sessions_kick(arg, e->user);
        return;
    }
    if (e->kind == CHAT_EVENT_TYPING)
        gw_typing_on_event(arg, e);
    else if (e->kind == CHAT_EVENT_READ)
        gw_reads_on_event(arg, e);
}

void gw_session_on_history(gw_store_result *res, void *arg)
{
    gw_ctx *ctx = arg;
    gw_pending_reply *r = res->opaque;
    if (res->kind >= GW_READS_KIND_FIRST) {
        gw_reads_on_result(ctx, res); /* the read state's jobs */
        return;
    }
    if (res->kind == GW_Q_JOIN)
        on_join_flight(ctx, res);
    else if (res->kind == GW_Q_RESUME)
        on_resume(ctx, res, r);
    else
        on_history_result(ctx, res, r);
    reply_free(r);
}
