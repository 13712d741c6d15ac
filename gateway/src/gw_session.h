/* gw_session.h: one WebSocket client session (protocols v1 and v2): authentication, frame
 * dispatch, its cursors into the room logs and its bounded reply queue, and what arrives later
 * (Kafka acks, fan-out records, MongoDB results). gw_server.c feeds it libwebsockets events.
 * Loop thread only. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_ctx.h"
#include "chat_event.h"
#include "gw_kafka.h"
#include "gw_store.h"

/* What a session reaches outside itself, so that its policy can be unit-tested and fuzzed
 * without a server (tests/unit/test_gw_session.c, tests/fuzz/fuzz_session.c): its connection
 * (conn is what gw_session_open was given), its auth timer, and the cluster (arg is the ctx's
 * ops_arg). gw_server.c implements them with libwebsockets, Kafka and the store. */
struct gw_session_ops {
    void (*want_write)(void *conn); /* a writeable callback soon */
    /* whole WebSocket frames (gw_buf_frame), several at once: 0 when all were taken (sent or
     * buffered by the connection), -1 when the connection failed */
    int (*write)(void *conn, const unsigned char *p, size_t len);
    bool (*choked)(void *conn); /* the socket takes no more for now */
    /* whether write may be called now, outside a writeable callback: nothing of an earlier
     * write is still waiting in the connection's own buffer and no close has begun (no system
     * call: fan-out asks it for every woken member) */
    bool (*writable_now)(void *conn);
    void (*close_reason)(void *conn, int code, const char *reason); /* of the close frame */
    void (*close_within)(void *conn, int seconds);  /* hang up then even if never writeable */
    void (*auth_timer)(gw_session *s, int seconds); /* gw_session_auth_expired after; 0: off */
    int (*produce)(void *arg, const chat_envelope *e, void *opaque, char *err, size_t errlen);
    int32_t (*partition_of)(void *arg, const char *room);
    uint64_t (*sync_begin)(void *arg, int32_t p); /* as gw_kafka_sync_begin */
    bool (*sync_done)(void *arg, int32_t p, uint64_t ticket, int64_t *end);
    const char *(*epoch)(void *arg);
    /* gw_store_history for owner (the session's handle), and gw_store_cancel of its reads */
    int (*store_read)(void *arg, const gw_store_query *q, const void *owner, void *opaque);
    void (*cancel_reads)(void *arg, const void *owner);
    void (*arm)(void *arg, int ms); /* call gw_sessions_wake_due once, ms from now */
    /* typing and read state (gw_typing.c, gw_reads.c): publish a cluster event
     * (gw_events_publish), and queue a store job (gw_store_job). NULL: not available. */
    int (*publish)(void *arg, chat_event *e, char *err, size_t errlen);
    int (*store_job)(void *arg, gw_store_run_fn run, void *job, int kind, const void *owner,
                     size_t max_per_owner, void *opaque);
};

/* A session's memory is libwebsockets' per-session data. id is NULL when the client will
 * authenticate with its first frame (the auth timer starts), else the identity checked at
 * the upgrade: the session takes what it owns (its rooms claim) in every case, leaving *id
 * owning nothing. Returns 0 or -1 (close the connection). */
int gw_session_open(gw_ctx *ctx, gw_session *s, void *conn, gw_identity *id);
/* The auth timer fired. */
void gw_session_auth_expired(gw_session *s);
/* The connection is gone: leave every room, drop queued frames, detach pending replies. */
void gw_session_closed(gw_session *s);
/* A chunk of a received message. Returns 0, or -1 to close now (close reason set). */
int gw_session_receive(gw_session *s, const void *in, size_t len, bool first, bool final,
                       bool binary);
