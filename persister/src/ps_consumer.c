/* ps_consumer.c: the persister's Kafka consumer-group member; see ps_consumer.h. librdkafka's
 * own log lines and error events are forwarded to chat_log (they may arrive on librdkafka's
 * threads; chat_log is thread-safe). */
#include "ps_consumer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_kafka.h"
#include "chat_log.h"

struct ps_consumer {
    rd_kafka_t *rk;
    const ps_settings *cfg;
    ps_consumer_revoke_fn on_revoke;
    void *opaque;
    int assigned;
};

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    chat_log(err == RD_KAFKA_RESP_ERR__FATAL ? CHAT_LOG_ERROR : CHAT_LOG_WARN, "kafka: %s (%s)",
             reason, rd_kafka_err2name((rd_kafka_resp_err_t)err));
}

static void describe(const rd_kafka_topic_partition_list_t *parts, char *out, size_t outlen)
{
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; parts && i < parts->cnt && used + 16 < outlen; i++) {
        int n = snprintf(out + used, outlen - used, "%s%" PRId32, i ? "," : "",
                         parts->elems[i].partition);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used + 16 >= outlen && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ps_consumer *c = opaque;
    char list[256];
    rd_kafka_resp_err_t aerr;

    describe(parts, list, sizeof(list));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        chat_log(CHAT_LOG_INFO, "assigned %d partitions of %s: %s", parts->cnt, c->cfg->kafka_topic,
                 list);
        aerr = rd_kafka_assign(rk, parts);
        c->assigned = aerr ? 0 : parts->cnt;
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            chat_log(CHAT_LOG_WARN, "rebalance error: %s", rd_kafka_err2str(err));
        chat_log(CHAT_LOG_INFO, "revoking %d partitions: %s", parts ? parts->cnt : 0, list);
        if (c->on_revoke)
            c->on_revoke(c->opaque);
        aerr = rd_kafka_assign(rk, NULL);
        c->assigned = 0;
    }
    if (aerr)
        chat_log(CHAT_LOG_ERROR, "assign failed: %s", rd_kafka_err2str(aerr));
}

int ps_consumer_open(ps_consumer **out, const ps_settings *cfg, ps_consumer_revoke_fn on_revoke,
                     void *opaque, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_conf_t *conf = NULL;
    ps_consumer *c = NULL;
    rd_kafka_resp_err_t kerr;
    char session[32], e[512];
    int rc = 0;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    conf = rd_kafka_conf_new();
    if (!c || !conf) {
        chat_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    c->cfg = cfg;
    c->on_revoke = on_revoke;
    c->opaque = opaque;
    snprintf(session, sizeof(session), "%lld", cfg->kafka_session_ms);
    if ((rc = chat_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "group.id", cfg->kafka_group, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "client.id", "chat-persister", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.partition.eof", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "partition.assignment.strategy", "range,roundrobin", err,
                                  errlen)) ||
        (rc = chat_kafka_conf_set(conf, "session.timeout.ms", session, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "allow.auto.create.topics", "false", err, errlen)))
        goto out;
    rd_kafka_conf_set_log_cb(conf, chat_kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!c->rk) {
        chat_errf(err, errlen, "kafka consumer: %s", e);
        rc = CHAT_EINVAL;
        goto out;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);
    topics = rd_kafka_topic_partition_list_new(1);
    if (!topics) {
        chat_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    rd_kafka_topic_partition_list_add(topics, cfg->kafka_topic, RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(c->rk, topics);
    if (kerr) {
        chat_errf(err, errlen, "subscribe %s: %s", cfg->kafka_topic, rd_kafka_err2str(kerr));
        rc = CHAT_EINVAL;
        goto out;
    }
    *out = c;
    c = NULL;
out:
    if (topics)
        rd_kafka_topic_partition_list_destroy(topics);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (c) {
        if (c->rk)
            rd_kafka_destroy(c->rk);
        free(c);
    }
    return rc;
}

rd_kafka_message_t *ps_consumer_poll(ps_consumer *c, int timeout_ms)
{
    return rd_kafka_consumer_poll(c->rk, timeout_ms);
}

int ps_consumer_commit(ps_consumer *c, const ps_batch *b, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t kerr;
    int rc = 0;

    if (b->noffs == 0)
        return 0;
    list = rd_kafka_topic_partition_list_new((int)b->noffs);
    if (!list) {
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->noffs; i++)
        rd_kafka_topic_partition_list_add(list, c->cfg->kafka_topic, b->offs[i].partition)->offset =
            b->offs[i].next;
    kerr = rd_kafka_commit(c->rk, list, 0 /* synchronous */);
    if (kerr) {
        chat_errf(err, errlen, "commit: %s", rd_kafka_err2str(kerr));
        rc = -EIO;
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err) {
            chat_errf(err, errlen, "commit partition %" PRId32 ": %s", list->elems[i].partition,
                      rd_kafka_err2str(list->elems[i].err));
            rc = -EIO;
            goto out;
        }
    }
out:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

int64_t ps_consumer_lag(ps_consumer *c)
{
    return ps_consumer_lags(c, NULL, 0);
}

int64_t ps_consumer_lags(ps_consumer *c, int64_t *lags, size_t nlags)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t lag = 0;

    for (size_t i = 0; i < nlags; i++)
        lags[i] = -1;

    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return -1;
    if (parts->cnt == 0 || rd_kafka_position(c->rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        lag = -1;
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo = -1, hi = -1;
        const rd_kafka_topic_partition_t *p = &parts->elems[i];

        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0) {
            lag = -1;
            goto out;
        }
        /* A partition without a position yet (nothing fetched since the assignment) is left
         * out: its committed offset would cost a round trip. */
        if (p->offset >= 0 && hi > p->offset)
            lag += hi - p->offset;
        if (p->offset >= 0 && p->partition >= 0 && (size_t)p->partition < nlags)
            lags[p->partition] = hi > p->offset ? hi - p->offset : 0;
    }
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}

int ps_consumer_assigned(ps_consumer *c)
{
    return c ? c->assigned : 0;
}

void ps_consumer_close(ps_consumer *c)
{
    rd_kafka_resp_err_t kerr;

    if (!c)
        return;
    kerr = rd_kafka_consumer_close(c->rk);
    if (kerr)
        chat_log(CHAT_LOG_WARN, "closing the consumer: %s", rd_kafka_err2str(kerr));
    rd_kafka_destroy(c->rk);
    free(c);
}
