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

/* For rd_kafka_conf_set_log_cb: levels 0-3 log as errors, 4 as warnings, 5-6 as info, the
 * rest as debug. */
void chat_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
