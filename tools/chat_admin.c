/* chat_admin.c: main() of chat-admin. `chat-admin init` prepares a cluster's shared state so
 * gateways and persisters can start: the Kafka topic (admin API; an existing topic with the
 * same partition count is fine; a new one gets CHAT_REPLICATION replicas and CHAT_MIN_INSYNC),
 * the compacted presence topic (1 partition) and the MongoDB index room_id_desc. Idempotent;
 * each service gets CHAT_TIMEOUT seconds to answer, retrying while it starts. `chat-admin
 * describe` prints the topic's partitions with their leaders and in-sync replicas. Exit
 * status: 0 done, 1 a service was unreachable or refused, 2 bad usage or settings. The
 * settings (ps_config) and
 * the MongoDB client (ps_store) are the persister's: chat-admin links its pscore library. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_topic.h"
#include "chat_error.h"
#include "chat_log.h"
#include "chat_mongo.h"
#include "chat_store_doc.h"
#include "ps_config.h"
#include "ps_os.h"
#include "ps_store.h"

/* Waits for MongoDB (retrying until the deadline) and creates the index. */
static int init_mongo(const ps_admin_settings *s, char *err, size_t errlen)
{
    int64_t deadline = ps_os_now_ms() + s->timeout_s * 1000;
    ps_store *store = NULL;
    char uri[512];
    int rc;

    ps_mask_uri(s->mongo_uri, uri, sizeof(uri));
    if ((rc = ps_store_open(&store, s->mongo_uri, s->mongo_db, "chat-admin", err, errlen)))
        return rc;
    while ((rc = ps_store_ping(store, err, errlen)) != 0) {
        struct timespec ts = {0, 500 * 1000000L};
        if (ps_os_now_ms() + 500 > deadline) {
            char why[512];
            chat_errf(why, sizeof(why), "%s", err);
            chat_errf(err, errlen, "MongoDB at %s is unreachable within %lld s: %s", uri,
                      s->timeout_s, why);
            rc = -ETIMEDOUT;
            goto out;
        }
        chat_log(CHAT_LOG_DEBUG, "MongoDB not ready: %s", err);
        nanosleep(&ts, NULL);
    }
    if ((rc = ps_store_ensure_index(store, err, errlen)) == 0)
        chat_log(CHAT_LOG_INFO, "MongoDB %s: index %s on %s ready", s->mongo_db,
                 CHAT_STORE_INDEX_NAME, CHAT_STORE_COLLECTION);
out:
    ps_store_close(store);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: chat-admin init [options]   (chat-admin init --help lists the options)\n"
               "       chat-admin describe [options]\n"
               "       chat-admin --help | --version\n");
}

int main(int argc, char **argv)
{
    ps_admin_settings s;
    char err[1024];
    char **sub = NULL;
    bool created = false;
    int rc, status = 0;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--version") == 0) {
        rc = ps_admin_config_load(&s, argc, argv, err, sizeof(err)); /* prints them */
        return rc == 1 ? 0 : 2;
    }
    bool describe = strcmp(argv[1], "describe") == 0;
    if (strcmp(argv[1], "init") != 0 && !describe) {
        fprintf(stderr, "chat-admin: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    /* The options after "init", with the program name in front. */
    sub = calloc((size_t)argc, sizeof(*sub));
    if (!sub)
        return 1;
    sub[0] = argv[0];
    for (int i = 2; i < argc; i++)
        sub[i - 1] = argv[i];
    rc = ps_admin_config_load(&s, argc - 1, sub, err, sizeof(err));
    free(sub);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "chat-admin: %s\n", err);
        return 2;
    }
    chat_log_init("chat-admin", s.log_level);
    chat_log_set_format(s.log_format); /* checked by ps_admin_config_load */
    if (describe) {
        rc = admin_describe_topic(s.kafka_brokers, s.kafka_topic, s.timeout_s * 1000, stdout, err,
                                  sizeof(err));
        if (rc != 0)
            fprintf(stderr, "chat-admin: %s\n", err);
        return rc == 0 ? 0 : 1;
    }

    rc = admin_create_topic(s.kafka_brokers, s.kafka_topic, (int)s.partitions, (int)s.replication,
                            (int)ps_admin_min_insync(&s), s.timeout_s * 1000, &created, err,
                            sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "chat-admin: %s\n", err);
        status = 1;
    } else if (!created) {
        chat_log(CHAT_LOG_INFO, "topic %s already exists with %lld partitions", s.kafka_topic,
                 s.partitions);
    }
    rc = admin_create_topic_with(s.kafka_brokers, s.kafka_presence_topic, 1, (int)s.replication,
                                 admin_presence_config, s.timeout_s * 1000, &created, err,
                                 sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "chat-admin: %s\n", err);
        status = 1;
    } else if (!created) {
        chat_log(CHAT_LOG_INFO, "topic %s already exists", s.kafka_presence_topic);
    }
    /* the events topic: same partition count, short retention (nothing replays it) */
    char retention[32];
    snprintf(retention, sizeof(retention), "%lld", s.events_retention_ms);
    const char *const events_config[] = {"retention.ms", retention, NULL};
    rc = admin_create_topic_with(s.kafka_brokers, s.kafka_events_topic, (int)s.partitions,
                                 (int)s.replication, events_config, s.timeout_s * 1000, &created,
                                 err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "chat-admin: %s\n", err);
        status = 1;
    } else if (!created) {
        chat_log(CHAT_LOG_INFO, "topic %s already exists", s.kafka_events_topic);
    }
    chat_mongo_init();
    rc = init_mongo(&s, err, sizeof(err));
    mongoc_cleanup();
    if (rc != 0) {
        fprintf(stderr, "chat-admin: %s\n", err);
        status = 1;
    }
    if (status == 0)
        chat_log(CHAT_LOG_INFO, "init done");
    return status;
}
