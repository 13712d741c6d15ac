/* ps_persister.c: the persister's loop (see ps_persister.h). Guarantees, in order of
 * importance: an offset is committed only after every record before it is stored (or was
 * undecodable and logged); a record is stored at most once however often it is replayed
 * (_id = its message id); a bad record never blocks its partition; MongoDB being down only
 * delays things (the same batch is retried with backoff 100 ms .. 5 s). */
#define _POSIX_C_SOURCE 200809L /* sigset_t */
#include "ps_persister.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "chat_error.h"
#include "chat_log.h"
#include "chat_store_doc.h"
#include "ps_batch.h"
#include "ps_consumer.h"
#include "ps_copies.h"
#include "ps_http.h"
#include "ps_metrics.h"
#include "ps_os.h"
#include "ps_store.h"

#define PS_BACKOFF_MIN_MS 100
#define PS_BACKOFF_MAX_MS 5000
#define PS_IDLE_POLL_MS 200      /* longest poll: bounds how late a signal is noticed */
#define PS_SUMMARY_MS 10000      /* info summary period */
#define PS_REVOKE_FLUSH_MS 10000 /* how long a rebalance waits for the batch to be stored */
#define PS_KAFKA_ERR_LOG_MS 10000
#define PS_LAG_REFRESH_MS 1000 /* how often the metrics' lag gauges are refreshed */

typedef struct ps_counters {
    uint64_t stored, duplicates, skipped, copies, batches, store_failures, commit_failures;
} ps_counters;

typedef struct ps_persister {
    const ps_settings *cfg;
    const sigset_t *signals;
    ps_store *store;
    ps_consumer *cons;
    ps_batch batch;
    ps_copies *copies; /* NULL: CHAT_COPY_WINDOW=0 */
    ps_backoff backoff;
    bool stopping;
    bool unstored_at_stop;    /* a batch was given up while stopping (exit status 1) */
    int64_t stop_deadline_ms; /* when stopping: give up retrying the last batch */
    ps_counters total, reported;
    int64_t next_summary_ms;
    rd_kafka_resp_err_t last_kafka_err;
    int64_t last_kafka_err_ms;
    ps_metrics metrics; /* read by the metrics listener's thread */
    ps_http *http;
    int64_t next_lag_ms;
    int64_t lags[PS_METRICS_PARTITIONS]; /* refresh_lag's scratch */
} ps_persister;

static void note_signal(ps_persister *p, int sig)
{
    if (sig <= 0)
        return;
    if (!p->stopping) {
        chat_log(CHAT_LOG_INFO, "signal %d: storing the current batch and stopping", sig);
        p->stopping = true;
        p->stop_deadline_ms = ps_os_now_ms() + p->cfg->shutdown_ms;
    } else {
        chat_log(CHAT_LOG_WARN, "signal %d again: giving up on the current batch", sig);
        p->stop_deadline_ms = ps_os_now_ms();
    }
}

/* Stores the batch, retrying with backoff until stored or until deadline_ms (-1: none; a
 * signal sets one). Returns 0 when stored, -ETIMEDOUT when it gave up. */
