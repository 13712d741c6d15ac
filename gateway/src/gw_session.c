/* gw_session.c: protocol v1 for one client session (see docs/protocol.md): the auth state,
 * reassembly of fragmented frames up to CHAT_MAX_FRAME, rate limiting, join/leave/send/
 * history/ping, fan-out delivery through a bounded send queue, and the pending-join buffer
 * that keeps live messages behind the history a join returns. */
#define _DEFAULT_SOURCE /* gethostname, strncasecmp, strdup, pipe, clock_gettime */
#include "gw_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_error.h"
#include "chat_log.h"
#include "gw_out.h"
#include "gw_recent.h"

/* What a MongoDB read answers: a first join (live messages wait for it), a join of a room
 * the session is already in (live traffic never stopped), or a history request. */
enum { GW_Q_JOIN = 1, GW_Q_REJOIN = 2, GW_Q_HISTORY = 3 };

#define GW_CLOSE_AUTH 4001

/* What a reply that arrives later needs: the session (weakly) and the request's cid. Used for
 * Kafka delivery reports and MongoDB results alike. */
typedef struct gw_pending_reply {
    gw_handle *h;
    char cid[CHAT_CID_MAX + 1];
} gw_pending_reply;

static gw_pending_reply *reply_new(gw_session *s, const char *cid)
{
    gw_pending_reply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->h = gw_handle_ref(s->handle);
    snprintf(r->cid, sizeof(r->cid), "%s", cid ? cid : "");
    return r;
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

static const char *who(const gw_session *s) { return s->id.sub[0] ? s->id.sub : "-"; }

/* Schedules a close with code and reason at the next writeable; queued frames are dropped. */
static void fail_session(gw_session *s, int code, const char *reason)
{
    if (s->state == GW_S_CLOSING)
        return;
    s->state = GW_S_CLOSING;
    s->close_code = code;
    snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
    while (gw_sendq_peek(&s->q))
        gw_sendq_pop(&s->q);
    lws_callback_on_writable(s->wsi);
    /* a client that never reads never becomes writeable: make sure it goes anyway */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

/* Queues b (a new reference is taken) or drops the slow client. */
static void send_buf(gw_session *s, gw_buf *b)
{
    if (s->state == GW_S_CLOSING || !b)
        return;
    if (gw_sendq_push(&s->q, b) != 0) {
        s->ctx->stats.dropped_slow++;
        chat_log(CHAT_LOG_WARN, "session %s: send queue full, disconnecting a slow client",
                 who(s));
        fail_session(s, 1008, "send queue overflow: client too slow");
        return;
    }
    lws_callback_on_writable(s->wsi);
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
    send_new(s, gw_out_error(code, message, cid));
}

/* --- pending joins ----------------------------------------------------------------------- */

static gw_pending_join *pending_find(gw_session *s, const char *room)
{
    for (gw_pending_join *p = s->pending; p; p = p->next)
        if (strcmp(p->room, room) == 0)
            return p;
    return NULL;
}

static void pending_free(gw_pending_join *p)
{
    for (size_t i = 0; i < p->n; i++)
        gw_buf_unref(p->bufs[i]);
    free(p->bufs);
    free(p->ids);
    free(p);
}

static void pending_remove(gw_session *s, gw_pending_join *p)
{
    for (gw_pending_join **pp = &s->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            pending_free(p);
            return;
        }
    }
}

static int pending_append(gw_session *s, gw_pending_join *p, gw_buf *b, const char *id)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        if (cap > (size_t)s->ctx->cfg.send_queue)
            cap = (size_t)s->ctx->cfg.send_queue;
        if (cap <= p->n)
            return -ENOBUFS;
        gw_buf **bufs = realloc(p->bufs, cap * sizeof(*bufs));
        if (!bufs)
            return -ENOMEM;
        p->bufs = bufs;
        char(*ids)[CHAT_MSGID_LEN + 1] = realloc(p->ids, cap * sizeof(*ids));
        if (!ids)
            return -ENOMEM;
        p->ids = ids;
        p->cap = cap;
    }
    p->bufs[p->n] = gw_buf_ref(b);
    memcpy(p->ids[p->n], id, CHAT_MSGID_LEN + 1);
    p->n++;
    return 0;
}

/* --- frame handlers ---------------------------------------------------------------------- */

