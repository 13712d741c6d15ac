/* gw_rate.h: a token bucket used to rate-limit each connection's frames. The rate and burst
 * (gw_rate_spec) are shared by every bucket of one kind; a bucket (gw_rate, 16 bytes, one per
 * connection) holds only its tokens and clock. Pure arithmetic on caller-supplied monotonic
 * milliseconds; any thread, no locking. */
#ifndef GW_RATE_H
#define GW_RATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gw_rate_spec {
    double per_ms, burst;
} gw_rate_spec;

typedef struct gw_rate {
    double tokens;
    int64_t last_ms;
} gw_rate;

/* per_second > 0, burst >= 1 (smaller values are raised to 1). */
void gw_rate_spec_init(gw_rate_spec *sp, double per_second, double burst);
/* The bucket starts full. */
void gw_rate_init(gw_rate *r, const gw_rate_spec *sp, int64_t now_ms);
/* Takes one token if available and returns true; false means rate limited. */
bool gw_rate_take(gw_rate *r, const gw_rate_spec *sp, int64_t now_ms);

#endif
