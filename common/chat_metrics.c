/* chat_metrics.c: Prometheus text exposition helpers (see chat_metrics.h). */
#define _POSIX_C_SOURCE 200809L
#include "chat_metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double chat_hist_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t chat_hist_latency_nbounds =
    sizeof(chat_hist_latency_bounds) / sizeof(chat_hist_latency_bounds[0]);
const double chat_hist_size_bounds[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000};
const size_t chat_hist_size_nbounds =
    sizeof(chat_hist_size_bounds) / sizeof(chat_hist_size_bounds[0]);

void chat_hist_init(chat_hist *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds < CHAT_HIST_BOUNDS_MAX ? nbounds : CHAT_HIST_BOUNDS_MAX;
}

void chat_hist_observe(chat_hist *h, double v)
{
    size_t i = 0;
    if (!(v >= 0)) /* NaN or negative (a clock step): counted as 0 */
        v = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += v;
}

void chat_label_counts_add(chat_label_counts *c, const char *label, uint64_t delta)
{
    size_t i;
    if (!label)
        label = "";
    for (i = 0; i < c->n; i++)
        if (strncmp(c->label[i], label, sizeof(c->label[i]) - 1) == 0)
            break;
    if (i == c->n) {
        if (c->n >= CHAT_LABELS_MAX - 1 && strcmp(label, "other") != 0)
            label = "other"; /* the last slot is for everything after it */
        for (i = 0; i < c->n; i++)
            if (strcmp(c->label[i], label) == 0)
                break;
        if (i == c->n) {
            snprintf(c->label[i], sizeof(c->label[i]), "%s", label);
            c->count[i] = 0;
            c->n++;
        }
    }
    c->count[i] += delta;
}

int chat_prom_init(chat_prom *w, size_t cap)
{
    w->buf = malloc(cap);
    w->len = 0;
    w->cap = w->buf ? cap : 0;
    w->full = false;
    if (!w->buf)
        return -ENOMEM;
    w->buf[0] = '\0';
    return 0;
}

void chat_prom_free(chat_prom *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

char *chat_prom_take(chat_prom *w, size_t *len)
{
    char *b = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return b;
}

static void put(chat_prom *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(chat_prom *w, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (w->full || !w->buf)
        return;
    va_start(ap, fmt);
    n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len) {
        w->full = true;
        w->buf[w->len] = '\0';
        return;
    }
    w->len += (size_t)n;
}

/* Integers as integers (counters up to 2^53 are exact), the rest with enough digits. */
static void fmt_value(char *out, size_t len, double v)
{
    if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && v == (double)(long long)v)
        snprintf(out, len, "%lld", (long long)v);
    else
        snprintf(out, len, "%.9g", v);
}

void chat_prom_head(chat_prom *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void chat_prom_sample(chat_prom *w, const char *name, const char *label, const char *value,
                      double v)
{
    char num[40];
    fmt_value(num, sizeof(num), v);
    if (!label) {
        put(w, "%s %s\n", name, num);
        return;
    }
    char esc[96];
    size_t o = 0;
    for (const char *p = value ? value : ""; *p && o + 3 < sizeof(esc); p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            esc[o++] = '\\';
            esc[o++] = *p == '\n' ? 'n' : *p;
        } else
            esc[o++] = *p;
    }
    esc[o] = '\0';
    put(w, "%s{%s=\"%s\"} %s\n", name, label, esc, num);
}

void chat_prom_table(chat_prom *w, const chat_prom_metric *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        chat_prom_head(w, m[i].name, m[i].type, m[i].help);
        if (m[i].value >= 0)
            chat_prom_sample(w, m[i].name, NULL, NULL, m[i].value);
    }
}

void chat_prom_hist(chat_prom *w, const char *name, const char *help, const chat_hist *h)
{
    uint64_t cum = 0;
    char le[40];
    chat_prom_head(w, name, "histogram", help);
    for (size_t i = 0; i < h->nbounds; i++) {
        cum += h->buckets[i];
        fmt_value(le, sizeof(le), h->bounds[i]);
        put(w, "%s_bucket{le=\"%s\"} %llu\n", name, le, (unsigned long long)cum);
    }
    put(w, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    char sum[40];
    fmt_value(sum, sizeof(sum), h->sum);
    put(w, "%s_sum %s\n%s_count %llu\n", name, sum, name, (unsigned long long)h->count);
}

void chat_prom_labelled(chat_prom *w, const char *name, const char *help, const char *label,
                        const chat_label_counts *c)
{
    chat_prom_head(w, name, "counter", help);
    for (size_t i = 0; i < c->n; i++)
        chat_prom_sample(w, name, label, c->label[i], (double)c->count[i]);
}
