/* gw_presence_kafka.c: the presence topic's producer and consumer, and the loop timer that feeds
 * the presence table (see gw_presence_kafka.h). */
#define _DEFAULT_SOURCE /* getpid */
#include "gw_presence_kafka.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_error.h"
#include "chat_kafka.h"
#include "chat_log.h"
#include "gw_presence.h"
#include "gw_session.h"

#define GW_PRESENCE_CATCHUP_S 30  /* reading the topic at start takes at most this long */
#define GW_PRESENCE_POLL_MAX 5000 /* records handed to the table per tick */

struct gw_presence_kafka {
    gw_ctx *ctx;
    rd_kafka_t *producer, *consumer;
    const char *topic;
    lws_sorted_usec_list_t sul;
    bool started;
    bool catching_up; /* reading what was there at start: records are as old as they say */
    uint64_t failures, failures_logged;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    gw_presence_kafka *k = opaque;
    if (!m->err)
        return;
    if (k->failures++ == k->failures_logged) /* one line per tick at most */
        chat_log(CHAT_LOG_WARN, "presence: a record was not written to %s: %s", k->topic,
                 rd_kafka_err2str(m->err));
}

static void emit(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
    gw_presence_kafka *k = arg;
    rd_kafka_resp_err_t e =
        rd_kafka_producev(k->producer, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(key, klen),
                          RD_KAFKA_V_VALUE((void *)(uintptr_t)val, val ? vlen : 0),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e && k->failures++ == k->failures_logged)
        chat_log(CHAT_LOG_WARN, "presence: cannot queue a record for %s: %s", k->topic,
                 rd_kafka_err2str(e));
}

static void deliver(void *arg, const char *room, gw_buf *frame)
{
    gw_presence_kafka *k = arg;
    gw_sessions_presence_frame(k->ctx, room, frame);
}

/* Hands one consumed record to the table. */
static void feed(gw_presence_kafka *k, const rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            chat_log(CHAT_LOG_WARN, "presence consumer: %s", rd_kafka_message_errstr(m));
        return;
    }
    int64_t age = 0;
    if (k->catching_up) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (ts > 0)
            age = gw_wall_ms() - ts;
    }
    gw_presence_on_record(k->ctx->presence, m->key, m->key ? m->key_len : 0, m->payload, m->len,
                          age, gw_now_ms());
}

static void tick(lws_sorted_usec_list_t *sul)
{
    gw_presence_kafka *k = lws_container_of(sul, gw_presence_kafka, sul);
    rd_kafka_poll(k->producer, 0);
    for (int i = 0; i < GW_PRESENCE_POLL_MAX; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 0);
        if (!m)
            break;
        feed(k, m);
        rd_kafka_message_destroy(m);
    }
    gw_presence_tick(k->ctx->presence, gw_now_ms(), gw_wall_ms());
    k->failures_logged = k->failures;
    lws_sul_schedule(k->ctx->lws, 0, &k->sul, tick, GW_PRESENCE_TICK_MS * LWS_US_PER_MS);
}