static void on_join(gw_session *s, const gw_frame *f)
{
    gw_ctx *ctx = s->ctx;
    bool member = gw_rooms_is_member(ctx->rooms, f->room, s);
    if (!member && gw_rooms_count_of(ctx->rooms, s) >= (size_t)ctx->cfg.max_rooms) {
        send_error(s, GW_ERR_TOO_MANY_ROOMS, "this session has joined too many rooms", f->cid);
        return;
    }
    if (pending_find(s, f->room))
        return; /* the join under way answers */
    if (ctx->cfg.history_limit == 0) {
        if (!member && gw_rooms_join(ctx->rooms, f->room, s) < 0) {
            send_error(s, GW_ERR_INTERNAL, "out of memory", f->cid);
            return;
        }
        send_new(s, gw_out_joined(f->room, NULL, 0));
        return;
    }
    /* a member already receives the room live: it only needs the history again */
    gw_pending_join *p = member ? NULL : calloc(1, sizeof(*p));
    gw_pending_reply *r = (member || p) ? reply_new(s, f->cid) : NULL;
    if (!r || (!member && gw_rooms_join(ctx->rooms, f->room, s) < 0)) {
        free(p);
        if (r)
            reply_free(r);
        send_error(s, GW_ERR_INTERNAL, "out of memory", f->cid);
        return;
    }
    int rc = gw_store_history(ctx->store, f->room, NULL, (int)ctx->cfg.history_limit,
                              member ? GW_Q_REJOIN : GW_Q_JOIN, r);
    if (rc != 0) {
        reply_free(r);
        free(p);
        if (!member)
            gw_rooms_leave(ctx->rooms, f->room, s);
        send_error(s, GW_ERR_UNAVAILABLE, "history is busy; try again", f->cid);
        return;
    }
    if (p) {
        snprintf(p->room, sizeof(p->room), "%s", f->room);
        p->next = s->pending;
        s->pending = p;
    }
    chat_log(CHAT_LOG_DEBUG, "session %s joins %s", who(s), f->room);
}

static void on_leave(gw_session *s, const gw_frame *f)
{
    if (gw_rooms_leave(s->ctx->rooms, f->room, s) != 0) {
        send_error(s, GW_ERR_NOT_JOINED, "you have not joined this room", f->cid);
        return;
    }
    gw_pending_join *p = pending_find(s, f->room);
    if (p)
        pending_remove(s, p);
    send_new(s, gw_out_left(f->room));
}

static void on_send(gw_session *s, const gw_frame *f)
{
    gw_ctx *ctx = s->ctx;
    if (!gw_rooms_is_member(ctx->rooms, f->room, s)) {
        send_error(s, GW_ERR_NOT_JOINED, "join the room before sending to it", f->cid);
        return;
    }
    gw_pending_reply *a = reply_new(s, f->cid);
    if (!a) {
        send_error(s, GW_ERR_INTERNAL, "out of memory", f->cid);
        return;
    }
    chat_envelope e = {
        .version = CHAT_ENVELOPE_VERSION,
        .room = (char *)f->room,
        .from = s->id.sub,
        .name = s->id.name,
        .text = (char *)f->text,
        .text_len = f->text_len,
        .ts_ms = gw_wall_ms(),
        .cid = a->cid,
        .gateway = (char *)ctx->cfg.node_id,
    };
    char err[256];
    int rc = gw_kafka_produce(ctx->kafka, &e, a, err, sizeof(err));
    if (rc != 0) {
        reply_free(a);
        ctx->stats.produce_failed++;
        chat_log(CHAT_LOG_WARN, "session %s: produce failed: %s", who(s), err);
        send_error(s, GW_ERR_UNAVAILABLE, "the message could not be queued; try again", f->cid);
        return;
    }
    ctx->stats.produced++;
}

static void on_history(gw_session *s, const gw_frame *f)
{
    if (!gw_rooms_is_member(s->ctx->rooms, f->room, s)) {
        send_error(s, GW_ERR_NOT_JOINED, "join the room before reading its history", f->cid);
        return;
    }
    gw_pending_reply *r = reply_new(s, f->cid);
    if (!r) {
        send_error(s, GW_ERR_INTERNAL, "out of memory", f->cid);
        return;
    }
    if (gw_store_history(s->ctx->store, f->room, f->before, f->limit, GW_Q_HISTORY, r) != 0) {
        reply_free(r);
        send_error(s, GW_ERR_UNAVAILABLE, "history is busy; try again", f->cid);
    }
}

static int on_auth(gw_session *s, const gw_frame *f)
{
    char why[160];
    if (gw_auth_verify(s->ctx->auth, f->token, time(NULL), &s->id, why, sizeof(why)) != 0) {
        chat_log(CHAT_LOG_INFO, "first-frame auth refused: %s", why);
        char reason[64];
        snprintf(reason, sizeof(reason), "authentication failed: %.40s", why);
        fail_session(s, GW_CLOSE_AUTH, reason);
        return 0;
    }
    lws_sul_cancel(&s->auth_sul);
    s->state = GW_S_READY;
    chat_log(CHAT_LOG_DEBUG, "session %s authenticated by its first frame", who(s));
    send_new(s, gw_out_welcome(s->id.sub, s->ctx->cfg.node_id));
    return 0;
}

