/* gw_rate.c: token bucket for per-connection frame rate limits (see gw_rate.h). Tokens refill
 * continuously at per_ms up to burst; a clock that goes backwards refills nothing. */
#include "gw_rate.h"

void gw_rate_spec_init(gw_rate_spec *sp, double per_second, double burst)
{
    if (!(per_second > 0))
        per_second = 1;
    if (!(burst >= 1))
        burst = 1;
    sp->per_ms = per_second / 1000.0;
    sp->burst = burst;
}

void gw_rate_init(gw_rate *r, const gw_rate_spec *sp, int64_t now_ms)
{
    r->tokens = sp->burst;
    r->last_ms = now_ms;
}

bool gw_rate_take(gw_rate *r, const gw_rate_spec *sp, int64_t now_ms)
{
    if (now_ms > r->last_ms) {
        r->tokens += (double)(now_ms - r->last_ms) * sp->per_ms;
        if (r->tokens > sp->burst)
            r->tokens = sp->burst;
        r->last_ms = now_ms;
    }
    /* The epsilon absorbs rounding in the sums above: a token due at t is granted at t. */
    if (r->tokens < 1.0 - 1e-9)
        return false;
    r->tokens -= 1.0;
    if (r->tokens < 0)
        r->tokens = 0;
    return true;
}
