/* test_gw_throttle.c: the typing gate (gw_throttle.c): one pass per key per window, keys apart
 * from each other, the window measured from the last pass, and fixed memory when far more keys
 * are active than the table has slots (an evicted key may pass early, never the others). */
#include <stdio.h>

#include "check.h"
#include "gw_throttle.h"

static void test_window(void)
{
    gw_throttle t;
    CHECK(gw_throttle_init(&t, 16, 2000) == 0);
    CHECK(gw_throttle_take(&t, "alice", "general", 1000));
    CHECK(!gw_throttle_take(&t, "alice", "general", 1001));
    CHECK(!gw_throttle_take(&t, "alice", "general", 2999));
    CHECK(gw_throttle_take(&t, "bob", "general", 1500));   /* another user */
    CHECK(gw_throttle_take(&t, "alice", "random", 1500));  /* another room */
    CHECK(gw_throttle_take(&t, "alicegeneral", "", 1500)); /* keys do not run together */
    CHECK(gw_throttle_take(&t, "alice", "general", 3000)); /* window over */
    CHECK(!gw_throttle_take(&t, "alice", "general", 4999));
    CHECK(gw_throttle_take(&t, "alice", "general", 5000));
    CHECK(!gw_throttle_take(&t, "alice", "general", 4000)); /* a clock going back: held */
    gw_throttle_free(&t);
}

static void test_bounded(void)
{
    gw_throttle t;
    CHECK(gw_throttle_init(&t, 10, 2000) == 0);
    CHECK(t.nbuckets == 16);
    size_t bytes = gw_throttle_bytes(&t);
    CHECK(bytes == 16 * GW_THROTTLE_WAYS * sizeof(gw_throttle_slot));
    /* 10,000 keys at once: memory stays, every new key passes */
    char user[32];
    int passed = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        passed += gw_throttle_take(&t, user, "r", 100);
    }
    CHECK(passed == 10000);
    CHECK(gw_throttle_bytes(&t) == bytes);
    /* the most recent keys are still held */
    int held = 0;
    for (int i = 9990; i < 10000; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        held += !gw_throttle_take(&t, user, "r", 200);
    }
    CHECK(held >= 8);
    gw_throttle_free(&t);
}

int main(void)
{
    RUN(test_window);
    RUN(test_bounded);
    return check_summary();
}
