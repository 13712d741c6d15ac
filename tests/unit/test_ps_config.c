/* test_ps_config.c: the persister's and chat-admin's settings: defaults from DESIGN.md,
 * environment and flags, the database taken from the MongoDB URI, refusal of bad URIs, topics
 * and log levels, and password masking for the start-up log line. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "check.h"
#include "ps_config.h"

static const char *const vars[] = {
    "CHAT_KAFKA_BROKERS", "CHAT_KAFKA_TOPIC", "CHAT_KAFKA_GROUP", "CHAT_MONGO_URI",
    "CHAT_BATCH_SIZE",    "CHAT_BATCH_MS",    "CHAT_LOG_LEVEL",   "CHAT_PARTITIONS",
    "CHAT_REPLICATION",   "CHAT_TIMEOUT",     "CHAT_SHUTDOWN_MS", "CHAT_KAFKA_SESSION_MS",
    "CHAT_MIN_INSYNC"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static void test_defaults(void)
{
    ps_settings s;
    ps_admin_settings a;
    char err[256];
    char *argv[] = {"chat-persister", NULL};

    clear_env();
    CHECK(ps_config_load(&s, 1, argv, err, sizeof(err)) == 0);
    CHECK_STR(s.kafka_brokers, "127.0.0.1:9092");
    CHECK_STR(s.kafka_topic, "chat.messages");
    CHECK_STR(s.kafka_group, "chat-persister");
    CHECK_STR(s.mongo_uri, "mongodb://127.0.0.1:27017/chat");
    CHECK_STR(s.mongo_db, "chat");
    CHECK(s.batch_size == 500);
    CHECK(s.batch_ms == 200);
    CHECK_STR(s.log_level, "info");

    CHECK(ps_admin_config_load(&a, 1, argv, err, sizeof(err)) == 0);
    CHECK(a.partitions == 12);
    CHECK(a.replication == 1);
    CHECK(a.min_insync == 0 && ps_admin_min_insync(&a) == 1);
    CHECK(a.timeout_s == 15);
    CHECK_STR(a.mongo_db, "chat");
}

static void test_overrides(void)
{
    ps_settings s;
    ps_admin_settings a;
    char err[256];
    char *argv[] = {"p",
                    "--batch-size",
                    "7",
                    "--mongo-uri=mongodb://h:1/other?appname=x",
                    "--kafka-group",
                    "g2",
                    NULL};
    char *aargv[] = {"a", "--partitions", "3", "--replication=2", NULL};

    clear_env();
    setenv("CHAT_BATCH_SIZE", "9", 1);
    setenv("CHAT_BATCH_MS", "0", 1);
    setenv("CHAT_LOG_LEVEL", "DEBUG", 1);
    CHECK(ps_config_load(&s, 6, argv, err, sizeof(err)) == 0);
    CHECK(s.batch_size == 7);
    CHECK(s.batch_ms == 0);
    CHECK_STR(s.mongo_db, "other");
    CHECK_STR(s.kafka_group, "g2");
    CHECK(ps_admin_config_load(&a, 4, aargv, err, sizeof(err)) == 0);
    CHECK(a.partitions == 3 && a.replication == 2);
    CHECK(ps_admin_min_insync(&a) == 1);

    /* min.insync.replicas: 2 of 3 replicas by default, what CHAT_MIN_INSYNC says otherwise,
     * never more than the replicas */
    char *r3[] = {"a", "--replication", "3", NULL};
    CHECK(ps_admin_config_load(&a, 3, r3, err, sizeof(err)) == 0);
    CHECK(ps_admin_min_insync(&a) == 2);
    char *r5[] = {"a", "--replication", "5", "--min-insync", "3", NULL};
    CHECK(ps_admin_config_load(&a, 5, r5, err, sizeof(err)) == 0);
    CHECK(ps_admin_min_insync(&a) == 3);
    char *bad[] = {"a", "--replication", "2", "--min-insync", "3", NULL};
    CHECK(ps_admin_config_load(&a, 5, bad, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_MIN_INSYNC") != NULL);
    setenv("CHAT_MIN_INSYNC", "1", 1);
    CHECK(ps_admin_config_load(&a, 3, r3, err, sizeof(err)) == 0);
    CHECK(ps_admin_min_insync(&a) == 1);
    clear_env();
}

static void test_refusals(void)
{
    ps_settings s;
    char err[256];

    clear_env();
    char *a1[] = {"p", "--batch-size", "0", NULL};
    CHECK(ps_config_load(&s, 3, a1, err, sizeof(err)) == CHAT_EINVAL);
    CHECK_STR(err, "CHAT_BATCH_SIZE: 0 is below the minimum 1");
    char *a2[] = {"p", "--mongo-uri", "http://nope", NULL};
    CHECK(ps_config_load(&s, 3, a2, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strncmp(err, "CHAT_MONGO_URI: ", 16) == 0);
    char *a3[] = {"p", "--kafka-topic", "bad topic", NULL};
    CHECK(ps_config_load(&s, 3, a3, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strncmp(err, "CHAT_KAFKA_TOPIC: ", 18) == 0);
    char *a4[] = {"p", "--log-level", "loud", NULL};
    CHECK(ps_config_load(&s, 3, a4, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strncmp(err, "CHAT_LOG_LEVEL: ", 16) == 0);
    char *a5[] = {"p", "--kafka-group=", NULL};
    CHECK(ps_config_load(&s, 2, a5, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strncmp(err, "CHAT_KAFKA_GROUP: ", 18) == 0);
    char *a6[] = {"p", "--partitions", "3", NULL}; /* an admin flag */
    CHECK(ps_config_load(&s, 3, a6, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "unknown option --partitions") != NULL);
}

static void test_mongo_db(void)
{
    char db[PS_DB_NAME_MAX + 1], err[256];

    CHECK(ps_config_mongo_db("mongodb://127.0.0.1:27017", db, sizeof(db), err, sizeof(err)) == 0);
    CHECK_STR(db, "chat");
    CHECK(ps_config_mongo_db("mongodb://127.0.0.1:27017/", db, sizeof(db), err, sizeof(err)) == 0);
    CHECK_STR(db, "chat");
    CHECK(ps_config_mongo_db("mongodb://u:p@a:1,b:2/prod?replicaSet=rs0", db, sizeof(db), err,
                             sizeof(err)) == 0);
    CHECK_STR(db, "prod");
    CHECK(ps_config_mongo_db("", db, sizeof(db), err, sizeof(err)) == CHAT_EINVAL);
    CHECK(ps_config_mongo_db("mongodb://h/a.b", db, sizeof(db), err, sizeof(err)) == CHAT_EINVAL);
    CHECK(ps_config_mongo_db("mongodb://h/chat", db, 3, err, sizeof(err)) == CHAT_EINVAL);
}

static void test_topic_and_mask(void)
{
    char out[128];

    CHECK(ps_valid_topic("chat.messages"));
    CHECK(ps_valid_topic("a-b_c.1"));
    CHECK(!ps_valid_topic(""));
    CHECK(!ps_valid_topic("."));
    CHECK(!ps_valid_topic(".."));
    CHECK(!ps_valid_topic("a/b"));
    CHECK(!ps_valid_topic(NULL));

    ps_mask_uri("mongodb://user:secret@db:27017/chat", out, sizeof(out));
    CHECK_STR(out, "mongodb://user:***@db:27017/chat");
    CHECK(strstr(out, "secret") == NULL);
    ps_mask_uri("mongodb://db:27017/chat", out, sizeof(out));
    CHECK_STR(out, "mongodb://db:27017/chat");
    ps_mask_uri("mongodb://user@db/chat", out, sizeof(out));
    CHECK_STR(out, "mongodb://user@db/chat");
    ps_mask_uri("mongodb://db:1/chat?authMechanismProperties=a:b@c", out, sizeof(out));
    CHECK_STR(out, "mongodb://db:1/chat?authMechanismProperties=a:b@c");
    ps_mask_uri("mongodb://u:pw@h", out, 8); /* truncation still terminates */
    CHECK(strlen(out) == 7);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_overrides);
    RUN(test_refusals);
    RUN(test_mongo_db);
    RUN(test_topic_and_mask);
    clear_env();
    return check_summary();
}
