/* gw_config.h: the gateway's settings (environment CHAT_* and matching flags; see --help and
 * the README's table). Loaded once in main() before any thread starts; read-only afterwards,
 * so any thread may read it. Strings point into the environment, argv or static defaults. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_settings {
    const char *listen;
    const char *node_id;
    const char *kafka_brokers;
    const char *kafka_topic;
    const char *kafka_presence_topic;
    long long presence_max_entries;
    const char *kafka_events_topic;
    const char *mongo_uri;
    long long mongo_workers;
    const char *jwt_alg;
    const char *jwt_secret;
    const char *jwt_public_key;
    const char *jwt_jwks;
    const char *jwt_issuer;
    const char *jwt_audience;
    long long jwt_leeway;
    long long auth_timeout;
    const char *tls_cert; /* both or neither */
    const char *tls_key;
    const char *web_root;
    const char *allowed_origins;
    bool dev_tokens;
    long long max_text;
    long long max_frame;
    long long max_handshakes;
    long long max_rooms;
    long long max_user_conns;
    long long history_limit;
    long long rate;
    long long rate_burst;
    long long send_queue;
    long long send_queue_bytes;
    long long ping_interval;
    long long resume_max;
    long long log_bytes;
    long long log_warm;
    long long stats_interval;
    long long coalesce_ms;
    long long kafka_linger_ms;
    long long drain_ms;
    const char *persister_group;
    const char *event_loop; /* "epoll" or "poll" */
    const char *log_level;
    const char *log_format;

    /* derived by gw_settings_load */
    char host[256]; /* from listen */
    int port;
    char node_id_buf[64];
} gw_settings;

/* Returns 0 to run, 1 when --help was printed, CHAT_EINVAL with err naming the setting. */
int gw_settings_load(gw_settings *s, int argc, char **argv, char *err, size_t errlen);

#endif
