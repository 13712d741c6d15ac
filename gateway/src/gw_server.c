/* gw_server.c: libwebsockets glue (see gw_server.h). One protocol, "chat", handles both the
 * HTTP endpoints and the WebSocket sessions at /ws; a second, "chat-wake", receives the
 * readable events of the Kafka queue descriptors adopted as raw files. */
#define _DEFAULT_SOURCE /* gethostname, strncasecmp, strdup, pipe, clock_gettime */
#include "gw_server.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ev.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_validate.h"
#include "gw_api.h"
#include "gw_events.h"
#include "gw_kafka.h"
#include "gw_metrics.h"
#include "gw_presence_kafka.h"
#include "gw_reads.h"
#include "gw_session.h"
#include "gw_store.h"
#include "gw_token.h"

_Static_assert(GW_BUF_PRE >= LWS_PRE, "gw_buf headroom must cover LWS_PRE");

#define GW_FANOUT_BATCH 512 /* records handed out per loop turn before yielding */
#define GW_HTTP_BODY_MAX 8192
#define GW_HTTP_HEADER_MAX 12288 /* lws max_http_header_data: a request's whole header */
#define GW_JWKS_POLL_MS 1000     /* how often the JWKS file's inode, size and time are looked at */

/* Per-connection data: a WebSocket session, or the pending response of an HTTP request, never
 * both: lws allocates it afresh at the upgrade (zeroed), and a WebSocket connection gets only
 * the ws role's callbacks (LWS_CALLBACK_CLOSED, not LWS_CALLBACK_CLOSED_HTTP), so the two share
 * the memory every idle connection carries. */
typedef struct gw_pss {
    union {
        gw_session s;
        struct {
            unsigned http_status;
            const char *http_type;
            size_t http_len;
            char *http_body;
            gw_api_req *api;    /* a server API request waiting for its body or answer */
            bool http_deferred; /* the headers are written at the writeable callback too */
            bool http_close;    /* close once the answer is written */
            bool http_api;      /* the request is the server API's (its body goes to gw_api) */
        };
    };
} gw_pss;

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static const struct lws_protocol_vhost_options hdr_referrer = {NULL, NULL,
                                                               "referrer-policy:", "no-referrer"};
static const struct lws_protocol_vhost_options hdr_nosniff = {&hdr_referrer, NULL,
                                                              "x-content-type-options:", "nosniff"};
static const struct lws_protocol_vhost_options hdr_csp = {&hdr_nosniff, NULL,
                                                          "content-security-policy:", csp};

static int64_t ts_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gw_now_ms(void)
{
    return ts_ms(CLOCK_MONOTONIC);
}
int64_t gw_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
int64_t gw_wall_ms(void)
{
    return ts_ms(CLOCK_REALTIME);
}

static gw_ctx *ctx_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* --- authentication at the upgrade -------------------------------------------------------- */

/* ?access_token= from the query, copied into buf. lws 4.1.6 keeps the query as one fragment of
 * WSI_TOKEN_HTTP_URI_ARGS per argument (split at '&', already %-decoded), and its
 * lws_get_urlarg_by_name stops at the first argument that does not fit the caller's buffer, so
 * a long argument before the token hid it. Every fragment is read here into a buffer as large
 * as the whole request header can be (GW_HTTP_HEADER_MAX), so none is skipped; a token longer
 * than len is malformed (-1), not absent. Returns 1, 0 (none) or -1. */
static int query_token(struct lws *wsi, char *buf, int len)
{
    static const char name[] = "access_token=";
    const size_t nlen = sizeof(name) - 1;
    char *arg = malloc(GW_HTTP_HEADER_MAX + 1);
    if (!arg)
        return -1;
    int rc = 0, n;
    for (int i = 0; rc == 0 && (n = lws_hdr_copy_fragment(wsi, arg, GW_HTTP_HEADER_MAX + 1,
                                                          WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0;
         i++) {
        if ((size_t)n < nlen || memcmp(arg, name, nlen) != 0)
            continue;
        if ((size_t)n - nlen + 1 > (size_t)len || n == (int)nlen)
            rc = -1;
        else {
            memcpy(buf, arg + nlen, (size_t)n - nlen + 1);
            rc = 1;
        }
    }
    free(arg);
    return rc;
}

/* The token from "Authorization: Bearer" or ?access_token=, copied into buf.
 * Returns 1 when one was given, 0 when none, -1 when it was malformed or too long. */
static int upgrade_token(struct lws *wsi, char *buf, int len)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 0) {
        if (n >= len || lws_hdr_copy(wsi, buf, len, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
            return -1;
        if (strncasecmp(buf, "Bearer ", 7) != 0)
            return -1;
        memmove(buf, buf + 7, strlen(buf + 7) + 1);
        return buf[0] ? 1 : -1;
    }
    return query_token(wsi, buf, len);
}

/* 0: no token (first-frame auth), 1: valid (*id filled), -1: refused (why filled). */
static int upgrade_auth(gw_ctx *ctx, struct lws *wsi, gw_identity *id, char *why, size_t wlen)
{
    char token[8192];
    int t = upgrade_token(wsi, token, sizeof(token));
    if (t == 0)
        return 0;
    if (t < 0) {
        chat_errf(why, wlen, "malformed bearer token");
        return -1;
    }
    return gw_auth_verify(ctx->auth, token, time(NULL), id, why, wlen) == 0 ? 1 : -1;
}

/* Answers an upgrade request with status (e.g. "401 Unauthorized"), the extra header lines
 * extra (each ending in \r\n) and a JSON body {"error":error,"message":why}. Written by hand
 * because lws 4.1 writes an "HTTP/1.0" status line at this stage, which WebSocket clients
 * refuse to read. Returns 1, what LWS_CALLBACK_HTTP_CONFIRM_UPGRADE wants after a response was
 * sent. */
static int refuse_upgrade(gw_ctx *ctx, struct lws *wsi, const char *status, const char *extra,
                          const char *error, const char *why)
{
    chat_label_counts_add(&ctx->stats.upgrades_refused, error, 1);
    char safe[160], resp[LWS_PRE + 1024];
    size_t j = 0;
    for (size_t i = 0; why[i] && j + 1 < sizeof(safe); i++)
        if (why[i] != '"' && why[i] != '\\' && (unsigned char)why[i] >= 0x20)
            safe[j++] = why[i];
    safe[j] = '\0';
    char body[256];
    int blen = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"%s\"}", error, safe);
    char *out = resp + LWS_PRE;
    size_t cap = sizeof(resp) - LWS_PRE;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %s\r\n"
                     "content-type: application/json\r\n"
                     "content-length: %d\r\n"
                     "%s"
                     "cache-control: no-store\r\n",
                     status, blen, extra);
    /* the same security headers lws adds to every other response (the vhost's list) */
    for (const struct lws_protocol_vhost_options *h = &hdr_csp; h && n > 0 && (size_t)n < cap;
         h = h->next)
        n += snprintf(out + n, cap - (size_t)n, "%s %s\r\n", h->name, h->value);
    if (n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "connection: close\r\n\r\n%s", body);
    if (n > 0 && (size_t)n < sizeof(resp) - LWS_PRE)
        lws_write(wsi, (unsigned char *)resp + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_HEADERS);
    return 1;
}

