/* gw_kafka.c: the idempotent producer with its delivery reports, the fan-out consumer over
 * every partition, and the reachability probe behind /readyz (see gw_kafka.h). */
#define _DEFAULT_SOURCE /* gethostname, strncasecmp, strdup, pipe, clock_gettime */
#include "gw_kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat_error.h"
#include "chat_kafka.h"
#include "chat_log.h"

struct gw_kafka {
    gw_kafka_config cfg;
    rd_kafka_t *producer;
    rd_kafka_t *retired; /* the producer before a fatal error, until its reports are served */
    rd_kafka_t *consumer;
    /* never joins a group and never fetches: asks the persister group's committed offsets, and
     * the partitions' end offsets for joins (sync_main). Not the consumer: a broker answers the
     * requests of one connection in order, so on the consumer's connection every query waited
     * behind its long-polling fetch, up to fetch.wait.max.ms (50 ms per join, make bench's
     * join-200). */
    rd_kafka_t *fence;
    pthread_mutex_t fence_mu;
    int32_t partitions;
    int64_t *start;  /* per partition: where fan-out reading began */
    int64_t *target; /* per partition: the end offset at start; warm once every one is read */
    int64_t *next;   /* per partition: the offset after the last record fan-out read */
    chat_hist produce_latency; /* produce() to delivery report, seconds (loop thread) */
    int32_t warming;           /* partitions not yet read up to their target */
    char epoch[64];
    /* end-offset queries for joins (gw_kafka_sync_*): the loop raises req[p], the sync thread
     * answers with done[p] = the req it saw before querying and hw[p] = the end it found */
    pthread_t sync;
    bool sync_started;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t *sync_req, *sync_done;
    int64_t *sync_hw;
    int prod_pipe[2];
    int cons_pipe[2];
    bool producer_fatal; /* set by the error callback, handled after polling */
    atomic_bool ready;
    atomic_bool stop;
    pthread_t probe;
    bool probe_started;
};

