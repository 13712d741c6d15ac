/* gw_metrics.h: the gateway's /metrics page (Prometheus text format 0.0.4): the counters of
 * gw_stats, the histograms, the labelled counters and the gauges read from the room logs, the
 * rooms, the sessions and Kafka. The names and their meaning are listed in docs/operations.md.
 * Loop thread only. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>

#include "gw_ctx.h"

#define GW_METRICS_MAX (256 * 1024) /* bytes of one /metrics page at most */

/* Sets up the histograms' buckets (the counters start at zero with the context). */
void gw_metrics_init(gw_stats *st);

/* Counts a close the gateway decided, by its close code. */
void gw_metrics_close(gw_stats *st, int code);

/* The page, malloc'd, into *body (*len bytes; the caller frees it). Returns 0, -ENOMEM, or
 * -E2BIG when it would exceed GW_METRICS_MAX. */
int gw_metrics_render(gw_ctx *ctx, char **body, size_t *len);

#endif
