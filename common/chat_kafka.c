/* chat_kafka.c: shared librdkafka set-up helpers (see chat_kafka.h). */
#include "chat_kafka.h"

#include <stdio.h>

#include "chat_error.h"
#include "chat_log.h"

int chat_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                        size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(conf, name, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        chat_errf(err, errlen, "kafka %s=%s: %s", name, value, e);
        return CHAT_EINVAL;
    }
    return 0;
}

void chat_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum chat_log_level l = level <= 3   ? CHAT_LOG_ERROR
                            : level == 4 ? CHAT_LOG_WARN
                            : level <= 6 ? CHAT_LOG_INFO
                                         : CHAT_LOG_DEBUG;
    chat_log(l, "kafka %s: %s", fac, buf);
}

int chat_kafka_reader_new(rd_kafka_t **out, const chat_kafka_reader_cfg *c, char *err,
                          size_t errlen)
{
    char kerr[512], group[192], wait[16], kbytes[16];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc;
    *out = NULL;
    /* librdkafka wants a group.id even though we only assign; it is never joined */
    snprintf(group, sizeof(group), "%s-%s", c->group_prefix, c->client_id);
    snprintf(wait, sizeof(wait), "%d", c->fetch_wait_ms);
    snprintf(kbytes, sizeof(kbytes), "%d", c->queued_kbytes);
    if ((rc = chat_kafka_conf_set(conf, "bootstrap.servers", c->brokers, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "group.id", group, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.partition.eof", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "fetch.wait.max.ms", wait, err, errlen)) ||
        (c->queued_kbytes > 0 &&
         (rc = chat_kafka_conf_set(conf, "queued.max.messages.kbytes", kbytes, err, errlen))) ||
        (rc = chat_kafka_conf_set(conf, "client.id", c->client_id, err, errlen))) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, chat_kafka_log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        chat_errf(err, errlen, "CHAT_KAFKA_BROKERS: cannot create %s: %s", c->what, kerr);
        return CHAT_EINVAL;
    }
    rd_kafka_poll_set_consumer(rk);
    if (c->wake_fd >= 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        rd_kafka_queue_io_event_enable(q, c->wake_fd, "1", 1);
        rd_kafka_queue_destroy(q);
    }
    *out = rk;
    return 0;
}
