/* ps_metrics.h: the persister's counters, histograms and per-partition gauges, and its
 * /metrics page (Prometheus text format 0.0.4; names in docs/operations.md). The persister's
 * loop updates them (a short mutex hold per batch, never around I/O); the metrics listener's
 * thread copies them under the same mutex and renders the copy outside it. */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_metrics.h"
#include "ps_batch.h"

#define PS_METRICS_PARTITIONS                                                                      \
    1024 /* partitions reported one by one; higher ones only in totals                             \
          */

typedef struct ps_metrics_data {
    uint64_t stored, duplicates, skipped, copies, batches, store_failures, commit_failures;
    chat_hist batch_size;     /* messages per insert_many */
    chat_hist insert_seconds; /* one successful insert_many */
    int64_t lag_total;        /* -1: unknown */
    int assigned;
    int64_t committed[PS_METRICS_PARTITIONS]; /* next offset committed; -1: none by us */
    int64_t lag[PS_METRICS_PARTITIONS];       /* -1: not assigned or unknown */
} ps_metrics_data;

typedef struct ps_metrics {
    pthread_mutex_t mu;
    ps_metrics_data d;
} ps_metrics;

/* Returns 0 or a negative errno. */
int ps_metrics_init(ps_metrics *m);
void ps_metrics_destroy(ps_metrics *m);

/* A batch stored by one successful insert_many of n records taking seconds. */
void ps_metrics_stored(ps_metrics *m, size_t n, size_t inserted, size_t duplicates, double seconds);
/* A record not stored as a copy of an earlier one (ps_copies.h). */
void ps_metrics_copy(ps_metrics *m);
/* A failed insert_many (it is retried). */
void ps_metrics_store_failed(ps_metrics *m);
/* The batch's offsets were committed (ok) or the commit failed; skipped: undecodable records. */
void ps_metrics_committed(ps_metrics *m, const ps_batch *b, int ok);
/* lags[p] for p < PS_METRICS_PARTITIONS (-1: not ours or unknown), their total (-1: unknown)
 * and how many partitions are assigned. */
void ps_metrics_set_lag(ps_metrics *m, const int64_t *lags, int64_t total, int assigned);

/* The page, malloc'd, into *body (*len bytes). Returns 0 or a negative errno. Any thread. */
int ps_metrics_render(ps_metrics *m, char **body, size_t *len);

#endif