static int make_clients(gw_presence_kafka *k, const char *brokers, const char *node, char *err,
                        size_t errlen)
{
    char kerr[512], client[128];
    int rc;
    snprintf(client, sizeof(client), "%s-presence", node);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if ((rc = chat_kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.idempotence", "true", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "linger.ms", "5", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "message.timeout.ms", "30000", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "client.id", client, err, errlen))) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_log_cb(conf, chat_kafka_log_cb);
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!k->producer) {
        rd_kafka_conf_destroy(conf);
        chat_errf(err, errlen, "CHAT_KAFKA_BROKERS: cannot create the presence producer: %s", kerr);
        return CHAT_EINVAL;
    }
    const chat_kafka_reader_cfg c = {.brokers = brokers,
                                     .client_id = client,
                                     .group_prefix = "chat-gateway",
                                     .what = "the presence consumer",
                                     .fetch_wait_ms = 100,
                                     .queued_kbytes = 0,
                                     .wake_fd = -1};
    if ((rc = chat_kafka_reader_new(&k->consumer, &c, err, errlen)) != 0)
        return rc;
    return 0;
}

/* Assigns every partition from its start and reads up to the ends of now. */
static int catch_up(gw_presence_kafka *k, int wait_s, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(k->consumer, k->topic, NULL);
    int parts = -1, rc = CHAT_EINVAL;
    char why[256] = "no answer";
    for (int waited = 0; t; waited++) {
        rd_kafka_resp_err_t e = rd_kafka_metadata(k->consumer, 0, t, &md, 2000);
        if (!e && md->topic_cnt == 1 && !md->topics[0].err)
            parts = md->topics[0].partition_cnt;
        else
            snprintf(why, sizeof(why), "%s",
                     rd_kafka_err2str(e               ? e
                                      : md->topic_cnt ? md->topics[0].err
                                                      : e));
        if (md)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        if (parts > 0 || waited >= wait_s)
            break;
        if (waited % 10 == 0)
            chat_log(CHAT_LOG_WARN, "waiting for kafka topic %s: %s", k->topic, why);
        sleep(1);
    }
    if (t)
        rd_kafka_topic_destroy(t);
    if (parts <= 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_PRESENCE_TOPIC: topic %s is not available (%s); create it with "
                  "chat-admin init",
                  k->topic, why);
        return CHAT_EINVAL;
    }
    int64_t *end = calloc((size_t)parts, sizeof(*end));
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    if (!end || !list)
        goto out;
    int left = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(k->consumer, k->topic, p, &lo, &hi, 5000);
        if (e) {
            chat_errf(err, errlen, "kafka: offsets of %s[%d]: %s", k->topic, p,
                      rd_kafka_err2str(e));
            goto out;
        }
        end[p] = hi > lo ? hi : -1;
        left += end[p] >= 0;
        rd_kafka_topic_partition_list_add(list, k->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(k->consumer, list);
    if (e) {
        chat_errf(err, errlen, "kafka assign %s: %s", k->topic, rd_kafka_err2str(e));
        goto out;
    }
    k->catching_up = true;
    size_t n = 0;
    int64_t deadline = gw_now_ms() + GW_PRESENCE_CATCHUP_S * 1000;
    while (left > 0 && gw_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 200);
        rd_kafka_poll(k->producer, 0);
        if (!m)
            continue;
        feed(k, m);
        n++;
        int32_t p = m->partition;
        if (!m->err && p >= 0 && p < parts && end[p] >= 0 && m->offset + 1 >= end[p]) {
            end[p] = -1;
            left--;
        }
        rd_kafka_message_destroy(m);
    }
    k->catching_up = false;
    if (left > 0)
        chat_log(CHAT_LOG_WARN, "presence: %s not read to its end within %d s; going on", k->topic,
                 GW_PRESENCE_CATCHUP_S);
    gw_presence_stats st;
    gw_presence_get_stats(k->ctx->presence, &st);
    chat_log(CHAT_LOG_INFO,
             "presence: read %zu records of %s (%d partitions): %zu entries, %zu gateway runs", n,
             k->topic, parts, st.entries, st.nodes);
    rc = 0;
out:
    free(end);
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

int gw_presence_kafka_new(gw_presence_kafka **out, gw_ctx *ctx, int wait_s, char *err,
                          size_t errlen)
{
    gw_presence_kafka *k = calloc(1, sizeof(*k));
    int rc = -ENOMEM;
    if (!k)
        return rc;
    k->ctx = ctx;
    k->topic = ctx->cfg.kafka_presence_topic;
    if ((rc = make_clients(k, ctx->cfg.kafka_brokers, ctx->cfg.node_id, err, errlen)))
        goto fail;
    /* a new run of this node id: wall time in ms and the pid, never 0 */
    uint64_t inc = (uint64_t)gw_wall_ms() << 20 | ((uint64_t)getpid() & 0xfffff);
    gw_presence_config pc = {.node_id = ctx->cfg.node_id,
                             .incarnation = inc ? inc : 1,
                             .max_entries = (size_t)ctx->cfg.presence_max_entries,
                             .heartbeat_ms = GW_PRESENCE_HEARTBEAT_MS,
                             .dead_ms = GW_PRESENCE_DEAD_MS,
                             .flush_ms = GW_PRESENCE_FLUSH_MS,
                             .max_changes = GW_PRESENCE_LIST_MAX,
                             .emit = emit,
                             .deliver = deliver,
                             .arg = k};
    ctx->presence = gw_presence_new(&pc, gw_now_ms());
    if (!ctx->presence) {
        chat_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = catch_up(k, wait_s, err, errlen)))
        goto fail;
    *out = k;
    return 0;
fail:
    gw_presence_kafka_free(k);
    return rc;
}

void gw_presence_kafka_start(gw_presence_kafka *k)
{
    k->started = true;
    lws_sul_schedule(k->ctx->lws, 0, &k->sul, tick, GW_PRESENCE_TICK_MS * LWS_US_PER_MS);
}

void gw_presence_kafka_stop(gw_presence_kafka *k, int flush_ms)
{
    if (!k || !k->producer)
        return;
    if (k->started) {
        lws_sul_cancel(&k->sul);
        k->started = false;
    }
    if (k->ctx->presence)
        gw_presence_shutdown(k->ctx->presence);
    if (rd_kafka_flush(k->producer, flush_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        chat_log(CHAT_LOG_WARN, "presence: %d records not written at shutdown",
                 rd_kafka_outq_len(k->producer));
}

void gw_presence_kafka_free(gw_presence_kafka *k)
{
    if (!k)
        return;
    if (k->started)
        lws_sul_cancel(&k->sul);
    if (k->consumer) {
        rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    if (k->producer) {
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->producer, 0);
        rd_kafka_destroy(k->producer);
    }
    gw_presence_free(k->ctx->presence);
    k->ctx->presence = NULL;
    free(k);
}

uint64_t gw_presence_kafka_failures(const gw_presence_kafka *k)
{
    return k ? k->failures : 0;
}
