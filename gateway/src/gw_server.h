/* gw_server.h: the libwebsockets side of the gateway: the listening vhost, the WebSocket
 * protocol callback that drives gw_session, the HTTP endpoints (/healthz, /readyz,
 * /dev/token, the static web client with its security headers), and the Kafka and worker
 * wake-ups adopted into the loop; TLS on CHAT_LISTEN when CHAT_TLS_CERT/KEY are set; the
 * JWKS file watch (CHAT_JWT_JWKS: its inode, size and time looked at every second, read again
 * when they change or on SIGHUP).
 * gw_server_start/run/free from main; gw_server_wake from any thread. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_ctx.h"

/* Creates the context and vhost and adopts the Kafka descriptors (ctx->kafka, ctx->store,
 * ctx->auth and ctx->rooms must be set). Returns 0 or CHAT_EINVAL with err. */
int gw_server_start(gw_ctx *ctx, char *err, size_t errlen);
/* Serves until ctx->stopping is set, then closes every session with 1001 and returns after a
 * short drain. */
void gw_server_run(gw_ctx *ctx);
void gw_server_free(gw_ctx *ctx);
/* Wakes the loop (worker results ready, or shutdown). Any thread, async-signal-safe enough
 * for a signal handler (it writes to a pipe). arg is the gw_ctx. */
void gw_server_wake(void *arg);
/* Reads the JWKS file again if it changed (always when force) and logs the outcome; the old
 * keys stay in force when the file is bad. Loop thread (SIGHUP sets ctx->reload and wakes the
 * loop, which calls this). */
void gw_server_reload_keys(gw_ctx *ctx, bool force);

#endif