static int store_batch(ps_persister *p, int64_t deadline_ms)
{
    ps_store_result res;
    char err[512];
    int64_t t0 = ps_os_now_ms();

    if (p->batch.n == 0)
        return 0;
    ps_backoff_reset(&p->backoff);
    for (;;) {
        int64_t delay, now, t1 = ps_os_now_ms();

        if (ps_store_insert(p->store, p->batch.recs, p->batch.n, &res, err, sizeof(err)) == 0) {
            ps_metrics_stored(&p->metrics, p->batch.n, res.inserted, res.duplicates,
                              (double)(ps_os_now_ms() - t1) / 1000.0);
            break;
        }
        p->total.store_failures++;
        ps_metrics_store_failed(&p->metrics);
        delay = ps_backoff_next(&p->backoff);
        now = ps_os_now_ms();
        if (p->stopping && (deadline_ms < 0 || p->stop_deadline_ms < deadline_ms))
            deadline_ms = p->stop_deadline_ms;
        if (deadline_ms >= 0 && now >= deadline_ms) {
            chat_log(CHAT_LOG_ERROR,
                     "storing %zu messages failed (attempt %u: %s); giving up, they stay "
                     "uncommitted and will be replayed",
                     p->batch.n, p->backoff.failures, err);
            if (p->stopping)
                p->unstored_at_stop = true;
            return -ETIMEDOUT;
        }
        if (deadline_ms >= 0 && now + delay > deadline_ms)
            delay = deadline_ms - now; /* one last attempt at the deadline */
        chat_log_kv(CHAT_LOG_WARN,
                    CHAT_LOG_FIELDS(CHAT_LOG_INT("messages", p->batch.n),
                                    CHAT_LOG_INT("attempt", p->backoff.failures)),
                    "storing %zu messages failed (attempt %u: %s); retrying in %" PRId64
                    " ms, committing nothing meanwhile",
                    p->batch.n, p->backoff.failures, err, delay);
        note_signal(p, ps_os_wait_signal(p->signals, delay));
    }
    if (p->backoff.failures)
        chat_log(CHAT_LOG_INFO, "stored %zu messages after %u failed attempts", p->batch.n,
                 p->backoff.failures);
    p->total.stored += res.inserted;
    p->total.duplicates += res.duplicates;
    if (chat_log_enabled(CHAT_LOG_DEBUG))
        chat_log(CHAT_LOG_DEBUG,
                 "stored batch: %zu messages (%zu new, %zu duplicates), %zu skipped, %zu "
                 "partitions, %" PRId64 " ms",
                 p->batch.n, res.inserted, res.duplicates, p->batch.skipped, p->batch.noffs,
                 ps_os_now_ms() - t0);
    return 0;
}

/* Stores (see store_batch) and commits the batch, then empties it. On a give-up the batch is
 * dropped uncommitted. Returns 0 or -ETIMEDOUT. */
static int flush(ps_persister *p, int64_t deadline_ms)
{
    char err[512];
    int rc;

    if (ps_batch_empty(&p->batch))
        return 0;
    rc = store_batch(p, deadline_ms);
    if (rc == 0) {
        p->total.skipped += p->batch.skipped;
        p->total.batches++;
        if (ps_consumer_commit(p->cons, &p->batch, err, sizeof(err)) != 0) {
            /* Safe: whoever reads these partitions next re-inserts no-ops. */
            p->total.commit_failures++;
            ps_metrics_committed(&p->metrics, &p->batch, 0);
            chat_log(CHAT_LOG_WARN, "%s (the batch is stored; it may be re-read)", err);
        } else {
            ps_metrics_committed(&p->metrics, &p->batch, 1);
        }
    }
    ps_batch_reset(&p->batch);
    return rc;
}

static void on_revoke(void *opaque)
{
    ps_persister *p = opaque;
    int64_t deadline = ps_os_now_ms() + PS_REVOKE_FLUSH_MS;

    if (p->stopping && p->stop_deadline_ms < deadline)
        deadline = p->stop_deadline_ms;
    if (flush(p, deadline) != 0)
        chat_log(CHAT_LOG_WARN, "rebalance: dropped the unstored batch; the partitions' next "
                                "owner re-reads it from the committed offsets");
}

static void summary(ps_persister *p)
{
    ps_counters *t = &p->total, *r = &p->reported;
    int64_t lag = ps_consumer_lag(p->cons);
    char lagbuf[32] = "unknown";

    if (lag >= 0)
        snprintf(lagbuf, sizeof(lagbuf), "%" PRId64, lag);
    chat_log(CHAT_LOG_INFO,
             "last %ds: stored %" PRIu64 ", duplicates %" PRIu64 ", skipped %" PRIu64
             ", copies %" PRIu64 ", batches %" PRIu64 ", store failures %" PRIu64
             "; totals: stored %" PRIu64 ", duplicates %" PRIu64 ", skipped %" PRIu64
             ", copies %" PRIu64 "; partitions %d, lag %s",
             PS_SUMMARY_MS / 1000, t->stored - r->stored, t->duplicates - r->duplicates,
             t->skipped - r->skipped, t->copies - r->copies, t->batches - r->batches,
             t->store_failures - r->store_failures, t->stored, t->duplicates, t->skipped, t->copies,
             ps_consumer_assigned(p->cons), lagbuf);
    *r = *t;
}

