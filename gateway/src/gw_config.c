/* gw_config.c: the gateway's settings table, and the checks that need more than one setting
 * (the listen address, the JWT key material, the node id default). */
#define _DEFAULT_SOURCE /* gethostname, strncasecmp, strdup, pipe, clock_gettime */
#include "gw_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_config.h"
#include "chat_error.h"
#include "chat_validate.h"

#define S(f) offsetof(gw_settings, f)

static const chat_cfg_entry gw_table[] = {
    {"CHAT_LISTEN", CHAT_CFG_STR, "0.0.0.0:8081", 0, 0, S(listen), "address:port to listen on"},
    {"CHAT_NODE_ID", CHAT_CFG_STR, NULL, 0, 0, S(node_id),
     "node id reported in welcome; unset: the host name"},
    {"CHAT_KAFKA_BROKERS", CHAT_CFG_STR, "127.0.0.1:9092", 0, 0, S(kafka_brokers),
     "Kafka bootstrap servers"},
    {"CHAT_KAFKA_TOPIC", CHAT_CFG_STR, "chat.messages", 0, 0, S(kafka_topic), "Kafka topic"},
    {"CHAT_KAFKA_PRESENCE_TOPIC", CHAT_CFG_STR, "chat.presence", 0, 0, S(kafka_presence_topic),
     "compacted Kafka topic carrying presence between the gateways"},
    {"CHAT_PRESENCE_MAX_ENTRIES", CHAT_CFG_INT, "1000000", 1000, 100000000, S(presence_max_entries),
     "(room, user) presence entries a gateway keeps for the whole cluster; past it, new ones "
     "are not counted"},
    {"CHAT_KAFKA_EVENTS_TOPIC", CHAT_CFG_STR, "chat.events", 0, 0, S(kafka_events_topic),
     "Kafka topic of ephemeral cluster events (typing, read state; never stored)"},
    {"CHAT_MONGO_URI", CHAT_CFG_STR, "mongodb://127.0.0.1:27017/chat", 0, 0, S(mongo_uri),
     "MongoDB URI; the database is the path (default chat)"},
    {"CHAT_MONGO_WORKERS", CHAT_CFG_INT, "2", 1, 64, S(mongo_workers),
     "threads doing MongoDB reads"},
    {"CHAT_JWT_ALG", CHAT_CFG_STR, "HS256", 0, 0, S(jwt_alg),
     "accepted JWT algorithm: HS256, RS256 or ES256"},
    {"CHAT_JWT_SECRET", CHAT_CFG_STR, NULL, 0, 0, S(jwt_secret),
     "HS256 shared secret (at least 16 bytes)"},
    {"CHAT_JWT_PUBLIC_KEY", CHAT_CFG_STR, NULL, 0, 0, S(jwt_public_key),
     "PEM public key file for RS256/ES256"},
    {"CHAT_JWT_JWKS", CHAT_CFG_STR, NULL, 0, 0, S(jwt_jwks),
     "JSON Web Key Set file for RS256/ES256 (instead of CHAT_JWT_PUBLIC_KEY): the token's kid "
     "picks the key; read again when the file changes or on SIGHUP"},
    {"CHAT_JWT_ISSUER", CHAT_CFG_STR, NULL, 0, 0, S(jwt_issuer), "required iss claim, if set"},
    {"CHAT_JWT_AUDIENCE", CHAT_CFG_STR, NULL, 0, 0, S(jwt_audience), "required aud claim, if set"},
    {"CHAT_JWT_LEEWAY", CHAT_CFG_INT, "30", 0, 3600, S(jwt_leeway),
     "seconds of clock skew allowed on exp and nbf"},
    {"CHAT_AUTH_TIMEOUT", CHAT_CFG_INT, "10", 1, 300, S(auth_timeout),
     "seconds a client has to send the first-frame auth"},
    {"CHAT_TLS_CERT", CHAT_CFG_STR, NULL, 0, 0, S(tls_cert),
     "PEM certificate chain: serve https and wss on CHAT_LISTEN (with CHAT_TLS_KEY)"},
    {"CHAT_TLS_KEY", CHAT_CFG_STR, NULL, 0, 0, S(tls_key), "PEM private key of CHAT_TLS_CERT"},
    {"CHAT_WEB_ROOT", CHAT_CFG_STR, NULL, 0, 0, S(web_root),
     "directory of the web client (unset: not served)"},
    {"CHAT_ALLOWED_ORIGINS", CHAT_CFG_STR, NULL, 0, 0, S(allowed_origins),
     "browser origins allowed to open a WebSocket: a comma list of scheme://host[:port], or *; "
     "unset: the gateway's own (the Host the page was loaded from)"},
    {"CHAT_DEV_TOKENS", CHAT_CFG_BOOL, "false", 0, 0, S(dev_tokens),
     "serve GET /dev/token (development sign-in; never in production)"},
    {"CHAT_MAX_TEXT", CHAT_CFG_INT, "4096", 1, 65536, S(max_text), "bytes of message text"},
    {"CHAT_MAX_FRAME", CHAT_CFG_INT, "65536", 1024, 1048576, S(max_frame),
     "bytes of a client frame; larger closes with 1009"},
    {"CHAT_MAX_HANDSHAKES", CHAT_CFG_INT, "64", 1, 65535, S(max_handshakes),
     "HTTP requests (WebSocket upgrades included) whose headers are read at once, each holding "
     "a 12 KiB header buffer until it is answered; more connections wait their turn"},
    {"CHAT_MAX_ROOMS", CHAT_CFG_INT, "100", 1, 10000, S(max_rooms), "rooms one session may join"},
    {"CHAT_MAX_USER_CONNS", CHAT_CFG_INT, "20", 0, 1000000, S(max_user_conns),
     "connections one user may have across the cluster; the next closes with 4029 (0: no "
     "limit)"},
    {"CHAT_HISTORY_LIMIT", CHAT_CFG_INT, "50", 1, 200, S(history_limit),
     "messages a join returns when it gives no limit (a join or history asks at most 200)"},
    {"CHAT_RESUME_MAX", CHAT_CFG_INT, "1000", 1, 10000, S(resume_max),
     "messages a resuming join (since) may carry; more missed answers recovered:false"},
    {"CHAT_RATE", CHAT_CFG_INT, "20", 1, 1000000, S(rate), "frames per second per connection"},
    {"CHAT_RATE_BURST", CHAT_CFG_INT, "50", 1, 1000000, S(rate_burst),
     "frames a connection may send in a burst"},
    {"CHAT_SEND_QUEUE", CHAT_CFG_INT, "1024", 1, 1000000, S(send_queue),
     "replies (acks, answers, errors) queued per connection before it is closed with 4008"},
    {"CHAT_SEND_QUEUE_BYTES", CHAT_CFG_INT, "4194304", 1024, 1073741824, S(send_queue_bytes),
     "bytes of replies queued per connection before it is closed with 4008"},
    {"CHAT_PING_INTERVAL", CHAT_CFG_INT, "30", 1, 3600, S(ping_interval),
     "seconds between WebSocket pings; idle connections close after twice that"},
    {"CHAT_LOG_BYTES", CHAT_CFG_INT, "67108864", 65536, 17179869184LL, S(log_bytes),
     "bytes of recent messages kept in memory (the room logs): joins, resumes and slow readers "
     "are served from them"},
    {"CHAT_LOG_WARM", CHAT_CFG_INT, "5000", 0, 10000000, S(log_warm),
     "records per partition read into the room logs at start, before the gateway is ready"},
    {"CHAT_PERSISTER_GROUP", CHAT_CFG_STR, "chat-persister", 0, 0, S(persister_group),
     "the persisters' consumer group (its committed offsets say what the store holds)"},
    {"CHAT_COALESCE_MS", CHAT_CFG_INT, "0", 0, 1000, S(coalesce_ms),
     "a room whose members were sent to less than this many ms ago waits that long, so that "
     "its messages go out several per write: less CPU per delivery, more latency (0: at once)"},
    {"CHAT_KAFKA_LINGER_MS", CHAT_CFG_INT, "0", 0, 1000, S(kafka_linger_ms),
     "how long a send may wait in the producer for others to share its Kafka request "
     "(linger.ms); 0: none, since with one request in flight per broker the sends that arrive "
     "while one is on its way already share the next"},
    {"CHAT_DRAIN_MS", CHAT_CFG_INT, "5000", 0, 600000, S(drain_ms),
     "at SIGTERM: new upgrades get 503, /healthz and /readyz 503, and the clients here are "
     "served until they are quiet and every message they sent has its ack, at most this long; "
     "then each is written what it is owed and closed with 1001 (within 3 s more)"},
    {"CHAT_EVENT_LOOP", CHAT_CFG_STR, "epoll", 0, 0, S(event_loop),
     "epoll (libev's epoll backend: cost per wake-up independent of idle connections) or poll "
     "(libwebsockets' own poll() over every descriptor)"},
    {"CHAT_STATS_INTERVAL", CHAT_CFG_INT, "60", 1, 86400, S(stats_interval),
     "seconds between stats lines in the log (also served at /metrics)"},
    {"CHAT_LOG_LEVEL", CHAT_CFG_STR, "info", 0, 0, S(log_level), "debug, info, warn or error"},
    {"CHAT_LOG_FORMAT", CHAT_CFG_STR, "text", 0, 0, S(log_format),
     "text (one line per event) or json (one JSON object per line)"},
};