static int make_pipe(int p[2])
{
    if (pipe(p) != 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

static void drain_fd(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    gw_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        chat_log(CHAT_LOG_ERROR, "kafka producer fatal error: %s; recreating the producer", why);
        k->producer_fatal = true;
        return;
    }
    chat_log(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? CHAT_LOG_WARN : CHAT_LOG_INFO,
             "kafka producer: %s", reason);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    gw_kafka *k = opaque;
    if (!m->_private) { /* gw_kafka_produce_raw: nobody waits for it */
        if (m->err)
            chat_log(CHAT_LOG_WARN, "kafka: an event was not delivered: %s",
                     rd_kafka_err2str(m->err));
        return;
    }
    chat_hist_observe(&k->produce_latency, (double)rd_kafka_message_latency(m) / 1e6);
    if (m->err) {
        k->cfg.on_ack(m->_private, NULL, rd_kafka_err2str(m->err), k->cfg.arg);
        return;
    }
    char id[CHAT_MSGID_LEN + 1];
    if (chat_msgid_format(id, m->partition, m->offset) != 0) {
        k->cfg.on_ack(m->_private, NULL, "no offset in the delivery report", k->cfg.arg);
        return;
    }
    k->cfg.on_ack(m->_private, id, NULL, k->cfg.arg);
}

static int producer_create(gw_kafka *k, char *err, size_t errlen)
{
    char kerr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;
    char linger[16];
    snprintf(linger, sizeof(linger), "%d", k->cfg.linger_ms);
    if ((rc = chat_kafka_conf_set(conf, "bootstrap.servers", k->cfg.brokers, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.idempotence", "true", err, errlen)) ||
        /* A message is acked to its sender only once every in-sync replica holds it (at least
         * the topic's min.insync.replicas); idempotence requires it anyway. */
        (rc = chat_kafka_conf_set(conf, "acks", "all", err, errlen)) ||
        /* One produce request in flight per broker: with several, a leader change can make
         * librdkafka (2.0.2, and later: its issue #4953) bump the producer epoch and send again
         * a batch the old leader had already written, and the topic then holds the message
         * twice under two ids (tests/faults caught it in a rolling restart). */
        (rc = chat_kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1", err,
                                  errlen)) ||
        (rc = chat_kafka_conf_set(conf, "linger.ms", linger, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "message.timeout.ms", "15000", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "queue.buffering.max.messages", "100000", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "queue.buffering.max.kbytes", "65536", err, errlen)) ||
        /* the gateways compute a room's partition (gw_kafka_partition_of) with this one */
        (rc = chat_kafka_conf_set(conf, "partitioner", "consistent_random", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "client.id", k->cfg.node_id, err, errlen))) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rd_kafka_conf_set_log_cb(conf, chat_kafka_log_cb);
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!k->producer) {
        rd_kafka_conf_destroy(conf);
        chat_errf(err, errlen, "CHAT_KAFKA_BROKERS: cannot create the producer: %s", kerr);
        return CHAT_EINVAL;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(k->producer);
    rd_kafka_queue_io_event_enable(q, k->prod_pipe[1], "1", 1);
    rd_kafka_queue_destroy(q);
    k->producer_fatal = false;
    return 0;
}

static void *destroy_thread(void *rk)
{
    rd_kafka_destroy(rk);
    return NULL;
}

/* Serves the delivery reports of a producer whose messages were purged: librdkafka hands them
 * over asynchronously, so poll until nothing is outstanding, for at most max_ms. */
static void drain_purged(rd_kafka_t *rk, int max_ms)
{
    for (int waited = 0; rd_kafka_outq_len(rk) > 0 && waited < max_ms; waited += 10)
        rd_kafka_poll(rk, 10);
    rd_kafka_poll(rk, 0);
}

/* Hands a producer to a thread to destroy (it may take a while). */
static void destroy_later(rd_kafka_t *rk)
{
    pthread_t t;
    if (pthread_create(&t, NULL, destroy_thread, rk) == 0)
        pthread_detach(t);
    else
        rd_kafka_destroy(rk);
}

/* After a fatal error: fail what is pending and start a fresh producer. The old one is retired,
 * not destroyed at once: librdkafka hands the purged messages' delivery reports over
 * asynchronously, and each is a client waiting for its ack or error, so gw_kafka_serve_producer
 * keeps serving it until nothing is outstanding. */
static void producer_recreate(gw_kafka *k)
{
    rd_kafka_t *old = k->producer;
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(old, 0);
    k->producer = NULL;
    if (k->retired) { /* a second fatal error before the first one's reports: wait for them */
        drain_purged(k->retired, 2000);
        destroy_later(k->retired);
    }
    k->retired = old;
    char err[512];
    if (producer_create(k, err, sizeof(err)) != 0)
        chat_log(CHAT_LOG_ERROR, "cannot recreate the kafka producer: %s", err);
    else
        chat_log(CHAT_LOG_INFO, "kafka producer recreated");
}

static int consumer_create(gw_kafka *k, char *err, size_t errlen)
{
    const chat_kafka_reader_cfg c = {.brokers = k->cfg.brokers,
                                     .client_id = k->cfg.node_id,
                                     .group_prefix = "chat-gateway-fanout",
                                     .what = "the fan-out consumer",
                                     .fetch_wait_ms = 50,
                                     .queued_kbytes = 16384,
                                     .wake_fd = k->cons_pipe[1]};
    return chat_kafka_reader_new(&k->consumer, &c, err, errlen);
}

static int fence_create(gw_kafka *k, char *err, size_t errlen)
{
    char kerr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc;
    if ((rc = chat_kafka_conf_set(conf, "bootstrap.servers", k->cfg.brokers, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "group.id", k->cfg.persister_group, err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen)) ||
        (rc = chat_kafka_conf_set(conf, "client.id", k->cfg.node_id, err, errlen))) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, chat_kafka_log_cb);
    k->fence = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!k->fence) {
        rd_kafka_conf_destroy(conf);
        chat_errf(err, errlen, "CHAT_KAFKA_BROKERS: cannot create a Kafka client: %s", kerr);
        return CHAT_EINVAL;
    }
    return 0;
}

/* Partition count of the topic, or a negative code. Blocking. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, char *why,
                            size_t whylen)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (!t) {
        chat_errf(why, whylen, "cannot create a topic handle");
        return CHAT_EINVAL;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, timeout_ms);
    int n = CHAT_EINVAL;
    if (e) {
        chat_errf(why, whylen, "%s", rd_kafka_err2str(e));
    } else if (md->topic_cnt != 1 || md->topics[0].err) {
        chat_errf(why, whylen, "topic %s: %s", topic,
                  md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
    } else {
        n = md->topics[0].partition_cnt;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n;
}

/* Answers end-offset queries: waits for a partition whose req is ahead of done, queries the
 * broker for every such partition and publishes the ends, then wakes the loop. */