static void handle_message(ps_persister *p, rd_kafka_message_t *m, int64_t now)
{
    chat_envelope env;
    char err[256];
    const char *topic;
    int rc;

    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        if (m->err != p->last_kafka_err || now - p->last_kafka_err_ms >= PS_KAFKA_ERR_LOG_MS) {
            chat_log(CHAT_LOG_WARN, "kafka: %s%s", rd_kafka_message_errstr(m),
                     m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                         ? " (chat-admin init creates the topic)"
                         : "");
            p->last_kafka_err = m->err;
            p->last_kafka_err_ms = now;
        }
        return;
    }
    topic = m->rkt ? rd_kafka_topic_name(m->rkt) : p->cfg->kafka_topic;
    rc = chat_envelope_decode(m->payload, m->payload ? m->len : 0, &env, err, sizeof(err));
    if (rc == 0 && p->copies &&
        ps_copies_seen(p->copies, env.room, env.from, env.cid, m->partition, m->offset)) {
        /* a second record of one send: the gateways drop it from fan-out too */
        chat_log_kv(CHAT_LOG_DEBUG,
                    CHAT_LOG_FIELDS(CHAT_LOG_INT("partition", m->partition),
                                    CHAT_LOG_INT("offset", m->offset)),
                    "not storing %s/%" PRId32 "@%" PRId64 ": a copy of an earlier record (room %s, "
                    "sender %s, cid %s)",
                    topic, m->partition, m->offset, env.room, env.from, env.cid);
        chat_envelope_clear(&env);
        p->total.copies++;
        ps_metrics_copy(&p->metrics);
        if (ps_batch_pass(&p->batch, m->partition, m->offset, now) != 0)
            chat_log(CHAT_LOG_ERROR,
                     "cannot track offset %s/%" PRId32 "@%" PRId64 " (it will be re-read)", topic,
                     m->partition, m->offset);
        return;
    }
    if (rc == 0) {
        rc = ps_batch_add(&p->batch, m->partition, m->offset, &env, now);
        if (rc == 0)
            return;
        chat_envelope_clear(&env);
        chat_errf(err, sizeof(err), "cannot be batched (%s)",
                  rc == -EINVAL ? "partition outside 0..9999" : strerror(-rc));
    }
    chat_log_kv(
        CHAT_LOG_WARN,
        CHAT_LOG_FIELDS(CHAT_LOG_INT("partition", m->partition), CHAT_LOG_INT("offset", m->offset)),
        "skipping record %s/%" PRId32 "@%" PRId64 ": %s", topic, m->partition, m->offset, err);
    if (ps_batch_skip(&p->batch, m->partition, m->offset, now) != 0)
        chat_log(CHAT_LOG_ERROR,
                 "cannot track offset %s/%" PRId32 "@%" PRId64 " (it will be re-read)", topic,
                 m->partition, m->offset);
}

static int metrics_page(void *arg, char **body, size_t *len)
{
    return ps_metrics_render(arg, body, len);
}

/* The lag gauges, from librdkafka's cached watermarks and positions (no round trip). */
static void refresh_lag(ps_persister *p)
{
    int64_t total = ps_consumer_lags(p->cons, p->lags, PS_METRICS_PARTITIONS);
    ps_metrics_set_lag(&p->metrics, p->lags, total, ps_consumer_assigned(p->cons));
}

/* Ensures the index, retrying with backoff while MongoDB starts; 0, or -EINTR on a signal. */
static int ensure_index(ps_persister *p)
{
    char err[512];

    ps_backoff_reset(&p->backoff);
    while (ps_store_ensure_index(p->store, err, sizeof(err)) != 0) {
        int64_t delay = ps_backoff_next(&p->backoff);
        chat_log(CHAT_LOG_WARN, "MongoDB (%s): %s; retrying in %" PRId64 " ms", p->cfg->mongo_db,
                 err, delay);
        int sig = ps_os_wait_signal(p->signals, delay);
        if (sig) {
            chat_log(CHAT_LOG_INFO, "signal %d before start-up finished: exiting", sig);
            return -EINTR;
        }
    }
    chat_log(CHAT_LOG_INFO, "MongoDB ready: index %s on %s.%s", CHAT_STORE_INDEX_NAME,
             p->cfg->mongo_db, CHAT_STORE_COLLECTION);
    return 0;
}

