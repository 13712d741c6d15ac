/* gw_events.c: the events topic's consumer and publishing (see gw_events.h). */
#define _DEFAULT_SOURCE /* pipe2-free pipe, getentropy */
#include "gw_events.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "chat_error.h"
#include "chat_kafka.h"
#include "chat_log.h"

struct gw_events {
    gw_events_config cfg;
    rd_kafka_t *consumer;
    int pipe[2];
    char origin[17]; /* 16 hex digits, random per process */
    gw_events_stats stats;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int consumer_create(gw_events *ev, char *err, size_t errlen)
{
    const chat_kafka_reader_cfg c = {.brokers = ev->cfg.brokers,
                                     .client_id = ev->cfg.node_id,
                                     .group_prefix = "chat-gateway-events",
                                     .what = "the events consumer",
                                     .fetch_wait_ms = 20,
                                     .queued_kbytes = 4096,
                                     .wake_fd = ev->pipe[1]};
    return chat_kafka_reader_new(&ev->consumer, &c, err, errlen);
}

/* The topic's partition count, waiting up to wait_s for it to exist; negative when it does not. */
static int partitions_of(gw_events *ev, char *why, size_t whylen)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(ev->consumer, ev->cfg.topic, NULL);
    int n = -1;
    for (int waited = 0; t; waited += 2) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(ev->consumer, 0, t, &md, 2000);
        if (e)
            chat_errf(why, whylen, "%s", rd_kafka_err2str(e));
        else if (md->topic_cnt != 1 || md->topics[0].err)
            chat_errf(why, whylen, "%s",
                      md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
        else
            n = md->topics[0].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (n > 0 || waited >= ev->cfg.wait_topic_s)
            break;
        sleep(1);
    }
    if (t)
        rd_kafka_topic_destroy(t);
    return n;
}

int gw_events_new(gw_events **out, const gw_events_config *cfg, char *err, size_t errlen)
{
    gw_events *ev = calloc(1, sizeof(*ev));
    int rc = -ENOMEM;
    if (!ev)
        return rc;
    ev->cfg = *cfg;
    ev->pipe[0] = ev->pipe[1] = -1;
    unsigned char rnd[8];
    if (getentropy(rnd, sizeof(rnd)) != 0) {
        chat_errf(err, errlen, "getentropy: %s", strerror(errno));
        rc = CHAT_EINVAL;
        goto fail;
    }
    for (int i = 0; i < 8; i++)
        snprintf(ev->origin + 2 * i, 3, "%02x", rnd[i]);
    if (pipe(ev->pipe) != 0) {
        chat_errf(err, errlen, "pipe: %s", strerror(errno));
        rc = CHAT_EINVAL;
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(ev->pipe[i], F_SETFL, fcntl(ev->pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(ev->pipe[i], F_SETFD, FD_CLOEXEC);
    }
    if ((rc = consumer_create(ev, err, errlen)))
        goto fail;
    char why[256] = "";
    int parts = partitions_of(ev, why, sizeof(why));
    if (parts <= 0) {
        chat_errf(err, errlen,
                  "CHAT_KAFKA_EVENTS_TOPIC: topic %s is not available at %s (%s); create it with "
                  "chat-admin init",
                  cfg->topic, cfg->brokers, why);
        rc = CHAT_EINVAL;
        goto fail;
    }
    /* From the end: events are ephemeral, nothing before this start matters. The end is asked
     * now, not left to the consumer (RD_KAFKA_OFFSET_END is resolved later, in the background,
     * so an event published between the gateway being ready and that lookup would be missed). */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = RD_KAFKA_OFFSET_END;
        rd_kafka_resp_err_t we = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int tries = 0; tries <= cfg->wait_topic_s; tries++) {
            we = rd_kafka_query_watermark_offsets(ev->consumer, cfg->topic, p, &lo, &hi, 5000);
            if (!we)
                break;
            sleep(1);
        }
        if (we) {
            rd_kafka_topic_partition_list_destroy(list);
            chat_errf(err, errlen, "kafka: offsets of %s[%d]: %s", cfg->topic, p,
                      rd_kafka_err2str(we));
            rc = CHAT_EINVAL;
            goto fail;
        }
        rd_kafka_topic_partition_list_add(list, cfg->topic, p)->offset = hi;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(ev->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        chat_errf(err, errlen, "kafka assign %s: %s", cfg->topic, rd_kafka_err2str(e));
        rc = CHAT_EINVAL;
        goto fail;
    }
    chat_log(CHAT_LOG_INFO, "events: reading %s (%d partitions) from its end, origin %s",
             cfg->topic, parts, ev->origin);
    *out = ev;
    return 0;
fail:
    gw_events_free(ev);
    return rc;
}

void gw_events_free(gw_events *ev)
{
    if (!ev)
        return;
    if (ev->consumer) {
        rd_kafka_consumer_close(ev->consumer);
        rd_kafka_destroy(ev->consumer);
    }
    for (int i = 0; i < 2; i++)
        if (ev->pipe[i] >= 0)
            close(ev->pipe[i]);
    free(ev);
}

int gw_events_fd(const gw_events *ev)
{
    return ev->pipe[0];
}

bool gw_events_serve(gw_events *ev, size_t max)
{
    char buf[256];
    while (read(ev->pipe[0], buf, sizeof(buf)) > 0)
        ;
    for (size_t i = 0; i < max; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ev->consumer, 0);
        if (!m)
            return false;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                chat_log(CHAT_LOG_WARN, "events consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        chat_event e;
        char err[160];
        int rc = chat_event_decode(m->payload, m->len, &e, err, sizeof(err));
        if (rc != 0) {
            ev->stats.undecodable++;
            chat_log(rc == CHAT_EVERSION ? CHAT_LOG_DEBUG : CHAT_LOG_WARN,
                     "events: skipping record %s[%d]@%lld: %s", ev->cfg.topic, (int)m->partition,
                     (long long)m->offset, err);
        } else if (strcmp(e.origin, ev->origin) == 0) {
            ev->stats.skipped_own++;
        } else {
            ev->stats.received++;
            ev->cfg.on_event(&e, ev->cfg.arg);
        }
        rd_kafka_message_destroy(m);
    }
    return true;
}

int gw_events_publish(gw_events *ev, chat_event *e, char *err, size_t errlen)
{
    e->version = CHAT_EVENT_VERSION;
    snprintf(e->origin, sizeof(e->origin), "%s", ev->origin);
    e->ts_ms = wall_ms();
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = chat_event_encode(e, &buf, &len, err, errlen);
    if (rc == 0)
        rc = gw_kafka_produce_raw(ev->cfg.kafka, ev->cfg.topic, e->room[0] ? e->room : e->user, buf,
                                  len, err, errlen);
    free(buf);
    if (rc == 0)
        ev->stats.published++;
    else
        ev->stats.publish_failed++;
    return rc;
}

gw_events_stats gw_events_get_stats(const gw_events *ev)
{
    return ev->stats;
}