static void *sync_main(void *arg)
{
    gw_kafka *k = arg;
    int32_t n = k->partitions;
    uint64_t *want = calloc((size_t)n, sizeof(*want));
    if (!want)
        return NULL;
    pthread_mutex_lock(&k->sync_mu);
    while (!atomic_load(&k->stop)) {
        bool any = false;
        for (int32_t p = 0; p < n; p++) {
            want[p] = k->sync_req[p] > k->sync_done[p] ? k->sync_req[p] : 0;
            any |= want[p] != 0;
        }
        if (!any) {
            pthread_cond_wait(&k->sync_cv, &k->sync_mu);
            continue;
        }
        pthread_mutex_unlock(&k->sync_mu);
        /* every waiting partition in one round trip per leader: offsets_for_times with
         * RD_KAFKA_OFFSET_END answers each partition's end offset (query_watermark_offsets
         * would ask once per partition, one after the other) */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
        for (int32_t p = 0; l && p < n; p++)
            if (want[p])
                rd_kafka_topic_partition_list_add(l, k->cfg.topic, p)->offset = RD_KAFKA_OFFSET_END;
        bool ok = l && rd_kafka_offsets_for_times(k->fence, l, 2000) == 0;
        pthread_mutex_lock(&k->sync_mu);
        for (int32_t p = 0; p < n; p++) {
            if (!want[p])
                continue;
            rd_kafka_topic_partition_t *tp =
                ok ? rd_kafka_topic_partition_list_find(l, k->cfg.topic, p) : NULL;
            k->sync_done[p] = want[p];
            /* the broker cannot say: the join goes on with what the log has */
            k->sync_hw[p] = tp && !tp->err && tp->offset >= 0 ? tp->offset : -1;
        }
        pthread_mutex_unlock(&k->sync_mu);
        if (l)
            rd_kafka_topic_partition_list_destroy(l);
        if (k->cfg.wake)
            k->cfg.wake(k->cfg.wake_arg);
        pthread_mutex_lock(&k->sync_mu);
    }
    pthread_mutex_unlock(&k->sync_mu);
    free(want);
    return NULL;
}

uint64_t gw_kafka_sync_begin(gw_kafka *k, int32_t p)
{
    if (p < 0 || p >= k->partitions)
        return 0;
    pthread_mutex_lock(&k->sync_mu);
    uint64_t t = ++k->sync_req[p];
    pthread_cond_signal(&k->sync_cv);
    pthread_mutex_unlock(&k->sync_mu);
    return t;
}

bool gw_kafka_sync_done(gw_kafka *k, int32_t p, uint64_t ticket, int64_t *end)
{
    if (p < 0 || p >= k->partitions) {
        *end = -1;
        return true;
    }
    pthread_mutex_lock(&k->sync_mu);
    bool done = k->sync_done[p] >= ticket;
    *end = k->sync_hw[p];
    pthread_mutex_unlock(&k->sync_mu);
    return done;
}

