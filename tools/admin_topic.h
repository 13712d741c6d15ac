/* admin_topic.h: what `chat-admin init` does to Kafka: create the chat topic with the admin
 * API (never relying on broker auto-create), waiting for a broker that is still starting.
 * One thread; blocks up to the given timeout. */
#ifndef ADMIN_TOPIC_H
#define ADMIN_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates topic with the given partitions and replication factor. An existing topic with the
 * same partition count is success (*created = false). Retries while the broker is unreachable
 * or not ready, for up to timeout_ms. Returns 0; -ETIMEDOUT when Kafka did not answer in time;
 * CHAT_EINVAL when the topic exists with another partition count or the broker refused the
 * request (err says why). */
int admin_create_topic(const char *brokers, const char *topic, int partitions, int replication,
                       int64_t timeout_ms, bool *created, char *err, size_t errlen);

/* The presence topic's configuration: compacted, with segments rolled and cleaned often enough
 * that a gateway reading it at start reads little more than the live keys. */
extern const char *const admin_presence_config[];

/* As admin_create_topic, with config (name, value pairs, NULL-terminated) applied at creation.
 * An existing topic keeps its configuration. */
int admin_create_topic_with(const char *brokers, const char *topic, int partitions, int replication,
                            const char *const *config, int64_t timeout_ms, bool *created, char *err,
                            size_t errlen);

#endif