int ps_persister_run(const ps_settings *cfg, const sigset_t *signals)
{
    ps_persister p;
    char err[512];
    int rc = 0, msgs = 0;

    memset(&p, 0, sizeof(p));
    p.cfg = cfg;
    p.signals = signals;
    if ((rc = ps_metrics_init(&p.metrics)) != 0)
        return rc;
    if (strcmp(cfg->metrics_listen, "off") != 0) {
        /* storing messages matters more than being watched: a listener that cannot bind is
         * logged, and the persister runs without it */
        if (ps_http_start(&p.http, cfg->metrics_listen, metrics_page, &p.metrics, err,
                          sizeof(err)) != 0)
            chat_log(CHAT_LOG_ERROR, "%s; serving no metrics", err);
        else
            chat_log(CHAT_LOG_INFO, "metrics at http://%s/metrics", cfg->metrics_listen);
    }
    ps_backoff_init(&p.backoff, PS_BACKOFF_MIN_MS, PS_BACKOFF_MAX_MS);
    if ((rc = ps_batch_init(&p.batch, (size_t)cfg->batch_size)) != 0) {
        chat_log(CHAT_LOG_ERROR, "out of memory for a batch of %lld", cfg->batch_size);
        goto out;
    }
    if (cfg->copy_window > 0 && (rc = ps_copies_new(&p.copies, (size_t)cfg->copy_window)) != 0) {
        chat_log(CHAT_LOG_ERROR, "out of memory for CHAT_COPY_WINDOW %lld", cfg->copy_window);
        goto out;
    }
    if ((rc = ps_store_open(&p.store, cfg->mongo_uri, cfg->mongo_db, "chat-persister", err,
                            sizeof(err))) != 0) {
        chat_log(CHAT_LOG_ERROR, "%s", err);
        goto out;
    }
    if ((rc = ensure_index(&p)) != 0) {
        rc = 0; /* stopped by a signal: a clean exit */
        goto out;
    }
    if ((rc = ps_consumer_open(&p.cons, cfg, on_revoke, &p, err, sizeof(err))) != 0) {
        chat_log(CHAT_LOG_ERROR, "%s", err);
        goto out;
    }
    chat_log(CHAT_LOG_INFO, "consuming %s as group %s", cfg->kafka_topic, cfg->kafka_group);
    p.next_summary_ms = ps_os_now_ms() + PS_SUMMARY_MS;

    while (!p.stopping) {
        int64_t now = ps_os_now_ms();
        int wait = (int)ps_batch_wait_ms(&p.batch, now, cfg->batch_ms, PS_IDLE_POLL_MS);
        rd_kafka_message_t *m = ps_consumer_poll(p.cons, wait);

        now = ps_os_now_ms();
        if (m) {
            handle_message(&p, m, now);
            rd_kafka_message_destroy(m);
        }
        if (ps_batch_ready(&p.batch, now, cfg->batch_ms))
            flush(&p, -1);
        if (now >= p.next_lag_ms) {
            refresh_lag(&p);
            p.next_lag_ms = now + PS_LAG_REFRESH_MS;
        }
        if (now >= p.next_summary_ms) {
            summary(&p);
            p.next_summary_ms = now + PS_SUMMARY_MS;
        }
        /* A signal check is a system call: do it when idle and every 1000 records. */
        if (!m || ++msgs >= 1000) {
            msgs = 0;
            note_signal(&p, ps_os_wait_signal(signals, 0));
        }
    }
    if (!p.stopping)
        p.stop_deadline_ms = ps_os_now_ms() + cfg->shutdown_ms;
    p.stopping = true;
    flush(&p, p.stop_deadline_ms);
    if (p.unstored_at_stop)
        rc = -ETIMEDOUT;
    summary(&p);
out:
    ps_consumer_close(p.cons); /* leaves the group; on_revoke finds the batch empty */
    ps_http_stop(p.http);
    ps_metrics_destroy(&p.metrics);
    ps_store_close(p.store);
    ps_batch_free(&p.batch);
    ps_copies_free(p.copies);
    if (rc == 0)
        chat_log(CHAT_LOG_INFO, "stopped");
    return rc;
}
