/* admin_topic.c: Kafka topic creation for chat-admin with librdkafka's admin API; see
 * admin_topic.h. The broker may still be starting (connection refused, or a KRaft broker not yet
 * registered, which refuses replication factors it cannot place): those errors are retried
 * until the deadline, and only the last one is reported. */
#define _POSIX_C_SOURCE 200809L
#include "admin_topic.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat_error.h"
#include "chat_log.h"
#include "ps_os.h"

#define ADMIN_RETRY_MS 500
#define ADMIN_METADATA_MS 2000

static void admin_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* Connection failures while the broker starts are expected: keep them at debug. */
    chat_log(CHAT_LOG_DEBUG, "kafka %s: %s", fac, buf);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The admin client (a producer handle: it only asks for metadata and creates topics). Returns
 * 0 with *out set, -ENOMEM, or CHAT_EINVAL with err naming CHAT_KAFKA_BROKERS. */
static int admin_client(const char *brokers, rd_kafka_t **out, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[256];

    *out = NULL;
    if (!conf) {
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "client.id", "chat-admin", e, sizeof(e))) {
        chat_errf(err, errlen, "CHAT_KAFKA_BROKERS: %s", e);
        rd_kafka_conf_destroy(conf);
        return CHAT_EINVAL;
    }
    rd_kafka_conf_set_log_cb(conf, admin_log_cb);
    *out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!*out) {
        chat_errf(err, errlen, "kafka: %s", e);
        rd_kafka_conf_destroy(conf);
        return CHAT_EINVAL;
    }
    return 0;
}

static int64_t remaining(int64_t deadline)
{
    int64_t r = deadline - ps_os_now_ms();
    return r > 0 ? r : 0;
}

