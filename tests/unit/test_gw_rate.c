/* test_gw_rate.c: the token bucket (gw_rate.c): burst, refill rate, cap at burst, and a clock
 * that goes backwards. */
#include "check.h"
#include "gw_rate.h"

/* Takes tokens at one instant until refused; returns how many were granted. */
static int drain(gw_rate *r, const gw_rate_spec *sp, int64_t now)
{
    int n = 0;
    while (n < 100000 && gw_rate_take(r, sp, now))
        n++;
    return n;
}

static void test_burst_and_refill(void)
{
    gw_rate r;
    gw_rate_spec sp;
    gw_rate_spec_init(&sp, 10, 5);
    gw_rate_init(&r, &sp, 1000);      /* 10/s, burst 5 */
    CHECK(drain(&r, &sp, 1000) == 5); /* starts full */
    CHECK(!gw_rate_take(&r, &sp, 1000));
    CHECK(!gw_rate_take(&r, &sp, 1099)); /* 0.99 token */
    CHECK(gw_rate_take(&r, &sp, 1100));  /* 1 token after 100 ms */
    CHECK(!gw_rate_take(&r, &sp, 1100));
    CHECK(drain(&r, &sp, 1400) == 3); /* 300 ms: 3 tokens */
    /* a long pause refills only up to the burst */
    CHECK(drain(&r, &sp, 1000000) == 5);
}

static void test_steady_rate(void)
{
    gw_rate r;
    gw_rate_spec sp;
    gw_rate_spec_init(&sp, 20, 1);
    gw_rate_init(&r, &sp, 0);
    /* one frame every 10 ms for 10 s, bucket of 1, 20/s: about 200 granted, not 1000 */
    int granted = 0;
    for (int64_t t = 0; t < 10000; t += 10)
        granted += gw_rate_take(&r, &sp, t);
    CHECK(granted >= 199 && granted <= 201);
}

static void test_clock_backwards(void)
{
    gw_rate r;
    gw_rate_spec sp;
    gw_rate_spec_init(&sp, 1, 2);
    gw_rate_init(&r, &sp, 5000);
    CHECK(drain(&r, &sp, 5000) == 2);
    CHECK(!gw_rate_take(&r, &sp, 4000)); /* earlier time: no refill, no crash */
    CHECK(!gw_rate_take(&r, &sp, 5999));
    CHECK(gw_rate_take(&r, &sp, 6000)); /* measured from 5000, not from 4000 */
}

static void test_fractional(void)
{
    gw_rate r;
    gw_rate_spec sp;
    gw_rate_spec_init(&sp, 0.5, 1);
    gw_rate_init(&r, &sp, 0); /* one every 2 s */
    CHECK(gw_rate_take(&r, &sp, 0));
    CHECK(!gw_rate_take(&r, &sp, 1999));
    CHECK(gw_rate_take(&r, &sp, 2000));
}

int main(void)
{
    RUN(test_burst_and_refill);
    RUN(test_steady_rate);
    RUN(test_clock_backwards);
    RUN(test_fractional);
    return check_summary();
}
