/* ps_metrics.c: the persister's metrics and their page (see ps_metrics.h). Adding a counter is
 * a field of ps_metrics_data, its update and one row of the table in ps_metrics_render. */
#include "ps_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS_METRICS_PAGE_MAX (512 * 1024)

int ps_metrics_init(ps_metrics *m)
{
    memset(m, 0, sizeof(*m));
    int rc = pthread_mutex_init(&m->mu, NULL);
    if (rc != 0)
        return -rc;
    chat_hist_init(&m->d.batch_size, chat_hist_size_bounds, chat_hist_size_nbounds);
    chat_hist_init(&m->d.insert_seconds, chat_hist_latency_bounds, chat_hist_latency_nbounds);
    m->d.lag_total = -1;
    for (size_t i = 0; i < PS_METRICS_PARTITIONS; i++)
        m->d.committed[i] = m->d.lag[i] = -1;
    return 0;
}

void ps_metrics_destroy(ps_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void ps_metrics_stored(ps_metrics *m, size_t n, size_t inserted, size_t duplicates, double seconds)
{
    pthread_mutex_lock(&m->mu);
    m->d.stored += inserted;
    m->d.duplicates += duplicates;
    chat_hist_observe(&m->d.batch_size, (double)n);
    chat_hist_observe(&m->d.insert_seconds, seconds);
    pthread_mutex_unlock(&m->mu);
}

void ps_metrics_copy(ps_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->d.copies++;
    pthread_mutex_unlock(&m->mu);
}

void ps_metrics_store_failed(ps_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->d.store_failures++;
    pthread_mutex_unlock(&m->mu);
}

void ps_metrics_committed(ps_metrics *m, const ps_batch *b, int ok)
{
    pthread_mutex_lock(&m->mu);
    m->d.batches++;
    m->d.skipped += b->skipped;
    if (!ok)
        m->d.commit_failures++;
    for (size_t i = 0; ok && i < b->noffs; i++)
        if (b->offs[i].partition >= 0 && b->offs[i].partition < PS_METRICS_PARTITIONS)
            m->d.committed[b->offs[i].partition] = b->offs[i].next;
    pthread_mutex_unlock(&m->mu);
}

void ps_metrics_set_lag(ps_metrics *m, const int64_t *lags, int64_t total, int assigned)
{
    pthread_mutex_lock(&m->mu);
    memcpy(m->d.lag, lags, sizeof(m->d.lag));
    m->d.lag_total = total;
    m->d.assigned = assigned;
    pthread_mutex_unlock(&m->mu);
}

static void per_partition(chat_prom *w, const char *name, const char *help, const int64_t *v)
{
    chat_prom_head(w, name, "gauge", help);
    for (int p = 0; p < PS_METRICS_PARTITIONS; p++) {
        char pl[16];
        if (v[p] < 0)
            continue;
        snprintf(pl, sizeof(pl), "%d", p);
        chat_prom_sample(w, name, "partition", pl, (double)v[p]);
    }
}

#define P "chat_persister_"

int ps_metrics_render(ps_metrics *m, char **body, size_t *len)
{
    ps_metrics_data *d = malloc(sizeof(*d));
    chat_prom w;
    if (!d)
        return -ENOMEM;
    pthread_mutex_lock(&m->mu);
    *d = m->d;
    pthread_mutex_unlock(&m->mu);
    const chat_prom_metric t[] = {
        {P "messages_stored_total", "counter", "Messages inserted into MongoDB.",
         (double)d->stored},
        {P "duplicates_total", "counter",
         "Messages already stored (a replay after a crash or a rebalance).", (double)d->duplicates},
        {P "records_skipped_total", "counter", "Undecodable records skipped (logged).",
         (double)d->skipped},
        {P "copies_dropped_total", "counter",
         "Records not stored as a second copy of one send (same room, sender and cid).",
         (double)d->copies},
        {P "batches_total", "counter", "Batches stored and committed.", (double)d->batches},
        {P "store_retries_total", "counter", "Failed insert_many calls, each retried with backoff.",
         (double)d->store_failures},
        {P "commit_failures_total", "counter", "Offset commits that failed (re-read later).",
         (double)d->commit_failures},
        {P "assigned_partitions", "gauge", "Partitions this instance consumes.",
         (double)d->assigned},
        {P "consumer_lag_total_records", "gauge",
         "Records behind the high watermarks over the assigned partitions.", (double)d->lag_total},
    };
    if (chat_prom_init(&w, PS_METRICS_PAGE_MAX) != 0) {
        free(d);
        return -ENOMEM;
    }
    chat_prom_table(&w, t, sizeof(t) / sizeof(t[0]));
    chat_prom_hist(&w, P "batch_size_messages", "Messages per insert_many.", &d->batch_size);
    chat_prom_hist(&w, P "insert_latency_seconds", "One successful insert_many.",
                   &d->insert_seconds);
    per_partition(&w, P "committed_offset",
                  "The next offset this instance committed, by partition.", d->committed);
    per_partition(&w, P "consumer_lag_records",
                  "Records behind the high watermark, by assigned partition.", d->lag);
    free(d);
    if (w.full) {
        chat_prom_free(&w);
        return -E2BIG;
    }
    *body = chat_prom_take(&w, len);
    return 0;
}
