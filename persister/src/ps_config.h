/* ps_config.h: the settings of chat-persister and chat-admin (tables of chat_config.h) and
 * the checks that need more than one field (the MongoDB URI and its database, the topic).
 * Call from main() before any thread starts. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define PS_DB_NAME_MAX 63

typedef struct ps_settings {
    const char *kafka_brokers;
    const char *kafka_topic;
    const char *kafka_group;
    long long kafka_session_ms;
    const char *mongo_uri;
    long long batch_size;
    long long batch_ms;
    long long shutdown_ms;
    long long copy_window;
    const char *log_level;
    const char *log_format;
    const char *metrics_listen;        /* "host:port" or "off" */
    char mongo_db[PS_DB_NAME_MAX + 1]; /* derived: the URI's database, default "chat" */
} ps_settings;

typedef struct ps_admin_settings {
    const char *kafka_brokers;
    const char *kafka_topic;
    const char *kafka_presence_topic;
    const char *kafka_events_topic;
    long long events_retention_ms;
    const char *mongo_uri;
    long long partitions;
    long long replication;
    long long min_insync; /* 0: ps_admin_min_insync picks */
    long long timeout_s;
    const char *log_level;
    const char *log_format;
    char mongo_db[PS_DB_NAME_MAX + 1];
} ps_admin_settings;

/* Load and check the settings (env, then argv). Returns 0 to run, 1 when --help/--version was
 * printed, or CHAT_EINVAL with "CHAT_FOO: reason" in err. Strings point into the environment,
 * argv or static defaults. */
int ps_config_load(ps_settings *s, int argc, char **argv, char *err, size_t errlen);
int ps_admin_config_load(ps_admin_settings *s, int argc, char **argv, char *err, size_t errlen);

/* The topic's min.insync.replicas: CHAT_MIN_INSYNC, or when it is 0, 2 for a replication
 * factor of 3 or more (one replica may be lost without refusing a write) and 1 below. */
long long ps_admin_min_insync(const ps_admin_settings *s);

/* The database named by a MongoDB URI's path ("chat" when it names none) into out.
 * Returns 0 or CHAT_EINVAL with a reason naming CHAT_MONGO_URI. */
int ps_config_mongo_db(const char *uri, char *out, size_t outlen, char *err, size_t errlen);

/* uri with its password (if any) replaced by "***", for logs; always NUL-terminates out. */
void ps_mask_uri(const char *uri, char *out, size_t outlen);

/* Kafka topic names: [A-Za-z0-9._-]{1,249}. */
bool ps_valid_topic(const char *s);

#endif
