/* gw_ctx.h: the gateway's state, in one context struct passed everywhere (the libwebsockets
 * context's user pointer points at it), and the per-connection session.
 * Everything here is owned and touched by the loop thread only, except where a field says
 * otherwise. */
#ifndef GW_CTX_H
#define GW_CTX_H

#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "chat_metrics.h"
#include "chat_msgid.h"
#include "gw_auth.h"
#include "gw_config.h"
#include "gw_frame.h"
#include "gw_log.h"
#include "gw_rate.h"
#include "gw_rooms.h"
#include "gw_sendq.h"
#include "gw_throttle.h"
#include "gw_users.h"

struct ev_loop;
typedef struct gw_kafka gw_kafka;
typedef struct gw_presence gw_presence;
typedef struct gw_presence_kafka gw_presence_kafka;
typedef struct gw_store gw_store;
typedef struct gw_session gw_session;
typedef struct gw_rx gw_rx;

/* A weak handle on a session, for replies that arrive later (Kafka delivery reports, MongoDB
 * results): the session sets s = NULL when it closes, and the last holder frees the handle. */
typedef struct gw_handle {
    gw_session *s;
    /* a server API request instead of a session (s NULL): its answer, the frame a session
     * would get (ack, history or error; NULL when it could not be built), our reference; the
     * request sets answer NULL when it goes away first. The request is found from the handle
     * by the API itself (gw_api.c embeds the handle), so that a session's handle stays a
     * 32-byte malloc chunk. */
    void (*answer)(struct gw_handle *h, gw_buf *frame);
    unsigned refs;
} gw_handle;

gw_handle *gw_handle_ref(gw_handle *h);
void gw_handle_unref(gw_handle *h);
/* The session's handle (s->handle), made when first asked for: NULL on ENOMEM. The session
 * drops it again once it is the only holder (at its next writeable), so take a reference to keep
 * it. */
gw_handle *gw_session_handle(gw_session *s);

/* A session's position in one joined room: a cursor into the room log, not a queue. */
typedef struct gw_sub {
    gw_log_room *lr;         /* a reference on the room */
    uint64_t next;           /* rseq of the next frame to write */
    int64_t skip_to;         /* frames at or below this offset were in the joined history */
    uint32_t gen;            /* which join of this session made it (answers are matched to it) */
    bool live;               /* false while its joined answer waits for the store */
    bool presence;           /* joined with "presence":true: members and presence frames */
    struct gw_join_read *rd; /* while a join waits: the user's read state of the room */
    gw_rooms_link rl;        /* in ctx->rooms: the session is a member of the room */
} gw_sub;

enum gw_session_state { GW_S_AUTH, GW_S_READY, GW_S_CLOSING };

/* What a session keeps of its gw_identity: sub, name and the rooms claim in one malloc'd block
 * (sub and its NUL, name and its NUL, then a byte saying whether a claim follows and the packed
 * claim, gw_access.h), not gw_identity's two arrays of CHAT_USER_MAX + 1 bytes and a block of its
 * own for the claim that every idle connection would carry (docs/internals.md, "Memory per
 * connection"). */
typedef struct gw_session_id {
    char *sub; /* the block; NULL until authenticated */
    long long exp;
} gw_session_id;

/* The name in an authenticated session's id block: "" when the token has none. */
static inline const char *gw_session_id_name(const gw_session_id *sid)
{
    return sid->sub + strlen(sid->sub) + 1;
}

/* The packed rooms claim in an authenticated session's id block; NULL when the token has none. */
static inline const char *gw_session_id_rooms(const gw_session_id *sid)
{
    const char *name = gw_session_id_name(sid);
    const char *claim = name + strlen(name) + 1;
    return claim[0] ? claim + 1 : NULL;
}

/* One per connection, in the lws per-session data (gw_server.c's gw_pss): the fields are ordered
 * and sized so that the whole is a 160-byte malloc chunk (docs/internals.md, "Memory per
 * connection"); the bounds and rates all sessions share are in gw_ctx. */
struct gw_session {
    struct gw_ctx *ctx;
    void *conn; /* the connection, for ctx->ops (libwebsockets: the wsi) */
    /* a weak handle for replies that arrive later, made when the first one is asked for
     * (gw_session.c gw_session_handle) and dropped once nothing else holds it; NULL meanwhile */
    gw_handle *handle;
    gw_session *prev, *next; /* ctx->sessions */
    gw_user_link ulink;      /* in ctx->users while authenticated */
    gw_session_id id;
    gw_sendq q;   /* replies (acks, joined, errors...): written before room frames */
    gw_rate rate; /* frames from the client, within ctx->frame_rate */
    /* one heap block, whichever the session is at: while it reads, the reassembly of a
     * fragmented message (NULL when none); once closing (fail_session, drain, a close frame
     * from the client, a failed write: each frees the reassembly, and nothing is reassembled
     * after), the close frame's reason (NULL: none, or no memory for one). The writeable callback
     * hands the reason to lws, not before: lws keeps a close reason in the buffer a ping's payload
     * also goes to, so an earlier ping would overwrite it. */
    union {
        struct gw_rx *rx;
        char *close_reason;
    };
    gw_sub *subs; /* one per joined room */
    uint32_t gen; /* joins made so far */
    uint16_t nsubs, capsubs;
    uint16_t reads;       /* history store reads this session waits for */
    int16_t close_code;   /* != 0: close with this code at the next writeable */
    uint16_t close_after; /* != 0: close with this code once everything owed is written (drain) */
    uint8_t state;        /* enum gw_session_state */
    bool dirty;           /* in ctx->dirty: fan-out gave it frames to write (gw_sessions_flush) */
    /* the auth and expiry timer is the wsi's own (ops->auth_timer: lws_set_timer_usecs) */
};