/* The client sent a close frame, which libwebsockets answers: the session writes nothing more. */
void gw_session_peer_closing(gw_session *s);
/* The socket can take more. Returns 0, or -1 to close now. */
int gw_session_writeable(gw_session *s);
/* Closes every session with 1001 (shutdown) at once, dropping what is queued. */
void gw_sessions_shutdown(gw_ctx *ctx);
/* Drain: every session stops taking frames, writes what it is owed (queued replies, room
 * frames up to the log's end) and then closes with 1001; a client that does not take it all is
 * cut after close_within_s (ops->close_within). */
void gw_sessions_drain(gw_ctx *ctx, int close_within_s);

/* The state all sessions share (the room logs, the in-flight send table, the reply queue
 * bounds and frame rate from ctx->cfg): init once the
 * partition count is known (then gw_log_cover each partition where fan-out starts), timers
 * once the lws context exists, free after the loop. gw_sessions_init returns 0, -EINVAL (a
 * reply queue bound below 1) or -ENOMEM. */
int gw_sessions_init(gw_ctx *ctx, int32_t partitions);
void gw_sessions_start_timers(gw_ctx *ctx);
void gw_sessions_free(gw_ctx *ctx);
/* Moves parked joins on once fan-out has read what they wait for: call after fan-out and on
 * every wake-up. */
void gw_sessions_tick(gw_ctx *ctx);
/* Wakes the members of rooms whose wake CHAT_COALESCE_MS deferred (ops->arm's timer), and
 * writes to them (gw_sessions_flush). */
void gw_sessions_wake_due(gw_ctx *ctx);
/* Answers the acks that waited for this batch of records (gw_session_on_ack), then writes to
 * the sessions that fan-out (gw_session_on_record) gave frames since the last call:
 * at once where ops->writable_now says the connection may take them (try-write-first: no
 * writeable callback, so no poll-set change and no wake-up per delivery), else at its next
 * writeable callback. Call after a batch of records, so that what the batch brought a member
 * goes out in one write. */
void gw_sessions_flush(gw_ctx *ctx);

/* For the server API (gw_api.c): h is the request's handle (h->s NULL, h->answer set, owned by
 * the request, which also owns the store reads of h: ops->cancel_reads when it goes away); f a
 * send or history frame gw_frame_parse accepted, access already checked. The answer reaches
 * h->answer as the frame a session would get: ack (publish: once Kafka holds it; a cid retry
 * gets the original id), history, or error. */
/* Closes every connection of user on this gateway with 4004 (the server API's kick, and the
 * kick events of other gateways). Returns how many. */
size_t gw_sessions_kick(gw_ctx *ctx, const char *user);
void gw_sessions_publish(gw_ctx *ctx, gw_handle *h, const gw_frame *f, const char *from);
void gw_sessions_history(gw_ctx *ctx, gw_handle *h, const gw_frame *f);
/* For the modules that add frames beside the session's own (gw_typing, gw_reads): queue a
 * reply (a new reference is taken on b; a full queue closes the session with 4008; NULL b
 * closes it with 1011), answer an error, ask whether the session joined room. */
void gw_session_push(gw_session *s, gw_buf *b);
void gw_session_error(gw_session *s, const char *code, const char *message, const char *cid);
bool gw_session_in_room(gw_session *s, const char *room);
/* The session's sub of room, or NULL. */
gw_sub *gw_session_sub(gw_session *s, const char *room);

/* Callbacks for gw_kafka and gw_store; arg is the gw_ctx. */
void gw_session_on_ack(void *opaque, const char *id, const char *errstr, void *arg);
void gw_session_on_record(const chat_message *m, int32_t partition, int64_t offset, void *arg);
void gw_session_on_history(gw_store_result *r, void *arg);
/* gw_presence's deliver: queues frame to the room's local members that joined it with
 * "presence":true (arg is the gw_ctx). */
void gw_sessions_presence_frame(void *arg, const char *room, gw_buf *frame);
/* An event of another gateway (gw_events): typing or read state. */
void gw_session_on_event(const chat_event *e, void *arg);

#endif
