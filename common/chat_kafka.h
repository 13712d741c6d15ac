/* chat_kafka.h: the small pieces of librdkafka set-up the gateway and the persister share: a
 * configuration setter in the project's error convention, and a log callback that routes
 * librdkafka's syslog-levelled lines into chat_log. Any thread. */
#ifndef CHAT_KAFKA_H
#define CHAT_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* rd_kafka_conf_set; on failure CHAT_EINVAL with "kafka NAME=VALUE: reason" in err. */
int chat_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                        size_t errlen);

/* An assign-only consumer (no group membership, no commits): what every gateway reader is
 * (fan-out, events, presence). group_prefix names its unused but required group.id
 * ("<group_prefix>-<client_id>"); fetch_wait_ms is fetch.wait.max.ms; queued_kbytes is
 * queued.max.messages.kbytes (0: librdkafka's default); wake_fd >= 0 gets a byte whenever its
 * queue gets something (rd_kafka_queue_io_event_enable), -1 for none; what names it in errors
 * ("the events consumer"). Its poll queue is the consumer queue. Returns 0 with *out set, or
 * CHAT_EINVAL naming CHAT_KAFKA_BROKERS. */
typedef struct chat_kafka_reader_cfg {
    const char *brokers, *client_id, *group_prefix, *what;
    int fetch_wait_ms, queued_kbytes, wake_fd;
} chat_kafka_reader_cfg;
int chat_kafka_reader_new(rd_kafka_t **out, const chat_kafka_reader_cfg *c, char *err,
                          size_t errlen);

/* For rd_kafka_conf_set_log_cb: levels 0-3 log as errors, 4 as warnings, 5-6 as info, the
 * rest as debug. */
void chat_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
