/* gw_session.h: one WebSocket client session (protocols v1 and v2): authentication, frame
 * dispatch, its cursors into the room logs and its bounded reply queue, and what arrives later
 * (Kafka acks, fan-out records, MongoDB results). gw_server.c feeds it libwebsockets events.
 * Loop thread only. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_ctx.h"
#include "gw_kafka.h"
#include "gw_store.h"

/* A session's memory is libwebsockets' per-session data. id is NULL when the client will
 * authenticate with its first frame (the auth timer starts), else the identity checked at
 * the upgrade. Returns 0 or -1 (close the connection). */
int gw_session_open(gw_ctx *ctx, gw_session *s, struct lws *wsi, const gw_identity *id);
/* The connection is gone: leave every room, drop queued frames, detach pending replies. */
void gw_session_closed(gw_session *s);
/* A chunk of a received message. Returns 0, or -1 to close now (close reason set). */
int gw_session_receive(gw_session *s, const void *in, size_t len, bool first, bool final,
                       bool binary);
/* The socket can take more. Returns 0, or -1 to close now. */
int gw_session_writeable(gw_session *s);
/* Closes every session with 1001 (shutdown). */
void gw_sessions_shutdown(gw_ctx *ctx);

/* The state all sessions share (the room logs, the in-flight send table): init once Kafka
 * knows the partitions and where fan-out starts in each, timers once the lws context exists,
 * free after the loop. gw_sessions_init returns 0 or -ENOMEM. */
int gw_sessions_init(gw_ctx *ctx);
void gw_sessions_start_timers(gw_ctx *ctx);
void gw_sessions_free(gw_ctx *ctx);
/* Moves parked joins on once fan-out has read what they wait for: call after fan-out and on
 * every wake-up. */
void gw_sessions_tick(gw_ctx *ctx);

/* Callbacks for gw_kafka and gw_store; arg is the gw_ctx. */
void gw_session_on_ack(void *opaque, const char *id, const char *errstr, void *arg);
void gw_session_on_record(const chat_message *m, int32_t partition, int64_t offset, void *arg);
void gw_session_on_history(gw_store_result *r, void *arg);

#endif
