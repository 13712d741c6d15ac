/* gw_api.h: the server API (docs/protocol.md, "Server API"): HTTP endpoints on the gateway for
 * an application's backend, authenticated by a bearer token with "role":"server":
 *   POST /api/v1/publish {"room","text","from"?,"cid"?} -> {"id"} once Kafka holds it;
 *   GET  /api/v1/rooms/<room>/history?before=&after=&limit= -> {"room","messages":[...]}.
 * A request's input is validated as a client frame (gw_frame_parse) and handed to the session
 * policy (gw_sessions_publish, gw_sessions_history), which answers later with the frame a
 * session would get; this module turns that frame into the HTTP answer. gw_server.c feeds it
 * libwebsockets events and writes what it answers. Loop thread only. */
#ifndef GW_API_H
#define GW_API_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "gw_ctx.h"

#define GW_API_PREFIX "/api/"

/* A request waiting for its body or its answer; owned by this module, remembered by the
 * connection (*slot, set NULL when the request is over). */
typedef struct gw_api_req gw_api_req;

/* Writes an HTTP answer on wsi: status, a JSON body of len bytes (copied); close: the
 * connection closes once it is written (the request body was not read). Returns 0 or -1. */
typedef int (*gw_api_respond_fn)(struct lws *wsi, unsigned status, const char *json, size_t len,
                                 bool close);

/* A request under GW_API_PREFIX whose headers were read (LWS_CALLBACK_HTTP). Answers at once
 * (bad path, method, token, input) or sets *slot to the request waiting for its body or its
 * answer. Returns 0, or -1 to close the connection. */
int gw_api_request(gw_ctx *ctx, struct lws *wsi, gw_api_req **slot, gw_api_respond_fn respond);
/* A chunk of the request body (LWS_CALLBACK_HTTP_BODY); bounded by CHAT_MAX_FRAME. */
int gw_api_body(gw_api_req *req, const void *in, size_t len);
/* The body is complete (LWS_CALLBACK_HTTP_BODY_COMPLETION): the request goes on. */
int gw_api_body_done(gw_api_req *req);
/* The connection closed: the request is dropped (its answer, if it comes, goes nowhere). */
void gw_api_closed(gw_api_req **slot);
/* Requests that may be under way at once (ctx->api_pending): half of CHAT_MAX_HANDSHAKES, at
 * least 1; past it a request is answered 503 at once. */
size_t gw_api_max_pending(const gw_ctx *ctx);

#endif
