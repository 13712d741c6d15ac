/* ps_config.c: the settings tables of chat-persister and chat-admin, and the checks that
 * chat_config cannot do alone: a parseable MongoDB URI with a usable database name, a valid
 * Kafka topic name, a known log level. */
#include "ps_config.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chat_config.h"
#include "chat_error.h"
#include "chat_store_doc.h"
#include "chat_validate.h"
#include "ps_http.h"

#define S(f) offsetof(ps_settings, f)
#define A(f) offsetof(ps_admin_settings, f)

static const chat_cfg_entry ps_table[] = {
    {"CHAT_KAFKA_BROKERS", CHAT_CFG_STR, "127.0.0.1:9092", 0, 0, S(kafka_brokers),
     "Kafka bootstrap servers (host:port,...)"},
    {"CHAT_KAFKA_TOPIC", CHAT_CFG_STR, "chat.messages", 0, 0, S(kafka_topic),
     "Kafka topic to persist"},
    {"CHAT_KAFKA_GROUP", CHAT_CFG_STR, "chat-persister", 0, 0, S(kafka_group),
     "Kafka consumer group shared by all persister instances"},
    {"CHAT_KAFKA_SESSION_MS", CHAT_CFG_INT, "10000", 6000, 300000, S(kafka_session_ms),
     "consumer group session timeout in ms (how soon a dead instance's partitions move)"},
    {"CHAT_MONGO_URI", CHAT_CFG_STR, "mongodb://127.0.0.1:27017/chat", 0, 0, S(mongo_uri),
     "MongoDB URI; its path names the database (chat when absent)"},
    {"CHAT_BATCH_SIZE", CHAT_CFG_INT, "500", 1, 100000, S(batch_size),
     "messages stored per insert_many at most"},
    {"CHAT_BATCH_MS", CHAT_CFG_INT, "200", 0, 60000, S(batch_ms),
     "ms a message may wait for its batch to fill before it is stored"},
    {"CHAT_COPY_WINDOW", CHAT_CFG_INT, "100000", 0, 10000000, S(copy_window),
     "recent sends remembered by (room, sender, cid), so that a second record of one send "
     "(Kafka wrote a send it refused, then the retry) is not stored; 0: off"},
    {"CHAT_SHUTDOWN_MS", CHAT_CFG_INT, "10000", 0, 600000, S(shutdown_ms),
     "ms to keep retrying the last batch at SIGTERM before leaving it for replay"},
    {"CHAT_LOG_LEVEL", CHAT_CFG_STR, "info", 0, 0, S(log_level), "debug, info, warn or error"},
    {"CHAT_LOG_FORMAT", CHAT_CFG_STR, "text", 0, 0, S(log_format),
     "text (one line per event) or json (one JSON object per line)"},
    {"CHAT_METRICS_LISTEN", CHAT_CFG_STR, "127.0.0.1:9464", 0, 0, S(metrics_listen),
     "address:port of the HTTP listener serving GET /metrics, or off"},
};

static const char ps_usage[] =
    "usage: chat-persister [options]\n"
    "Stores every chat message from Kafka in MongoDB (consumer group; offsets are committed\n"
    "only after a batch is stored). Every option can also be given as its environment variable.";

