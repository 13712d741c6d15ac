/* test_gw_sendq.c: the bounded send queue (gw_sendq.c) and the refcounted buffers it holds
 * (gw_buf.c): item bound, byte bound, references taken and dropped, ring wraparound. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "gw_sendq.h"

static void test_buf(void)
{
    gw_buf *b = gw_buf_from("hello", 5);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK(b->refs == 1);
    CHECK(b->len == 5);
    CHECK(memcmp(gw_buf_payload(b), "hello", 5) == 0);
    CHECK(gw_buf_payload(b)[5] == '\0');
    CHECK(gw_buf_payload(b) - b->data == GW_BUF_PRE);
    CHECK(gw_buf_ref(b) == b);
    CHECK(b->refs == 2);
    gw_buf_unref(b);
    CHECK(b->refs == 1);
    gw_buf_unref(b); /* freed: ASan reports a leak otherwise */
    gw_buf_unref(NULL);

    gw_buf *e = gw_buf_new(0);
    CHECK(e != NULL);
    if (e) {
        CHECK(e->len == 0);
        CHECK(gw_buf_payload(e)[0] == '\0');
        gw_buf_unref(e);
    }
    CHECK(gw_buf_new((size_t)-1) == NULL);
}

static void test_item_bound(void)
{
    gw_sendq q = {0};
    gw_sendq_limits lim;
    gw_buf *b = gw_buf_from("x", 1);
    CHECK(gw_sendq_limits_init(&lim, 3, 1000) == 0);
    CHECK(gw_sendq_peek(&q) == NULL);
    gw_sendq_pop(&q); /* empty: no-op */
    CHECK(gw_sendq_push(&q, &lim, b) == 0);
    CHECK(gw_sendq_push(&q, &lim, b) == 0);
    CHECK(gw_sendq_push(&q, &lim, b) == 0);
    CHECK(b->refs == 4);
    CHECK(gw_sendq_push(&q, &lim, b) == -ENOBUFS);
    CHECK(b->refs == 4); /* no reference taken on failure */
    CHECK(q.count == 3);
    CHECK(q.bytes == 3);
    gw_sendq_pop(&q);
    CHECK(b->refs == 3);
    CHECK(gw_sendq_push(&q, &lim, b) == 0);
    gw_sendq_clear(&q);
    CHECK(b->refs == 1); /* clear dropped every queued reference */
    gw_buf_unref(b);

    CHECK(gw_sendq_limits_init(&lim, 0, 10) == -EINVAL);
    CHECK(gw_sendq_limits_init(&lim, 10, 0) == -EINVAL);
}

static void test_byte_bound(void)
{
    gw_sendq q = {0};
    gw_sendq_limits lim;
    gw_buf *big = gw_buf_new(60), *small = gw_buf_new(30), *huge = gw_buf_new(101);
    CHECK(big && small && huge);
    if (!big || !small || !huge)
        return;
    CHECK(gw_sendq_limits_init(&lim, 100, 100) == 0);
    CHECK(gw_sendq_push(&q, &lim, huge) == -ENOBUFS); /* larger than the bound on its own */
    CHECK(gw_sendq_push(&q, &lim, big) == 0);
    CHECK(gw_sendq_push(&q, &lim, small) == 0);
    CHECK(q.bytes == 90);
    CHECK(gw_sendq_push(&q, &lim, small) == -ENOBUFS); /* 120 > 100 */
    CHECK(q.bytes == 90);
    CHECK(gw_sendq_peek(&q) == big);
    gw_sendq_pop(&q);
    CHECK(q.bytes == 30);
    CHECK(gw_sendq_push(&q, &lim, big) == 0); /* exactly 90 again */
    gw_buf *ten = gw_buf_new(10);
    CHECK(gw_sendq_push(&q, &lim, ten) == 0); /* exactly 100 */
    CHECK(q.bytes == 100);
    gw_buf *one = gw_buf_new(1);
    CHECK(gw_sendq_push(&q, &lim, one) == -ENOBUFS);
    /* an empty buffer still costs an item slot but no bytes */
    gw_buf *zero = gw_buf_new(0);
    CHECK(gw_sendq_push(&q, &lim, zero) == 0);
    gw_sendq_clear(&q);
    CHECK(big->refs == 1 && small->refs == 1 && ten->refs == 1 && zero->refs == 1);
    gw_buf_unref(big);
    gw_buf_unref(small);
    gw_buf_unref(huge);
    gw_buf_unref(ten);
    gw_buf_unref(one);
    gw_buf_unref(zero);
}

static void test_wraparound(void)
{
    gw_sendq q = {0};
    gw_sendq_limits lim;
    gw_buf *bufs[5];
    char s[2] = "a";
    for (int i = 0; i < 5; i++) {
        s[0] = (char)('a' + i);
        bufs[i] = gw_buf_from(s, 1);
    }
    CHECK(gw_sendq_limits_init(&lim, 3, 100) == 0);
    /* push and pop many times over a ring of 3 so head wraps repeatedly; order is FIFO */
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 50; round++) {
        while (gw_sendq_push(&q, &lim, bufs[next_in % 5]) == 0)
            next_in++;
        CHECK(q.count == 3);
        int pops = 1 + round % 3;
        for (int k = 0; k < pops; k++) {
            gw_buf *b = gw_sendq_peek(&q);
            CHECK(b == bufs[next_out % 5]);
            gw_sendq_pop(&q);
            next_out++;
        }
        CHECK(q.bytes == q.count);
    }
    CHECK(next_in - next_out == (int)q.count);
    gw_sendq_clear(&q);
    CHECK(q.items == NULL);
    for (int i = 0; i < 5; i++) {
        CHECK(bufs[i]->refs == 1);
        gw_buf_unref(bufs[i]);
    }
}

/* One buffer shared by many queues, as in fan-out: freed only after the last queue drops it. */
static void test_shared(void)
{
    gw_sendq qs[4] = {0};
    gw_sendq_limits lim;
    gw_buf *b = gw_buf_from("{\"type\":\"message\"}", 18);
    CHECK(gw_sendq_limits_init(&lim, 2, 64) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(gw_sendq_push(&qs[i], &lim, b) == 0);
    gw_buf_unref(b); /* the producer's reference */
    CHECK(b->refs == 4);
    for (int i = 0; i < 3; i++)
        gw_sendq_clear(&qs[i]);
    CHECK(b->refs == 1);
    CHECK(memcmp(gw_buf_payload(gw_sendq_peek(&qs[3])), "{\"type\"", 7) == 0);
    gw_sendq_clear(&qs[3]);
}

int main(void)
{
    RUN(test_buf);
    RUN(test_item_bound);
    RUN(test_byte_bound);
    RUN(test_wraparound);
    RUN(test_shared);
    return check_summary();
}