static void dispatch(gw_session *s, const char *data, size_t len)
{
    gw_frame f;
    gw_frame_error fe;
    s->ctx->stats.frames_in++;
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
    if (!gw_rate_take(&s->rate, gw_now_ms())) {
        send_error(s, GW_ERR_RATE_LIMITED, "too many frames; slow down", f.cid);
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
    }
    gw_frame_free(&f);
}

/* --- lifecycle --------------------------------------------------------------------------- */

static void auth_timeout(lws_sorted_usec_list_t *sul)
{
    gw_session *s = lws_container_of(sul, gw_session, auth_sul);
    if (s->state == GW_S_AUTH) {
        chat_log(CHAT_LOG_INFO, "closing a session that did not authenticate in time");
        fail_session(s, GW_CLOSE_AUTH, "authentication timeout");
    }
}

int gw_session_open(gw_ctx *ctx, gw_session *s, struct lws *wsi, const gw_identity *id)
{
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->wsi = wsi;
    s->handle = calloc(1, sizeof(*s->handle));
    if (!s->handle)
        return -1;
    s->handle->s = s;
    s->handle->refs = 1;
    if (gw_sendq_init(&s->q, (size_t)ctx->cfg.send_queue, (size_t)ctx->cfg.send_queue_bytes)) {
        free(s->handle);
        s->handle = NULL;
        return -1;
    }
    gw_rate_init(&s->rate, (double)ctx->cfg.rate, (double)ctx->cfg.rate_burst, gw_now_ms());
    s->next = ctx->sessions;
    if (s->next)
        s->next->prev = s;
    ctx->sessions = s;
    ctx->stats.connections++;
    ctx->stats.sessions_open++;
    if (id) {
        s->id = *id;
        s->state = GW_S_READY;
        send_new(s, gw_out_welcome(s->id.sub, ctx->cfg.node_id));
    } else {
        s->state = GW_S_AUTH;
        lws_sul_schedule(ctx->lws, 0, &s->auth_sul, auth_timeout,
                         ctx->cfg.auth_timeout * LWS_US_PER_SEC);
    }
    return 0;
}