static const chat_cfg_entry admin_table[] = {
    {"CHAT_KAFKA_BROKERS", CHAT_CFG_STR, "127.0.0.1:9092", 0, 0, A(kafka_brokers),
     "Kafka bootstrap servers (host:port,...)"},
    {"CHAT_KAFKA_TOPIC", CHAT_CFG_STR, "chat.messages", 0, 0, A(kafka_topic),
     "Kafka topic to create"},
    {"CHAT_KAFKA_PRESENCE_TOPIC", CHAT_CFG_STR, "chat.presence", 0, 0, A(kafka_presence_topic),
     "compacted Kafka topic of the gateways' presence to create (1 partition)"},
    {"CHAT_KAFKA_EVENTS_TOPIC", CHAT_CFG_STR, "chat.events", 0, 0, A(kafka_events_topic),
     "Kafka topic of ephemeral cluster events (typing, read state) to create"},
    {"CHAT_EVENTS_RETENTION_MS", CHAT_CFG_INT, "3600000", 60000, 604800000, A(events_retention_ms),
     "retention.ms of the events topic when it is created"},
    {"CHAT_MONGO_URI", CHAT_CFG_STR, "mongodb://127.0.0.1:27017/chat", 0, 0, A(mongo_uri),
     "MongoDB URI; its path names the database (chat when absent)"},
    {"CHAT_PARTITIONS", CHAT_CFG_INT, "12", 1, 10000, A(partitions),
     "partitions of the topic (fixed once created)"},
    {"CHAT_REPLICATION", CHAT_CFG_INT, "1", 1, 32767, A(replication),
     "replication factor of the topic"},
    {"CHAT_MIN_INSYNC", CHAT_CFG_INT, "0", 0, 32767, A(min_insync),
     "min.insync.replicas of the topic: replicas that must hold a message before it is acked "
     "(the gateways produce with acks=all); 0: 2 when the replication factor is 3 or more, "
     "else 1"},
    {"CHAT_TIMEOUT", CHAT_CFG_INT, "15", 1, 600, A(timeout_s),
     "seconds to wait for Kafka and MongoDB to answer (retrying while they start)"},
    {"CHAT_LOG_LEVEL", CHAT_CFG_STR, "info", 0, 0, A(log_level), "debug, info, warn or error"},
    {"CHAT_LOG_FORMAT", CHAT_CFG_STR, "text", 0, 0, A(log_format),
     "text (one line per event) or json (one JSON object per line)"},
};

static const char admin_usage[] =
    "usage: chat-admin init|describe [options]\n"
    "init: creates the Kafka topic (an existing topic with the same partition count is fine),\n"
    "      the compacted presence topic (1 partition),\n"
    "      the events topic (short retention)\n"
    "      and the MongoDB index " CHAT_STORE_INDEX_NAME " on " CHAT_STORE_COLLECTION
    ". Idempotent.\n"
    "describe: prints the topic's min.insync.replicas and each partition's leader, replicas\n"
    "      and in-sync replicas (Kafka metadata); exit status 1 when Kafka does not answer.\n"
    "Every option can also be given as its environment variable.";

bool ps_valid_topic(const char *s)
{
    return s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
           chat_valid_charset(s, strlen(s), 249, "._-");
}

int ps_config_mongo_db(const char *uri, char *out, size_t outlen, char *err, size_t errlen)
{
    bson_error_t berr;
    mongoc_uri_t *u = NULL;
    const char *db;
    int rc = 0;

    if (!uri || !uri[0]) {
        chat_errf(err, errlen, "CHAT_MONGO_URI: empty");
        return CHAT_EINVAL;
    }
    u = mongoc_uri_new_with_error(uri, &berr);
    if (!u) {
        chat_errf(err, errlen, "CHAT_MONGO_URI: %s", berr.message);
        return CHAT_EINVAL;
    }
    db = mongoc_uri_get_database(u);
    if (!db || !db[0])
        db = "chat";
    if (strlen(db) >= outlen || strlen(db) > PS_DB_NAME_MAX || strpbrk(db, "/\\. \"$")) {
        chat_errf(err, errlen, "CHAT_MONGO_URI: \"%s\" is not a usable database name", db);
        rc = CHAT_EINVAL;
        goto out;
    }
    memcpy(out, db, strlen(db) + 1);
out:
    mongoc_uri_destroy(u);
    return rc;
}

void ps_mask_uri(const char *uri, char *out, size_t outlen)
{
    const char *host, *at, *colon, *slash;

    if (!out || outlen == 0)
        return;
    snprintf(out, outlen, "%s", uri ? uri : "");
    host = uri ? strstr(uri, "://") : NULL;
    if (!host)
        return;
    host += 3;
    slash = strchr(host, '/');
    at = strchr(host, '@');
    if (!at || (slash && slash < at))
        return; /* no credentials */
    colon = memchr(host, ':', (size_t)(at - host));
    if (!colon)
        return; /* a user name only */
    snprintf(out, outlen, "%.*s***%s", (int)(colon + 1 - uri), uri, at);
}

