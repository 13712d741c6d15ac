/* main.c: chat-gateway. Loads the settings, builds the context (auth, room index, Kafka,
 * MongoDB workers, libwebsockets), serves until SIGINT/SIGTERM, then shuts down in order:
 * sessions closed with 1001, the producer flushed, this gateway's presence withdrawn, the
 * workers stopped. SIGHUP reads the JWKS (CHAT_JWT_JWKS) again. */
#define _DEFAULT_SOURCE /* gethostname, strncasecmp, strdup, pipe, clock_gettime */
#include <errno.h>
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_mongo.h"
#include "gw_config.h"
#include "gw_ctx.h"
#include "gw_events.h"
#include "gw_kafka.h"
#include "gw_presence_kafka.h"
#include "gw_server.h"
#include "gw_session.h"
#include "gw_store.h"
#include "gw_tls.h"

/* The store's fence (gw_store_set_fence): the persisters' committed offset. */
static int64_t store_fence(void *arg, int32_t partition)
{
    gw_ctx *ctx = arg;
    return gw_kafka_committed(ctx->kafka, partition);
}

/* The one global: signal handlers cannot be given a context. */
static gw_ctx *signal_ctx;

static void on_signal(int sig)
{
    if (signal_ctx) {
        if (sig == SIGHUP)
            signal_ctx->reload = 1; /* read CHAT_JWT_JWKS again */
        else
            signal_ctx->stopping = 1;
        gw_server_wake(signal_ctx);
    }
}

int main(int argc, char **argv)
{
    static gw_ctx ctx;
    char err[512];
    int rc = gw_settings_load(&ctx.cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        return 2;
    }
    char component[96];
    snprintf(component, sizeof(component), "gateway[%s]", ctx.cfg.node_id);
    if (chat_log_init(component, ctx.cfg.log_level) != 0) {
        fprintf(stderr, "chat-gateway: CHAT_LOG_LEVEL: unknown level \"%s\"\n", ctx.cfg.log_level);
        return 2;
    }
    if (chat_log_set_format(ctx.cfg.log_format) != 0) {
        fprintf(stderr, "chat-gateway: CHAT_LOG_FORMAT: \"%s\" is not text or json\n",
                ctx.cfg.log_format);
        return 2;
    }
    ctx.limits.max_text = (size_t)ctx.cfg.max_text;
    ctx.limits.max_history = 200;
    ctx.limits.default_history = (int)ctx.cfg.history_limit;

    gw_auth_config ac = {.alg = ctx.cfg.jwt_alg,
                         .secret = ctx.cfg.jwt_secret,
                         .public_key_file = ctx.cfg.jwt_public_key,
                         .jwks_file = ctx.cfg.jwt_jwks,
                         .issuer = ctx.cfg.jwt_issuer,
                         .audience = ctx.cfg.jwt_audience,
                         .leeway_s = (long)ctx.cfg.jwt_leeway};
    if (gw_auth_new(&ctx.auth, &ac, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        return 2;
    }
    if (ctx.cfg.tls_cert &&
        gw_tls_check_files(ctx.cfg.tls_cert, ctx.cfg.tls_key, time(NULL), err, sizeof(err))) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        gw_auth_free(ctx.auth);
        return 2;
    }
    if (ctx.cfg.dev_tokens)
        chat_log(CHAT_LOG_WARN, "CHAT_DEV_TOKENS is on: GET /dev/token gives anyone a token "
                                "for any name. Development only.");

    chat_mongo_init();
    rc = 1;
    ctx.rooms = gw_rooms_new();
    if (!ctx.rooms) {
        fprintf(stderr, "chat-gateway: out of memory\n");
        goto out;
    }
    if (gw_store_new(&ctx.store, ctx.cfg.mongo_uri, (int)ctx.cfg.mongo_workers, GW_STORE_QUEUE,
                     GW_STORE_PER_CONN, gw_server_wake, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        goto out;
    }
    gw_kafka_config kc = {.brokers = ctx.cfg.kafka_brokers,
                          .topic = ctx.cfg.kafka_topic,
                          .node_id = ctx.cfg.node_id,
                          .persister_group = ctx.cfg.persister_group,
                          .wait_topic_s = 60,
                          .warm_records = (int)ctx.cfg.log_warm,
                          .linger_ms = (int)ctx.cfg.kafka_linger_ms,
                          .wake = gw_server_wake,
                          .wake_arg = &ctx,
                          .on_ack = gw_session_on_ack,
                          .on_record = gw_session_on_record,
                          .arg = &ctx};
    if (gw_kafka_new(&ctx.kafka, &kc, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        goto out;
    }
    gw_events_config ec = {.brokers = ctx.cfg.kafka_brokers,
                           .topic = ctx.cfg.kafka_events_topic,
                           .node_id = ctx.cfg.node_id,
                           .wait_topic_s = 60,
                           .kafka = ctx.kafka,
                           .on_event = gw_session_on_event,
                           .arg = &ctx};
    if (gw_events_new(&ctx.events, &ec, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        goto out;
    }
    /* the room logs cover every partition from where fan-out starts reading it */
    int32_t parts = gw_kafka_partitions(ctx.kafka);
    int src = gw_sessions_init(&ctx, parts);
    if (src != 0) {
        fprintf(stderr, "chat-gateway: %s\n",
                src == -EINVAL ? "CHAT_SEND_QUEUE and CHAT_SEND_QUEUE_BYTES must be 1 or more"
                               : strerror(-src));
        goto out;
    }
    for (int32_t p = 0; p < parts; p++)
        gw_log_cover(ctx.log, p, gw_kafka_start_offset(ctx.kafka, p));
    /* the cluster's presence, read back before the first client comes */
    if (gw_presence_kafka_new(&ctx.presence_kafka, &ctx, 60, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        goto out;
    }
    gw_store_set_fence(ctx.store, store_fence, &ctx);
    if (gw_server_start(&ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        goto out;
    }
    signal_ctx = &ctx;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    chat_log(CHAT_LOG_INFO, "listening on %s%s (node %s, JWT %s, web client %s)", ctx.cfg.listen,
             ctx.cfg.tls_cert ? " with TLS" : "", ctx.cfg.node_id, ctx.cfg.jwt_alg,
             ctx.cfg.web_root && *ctx.cfg.web_root ? ctx.cfg.web_root : "not served");
    gw_server_run(&ctx);
    rc = 0;
out:
    /* First the threads that wake the loop (store workers, Kafka's), while the loop's context
     * still exists: a wake-up never reaches a destroyed context. The producer's last delivery
     * reports still reach sessions that have not closed yet. Then the loop (closing what is
     * left), then the store's unserved results. */
    gw_store_stop(ctx.store);
    gw_kafka_stop(ctx.kafka, 5000);
    gw_presence_kafka_stop(ctx.presence_kafka, 2000); /* this gateway's users leave */
    gw_server_free(&ctx);
    gw_presence_kafka_free(ctx.presence_kafka);
    gw_events_free(ctx.events);
    ctx.events = NULL; /* the store's last results below publish nothing */
    gw_kafka_free(ctx.kafka, 0);
    gw_store_free(ctx.store, gw_session_on_history, &ctx);
    gw_sessions_free(&ctx);
    gw_rooms_free(ctx.rooms);
    gw_auth_free(ctx.auth);
    mongoc_cleanup();
    chat_log(CHAT_LOG_INFO, "stopped");
    return rc;
}
