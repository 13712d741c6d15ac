/* gw_rate.h: a token bucket used to rate-limit each connection's frames.
 * Pure arithmetic on caller-supplied monotonic milliseconds; any thread, no locking. */
#ifndef GW_RATE_H
#define GW_RATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gw_rate {
    double tokens, per_ms, burst;
    int64_t last_ms;
} gw_rate;

/* per_second > 0, burst >= 1. The bucket starts full. */
void gw_rate_init(gw_rate *r, double per_second, double burst, int64_t now_ms);
/* Takes one token if available and returns true; false means rate limited. */
bool gw_rate_take(gw_rate *r, int64_t now_ms);

#endif
