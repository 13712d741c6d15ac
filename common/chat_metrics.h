/* chat_metrics.h: the pieces of a Prometheus text exposition (format 0.0.4) that the gateway's
 * and the persister's /metrics share: histograms with fixed buckets, counters by one label with
 * a bounded set of values, and a bounded writer that renders HELP/TYPE lines and samples.
 * Nothing here locks: the owner of a chat_hist or chat_label_counts updates and reads it from
 * one thread, or under its own lock. */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_HIST_BOUNDS_MAX 16

/* Upper bounds (seconds) for latencies from 0.5 ms to 10 s, and for batch sizes (messages). */
extern const double chat_hist_latency_bounds[];
extern const size_t chat_hist_latency_nbounds;
extern const double chat_hist_size_bounds[];
extern const size_t chat_hist_size_nbounds;

typedef struct chat_hist {
    const double *bounds;                       /* ascending, static */
    size_t nbounds;                             /* at most CHAT_HIST_BOUNDS_MAX */
    uint64_t buckets[CHAT_HIST_BOUNDS_MAX + 1]; /* per bucket (not cumulative); last: +Inf */
    uint64_t count;
    double sum;
} chat_hist;

void chat_hist_init(chat_hist *h, const double *bounds, size_t nbounds);
void chat_hist_observe(chat_hist *h, double v);

/* Counts by one label value (e.g. an error code); at most CHAT_LABELS_MAX distinct values,
 * later ones are counted under "other". Values are cut to 31 bytes. Zero-initialised is empty. */
#define CHAT_LABELS_MAX 32
typedef struct chat_label_counts {
    size_t n;
    char label[CHAT_LABELS_MAX][32];
    uint64_t count[CHAT_LABELS_MAX];
} chat_label_counts;

void chat_label_counts_add(chat_label_counts *c, const char *label, uint64_t delta);

/* The exposition being written: a malloc'd buffer of at most cap bytes. When something does not
 * fit, full is set and the rest is dropped (the caller answers 500 rather than half a page). */
typedef struct chat_prom {
    char *buf;
    size_t len, cap;
    bool full;
} chat_prom;

/* Returns 0 or -ENOMEM. */
int chat_prom_init(chat_prom *w, size_t cap);
void chat_prom_free(chat_prom *w);
/* Hands the buffer over (the caller frees it); w is empty afterwards. */
char *chat_prom_take(chat_prom *w, size_t *len);

/* One row of a table of unlabelled metrics: adding a metric is adding a row. type is "counter"
 * or "gauge"; a negative value (unknown) is left out, its HELP and TYPE kept. */
typedef struct chat_prom_metric {
    const char *name, *type, *help;
    double value;
} chat_prom_metric;

void chat_prom_table(chat_prom *w, const chat_prom_metric *m, size_t n);
/* "# HELP name help" and "# TYPE name type". */
void chat_prom_head(chat_prom *w, const char *name, const char *type, const char *help);
/* "name{label="value"} v" (label NULL: "name v"); the value is escaped. */
void chat_prom_sample(chat_prom *w, const char *name, const char *label, const char *value,
                      double v);
/* A histogram's _bucket (cumulative, le), _sum and _count lines, with its HELP and TYPE. */
void chat_prom_hist(chat_prom *w, const char *name, const char *help, const chat_hist *h);
/* A counter by label, with its HELP and TYPE; every value seen gets a sample. */
void chat_prom_labelled(chat_prom *w, const char *name, const char *help, const char *label,
                        const chat_label_counts *c);

#endif