/* Whether the upgrade's Origin may open a WebSocket here. Browsers send Origin with every
 * WebSocket upgrade and scripts cannot forge it, so this keeps other sites' pages from using a
 * visitor's cookies or network position against the gateway; a request without Origin is not
 * a browser's and is allowed (its token is what counts). CHAT_ALLOWED_ORIGINS: "*" allows any,
 * a comma list allows those exactly (scheme://host[:port], case-insensitive); unset, only the
 * gateway's own origin: http or https and the Host the request was sent to, which is the
 * page's origin when the page came from this cluster (through HAProxy, Host is kept). */
static bool origin_allowed(gw_ctx *ctx, struct lws *wsi)
{
    char origin[256], host[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return true;
    if (n >= (int)sizeof(origin) || lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
        return false;
    const char *list = ctx->cfg.allowed_origins;
    if (list && *list) {
        if (strcmp(list, "*") == 0)
            return true;
        size_t olen = strlen(origin);
        for (const char *p = list; *p;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            while (len && *p == ' ')
                p++, len--;
            while (len && p[len - 1] == ' ')
                len--;
            if (len == olen && strncasecmp(p, origin, len) == 0)
                return true;
            p += end ? (size_t)(end - p) + 1 : strlen(p);
        }
        return false;
    }
    if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
        return false;
    const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                 : NULL;
    return rest && strcasecmp(rest, host) == 0;
}

/* Log lines that unauthenticated clients can cause (lws's own messages about bad requests,
 * refused upgrades) share one token bucket per gateway, so that a flood of bad requests cannot
 * fill the log; what was dropped is counted and reported as "N similar lines suppressed" with
 * the next line that passes, or by the stats tick. The bucket is a global because lws's log
 * callback (lws_set_log_level) has no user pointer. */
#define GW_UNTRUSTED_LOG_RATE 5   /* lines per second */
#define GW_UNTRUSTED_LOG_BURST 20 /* lines at once */
static gw_rate_spec untrusted_spec;
static gw_rate untrusted_bucket;
static unsigned long untrusted_suppressed;

static void report_suppressed(void)
{
    if (untrusted_suppressed)
        chat_log(CHAT_LOG_WARN, "%lu similar lines suppressed (bad requests from clients)",
                 untrusted_suppressed);
    untrusted_suppressed = 0;
}

static void log_untrusted(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_untrusted(int level, const char *fmt, ...)
{
    if (!gw_rate_take(&untrusted_bucket, &untrusted_spec, gw_now_ms())) {
        untrusted_suppressed++;
        return;
    }
    report_suppressed();
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    chat_log(level, "%s", line);
}

/* --- HTTP endpoints ---------------------------------------------------------------------- */

static int http_respond(struct lws *wsi, gw_pss *pss, unsigned status, const char *type,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* pss->http_body holds len bytes after LWS_PRE: sends the headers (no-store) and has the body
 * written at the next writeable (http_writeable). Returns 0 or -1. */
static int http_send_headers(struct lws *wsi, gw_pss *pss, unsigned status, const char *type,
                             size_t len)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                                       *end = hdr + sizeof(hdr) - 1;
    pss->http_len = len;
    pss->http_status = status;
    pss->http_type = type;
    if (lws_add_http_common_headers(wsi, status, type, pss->http_len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_respond(struct lws *wsi, gw_pss *pss, unsigned status, const char *type,
                        const char *fmt, ...)
{
    free(pss->http_body);
    pss->http_body = malloc(LWS_PRE + GW_HTTP_BODY_MAX);
    if (!pss->http_body)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pss->http_body + LWS_PRE, GW_HTTP_BODY_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= GW_HTTP_BODY_MAX)
        return -1;
    return http_send_headers(wsi, pss, status, type, (size_t)n);
}

static int http_dev_token(gw_ctx *ctx, struct lws *wsi, gw_pss *pss)
{
    char user[64];
    if (!ctx->cfg.dev_tokens)
        return http_respond(wsi, pss, 404, "application/json",
                            "{\"error\":\"not found: development sign-in is off\"}");
    /* returns a pointer into user, just after "user=" */
    const char *u = lws_get_urlarg_by_name(wsi, "user=", user, sizeof(user));
    if (!u || !chat_valid_charset(u, strlen(u), 32, "._-"))
        return http_respond(wsi, pss, 400, "application/json",
                            "{\"error\":\"user must match [A-Za-z0-9._-]{1,32}\"}");
    gw_token_claims c = {.sub = u,
                         .name = u,
                         .issuer = ctx->cfg.jwt_issuer,
                         .audience = ctx->cfg.jwt_audience,
                         .ttl_s = 86400};
    char *tok = NULL, err[160];
    if (gw_token_mint(ctx->cfg.jwt_secret, &c, time(NULL), &tok, err, sizeof(err)) != 0) {
        chat_log(CHAT_LOG_ERROR, "dev token: %s", err);
        return http_respond(wsi, pss, 500, "application/json",
                            "{\"error\":\"cannot mint a token\"}");
    }
    chat_log_kv(CHAT_LOG_INFO, CHAT_LOG_FIELDS(CHAT_LOG_STR("user", u)),
                "development token issued for %s", u);
    int rc = http_respond(wsi, pss, 200, "application/json",
                          "{\"token\":\"%s\",\"user\":\"%s\",\"expires_in\":86400,"
                          "\"warning\":\"development sign-in: anyone can get a token for any "
                          "name; turn CHAT_DEV_TOKENS off in production\"}",
                          tok, u);
    free(tok);
    return rc;
}

/* Prometheus text format (version 0.0.4): gw_metrics.c renders the page. */
static int http_metrics(gw_ctx *ctx, struct lws *wsi, gw_pss *pss)
{
    char *page = NULL;
    size_t len = 0;
    int rc = gw_metrics_render(ctx, &page, &len);
    if (rc != 0) {
        chat_log(CHAT_LOG_ERROR, "/metrics: %s", rc == -E2BIG ? "page too large" : "no memory");
        return http_respond(wsi, pss, 500, "text/plain", "metrics unavailable\n");
    }
    free(pss->http_body);
    pss->http_body = malloc(LWS_PRE + len);
    if (!pss->http_body) {
        free(page);
        return -1;
    }
    memcpy(pss->http_body + LWS_PRE, page, len);
    free(page);
    return http_send_headers(wsi, pss, 200, "text/plain; version=0.0.4", len);
}

static int http_request(gw_ctx *ctx, struct lws *wsi, gw_pss *pss)
{
    char path[256];
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0)
        return http_respond(wsi, pss, 405, "application/json",
                            "{\"error\":\"method not allowed\"}");
    /* draining (SIGTERM): HAProxy's check (/healthz) and Kubernetes' readiness (/readyz) both
     * stop sending people here while the clients already here are flushed and closed */
    if (strcmp(path, "/healthz") == 0)
        return ctx->draining ? http_respond(wsi, pss, 503, "text/plain", "draining\n")
                             : http_respond(wsi, pss, 200, "text/plain", "ok\n");
    if (strcmp(path, "/readyz") == 0) {
        /* a store path that is backed up sends people elsewhere until it drains */
        bool k = gw_kafka_ready(ctx->kafka), m = gw_store_ready(ctx->store),
             w = gw_kafka_warm(ctx->kafka),
             busy = gw_store_queued(ctx->store) >= GW_STORE_QUEUE * 3 / 4,
             ok = k && m && w && !busy && !ctx->draining;
        return http_respond(wsi, pss, ok ? 200 : 503, "application/json",
                            "{\"status\":\"%s\",\"kafka\":\"%s\",\"mongo\":\"%s\","
                            "\"log\":\"%s\",\"node\":\"%s\",\"sessions\":%llu}",
                            ok              ? "ready"
                            : ctx->draining ? "draining"
                                            : "not ready",
                            k ? "ok" : "down",
                            !m     ? "down"
                            : busy ? "busy"
                                   : "ok",
                            w ? "ok" : "warming", ctx->cfg.node_id,
                            (unsigned long long)ctx->stats.sessions_open);
    }
    if (strcmp(path, "/dev/token") == 0)
        return http_dev_token(ctx, wsi, pss);
    if (strcmp(path, "/metrics") == 0)
        return http_metrics(ctx, wsi, pss);
    if (strcmp(path, "/ws") == 0)
        return http_respond(wsi, pss, 426, "application/json",
                            "{\"error\":\"upgrade to a WebSocket here\"}");
    return http_respond(wsi, pss, 404, "application/json", "{\"error\":\"not found\"}");
}

/* A server API answer (gw_api_respond_fn): kept whole, headers included, for the writeable
 * callback, as it may come from another connection's callback (a Kafka or store answer). */
static int api_respond(struct lws *wsi, unsigned status, const char *json, size_t len, bool close)
{
    gw_pss *pss = lws_wsi_user(wsi);
    free(pss->http_body);
    pss->http_body = malloc(LWS_PRE + len + 1);
    if (!pss->http_body)
        return -1;
    memcpy(pss->http_body + LWS_PRE, json, len);
    pss->http_len = len;
    pss->http_status = status;
    pss->http_type = "application/json";
    pss->http_deferred = true;
    pss->http_close = close;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_writeable(struct lws *wsi, gw_pss *pss)
{
    if (!pss->http_body)
        return 0;
    if (pss->http_deferred) {
        unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                                           *end = hdr + sizeof(hdr) - 1;
        pss->http_deferred = false;
        if (lws_add_http_common_headers(wsi, pss->http_status, pss->http_type, pss->http_len, &p,
                                        end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            (pss->http_close &&
             lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                         (const unsigned char *)"close", 5, &p, end)) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
    }
    int n = lws_write(wsi, (unsigned char *)pss->http_body + LWS_PRE, pss->http_len,
                      LWS_WRITE_HTTP_FINAL);
    free(pss->http_body);
    pss->http_body = NULL;
    if (n < (int)pss->http_len || pss->http_close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* --- what sessions reach outside themselves (gw_session_ops) ------------------------------ */

static void op_want_write(void *conn)
{
    lws_callback_on_writable(conn);
}

/* Whole WebSocket frames that the session framed itself (gw_buf_frame), several per call: lws
 * 4.1.6 sends LWS_WRITE_RAW bytes unchanged, and keeps what the socket does not take in its
 * own buffer (the connection is then choked until it drained, and lws writes its own control
 * frames only between our writes, never inside them). Any result >= 0 means lws owns all the
 * bytes. This needs no ws extensions on the vhost (none are configured) and no ws over h2 (the
 * gateway speaks HTTP/1.1 only). */
static int op_write(void *conn, const unsigned char *p, size_t len)
{
    return lws_write(conn, (unsigned char *)p, len, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

static bool op_choked(void *conn)
{
    return lws_send_pipe_choked(conn) != 0;
}

/* lws_partial_buffered: lws still holds bytes of an earlier write (it then has POLLOUT on and
 * calls back once they are out); a write now would only be appended to them. */
static bool op_writable_now(void *conn)
{
    return !lws_partial_buffered(conn);
}

static void op_close_reason(void *conn, int code, const char *reason)
{
    lws_close_reason(conn, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
}

static void op_close_within(void *conn, int seconds)
{
    lws_set_timeout(conn, PENDING_TIMEOUT_CLOSE_SEND, seconds);
}

/* The wsi's own timer (LWS_CALLBACK_TIMER), not a timer list entry in every session. Off
 * (seconds 0) only comes from gw_session_closed, as the wsi goes: lws removes the timer when it
 * frees the wsi, and nothing is done here, since lws 4.1.6's lws_set_timer_usecs does not
 * cancel on LWS_SET_TIMER_USEC_CANCEL (it schedules the timer at now - 1 us, so it would fire). */
static void op_auth_timer(gw_session *s, int seconds)
{
    if (seconds > 0)
        lws_set_timer_usecs(s->conn, (lws_usec_t)seconds * LWS_US_PER_SEC);
}

static int op_produce(void *arg, const chat_envelope *e, void *opaque, char *err, size_t errlen)
{
    return gw_kafka_produce(((gw_ctx *)arg)->kafka, e, opaque, err, errlen);
}

static int32_t op_partition_of(void *arg, const char *room)
{
    return gw_kafka_partition_of(((gw_ctx *)arg)->kafka, room);
}

static uint64_t op_sync_begin(void *arg, int32_t p)
{
    return gw_kafka_sync_begin(((gw_ctx *)arg)->kafka, p);
}

static bool op_sync_done(void *arg, int32_t p, uint64_t ticket, int64_t *end)
{
    return gw_kafka_sync_done(((gw_ctx *)arg)->kafka, p, ticket, end);
}

static const char *op_epoch(void *arg)
{
    return gw_kafka_epoch(((gw_ctx *)arg)->kafka);
}

static int op_store_read(void *arg, const gw_store_query *q, const void *owner, void *opaque)
{
    return gw_store_history(((gw_ctx *)arg)->store, q, owner, opaque);
}

static void op_cancel_reads(void *arg, const void *owner)
{
    gw_store_cancel(((gw_ctx *)arg)->store, owner);
}

static void wake_due(lws_sorted_usec_list_t *sul)
{
    gw_sessions_wake_due(lws_container_of(sul, gw_ctx, wake_sul));
}

static void op_arm(void *arg, int ms)
{
    gw_ctx *ctx = arg;
    lws_sul_schedule(ctx->lws, 0, &ctx->wake_sul, wake_due,
                     (lws_usec_t)(ms > 0 ? ms : 0) * LWS_US_PER_MS);
}

static int op_publish(void *arg, chat_event *e, char *err, size_t errlen)
{
    gw_ctx *ctx = arg;
    if (!ctx->events) {
        snprintf(err, errlen, "no events topic");
        return -EAGAIN;
    }
    return gw_events_publish(ctx->events, e, err, errlen);
}

static int op_store_job(void *arg, gw_store_run_fn run, void *job, int kind, const void *owner,
                        size_t max_per_owner, void *opaque)
{
    return gw_store_job(((gw_ctx *)arg)->store, run, job, kind, owner, max_per_owner, opaque);
}

static const gw_session_ops lws_session_ops = {
    .want_write = op_want_write,
    .write = op_write,
    .choked = op_choked,
    .writable_now = op_writable_now,
    .close_reason = op_close_reason,
    .close_within = op_close_within,
    .auth_timer = op_auth_timer,
    .produce = op_produce,
    .partition_of = op_partition_of,
    .sync_begin = op_sync_begin,
    .sync_done = op_sync_done,
    .epoch = op_epoch,
    .store_read = op_store_read,
    .cancel_reads = op_cancel_reads,
    .arm = op_arm,
    .publish = op_publish,
    .store_job = op_store_job,
};

/* --- the protocol callback --------------------------------------------------------------- */

static void on_store_result(gw_store_result *r, void *arg)
{
    gw_ctx *ctx = arg;
    if (r->err != -ECANCELED && r->kind < GW_READS_KIND_FIRST) /* history reads only */
        chat_hist_observe(&ctx->stats.store_read_latency, r->seconds);
    gw_session_on_history(r, arg);
}

static void drain_store(gw_ctx *ctx)
{
    if (ctx->store)
        gw_store_drain(ctx->store, on_store_result, ctx);
    if (ctx->log)
        gw_sessions_tick(ctx);
}

/* A close frame from the client; lws echoes in (its code and reason) after we return 0.
 * lws 4.1.6 already replaces the codes RFC 6455 7.4 forbids below 3000 (under 1000, 1004-1006,
 * 1015, 1016-2999; also 1012-1014) with 1002 in that buffer, but echoes codes of 5000 and above
 * unchanged: those are invalid too (7.4.2), so this guard rewrites them to 1002 the same way, in
 * the buffer lws echoes (rx_ubuf, ours to change until we return). */
static int peer_close(gw_ctx *ctx, void *in, size_t len)
{
    unsigned char *p = in;
    char code[16] = "none";
    if (len >= 2)
        snprintf(code, sizeof(code), "%d", (p[0] << 8) | p[1]);
    chat_label_counts_add(&ctx->stats.peer_closes, code, 1);
    if (len >= 2 && ((p[0] << 8) | p[1]) >= 5000) {
        p[0] = LWS_CLOSE_STATUS_PROTOCOL_ERR >> 8;
        p[1] = LWS_CLOSE_STATUS_PROTOCOL_ERR & 0xff;
    }
    return 0;
}

static int chat_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    gw_pss *pss = user;
    gw_ctx *ctx = ctx_of(wsi);
    gw_identity id;
    char why[160];

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        char path[64], version[8], upgrade[16];
        /* `in` (the Upgrade header) is never read here. lws 4.1.6 answers an Upgrade other than
         * websocket or h2c with 403, completes the transaction (its header table is freed or
         * reset) and still calls this with `in` pointing into that table: the use after free
         * of advisory NN-2025-0102 (fixed in lws 4.4). The header is read again instead, which
         * fails, or comes back empty, once the table is gone: then lws has answered already
         * and the connection is hung up without a second answer. */
        int ul = lws_hdr_copy(wsi, upgrade, sizeof(upgrade), WSI_TOKEN_UPGRADE);
        (void)in;
        if (ul <= 0)
            return -1;
        /* lws has already compared Upgrade case-insensitively with "websocket" or "h2c"
         * (RFC 6455 4.2.1: the token is case-insensitive); so does this check */
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0 ||
            strcmp(path, "/ws") != 0 || strcasecmp(upgrade, "websocket") != 0) {
            chat_label_counts_add(&ctx->stats.upgrades_refused, "not_found", 1);
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "WebSocket endpoint is /ws");
            return 1;
        }
        /* lws 4.1.6 accepts any Sec-WebSocket-Version, or none, and then speaks 13; RFC 6455
         * 4.2.2 wants 426 with the version the server speaks */
        if (lws_hdr_copy(wsi, version, sizeof(version), WSI_TOKEN_VERSION) < 0 ||
            strcmp(version, "13") != 0) {
            log_untrusted(CHAT_LOG_INFO, "upgrade refused with 426: Sec-WebSocket-Version not 13");
            return refuse_upgrade(ctx, wsi, "426 Upgrade Required", "sec-websocket-version: 13\r\n",
                                  "unsupported_version", "Sec-WebSocket-Version must be 13");
        }
        if (ctx->draining) {
            /* HAProxy retries a 503 on another gateway (retry-on in its config) */
            return refuse_upgrade(ctx, wsi, "503 Service Unavailable", "retry-after: 1\r\n",
                                  "going_away", "this gateway is shutting down; try another");
        }
        if (!origin_allowed(ctx, wsi)) {
            log_untrusted(CHAT_LOG_INFO, "upgrade refused with 403: Origin not allowed");
            return refuse_upgrade(ctx, wsi, "403 Forbidden", "", "forbidden_origin",
                                  "pages from this origin may not connect (CHAT_ALLOWED_ORIGINS)");
        }
        int a = upgrade_auth(ctx, wsi, &id, why, sizeof(why));
        if (a < 0) {
            log_untrusted(CHAT_LOG_INFO, "upgrade refused with 401: %s", why);
            return refuse_upgrade(ctx, wsi, "401 Unauthorized",
                                  "www-authenticate: Bearer error=\"invalid_token\"\r\n",
                                  "unauthorized", why);
        }
        if (a == 1) {
            /* the token is verified once: its identity rides on the wsi (its per-session
             * data does not survive the upgrade) until LWS_CALLBACK_ESTABLISHED takes it */
            gw_identity *keep = malloc(sizeof(*keep));
            if (!keep) {
                gw_identity_clear(&id);
                return -1;
            }
            *keep = id; /* keep owns id's claims now */
            lws_set_opaque_user_data(wsi, keep);
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        /* the identity checked at the upgrade, or none: the first frame must be auth */
        gw_identity *checked = lws_get_opaque_user_data(wsi);
        lws_set_opaque_user_data(wsi, NULL);
        int rc = gw_session_open(ctx, &pss->s, wsi, checked) != 0 ? -1 : 0;
        free(checked); /* the session took what it owned */
        return rc;
    }
    case LWS_CALLBACK_WSI_DESTROY:
        /* an upgrade confirmed but never established leaves its identity behind */
        if (lws_get_protocol(wsi) && lws_get_protocol(wsi)->callback == chat_callback) {
            gw_identity *left = lws_get_opaque_user_data(wsi);
            if (left)
                gw_identity_clear(left);
            free(left);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return gw_session_receive(&pss->s, in, len, lws_is_first_fragment(wsi),
                                  lws_is_final_fragment(wsi), lws_frame_is_binary(wsi));
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return gw_session_writeable(&pss->s);
    case LWS_CALLBACK_TIMER:   /* op_auth_timer's */
        if (pss && pss->s.ctx) /* not after gw_session_closed */
            gw_session_auth_expired(&pss->s);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        gw_session_peer_closing(&pss->s); /* lws answers it: nothing of ours may follow */
        return peer_close(ctx, in, len);
    case LWS_CALLBACK_CLOSED:
        gw_session_closed(&pss->s);
        return 0;

    case LWS_CALLBACK_HTTP: {
        char uri[300] = "";
        int t = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 ? WSI_TOKEN_POST_URI
                                                                  : WSI_TOKEN_GET_URI;
        if (lws_hdr_copy(wsi, uri, sizeof(uri), t) < 0)
            uri[0] = '\0';
        pss->http_deferred = pss->http_close = false;
        pss->http_api =
            strncmp(uri, GW_API_PREFIX, strlen(GW_API_PREFIX)) == 0 || strcmp(uri, "/api") == 0;
        if (pss->http_api)
            return gw_api_request(ctx, wsi, &pss->api, api_respond) ? -1 : 0;
        return http_request(ctx, wsi, pss) ? -1 : 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (!pss || !pss->http_api)
            break;
        /* no request: it was answered already (and closes); the body is dropped */
        return pss->api && gw_api_body(pss->api, in, len) != 0 ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!pss || !pss->http_api)
            break;
        return pss->api && gw_api_body_done(pss->api) != 0 ? -1 : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_writeable(wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss) {
            free(pss->http_body);
            pss->http_body = NULL;
            gw_api_closed(&pss->api);
        }
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (ctx && ctx->reload) {
            ctx->reload = 0;
            gw_server_reload_keys(ctx, true);
        }
        if (ctx) {
            drain_store(ctx);
            /* the signal handler's wake-up: libev's loop returns only when told to */
            if (ctx->stopping && ctx->evloop)
                ev_break(ctx->evloop, EVBREAK_ALL);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* --- Kafka wake-ups ---------------------------------------------------------------------- */

enum { GW_WAKE_PRODUCER = 1, GW_WAKE_CONSUMER = 2, GW_WAKE_EVENTS = 3 };
static const int wake_producer = GW_WAKE_PRODUCER, wake_consumer = GW_WAKE_CONSUMER,
                 wake_events = GW_WAKE_EVENTS;

static void events_continue(lws_sorted_usec_list_t *sul);

/* The events topic, drained like fan-out: at most a batch per turn, then again soon. */
static void serve_events(gw_ctx *ctx)
{
    if (ctx->events && gw_events_serve(ctx->events, GW_FANOUT_BATCH))
        lws_sul_schedule(ctx->lws, 0, &ctx->events_sul, events_continue, 1);
}

static void events_continue(lws_sorted_usec_list_t *sul)
{
    serve_events(lws_container_of(sul, gw_ctx, events_sul));
}

static void serve_consumer(gw_ctx *ctx);

static void kafka_continue(lws_sorted_usec_list_t *sul)
{
    serve_consumer(lws_container_of(sul, gw_ctx, kafka_sul));
}

static void serve_consumer(gw_ctx *ctx)
{
    if (gw_kafka_serve_consumer(ctx->kafka, GW_FANOUT_BATCH))
        lws_sul_schedule(ctx->lws, 0, &ctx->kafka_sul, kafka_continue, 1);
    gw_sessions_flush(ctx); /* what the batch brought each member, in one write */
    if (ctx->parked)
        gw_sessions_tick(ctx);
}

static int wake_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    gw_ctx *ctx = ctx_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE: {
        const int *which = lws_get_opaque_user_data(wsi);
        if (which == &wake_producer)
            gw_kafka_serve_producer(ctx->kafka);
        else if (which == &wake_consumer)
            serve_consumer(ctx);
        else if (which == &wake_events)
            serve_events(ctx);
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (ctx && !ctx->stopping)
            chat_log(CHAT_LOG_ERROR, "a Kafka wake-up descriptor closed");
        return 0;
    default:
        return 0;
    }
}

/* rx_buffer_size 128: lws 4.1.6 mallocs rx_buffer_size + LWS_PRE + 4 bytes (rx_ubuf) for
 * every connection at the upgrade and keeps it for the connection's life; it hands larger
 * client frames over in pieces of at most that size that gw_session reassembles
 * (lws_is_first/final_fragment), so it bounds memory, not message size (CHAT_MAX_FRAME and the
 * 1009 close are gw_session_receive's). It is not smaller because lws collects a control frame's
 * payload (close code and reason, ping data: up to 125 bytes) in rx_ubuf and acts on it when the
 * buffer fills: a smaller one would split a close or ping. tx_packet_size: what one send() may
 * carry, at least one batch of frames (lws would otherwise fall back to rx_buffer_size and split
 * every batch). */
static const struct lws_protocols gw_protocols[] = {
    {"chat", chat_callback, sizeof(gw_pss), 128, 0, NULL, 65536},
    {"chat-wake", wake_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int adopt(gw_ctx *ctx, int fd, const int *which, char *err, size_t errlen)
{
    lws_sock_file_fd_type u;
    u.filefd = fd;
    struct lws *w =
        lws_adopt_descriptor_vhost(ctx->vhost, LWS_ADOPT_RAW_FILE_DESC, u, "chat-wake", NULL);
    if (!w) {
        chat_errf(err, errlen, "cannot adopt a Kafka descriptor into the event loop");
        return CHAT_EINVAL;
    }
    lws_set_opaque_user_data(w, (void *)which);
    return 0;
}

static void log_stats(gw_ctx *ctx)
{
    gw_stats *st = &ctx->stats;
    chat_log(CHAT_LOG_INFO,
             "stats: sessions=%llu rooms=%zu frames_in=%llu produced=%llu acked=%llu "
             "produce_failed=%llu fanout_records=%llu frames_out=%llu dropped_slow=%llu "
             "joins=%llu joins_from_log=%llu store_reads=%llu store_waiters=%llu resumes=%llu "
             "resumes_recovered=%llu retries_deduplicated=%llu inexact_reads=%llu "
             "log_bytes=%zu log_entries=%zu log_evicted=%llu",
             (unsigned long long)st->sessions_open, gw_rooms_room_count(ctx->rooms),
             (unsigned long long)st->frames_in, (unsigned long long)st->produced,
             (unsigned long long)st->acked, (unsigned long long)st->produce_failed,
             (unsigned long long)st->fanout_records, (unsigned long long)st->messages_out,
             (unsigned long long)st->dropped_slow, (unsigned long long)st->joins,
             (unsigned long long)st->joins_from_log, (unsigned long long)st->store_reads,
             (unsigned long long)st->store_waiters, (unsigned long long)st->resumes,
             (unsigned long long)st->resumes_recovered,
             (unsigned long long)st->retries_deduplicated, (unsigned long long)st->inexact_reads,
             gw_log_bytes(ctx->log), gw_log_entries(ctx->log),
             (unsigned long long)gw_log_evicted(ctx->log));
}

static void stats_tick(lws_sorted_usec_list_t *sul)
{
    gw_ctx *ctx = lws_container_of(sul, gw_ctx, stats_sul);
    report_suppressed();
    log_stats(ctx);
    lws_sul_schedule(ctx->lws, 0, &ctx->stats_sul, stats_tick,
                     ctx->cfg.stats_interval * LWS_US_PER_SEC);
}

/* --- JWKS key rotation --------------------------------------------------------------------- */

static void log_keys(gw_ctx *ctx, const char *what)
{
    char kids[256] = "";
    size_t n = gw_auth_key_count(ctx->auth), o = 0;
    for (size_t i = 0; i < n && o < sizeof(kids); i++) {
        int w = snprintf(kids + o, sizeof(kids) - o, "%s%s", i ? ", " : "",
                         gw_auth_key_id(ctx->auth, i));
        if (w < 0)
            break;
        o += (size_t)w;
    }
    chat_log(CHAT_LOG_INFO, "CHAT_JWT_JWKS %s: %zu key(s): %s", what, n, kids);
}

void gw_server_reload_keys(gw_ctx *ctx, bool force)
{
    char err[512];
    if (!ctx->cfg.jwt_jwks || !*ctx->cfg.jwt_jwks) {
        if (force)
            chat_log(CHAT_LOG_INFO, "SIGHUP: no CHAT_JWT_JWKS to read again");
        return;
    }
    int rc = gw_auth_reload(ctx->auth, force, err, sizeof(err));
    if (rc < 0)
        chat_log(CHAT_LOG_ERROR, "%s; the keys read before stay in force", err);
    else if (rc == 1)
        log_keys(ctx, force ? "read again (SIGHUP)" : "read again (the file changed)");
}

static void jwks_tick(lws_sorted_usec_list_t *sul)
{
    gw_ctx *ctx = lws_container_of(sul, gw_ctx, jwks_sul);
    gw_server_reload_keys(ctx, false);
    lws_sul_schedule(ctx->lws, 0, &ctx->jwks_sul, jwks_tick, GW_JWKS_POLL_MS * LWS_US_PER_MS);
}

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws logs what clients send it wrong (an oversized header is an ERROR line): rate-limited */
    log_untrusted(level == LLL_ERR ? CHAT_LOG_ERROR : CHAT_LOG_WARN, "lws: %.*s", (int)n, line);
}

int gw_server_start(gw_ctx *ctx, char *err, size_t errlen)
{
    ctx->ops = &lws_session_ops;
    ctx->ops_arg = ctx;
    gw_metrics_init(&ctx->stats);
    ctx->retry.secs_since_valid_ping = (uint16_t)ctx->cfg.ping_interval;
    ctx->retry.secs_since_valid_hangup = (uint16_t)(ctx->cfg.ping_interval * 2);

    gw_rate_spec_init(&untrusted_spec, GW_UNTRUSTED_LOG_RATE, GW_UNTRUSTED_LOG_BURST);
    gw_rate_init(&untrusted_bucket, &untrusted_spec, gw_now_ms());
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    memset(&ctx->mounts, 0, sizeof(ctx->mounts));
    struct lws_http_mount *m = &ctx->mounts[0];
    if (ctx->cfg.web_root && *ctx->cfg.web_root) {
        m->mountpoint = "/";
        m->mountpoint_len = 1;
        m->origin = ctx->cfg.web_root;
        m->def = "index.html";
        m->origin_protocol = LWSMPRO_FILE;
        m->cache_max_age = 0;
    }
    /* the dynamic endpoints are matched before the file mount by being longer */
    static const char *const dyn[] = {"/healthz", "/readyz", "/dev/token",
                                      "/metrics", "/ws",     "/api"};
    struct lws_http_mount *prev = (ctx->cfg.web_root && *ctx->cfg.web_root) ? m : NULL;
    for (size_t i = 0; i < sizeof(dyn) / sizeof(dyn[0]); i++) {
        struct lws_http_mount *d = &ctx->mounts[1 + i];
        d->mountpoint = dyn[i];
        d->mountpoint_len = (unsigned char)strlen(dyn[i]);
        d->origin = "chat";
        d->origin_protocol = LWSMPRO_CALLBACK;
        d->mount_next = prev;
        prev = d;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = ctx->cfg.port;
    info.iface =
        (strcmp(ctx->cfg.host, "0.0.0.0") == 0 || !ctx->cfg.host[0]) ? NULL : ctx->cfg.host;
    info.protocols = gw_protocols;
    info.mounts = prev;
    info.headers = &hdr_csp;
    info.retry_and_idle_policy = &ctx->retry;
    info.user = ctx;
    info.max_http_header_data = GW_HTTP_HEADER_MAX;
    /* max_http_header_pool: lws 4.1.6 gives every connection a header table (about 1 KiB) and
     * GW_HTTP_HEADER_MAX bytes of header data from accept until its request is answered, and by
     * default as many at once as there are descriptors: 10,000 connections arriving together
     * would hold 130 MB, and the freed buffers stay behind as holes in the heap between the
     * connections' long-lived allocations (after idle-10k, whose load generator connects 500 at
     * a time: 260 to 310 bytes of free heap per connection; 120 with 64 tables). Past the pool a
     * connection waits in lws's queue, unread, for a free table; a request that never completes
     * loses its table after lws's 10 s (timeout_secs_ah_idle), and HAProxy in front forwards
     * only whole requests. */
    info.max_http_header_pool = (unsigned short)ctx->cfg.max_handshakes;
    /* VALIDATE_UTF8: lws fails a text frame that is not UTF-8 with 1007 (RFC 6455 8.1), across
     * fragments, before the session sees it; docs/protocol.md documents exactly that */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.vhost_name = "chat";
    /* CHAT_EVENT_LOOP=epoll: lws 4.1.6's own loop is poll() over every descriptor, whose cost
     * per wake-up grows with the idle connections; through its libev plugin (a shared object
     * lws dlopen()s: Debian's libwebsockets-evlib-ev) it uses libev's epoll backend instead.
     * The loop is ours ("foreign" to lws), so the gateway runs and stops it (gw_server_run). */
    if (strcmp(ctx->cfg.event_loop, "epoll") == 0) {
        ctx->evloop = ev_loop_new(EVBACKEND_EPOLL);
        if (!ctx->evloop) {
            chat_errf(err, errlen, "CHAT_EVENT_LOOP: libev could not make an epoll loop");
            return CHAT_EINVAL;
        }
        ctx->foreign_loops[0] = ctx->evloop;
        info.foreign_loops = ctx->foreign_loops;
        info.options |= LWS_SERVER_OPTION_LIBEV;
    }
    if (ctx->cfg.tls_cert) {
        /* https and wss on CHAT_LISTEN (the files were checked at start, gw_tls.h); HTTP/1.1
         * only (the WebSocket upgrade is HTTP/1.1's) */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = ctx->cfg.tls_cert;
        info.ssl_private_key_filepath = ctx->cfg.tls_key;
        info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
        info.alpn = "http/1.1";
    }

    ctx->lws = lws_create_context(&info);
    if (!ctx->lws && ctx->evloop) {
        chat_errf(err, errlen,
                  "CHAT_EVENT_LOOP: libwebsockets could not start on %s with its libev plugin "
                  "(is libwebsockets-evlib-ev installed? CHAT_EVENT_LOOP=poll runs without it)"
                  " or cannot listen there",
                  ctx->cfg.listen);
        return CHAT_EINVAL;
    }
    if (!ctx->lws) {
        chat_errf(err, errlen,
                  "CHAT_LISTEN: cannot listen on %s (in use, or not an address "
                  "of this host?%s)",
                  ctx->cfg.listen,
                  ctx->cfg.tls_cert ? " or libwebsockets refused CHAT_TLS_CERT/CHAT_TLS_KEY" : "");
        return CHAT_EINVAL;
    }
    ctx->vhost = lws_get_vhost_by_name(ctx->lws, "chat");
    if (!ctx->vhost) {
        chat_errf(err, errlen, "libwebsockets created no vhost");
        return CHAT_EINVAL;
    }
    int rc;
    if ((rc = adopt(ctx, gw_kafka_producer_fd(ctx->kafka), &wake_producer, err, errlen)) ||
        (rc = adopt(ctx, gw_kafka_consumer_fd(ctx->kafka), &wake_consumer, err, errlen)) ||
        (ctx->events && (rc = adopt(ctx, gw_events_fd(ctx->events), &wake_events, err, errlen))))
        return rc;
    lws_sul_schedule(ctx->lws, 0, &ctx->stats_sul, stats_tick,
                     ctx->cfg.stats_interval * LWS_US_PER_SEC);
    gw_sessions_start_timers(ctx);
    if (ctx->cfg.jwt_jwks && *ctx->cfg.jwt_jwks) {
        log_keys(ctx, "read");
        lws_sul_schedule(ctx->lws, 0, &ctx->jwks_sul, jwks_tick, GW_JWKS_POLL_MS * LWS_US_PER_MS);
    }
    if (ctx->presence_kafka)
        gw_presence_kafka_start(ctx->presence_kafka);
    return 0;
}

/* Drain: a connection is quiet after this long without a frame; one that does not take what
 * it is owed is cut this long after its close began. */
#define GW_DRAIN_QUIET_MS 200
#define GW_DRAIN_CLOSE_S 3

static void shutdown_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
}

/* One round of the loop, returning within about 50 ms even when nothing happens. */
static int service_once(gw_ctx *ctx)
{
    if (!ctx->evloop)
        return lws_service(ctx->lws, 0);
    ev_timer tick;
    ev_timer_init(&tick, shutdown_tick, 0.05, 0.);
    ev_timer_start(ctx->evloop, &tick);
    ev_run(ctx->evloop, EVRUN_ONCE);
    ev_timer_stop(ctx->evloop, &tick);
    return 0;
}

void gw_server_run(gw_ctx *ctx)
{
    if (ctx->evloop) {
        /* returns at ev_break (LWS_CALLBACK_EVENT_WAIT_CANCELLED once stopping is set) */
        while (!ctx->stopping)
            ev_run(ctx->evloop, 0);
    } else {
        while (!ctx->stopping)
            if (lws_service(ctx->lws, 0) < 0)
                break;
    }
    /* Drain (README, "Stopping a gateway"): refuse new upgrades and report unready; keep
     * serving the connections here until they are quiet (no frame for GW_DRAIN_QUIET_MS) and
     * every message they sent has its ack, at most CHAT_DRAIN_MS; then each is written what it
     * is owed and closed with 1001 (at most GW_DRAIN_CLOSE_S more for clients that do not
     * read). */
    int64_t t0 = gw_now_ms(), until = t0 + ctx->cfg.drain_ms, quiet_since = t0;
    uint64_t frames = ctx->stats.frames_in;
    ctx->draining = true;
    chat_log(CHAT_LOG_INFO, "draining: %llu sessions, %d messages awaiting their ack",
             (unsigned long long)ctx->stats.sessions_open, gw_kafka_pending(ctx->kafka));
    while (ctx->sessions && gw_now_ms() < until) {
        if (ctx->stats.frames_in != frames) {
            frames = ctx->stats.frames_in;
            quiet_since = gw_now_ms();
        }
        if (gw_kafka_pending(ctx->kafka) == 0 && gw_now_ms() - quiet_since >= GW_DRAIN_QUIET_MS)
            break;
        if (service_once(ctx) < 0)
            break;
    }
    int pending = gw_kafka_pending(ctx->kafka);
    if (pending > 0)
        chat_log(CHAT_LOG_WARN,
                 "draining: %d messages still without an ack after CHAT_DRAIN_MS=%lld; their "
                 "senders will retry them by cid",
                 pending, ctx->cfg.drain_ms);
    chat_log(CHAT_LOG_INFO, "draining: closing %llu sessions with 1001",
             (unsigned long long)ctx->stats.sessions_open);
    gw_sessions_drain(ctx, GW_DRAIN_CLOSE_S);
    until = gw_now_ms() + GW_DRAIN_CLOSE_S * 1000 + 500;
    while (ctx->sessions && gw_now_ms() < until)
        if (service_once(ctx) < 0)
            break;
    chat_log(CHAT_LOG_INFO, "drained in %lld ms (%llu sessions left to cut)",
             (long long)(gw_now_ms() - t0), (unsigned long long)ctx->stats.sessions_open);
    log_stats(ctx);
}

void gw_server_free(gw_ctx *ctx)
{
    if (ctx->lws) {
        lws_sul_cancel(&ctx->stats_sul);
        lws_sul_cancel(&ctx->kafka_sul);
        lws_sul_cancel(&ctx->events_sul);
        lws_sul_cancel(&ctx->inflight_sul);
        lws_sul_cancel(&ctx->wake_sul);
        lws_sul_cancel(&ctx->jwks_sul);
        lws_context_destroy(ctx->lws); /* with libev: synchronous, no loop run needed */
        ctx->lws = NULL;
    }
    if (ctx->evloop) {
        ev_loop_destroy(ctx->evloop);
        ctx->evloop = NULL;
    }
}

void gw_server_wake(void *arg)
{
    gw_ctx *ctx = arg;
    if (ctx->lws)
        lws_cancel_service(ctx->lws);
}
