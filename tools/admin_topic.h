/* admin_topic.h: what chat-admin does to Kafka: `init` creates the chat topic with the admin
 * API (never relying on broker auto-create), waiting for a broker that is still starting;
 * `describe` prints its partitions' leaders and in-sync replicas. One thread; each call blocks
 * up to the given timeout. */
#ifndef ADMIN_TOPIC_H
#define ADMIN_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Creates topic with the given partitions, replication factor and min.insync.replicas (a new
 * topic only: an existing one keeps its configuration). An existing topic with the
 * same partition count is success (*created = false). Retries while the broker is unreachable
 * or not ready, for up to timeout_ms. Returns 0; -ETIMEDOUT when Kafka did not answer in time;
 * CHAT_EINVAL when the topic exists with another partition count or the broker refused the
 * request (err says why). */
int admin_create_topic(const char *brokers, const char *topic, int partitions, int replication,
                       int min_insync, int64_t timeout_ms, bool *created, char *err, size_t errlen);

/* Writes to out one line "topic T partitions P min.insync.replicas M under_replicated U
 * leaderless L" and then one line per partition "partition P leader B replicas B,B,B isr B,B"
 * (broker ids; leader -1 when it has none), from a metadata request to any reachable broker.
 * Returns 0; -ETIMEDOUT when no broker answered in time; CHAT_EINVAL when the topic does not
 * exist (err says why). */
int admin_describe_topic(const char *brokers, const char *topic, int64_t timeout_ms, FILE *out,
                         char *err, size_t errlen);

/* The presence topic's configuration: compacted, with segments rolled and cleaned often enough
 * that a gateway reading it at start reads little more than the live keys. */
extern const char *const admin_presence_config[];

/* As admin_create_topic, with config (name, value pairs, NULL-terminated) applied at creation.
 * An existing topic keeps its configuration. */
int admin_create_topic_with(const char *brokers, const char *topic, int partitions, int replication,
                            const char *const *config, int64_t timeout_ms, bool *created, char *err,
                            size_t errlen);

#endif
