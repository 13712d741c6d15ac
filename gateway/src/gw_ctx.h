/* gw_ctx.h: the gateway's state, in one context struct passed everywhere (the libwebsockets
 * context's user pointer points at it), and the per-connection session.
 * Everything here is owned and touched by the loop thread only, except where a field says
 * otherwise. */
#ifndef GW_CTX_H
#define GW_CTX_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "chat_msgid.h"
#include "gw_auth.h"
#include "gw_config.h"
#include "gw_frame.h"
#include "gw_rate.h"
#include "gw_rooms.h"
#include "gw_sendq.h"

typedef struct gw_kafka gw_kafka;
typedef struct gw_recent gw_recent;
typedef struct gw_store gw_store;
typedef struct gw_session gw_session;

/* A weak handle on a session, for replies that arrive later (Kafka delivery reports, MongoDB
 * results): the session sets s = NULL when it closes, and the last holder frees the handle. */
typedef struct gw_handle {
    gw_session *s;
    unsigned refs;
} gw_handle;

gw_handle *gw_handle_ref(gw_handle *h);
void gw_handle_unref(gw_handle *h);

/* Messages that arrive for a room while its join waits for history; flushed after joined. */
typedef struct gw_pending_join {
    struct gw_pending_join *next;
    char room[CHAT_ROOM_MAX + 1];
    size_t n, cap;
    gw_buf **bufs;
    char (*ids)[CHAT_MSGID_LEN + 1];
} gw_pending_join;

enum gw_session_state { GW_S_AUTH, GW_S_READY, GW_S_CLOSING };

struct gw_session {
    struct gw_ctx *ctx;
    struct lws *wsi;
    gw_handle *handle;
    gw_session *prev, *next; /* ctx->sessions */
    enum gw_session_state state;
    gw_identity id;
    gw_sendq q;
    gw_rate rate;
    lws_sorted_usec_list_t auth_sul;
    char *rx;         /* reassembly of a fragmented frame; NULL when not fragmented */
    size_t rx_len, rx_cap;
    gw_pending_join *pending;
    int close_code;   /* != 0: close with this code at the next writeable */
    char close_reason[64];
};

typedef struct gw_stats {
    uint64_t connections, sessions_open, frames_in, messages_out, produced, acked,
        produce_failed, fanout_records, dropped_slow;
} gw_stats;

typedef struct gw_ctx {
    gw_settings cfg;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    gw_auth *auth;
    gw_rooms *rooms;
    gw_recent *recent; /* NULL when CHAT_RECENT_MESSAGES is 0 */
    gw_kafka *kafka;
    gw_store *store;
    gw_frame_limits limits;
    gw_session *sessions; /* every open WebSocket session */
    gw_stats stats;
    lws_sorted_usec_list_t stats_sul;
    lws_sorted_usec_list_t kafka_sul; /* continue draining the fan-out consumer */
    lws_retry_bo_t retry;             /* ping and idle policy; lws keeps a pointer */
    struct lws_http_mount mounts[5];  /* the web root and the dynamic endpoints */
    volatile int stopping;
} gw_ctx;

/* Monotonic milliseconds. */
int64_t gw_now_ms(void);
/* Wall clock milliseconds since the epoch. */
int64_t gw_wall_ms(void);

#endif