static void *probe_main(void *arg)
{
    gw_kafka *k = arg;
    while (!atomic_load(&k->stop)) {
        char why[256];
        int n = topic_partitions(k->consumer, k->cfg.topic, 2000, why, sizeof(why));
        bool ok = n > 0;
        if (ok != atomic_load(&k->ready))
            chat_log(ok ? CHAT_LOG_INFO : CHAT_LOG_WARN, "kafka is %s%s%s",
                     ok ? "reachable" : "unreachable", ok ? "" : ": ", ok ? "" : why);
        atomic_store(&k->ready, ok);
        for (int i = 0; i < 20 && !atomic_load(&k->stop); i++) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int gw_kafka_new(gw_kafka **out, const gw_kafka_config *cfg, char *err, size_t errlen)
{
    gw_kafka *k = calloc(1, sizeof(*k));
    int rc = -ENOMEM;
    if (!k)
        goto fail;
    k->cfg = *cfg;
    chat_hist_init(&k->produce_latency, chat_hist_latency_bounds, chat_hist_latency_nbounds);
    k->prod_pipe[0] = k->prod_pipe[1] = k->cons_pipe[0] = k->cons_pipe[1] = -1;
    if ((rc = make_pipe(k->prod_pipe)) || (rc = make_pipe(k->cons_pipe))) {
        chat_errf(err, errlen, "pipe: %s", strerror(-rc));
        goto fail;
    }
    pthread_mutex_init(&k->fence_mu, NULL);
    pthread_mutex_init(&k->sync_mu, NULL);
    pthread_cond_init(&k->sync_cv, NULL);
    if ((rc = producer_create(k, err, errlen)) || (rc = consumer_create(k, err, errlen)) ||
        (rc = fence_create(k, err, errlen)))
        goto fail;

    int parts = -1;
    char why[256] = "";
    for (int waited = 0;; waited += 2) {
        parts = topic_partitions(k->consumer, cfg->topic, 2000, why, sizeof(why));
        if (parts > 0 || waited >= cfg->wait_topic_s)
            break;
        if (waited % 10 == 0)
            chat_log(CHAT_LOG_WARN, "waiting for kafka topic %s at %s: %s", cfg->topic,
                     cfg->brokers, why);
        sleep(1);
    }
    /* Warm the producer before the gateway says it is ready: its connection to the broker and
     * the partitions' leaders are set up now, not on the first client's message. */
    if (parts > 0 && topic_partitions(k->producer, cfg->topic, 5000, why, sizeof(why)) <= 0)
        chat_log(CHAT_LOG_WARN, "kafka: the producer could not read %s's metadata yet: %s",
                 cfg->topic, why);
    if (parts <= 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_TOPIC: topic %s is not available at %s (%s); create it with "
                  "chat-admin init",
                  cfg->topic, cfg->brokers, why);
        rc = CHAT_EINVAL;
        goto fail;
    }
    k->partitions = parts;
    k->start = calloc((size_t)parts, sizeof(*k->start));
    k->target = calloc((size_t)parts, sizeof(*k->target));
    k->sync_req = calloc((size_t)parts, sizeof(*k->sync_req));
    k->sync_done = calloc((size_t)parts, sizeof(*k->sync_done));
    k->sync_hw = calloc((size_t)parts, sizeof(*k->sync_hw));
    k->next = calloc((size_t)parts, sizeof(*k->next));
    if (!k->start || !k->target || !k->sync_req || !k->sync_done || !k->sync_hw || !k->next) {
        rc = -ENOMEM;
        goto fail;
    }
    /* Fan-out starts warm_records before each partition's end, so that the room logs hold
     * the recent past as soon as the gateway is ready (joins and resumes after a restart are
     * served from memory); the gateway is warm once it has read up to those ends. */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t we;
        /* a topic just created may have no leader yet for a moment: retry within the wait */
        for (int waited = 0;; waited++) {
            we = rd_kafka_query_watermark_offsets(k->consumer, cfg->topic, p, &lo, &hi, 5000);
            if (!we || waited >= cfg->wait_topic_s)
                break;
            if (waited % 10 == 0)
                chat_log(CHAT_LOG_WARN, "kafka: offsets of %s[%d]: %s; retrying", cfg->topic, p,
                         rd_kafka_err2str(we));
            sleep(1);
        }
        if (we) {
            rd_kafka_topic_partition_list_destroy(list);
            chat_errf(err, errlen, "kafka: offsets of %s[%d]: %s", cfg->topic, p,
                      rd_kafka_err2str(we));
            rc = CHAT_EINVAL;
            goto fail;
        }
        k->start[p] = hi - lo > cfg->warm_records ? hi - cfg->warm_records : lo;
        k->target[p] = hi;
        k->next[p] = k->start[p];
        if (k->start[p] < hi)
            k->warming++;
        rd_kafka_topic_partition_list_add(list, cfg->topic, p)->offset = k->start[p];
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(k->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        chat_errf(err, errlen, "kafka assign: %s", rd_kafka_err2str(e));
        rc = CHAT_EINVAL;
        goto fail;
    }
    char *cluster = rd_kafka_clusterid(k->consumer, 5000);
    /* The epoch names the stream's generation: the cluster and the topic's partition count
     * (a new partition count moves rooms, so old ids mean nothing). */
    uint32_t h = 2166136261u; /* FNV-1a over cluster id and topic */
    for (const char *c = cluster ? cluster : ""; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    for (const char *c = cfg->topic; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    snprintf(k->epoch, sizeof(k->epoch), "%08x.%d", h, parts);
    if (cluster)
        rd_kafka_mem_free(k->consumer, cluster);
    atomic_store(&k->ready, true);
    if (pthread_create(&k->probe, NULL, probe_main, k) != 0) {
        chat_errf(err, errlen, "cannot start the kafka probe thread");
        rc = -ENOMEM;
        goto fail;
    }
    k->probe_started = true;
    if (pthread_create(&k->sync, NULL, sync_main, k) != 0) {
        chat_errf(err, errlen, "cannot start the kafka offsets thread");
        rc = -ENOMEM;
        goto fail;
    }
    k->sync_started = true;
    chat_log(CHAT_LOG_INFO,
             "kafka: producing to and fanning out %s (%d partitions, epoch %s) at %s; reading "
             "up to %d recent records per partition first",
             cfg->topic, parts, k->epoch, cfg->brokers, cfg->warm_records);
    *out = k;
    return 0;
fail:
    gw_kafka_free(k, 0);
    return rc;
}

int gw_kafka_pending(const gw_kafka *k)
{
    int n = 0;
    if (k->producer)
        n += rd_kafka_outq_len(k->producer);
    if (k->retired)
        n += rd_kafka_outq_len(k->retired);
    return n;
}

void gw_kafka_stop(gw_kafka *k, int flush_ms)
{
    if (!k || atomic_exchange(&k->stop, true))
        return;
    if (k->probe_started)
        pthread_join(k->probe, NULL);
    if (k->sync_started) {
        pthread_mutex_lock(&k->sync_mu);
        pthread_cond_broadcast(&k->sync_cv);
        pthread_mutex_unlock(&k->sync_mu);
        pthread_join(k->sync, NULL);
    }
    if (k->retired) {
        drain_purged(k->retired, 2000);
        rd_kafka_destroy(k->retired);
        k->retired = NULL;
    }
    if (k->producer) {
        if (flush_ms > 0 && rd_kafka_flush(k->producer, flush_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
            chat_log(CHAT_LOG_WARN, "kafka: %d messages not delivered at shutdown",
                     rd_kafka_outq_len(k->producer));
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        drain_purged(k->producer, 2000);
    }
}

void gw_kafka_free(gw_kafka *k, int flush_ms)
{
    if (!k)
        return;
    gw_kafka_stop(k, flush_ms);
    if (k->producer)
        rd_kafka_destroy(k->producer);
    if (k->consumer) {
        rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    if (k->fence)
        rd_kafka_destroy(k->fence);
    pthread_mutex_destroy(&k->fence_mu);
    pthread_mutex_destroy(&k->sync_mu);
    pthread_cond_destroy(&k->sync_cv);
    free(k->start);
    free(k->target);
    free(k->next);
    free(k->sync_req);
    free(k->sync_done);
    free(k->sync_hw);
    for (int i = 0; i < 2; i++) {
        if (k->prod_pipe[i] >= 0)
            close(k->prod_pipe[i]);
        if (k->cons_pipe[i] >= 0)
            close(k->cons_pipe[i]);
    }
    free(k);
}

int gw_kafka_producer_fd(const gw_kafka *k)
{
    return k->prod_pipe[0];
}
int gw_kafka_consumer_fd(const gw_kafka *k)
{
    return k->cons_pipe[0];
}

int gw_kafka_produce(gw_kafka *k, const chat_envelope *e, void *opaque, char *err, size_t errlen)
{
    if (!k->producer) {
        chat_errf(err, errlen, "the producer is being recreated");
        return -EAGAIN;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = chat_envelope_encode(e, &buf, &len, err, errlen);
    if (rc)
        return rc;
    rd_kafka_resp_err_t ke = rd_kafka_producev(
        k->producer, RD_KAFKA_V_TOPIC(k->cfg.topic), RD_KAFKA_V_KEY(e->room, strlen(e->room)),
        RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (ke) {
        free(buf);
        chat_errf(err, errlen, "%s", rd_kafka_err2str(ke));
        return ke == RD_KAFKA_RESP_ERR__QUEUE_FULL ? -ENOBUFS : -EIO;
    }
    return 0;
}

int gw_kafka_produce_raw(gw_kafka *k, const char *topic, const char *key, const void *value,
                         size_t len, char *err, size_t errlen)
{
    if (!k->producer) {
        chat_errf(err, errlen, "the producer is being recreated");
        return -EAGAIN;
    }
    rd_kafka_resp_err_t ke = rd_kafka_producev(
        k->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
    if (ke) {
        chat_errf(err, errlen, "%s", rd_kafka_err2str(ke));
        return ke == RD_KAFKA_RESP_ERR__QUEUE_FULL ? -ENOBUFS : -EIO;
    }
    return 0;
}

void gw_kafka_serve_producer(gw_kafka *k)
{
    drain_fd(k->prod_pipe[0]);
    if (k->retired) {
        while (rd_kafka_poll(k->retired, 0) > 0)
            ;
        if (rd_kafka_outq_len(k->retired) == 0) {
            destroy_later(k->retired);
            k->retired = NULL;
        }
    }
    if (!k->producer)
        return;
    while (rd_kafka_poll(k->producer, 0) > 0)
        ;
    if (k->producer_fatal)
        producer_recreate(k);
}

bool gw_kafka_serve_consumer(gw_kafka *k, size_t max)
{
    drain_fd(k->cons_pipe[0]);
    for (size_t i = 0; i < max; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, 0);
        if (!m)
            return false;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                chat_log(CHAT_LOG_WARN, "kafka consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        chat_message msg;
        char err[256] = "offset out of range";
        memset(&msg, 0, sizeof(msg));
        if (chat_msgid_format(msg.id, m->partition, m->offset) != 0 ||
            chat_envelope_decode(m->payload, m->len, &msg.env, err, sizeof(err)) != 0) {
            chat_log(CHAT_LOG_WARN, "kafka: skipping undecodable record %s[%d]@%lld: %s",
                     k->cfg.topic, (int)m->partition, (long long)m->offset, err);
        } else {
            k->cfg.on_record(&msg, m->partition, m->offset, k->cfg.arg);
            chat_envelope_clear(&msg.env);
        }
        int32_t p = m->partition;
        if (p >= 0 && p < k->partitions)
            k->next[p] = m->offset + 1;
        if (k->warming && p >= 0 && p < k->partitions && k->target[p] > 0 &&
            m->offset + 1 >= k->target[p]) {
            k->target[p] = 0;
            if (--k->warming == 0)
                chat_log(CHAT_LOG_INFO, "kafka: recent records read; fan-out is live");
        }
        rd_kafka_message_destroy(m);
    }
    return true;
}

bool gw_kafka_ready(const gw_kafka *k)
{
    return atomic_load(&k->ready);
}

bool gw_kafka_warm(const gw_kafka *k)
{
    return k->warming == 0;
}

int32_t gw_kafka_partitions(const gw_kafka *k)
{
    return k->partitions;
}

int64_t gw_kafka_start_offset(const gw_kafka *k, int32_t p)
{
    return p >= 0 && p < k->partitions ? k->start[p] : -1;
}

const char *gw_kafka_epoch(const gw_kafka *k)
{
    return k->epoch;
}

int32_t gw_kafka_partition_of(const gw_kafka *k, const char *room)
{
    /* librdkafka's consistent partitioner (CRC32 of the key), which the producer is set to */
    return rd_kafka_msg_partitioner_consistent(NULL, room, strlen(room), k->partitions, NULL, NULL);
}

int64_t gw_kafka_committed(gw_kafka *k, int32_t p)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, k->cfg.topic, p);
    pthread_mutex_lock(&k->fence_mu);
    rd_kafka_resp_err_t e = rd_kafka_committed(k->fence, list, 3000);
    pthread_mutex_unlock(&k->fence_mu);
    int64_t off = -1;
    if (!e && !list->elems[0].err && list->elems[0].offset >= 0)
        off = list->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(list);
    return off;
}

int64_t gw_kafka_lag(gw_kafka *k, int32_t p)
{
    int64_t lo = 0, hi = 0;
    if (p < 0 || p >= k->partitions ||
        rd_kafka_get_watermark_offsets(k->consumer, k->cfg.topic, p, &lo, &hi) != 0 || hi < 0)
        return -1;
    return hi > k->next[p] ? hi - k->next[p] : 0;
}

const chat_hist *gw_kafka_produce_latency(const gw_kafka *k)
{
    return &k->produce_latency;
}
