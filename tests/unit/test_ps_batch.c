/* test_ps_batch.c: the persister's batch (capacity, message ids, per-partition commit offsets
 * including skipped records, time-based readiness, poll wait) and the retry backoff
 * (100 ms doubling to a 5 s cap, reset). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_envelope.h"
#include "check.h"
#include "ps_batch.h"

static chat_envelope make_env(const char *text)
{
    chat_envelope src = {0}, e;
    src.version = CHAT_ENVELOPE_VERSION;
    src.room = "general";
    src.from = "alice";
    src.text = (char *)text;
    src.ts_ms = 1000;
    if (chat_envelope_copy(&e, &src) != 0)
        abort();
    return e;
}

static int64_t next_of(const ps_batch *b, int32_t partition)
{
    for (size_t i = 0; i < b->noffs; i++)
        if (b->offs[i].partition == partition)
            return b->offs[i].next;
    return -1;
}

static void test_add_and_offsets(void)
{
    ps_batch b;
    chat_envelope e;

    CHECK(ps_batch_init(&b, 3) == 0);
    CHECK(ps_batch_empty(&b));
    CHECK(!ps_batch_ready(&b, 1000000, 0)); /* an empty batch is never ready */

    e = make_env("one");
    CHECK(ps_batch_add(&b, 2, 41, &e, 100) == 0);
    CHECK(e.text == NULL); /* ownership moved */
    CHECK(b.n == 1);
    CHECK_STR(b.recs[0].id, "0002-00000000000000000041");
    CHECK_STR(b.recs[0].env.text, "one");
    CHECK(b.first_ms == 100);

    e = make_env("two");
    CHECK(ps_batch_add(&b, 0, 7, &e, 150) == 0);
    CHECK(b.first_ms == 100);                  /* the first record's time counts */
    CHECK(ps_batch_skip(&b, 2, 45, 160) == 0); /* undecodable record later on partition 2 */
    CHECK(b.skipped == 1);
    CHECK(b.noffs == 2);
    CHECK(next_of(&b, 2) == 46);
    CHECK(next_of(&b, 0) == 8);

    /* an older offset never moves the commit point back */
    CHECK(ps_batch_skip(&b, 2, 3, 170) == 0);
    CHECK(next_of(&b, 2) == 46);

    e = make_env("three");
    CHECK(ps_batch_add(&b, 0, 8, &e, 170) == 0);
    CHECK(b.n == 3);
    CHECK(next_of(&b, 0) == 9);
    CHECK(ps_batch_ready(&b, 170, 1000)); /* full */
    CHECK(ps_batch_wait_ms(&b, 170, 1000, 200) == 0);

    e = make_env("four");
    CHECK(ps_batch_add(&b, 0, 9, &e, 180) == -ENOBUFS);
    CHECK(e.text != NULL);      /* still ours on failure */
    CHECK(next_of(&b, 0) == 9); /* and not tracked */
    chat_envelope_clear(&e);

    ps_batch_reset(&b);
    CHECK(ps_batch_empty(&b));
    CHECK(b.n == 0 && b.noffs == 0 && b.skipped == 0 && b.first_ms == -1);
    e = make_env("again");
    CHECK(ps_batch_add(&b, 5, 0, &e, 500) == 0);
    CHECK_STR(b.recs[0].id, "0005-00000000000000000000");
    ps_batch_free(&b);
}

static void test_invalid(void)
{
    ps_batch b;
    chat_envelope e = make_env("x");

    CHECK(ps_batch_init(&b, 0) == -EINVAL);
    CHECK(ps_batch_init(&b, 2) == 0);
    CHECK(ps_batch_add(&b, -1, 0, &e, 0) == -EINVAL);
    CHECK(ps_batch_add(&b, 10000, 0, &e, 0) == -EINVAL);
    CHECK(ps_batch_add(&b, 1, -1, &e, 0) == -EINVAL);
    CHECK(ps_batch_skip(&b, 10000, 0, 0) == -EINVAL);
    CHECK(ps_batch_skip(&b, 0, -1001, 0) == -EINVAL);
    CHECK(ps_batch_empty(&b));
    CHECK(e.text != NULL);
    chat_envelope_clear(&e);
    ps_batch_free(&b);
}

static void test_timing(void)
{
    ps_batch b;
    chat_envelope e = make_env("t");

    CHECK(ps_batch_init(&b, 500) == 0);
    CHECK(ps_batch_wait_ms(&b, 0, 200, 250) == 250); /* empty: idle wait */
    CHECK(ps_batch_add(&b, 1, 1, &e, 1000) == 0);
    CHECK(!ps_batch_ready(&b, 1000, 200));
    CHECK(!ps_batch_ready(&b, 1199, 200));
    CHECK(ps_batch_ready(&b, 1200, 200));
    CHECK(ps_batch_wait_ms(&b, 1000, 200, 250) == 200);
    CHECK(ps_batch_wait_ms(&b, 1150, 200, 250) == 50);
    CHECK(ps_batch_wait_ms(&b, 1000, 200, 30) == 30); /* capped by the idle wait */
    CHECK(ps_batch_wait_ms(&b, 5000, 200, 250) == 0); /* overdue */
    CHECK(ps_batch_ready(&b, 1000, 0));               /* batch_ms 0: store at once */
    ps_batch_reset(&b);

    /* a batch of only skipped records becomes ready too, so its offsets get committed */
    CHECK(ps_batch_skip(&b, 3, 10, 2000) == 0);
    CHECK(!ps_batch_empty(&b));
    CHECK(!ps_batch_ready(&b, 2100, 200));
    CHECK(ps_batch_ready(&b, 2200, 200));
    ps_batch_free(&b);
}

static void test_many_partitions(void)
{
    ps_batch b;

    CHECK(ps_batch_init(&b, 1) == 0);
    for (int32_t p = 0; p < 10000; p++)
        CHECK(ps_batch_skip(&b, p, p, 0) == 0 || (fprintf(stderr, "p=%d\n", p), 0));
    CHECK(b.noffs == 10000);
    CHECK(next_of(&b, 9999) == 10000);
    CHECK(next_of(&b, 0) == 1);
    ps_batch_free(&b);
}

static void test_backoff(void)
{
    ps_backoff bo;
    static const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};

    ps_backoff_init(&bo, 100, 5000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK(ps_backoff_next(&bo) == want[i]);
    CHECK(bo.failures == 9);
    ps_backoff_reset(&bo);
    CHECK(bo.failures == 0);
    CHECK(ps_backoff_next(&bo) == 100);
    CHECK(ps_backoff_next(&bo) == 200);

    /* degenerate bounds are repaired, never zero or growing without bound */
    ps_backoff_init(&bo, 0, 0);
    CHECK(ps_backoff_next(&bo) == 1);
    CHECK(ps_backoff_next(&bo) == 1);
    ps_backoff_init(&bo, 3000, 5000);
    CHECK(ps_backoff_next(&bo) == 3000);
    CHECK(ps_backoff_next(&bo) == 5000);
    CHECK(ps_backoff_next(&bo) == 5000);
    ps_backoff_init(&bo, 1, INT64_MAX);
    for (int i = 0; i < 100; i++)
        CHECK(ps_backoff_next(&bo) > 0);
}

int main(void)
{
    RUN(test_add_and_offsets);
    RUN(test_invalid);
    RUN(test_timing);
    RUN(test_many_partitions);
    RUN(test_backoff);
    return check_summary();
}