static const char gw_usage[] = "usage: chat-gateway [options]\n"
                               "The chat gateway: WebSocket clients in, Kafka out and back.\n"
                               "Every option can also be given as its environment variable.";

static int parse_listen(gw_settings *s, char *err, size_t errlen)
{
    const char *colon = strrchr(s->listen, ':');
    if (!colon || (size_t)(colon - s->listen) >= sizeof(s->host)) {
        chat_errf(err, errlen, "CHAT_LISTEN: \"%s\" is not address:port", s->listen);
        return CHAT_EINVAL;
    }
    memcpy(s->host, s->listen, (size_t)(colon - s->listen));
    s->host[colon - s->listen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
        chat_errf(err, errlen, "CHAT_LISTEN: port in \"%s\" is not 1..65535", s->listen);
        return CHAT_EINVAL;
    }
    s->port = (int)port;
    return 0;
}

int gw_settings_load(gw_settings *s, int argc, char **argv, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    int rc = chat_config_load(gw_table, sizeof(gw_table) / sizeof(gw_table[0]), s, argc, argv,
                              gw_usage, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = parse_listen(s, err, errlen)) != 0)
        return rc;
    if (!s->node_id || !*s->node_id) {
        if (gethostname(s->node_id_buf, sizeof(s->node_id_buf) - 1) != 0)
            snprintf(s->node_id_buf, sizeof(s->node_id_buf), "gateway");
        s->node_id = s->node_id_buf;
    }
    if (strlen(s->node_id) > 63 || !chat_valid_cid(s->node_id, strlen(s->node_id))) {
        chat_errf(err, errlen, "CHAT_NODE_ID: must be 1..63 printable ASCII characters");
        return CHAT_EINVAL;
    }
    if (strcmp(s->kafka_events_topic, "") == 0 ||
        strcmp(s->kafka_events_topic, s->kafka_topic) == 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_EVENTS_TOPIC: must be set and differ from CHAT_KAFKA_TOPIC");
        return CHAT_EINVAL;
    }
    if (strcmp(s->kafka_topic, "") == 0) {
        chat_errf(err, errlen, "CHAT_KAFKA_TOPIC: must not be empty");
        return CHAT_EINVAL;
    }
    if (!chat_valid_charset(s->kafka_presence_topic, strlen(s->kafka_presence_topic), 249, "._-") ||
        strcmp(s->kafka_presence_topic, s->kafka_topic) == 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_PRESENCE_TOPIC: must be a topic name ([A-Za-z0-9._-]) other than "
                  "CHAT_KAFKA_TOPIC");
        return CHAT_EINVAL;
    }
    if (s->dev_tokens && strcmp(s->jwt_alg, "HS256") != 0) {
        chat_errf(err, errlen, "CHAT_DEV_TOKENS: needs CHAT_JWT_ALG=HS256");
        return CHAT_EINVAL;
    }
    if (strcmp(s->event_loop, "epoll") != 0 && strcmp(s->event_loop, "poll") != 0) {
        chat_errf(err, errlen, "CHAT_EVENT_LOOP: must be epoll or poll");
        return CHAT_EINVAL;
    }
    bool has_cert = s->tls_cert && *s->tls_cert, has_key = s->tls_key && *s->tls_key;
    if (has_cert != has_key) {
        chat_errf(err, errlen, "%s: CHAT_TLS_CERT and CHAT_TLS_KEY go together (both or neither)",
                  has_cert ? "CHAT_TLS_KEY" : "CHAT_TLS_CERT");
        return CHAT_EINVAL;
    }
    if (!has_cert)
        s->tls_cert = s->tls_key = NULL;
    if (s->rate_burst < 1) {
        chat_errf(err, errlen, "CHAT_RATE_BURST: must be at least 1");
        return CHAT_EINVAL;
    }
    return 0;
}