void gw_session_closed(gw_session *s)
{
    gw_ctx *ctx = s->ctx;
    if (!ctx)
        return; /* never opened */
    lws_sul_cancel(&s->auth_sul);
    gw_rooms_leave_all(ctx->rooms, s);
    while (s->pending)
        pending_remove(s, s->pending);
    gw_sendq_free(&s->q);
    free(s->rx);
    s->rx = NULL;
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

int gw_session_receive(gw_session *s, const void *in, size_t len, bool first, bool final,
                       bool binary)
{
    size_t max = (size_t)s->ctx->cfg.max_frame;
    if (first && s->rx) {
        free(s->rx);
        s->rx = NULL;
    }
    if (!s->rx && first && final) {
        if (len > max)
            goto too_big;
        if (s->state == GW_S_CLOSING)
            return 0;
        if (binary) {
            if (s->state == GW_S_AUTH)
                fail_session(s, GW_CLOSE_AUTH, "the first frame must be auth");
            else
                send_error(s, GW_ERR_INVALID_JSON, "frames must be JSON text", NULL);
            return 0;
        }
        dispatch(s, in, len);
        return 0;
    }
    /* fragmented: reassemble within the bound */
    if (s->rx_len + len > max)
        goto too_big;
    if (!s->rx || s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        while (cap < s->rx_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *rx = realloc(s->rx, cap);
        if (!rx) {
            lws_close_reason(s->wsi, 1011, (unsigned char *)"internal error", 14);
            return -1;
        }
        if (!s->rx)
            s->rx_len = 0;
        s->rx = rx;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (!final)
        return 0;
    char *data = s->rx;
    size_t dlen = s->rx_len;
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
    if (s->state != GW_S_CLOSING) {
        if (binary)
            send_error(s, GW_ERR_INVALID_JSON, "frames must be JSON text", NULL);
        else
            dispatch(s, data, dlen);
    }
    free(data);
    return 0;
too_big:
    chat_log(CHAT_LOG_INFO, "session %s: frame over %zu bytes, closing with 1009", who(s), max);
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
    lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                     (unsigned char *)"frame too large", 15);
    return -1;
}

int gw_session_writeable(gw_session *s)
{
    if (s->close_code) {
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_reason, strlen(s->close_reason));
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        gw_buf *b = gw_sendq_peek(&s->q);
        if (!b)
            return 0;
        int n = lws_write(s->wsi, gw_buf_payload(b), b->len, LWS_WRITE_TEXT);
        if (n < (int)b->len)
            return -1;
        gw_sendq_pop(&s->q);
        s->ctx->stats.messages_out++;
        if (lws_send_pipe_choked(s->wsi))
            break;
    }
    if (gw_sendq_peek(&s->q))
        lws_callback_on_writable(s->wsi);
    return 0;
}

void gw_sessions_shutdown(gw_ctx *ctx)
{
    for (gw_session *s = ctx->sessions; s; s = s->next)
        fail_session(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

/* --- replies that arrive later ----------------------------------------------------------- */

void gw_session_on_ack(void *opaque, const char *id, const char *errstr, void *arg)
{
    gw_ctx *ctx = arg;
    gw_pending_reply *a = opaque;
    gw_session *s = a->h->s;
    if (id)
        ctx->stats.acked++;
    else
        ctx->stats.produce_failed++;
    if (s) {
        if (id) {
            send_new(s, gw_out_ack(a->cid, id));
        } else {
            chat_log(CHAT_LOG_WARN, "session %s: delivery failed: %s", who(s), errstr);
            send_error(s, GW_ERR_UNAVAILABLE, "the message was not stored; try again",
                       a->cid);
        }
    }
    reply_free(a);
}

typedef struct fanout {
    const chat_message *m;
    gw_buf *b;
} fanout;

static void deliver(void *member, void *arg)
{
    gw_session *s = member;
    fanout *fo = arg;
    gw_pending_join *p = pending_find(s, fo->m->env.room);
    if (p) {
        if (pending_append(s, p, fo->b, fo->m->id) != 0)
            fail_session(s, 1008, "send queue overflow: client too slow");
        return;
    }
    send_buf(s, fo->b);
}

void gw_session_on_record(const chat_message *m, void *arg)
{
    gw_ctx *ctx = arg;
    ctx->stats.fanout_records++;
    /* encoded once, remembered for joins, and shared by every local member */
    fanout fo = {m, gw_out_message(m)};
    if (!fo.b) {
        chat_log(CHAT_LOG_ERROR, "out of memory encoding a message for fan-out");
        return;
    }
    if (ctx->recent)
        gw_recent_add(ctx->recent, m->env.room, m->id, fo.b);
    gw_rooms_foreach(ctx->rooms, m->env.room, deliver, &fo);
    gw_buf_unref(fo.b);
}

/* After a join's history: the live messages that follow it, each once, in stream order. */
typedef struct gap_fill {
    gw_session *s;
    char cursor[CHAT_MSGID_LEN + 1]; /* the last id sent */
} gap_fill;

static void fill_one(const char *id, gw_buf *b, void *arg)
{
    gap_fill *g = arg;
    if (strcmp(id, g->cursor) <= 0)
        return;
    send_buf(g->s, b);
    snprintf(g->cursor, sizeof(g->cursor), "%s", id);
}

void gw_session_on_history(gw_store_result *r, void *arg)
{
    (void)arg;
    gw_pending_reply *reply = r->opaque;
    gw_session *s = reply->h->s;
    if (!s || s->state == GW_S_CLOSING)
        goto out;
    if (r->kind == GW_Q_HISTORY) {
        if (r->err)
            send_error(s, GW_ERR_UNAVAILABLE, "history is unavailable; try again", reply->cid);
        else
            send_new(s, gw_out_history(r->room, r->msgs, r->n));
        goto out;
    }
    if (r->kind == GW_Q_REJOIN) {
        if (!gw_rooms_is_member(s->ctx->rooms, r->room, s))
            goto out; /* left meanwhile */
        if (r->err)
            send_error(s, GW_ERR_UNAVAILABLE, "history is unavailable; you are still joined",
                       reply->cid);
        else
            send_new(s, gw_out_joined(r->room, r->msgs, r->n));
        goto out;
    }
    gw_pending_join *p = pending_find(s, r->room);
    if (!p)
        goto out; /* left meanwhile */
    if (r->err) {
        pending_remove(s, p);
        gw_rooms_leave(s->ctx->rooms, r->room, s);
        send_error(s, GW_ERR_UNAVAILABLE, "history is unavailable, so the join failed; try again",
                   reply->cid);
        goto out;
    }
    send_new(s, gw_out_joined(r->room, r->msgs, r->n));
    /* MongoDB lags Kafka: what this gateway fanned out since the stored tail comes from the
     * recent ring, then what arrived while the query ran; ids increase along a room's stream,
     * so the cursor skips what was already sent */
    gap_fill g = {s, ""};
    if (r->n)
        snprintf(g.cursor, sizeof(g.cursor), "%s", r->msgs[r->n - 1].id);
    if (s->ctx->recent)
        gw_recent_after(s->ctx->recent, r->room, g.cursor, fill_one, &g);
    for (size_t i = 0; i < p->n; i++)
        fill_one(p->ids[i], p->bufs[i], &g);
    pending_remove(s, p);
out:
    reply_free(reply);
}