/* The gateway's counters, served at /metrics (gw_metrics.c renders them; adding one is a field
 * here, its increment and one row of gw_metrics.c's table). Loop thread only. */
typedef struct gw_stats {
    uint64_t connections, sessions_open, frames_in, messages_out, writes, produced, acked,
        produce_failed, fanout_records, dropped_slow, joins, joins_from_log, store_reads,
        store_waiters, resumes, resumes_recovered, retries_deduplicated, inexact_reads,
        dm_joins;            /* implicit joins of direct rooms (gw_session.c dm_reach) */
    uint64_t deliveries;     /* room message frames written to members */
    uint64_t writes_direct;  /* fan-out writes made at once, outside a writeable callback */
    uint64_t copies_dropped; /* records fan-out dropped as copies of an earlier one (same cid) */
    uint64_t bytes_out;      /* bytes of WebSocket frames written to clients */
    uint64_t typing_forwarded, typing_throttled; /* typing frames of local clients */
    uint64_t reads_moved, reads_unmoved;         /* read frames stored: moved forward or not */
    chat_label_counts refused;                   /* error replies, by error code */
    chat_label_counts closes;                    /* closes the gateway decided, by close code */
    chat_label_counts peer_closes;               /* close frames from clients, by their code */
    chat_label_counts upgrades_refused;          /* WebSocket upgrades answered with an error */
    chat_hist ack_latency;        /* send frame received -> its ack queued, seconds */
    chat_hist store_read_latency; /* one MongoDB history read in a worker, seconds */
} gw_stats;

typedef struct gw_inflight gw_inflight;
typedef struct gw_session_ops gw_session_ops;
typedef struct gw_pending_reply gw_pending_reply;

typedef struct gw_ctx {
    gw_settings cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct ev_loop *evloop; /* CHAT_EVENT_LOOP=epoll: libev's loop, which lws drives; else NULL */
    void *foreign_loops[1]; /* what lws is given: evloop */
    gw_auth *auth;
    gw_rooms *rooms;
    gw_users users;            /* the authenticated sessions of each user (gw_sessions_init) */
    gw_throttle typing;        /* on:true forwarded per (user, room) (gw_typing.h) */
    struct gw_events *events;  /* the events topic (gw_events.h); NULL in unit tests */
    const gw_session_ops *ops; /* what sessions reach outside themselves (gw_session.h) */
    void *ops_arg;
    gw_log *log;          /* the room logs; made once the partition count is known */
    unsigned char *batch; /* frames gathered for one write to one connection */
    size_t batch_cap;
    gw_session **dirty; /* sessions fan-out woke since the last gw_sessions_flush */
    size_t ndirty, capdirty;
    gw_inflight **inflight; /* sends produced and not yet in the log, by (room, from, cid) */
    gw_pending_reply *parked, *parked_tail; /* joins waiting for fan-out to catch up */
    struct gw_room_state *wakes;            /* rooms whose members wait for the next tick */
    size_t ninflight;
    uint64_t inflight_key[2];
    gw_kafka *kafka;
    gw_store *store;
    gw_presence *presence;             /* the cluster's presence; NULL: not tracked */
    gw_presence_kafka *presence_kafka; /* carries it on the presence topic */
    gw_frame_limits limits;
    gw_sendq_limits sendq_limits; /* every session's reply queue: CHAT_SEND_QUEUE(_BYTES) */
    gw_rate_spec frame_rate;      /* every session's frame rate: CHAT_RATE, CHAT_RATE_BURST */
    gw_session *sessions;         /* every open WebSocket session */
    size_t api_pending;           /* server API requests under way (gw_api.c) */
    gw_stats stats;
    lws_sorted_usec_list_t stats_sul;
    lws_sorted_usec_list_t kafka_sul;    /* continue draining the fan-out consumer */
    lws_sorted_usec_list_t events_sul;   /* continue draining the events consumer */
    lws_sorted_usec_list_t inflight_sul; /* expires settled sends the log never showed */
    /* acks of sends with a cid that wait until fan-out has read their record (gw_session.c,
     * "acks wait for fan-out"), oldest first, and the timer that bounds the wait */
    gw_inflight *acks_waiting, *acks_waiting_tail;
    lws_sorted_usec_list_t ack_sul;
    lws_sorted_usec_list_t wake_sul; /* CHAT_COALESCE_MS: the next deferred wake */
    lws_sorted_usec_list_t jwks_sul; /* CHAT_JWT_JWKS: looks for a changed file */
    lws_retry_bo_t retry;            /* ping and idle policy; lws keeps a pointer */
    struct lws_http_mount mounts[7]; /* the web root and the dynamic endpoints */
    volatile sig_atomic_t stopping;  /* set by the signal handler */
    bool draining; /* after stopping: new upgrades refused, /healthz and /readyz 503 */
    volatile sig_atomic_t reload; /* SIGHUP: read the JWKS again */
} gw_ctx;

/* Monotonic milliseconds, and microseconds. */
int64_t gw_now_ms(void);
int64_t gw_now_us(void);
/* Wall clock milliseconds since the epoch. */
int64_t gw_wall_ms(void);

#endif