static int check_common(const char *brokers, const char *topic, const char *uri, const char *level,
                        const char *format, char *db, size_t dblen, char *err, size_t errlen)
{
    if (!format || (strcasecmp(format, "text") != 0 && strcasecmp(format, "json") != 0)) {
        chat_errf(err, errlen, "CHAT_LOG_FORMAT: \"%s\" is not text or json", format ? format : "");
        return CHAT_EINVAL;
    }
    if (!brokers || !brokers[0]) {
        chat_errf(err, errlen, "CHAT_KAFKA_BROKERS: empty");
        return CHAT_EINVAL;
    }
    if (!ps_valid_topic(topic)) {
        chat_errf(err, errlen, "CHAT_KAFKA_TOPIC: \"%s\" is not a valid topic name",
                  topic ? topic : "");
        return CHAT_EINVAL;
    }
    if (!level || (strcasecmp(level, "debug") != 0 && strcasecmp(level, "info") != 0 &&
                   strcasecmp(level, "warn") != 0 && strcasecmp(level, "error") != 0)) {
        chat_errf(err, errlen, "CHAT_LOG_LEVEL: \"%s\" is not debug, info, warn or error",
                  level ? level : "");
        return CHAT_EINVAL;
    }
    return ps_config_mongo_db(uri, db, dblen, err, errlen);
}

int ps_config_load(ps_settings *s, int argc, char **argv, char *err, size_t errlen)
{
    int rc;

    memset(s, 0, sizeof(*s));
    rc = chat_config_load(ps_table, sizeof(ps_table) / sizeof(ps_table[0]), s, argc, argv, ps_usage,
                          err, errlen);
    if (rc != 0)
        return rc;
    if (!s->kafka_group || !s->kafka_group[0]) {
        chat_errf(err, errlen, "CHAT_KAFKA_GROUP: empty");
        return CHAT_EINVAL;
    }
    char host[256], port[8];
    if (!s->metrics_listen ||
        (strcmp(s->metrics_listen, "off") != 0 &&
         ps_http_parse_listen(s->metrics_listen, host, sizeof(host), port, sizeof(port)) != 0)) {
        chat_errf(err, errlen, "CHAT_METRICS_LISTEN: \"%s\" is not host:port or off",
                  s->metrics_listen ? s->metrics_listen : "");
        return CHAT_EINVAL;
    }
    return check_common(s->kafka_brokers, s->kafka_topic, s->mongo_uri, s->log_level, s->log_format,
                        s->mongo_db, sizeof(s->mongo_db), err, errlen);
}

int ps_admin_config_load(ps_admin_settings *s, int argc, char **argv, char *err, size_t errlen)
{
    int rc;

    memset(s, 0, sizeof(*s));
    rc = chat_config_load(admin_table, sizeof(admin_table) / sizeof(admin_table[0]), s, argc, argv,
                          admin_usage, err, errlen);
    if (rc != 0)
        return rc;
    if (!ps_valid_topic(s->kafka_presence_topic) ||
        strcmp(s->kafka_presence_topic, s->kafka_topic) == 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_PRESENCE_TOPIC: \"%s\" is not a valid topic name other than "
                  "CHAT_KAFKA_TOPIC",
                  s->kafka_presence_topic ? s->kafka_presence_topic : "");
        return CHAT_EINVAL;
    }
    if (s->min_insync > s->replication) {
        chat_errf(err, errlen,
                  "CHAT_MIN_INSYNC: %lld is more than the replication factor %lld (no write "
                  "could succeed)",
                  s->min_insync, s->replication);
        return CHAT_EINVAL;
    }
    if (!ps_valid_topic(s->kafka_events_topic) ||
        strcmp(s->kafka_events_topic, s->kafka_topic) == 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_EVENTS_TOPIC: \"%s\" is not a valid topic name distinct from "
                  "CHAT_KAFKA_TOPIC",
                  s->kafka_events_topic ? s->kafka_events_topic : "");
        return CHAT_EINVAL;
    }
    return check_common(s->kafka_brokers, s->kafka_topic, s->mongo_uri, s->log_level, s->log_format,
                        s->mongo_db, sizeof(s->mongo_db), err, errlen);
}

long long ps_admin_min_insync(const ps_admin_settings *s)
{
    if (s->min_insync > 0)
        return s->min_insync;
    return s->replication >= 3 ? 2 : 1;
}