/* Partition count of topic per fresh metadata: >= 0, -1 when the topic does not exist, or a
 * rd_kafka_resp_err_t (as -1000 - err) when metadata could not be fetched. *leaders_ok tells
 * whether every partition has a leader. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int64_t timeout_ms, bool *leaders_ok,
                            rd_kafka_resp_err_t *kerr)
{
    const struct rd_kafka_metadata *md = NULL;
    int count = -1;

    *leaders_ok = false;
    *kerr = rd_kafka_metadata(rk, 1, NULL, &md, (int)(timeout_ms > 0 ? timeout_ms : 1));
    if (*kerr)
        return -2;
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0 || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        count = t->partition_cnt;
        *leaders_ok = count > 0;
        for (int k = 0; k < t->partition_cnt; k++)
            if (t->partitions[k].leader < 0)
                *leaders_ok = false;
    }
    rd_kafka_metadata_destroy(md);
    return count;
}

static bool permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return true;
    default:
        return false;
    }
}

/* One CreateTopics request. Returns the topic's error code; msg gets the broker's text. */
static rd_kafka_resp_err_t create_once(rd_kafka_t *rk, const char *topic, int partitions,
                                       int replication, const char *const *config,
                                       int64_t timeout_ms, char *msg, size_t msglen)
{
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR__TIMED_OUT;
    char e[256];

    snprintf(msg, msglen, "no answer");
    nt = rd_kafka_NewTopic_new(topic, partitions, replication, e, sizeof(e));
    if (!nt) {
        snprintf(msg, msglen, "%s", e);
        return RD_KAFKA_RESP_ERR_INVALID_PARTITIONS;
    }
    for (size_t i = 0; config && config[i] && config[i + 1]; i += 2)
        if (rd_kafka_NewTopic_set_config(nt, config[i], config[i + 1])) {
            snprintf(msg, msglen, "cannot set %s", config[i]);
            rd_kafka_NewTopic_destroy(nt);
            return RD_KAFKA_RESP_ERR_INVALID_CONFIG;
        }
    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (!q || !opts)
        goto out;
    rd_kafka_AdminOptions_set_request_timeout(opts, (int)timeout_ms, e, sizeof(e));
    rd_kafka_AdminOptions_set_operation_timeout(opts, (int)timeout_ms, e, sizeof(e));
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = rd_kafka_queue_poll(q, (int)timeout_ms + 1000);
    if (!ev)
        goto out;
    rc = rd_kafka_event_error(ev);
    if (rc) {
        snprintf(msg, msglen, "%s", rd_kafka_event_error_string(ev));
        goto out;
    }
    {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        if (!tr || n < 1) {
            snprintf(msg, msglen, "empty CreateTopics result");
            rc = RD_KAFKA_RESP_ERR__BAD_MSG;
            goto out;
        }
        rc = rd_kafka_topic_result_error(tr[0]);
        snprintf(msg, msglen, "%s",
                 rd_kafka_topic_result_error_string(tr[0])
                     ? rd_kafka_topic_result_error_string(tr[0])
                     : rd_kafka_err2str(rc));
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

const char *const admin_presence_config[] = {
    "cleanup.policy", "compact",
    /* roll and clean segments within minutes (the defaults wait for 1 GiB or 7 days) */
    "segment.ms", "600000", "min.cleanable.dirty.ratio", "0.1",
    /* tombstones are kept an hour, then removed: a reader catching up sees the withdrawals
     * that are recent enough to matter (older keys are gone by then) */
    "delete.retention.ms", "3600000", NULL};

int admin_create_topic(const char *brokers, const char *topic, int partitions, int replication,
                       int min_insync, int64_t timeout_ms, bool *created, char *err, size_t errlen)
{
    char isr[16];
    snprintf(isr, sizeof(isr), "%d", min_insync);
    const char *const config[] = {"min.insync.replicas", isr, NULL};
    return admin_create_topic_with(brokers, topic, partitions, replication, config, timeout_ms,
                                   created, err, errlen);
}

int admin_create_topic_with(const char *brokers, const char *topic, int partitions, int replication,
                            const char *const *config, int64_t timeout_ms, bool *created, char *err,
                            size_t errlen)
{
    int64_t deadline = ps_os_now_ms() + timeout_ms;
    rd_kafka_t *rk = NULL;
    char e[256], last[512] = "no answer";
    bool reached = false;
    int rc;

    *created = false;
    if ((rc = admin_client(brokers, &rk, err, errlen)) != 0)
        return rc;
    for (;;) {
        rd_kafka_resp_err_t kerr;
        bool leaders;
        int64_t left = remaining(deadline);
        int have;

        if (left == 0) {
            chat_errf(err, errlen, "Kafka at %s %s within %lld s: %s", brokers,
                      reached ? "did not create the topic" : "is unreachable",
                      (long long)(timeout_ms / 1000), last);
            rc = -ETIMEDOUT;
            goto out;
        }
        have = topic_partitions(rk, topic, left < ADMIN_METADATA_MS ? left : ADMIN_METADATA_MS,
                                &leaders, &kerr);
        if (have == -2) {
            snprintf(last, sizeof(last), "%s", rd_kafka_err2str(kerr));
            sleep_ms(remaining(deadline) < ADMIN_RETRY_MS ? remaining(deadline) : ADMIN_RETRY_MS);
            continue;
        }
        reached = true;
        if (have >= 0) {
            if (have != partitions) {
                chat_errf(err, errlen,
                          "topic %s already exists with %d partitions, not %d (the partition "
                          "count cannot be changed safely: room order depends on it)",
                          topic, have, partitions);
                rc = CHAT_EINVAL;
                goto out;
            }
            if (leaders)
                goto out; /* exists and ready */
            snprintf(last, sizeof(last), "partitions of %s have no leader yet", topic);
            sleep_ms(remaining(deadline) < ADMIN_RETRY_MS ? remaining(deadline) : ADMIN_RETRY_MS);
            continue;
        }
        kerr = create_once(rk, topic, partitions, replication, config, remaining(deadline), e,
                           sizeof(e));
        if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_log(CHAT_LOG_INFO, "created topic %s (%d partitions, replication %d)", topic,
                     partitions, replication);
            *created = true;
            continue; /* wait for the leaders */
        }
        if (kerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            continue; /* someone else created it: check its partition count */
        snprintf(last, sizeof(last), "%s (%s)", e, rd_kafka_err2name(kerr));
        if (permanent(kerr)) {
            chat_errf(err, errlen, "creating topic %s: %s", topic, last);
            rc = CHAT_EINVAL;
            goto out;
        }
        chat_log(CHAT_LOG_DEBUG, "creating topic %s: %s; retrying", topic, last);
        sleep_ms(remaining(deadline) < ADMIN_RETRY_MS ? remaining(deadline) : ADMIN_RETRY_MS);
    }
out:
    rd_kafka_destroy(rk);
    return rc;
}

/* The topic's min.insync.replicas as the brokers report it (DescribeConfigs), into val. */
static rd_kafka_resp_err_t min_isr_of(rd_kafka_t *rk, const char *topic, int64_t timeout_ms,
                                      char *val, size_t vallen)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev = NULL;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR__TIMED_OUT;
    char e[256];

    snprintf(val, vallen, "?");
    if (!res || !opts || !q)
        goto out;
    rd_kafka_AdminOptions_set_request_timeout(opts, (int)timeout_ms, e, sizeof(e));
    rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
    ev = rd_kafka_queue_poll(q, (int)timeout_ms + 1000);
    if (!ev)
        goto out;
    if ((rc = rd_kafka_event_error(ev)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    const rd_kafka_DescribeConfigs_result_t *r = rd_kafka_event_DescribeConfigs_result(ev);
    size_t nres = 0, nent = 0;
    const rd_kafka_ConfigResource_t **rs =
        r ? rd_kafka_DescribeConfigs_result_resources(r, &nres) : NULL;
    if (!rs || nres < 1) {
        rc = RD_KAFKA_RESP_ERR__BAD_MSG;
        goto out;
    }
    if ((rc = rd_kafka_ConfigResource_error(rs[0])) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    const rd_kafka_ConfigEntry_t **ents = rd_kafka_ConfigResource_configs(rs[0], &nent);
    for (size_t i = 0; i < nent; i++) {
        const char *v = rd_kafka_ConfigEntry_value(ents[i]);
        if (strcmp(rd_kafka_ConfigEntry_name(ents[i]), "min.insync.replicas") == 0 && v)
            snprintf(val, vallen, "%s", v);
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (res)
        rd_kafka_ConfigResource_destroy(res);
    return rc;
}

static void print_ids(FILE *out, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        fprintf(out, "%s%d", i ? "," : "", (int)ids[i]);
    if (n == 0)
        fputs("-", out);
}

int admin_describe_topic(const char *brokers, const char *topic, int64_t timeout_ms, FILE *out,
                         char *err, size_t errlen)
{
    int64_t deadline = ps_os_now_ms() + timeout_ms;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR__TIMED_OUT;
    rd_kafka_t *rk = NULL;
    int rc;

    if ((rc = admin_client(brokers, &rk, err, errlen)) != 0)
        return rc;
    /* A broker that was just killed may still be the first one tried: retry until one answers. */
    while (remaining(deadline) > 0) {
        int64_t left = remaining(deadline);
        kerr = rd_kafka_metadata(rk, 1, NULL, &md,
                                 (int)(left < ADMIN_METADATA_MS ? left : ADMIN_METADATA_MS));
        if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        sleep_ms(remaining(deadline) < ADMIN_RETRY_MS ? remaining(deadline) : ADMIN_RETRY_MS);
    }
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_errf(err, errlen, "Kafka at %s is unreachable within %lld s: %s", brokers,
                  (long long)(timeout_ms / 1000), rd_kafka_err2str(kerr));
        rc = -ETIMEDOUT;
        goto out;
    }
    const rd_kafka_metadata_topic_t *t = NULL;
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 &&
            md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            t = &md->topics[i];
    if (!t) {
        chat_errf(err, errlen, "topic %s does not exist (chat-admin init creates it)", topic);
        rc = CHAT_EINVAL;
        goto out;
    }
    int under = 0, leaderless = 0;
    for (int k = 0; k < t->partition_cnt; k++) {
        under += t->partitions[k].isr_cnt < t->partitions[k].replica_cnt;
        leaderless += t->partitions[k].leader < 0;
    }
    char isr[32];
    int64_t left = remaining(deadline);
    if (min_isr_of(rk, topic, left > 1000 ? left : 1000, isr, sizeof(isr)) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(isr, sizeof(isr), "?");
    fprintf(out,
            "topic %s partitions %d min.insync.replicas %s under_replicated %d leaderless %d\n",
            topic, t->partition_cnt, isr, under, leaderless);
    for (int k = 0; k < t->partition_cnt; k++) {
        const rd_kafka_metadata_partition_t *p = &t->partitions[k];
        fprintf(out, "partition %d leader %d replicas ", (int)p->id, (int)p->leader);
        print_ids(out, p->replicas, p->replica_cnt);
        fputs(" isr ", out);
        print_ids(out, p->isrs, p->isr_cnt);
        fputc('\n', out);
    }
    fflush(out);
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}
