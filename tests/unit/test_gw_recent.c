/* test_gw_recent.c: the ring of recent fan-out frames: order, filtering by room and id,
 * eviction by count and by bytes, and references. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gw_recent.h"

typedef struct seen {
    char ids[16][32];
    size_t n;
} seen;

static void collect(const char *id, gw_buf *b, void *arg)
{
    seen *s = arg;
    (void)b;
    if (s->n < 16)
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
    s->n++;
}

static void id_of(char *out, int offset)
{
    snprintf(out, 26, "0001-%020d", offset);
}

static void test_order_and_filter(void)
{
    gw_recent *r = gw_recent_new(8, 1 << 20);
    CHECK(r != NULL);
    char id[26];
    for (int i = 0; i < 6; i++) {
        gw_buf *b = gw_buf_from("x", 1);
        id_of(id, i);
        CHECK(gw_recent_add(r, i % 2 ? "odd" : "even", id, b) == 0);
        CHECK(b->refs == 2);
        gw_buf_unref(b);
    }
    seen s = {0};
    CHECK(gw_recent_after(r, "even", "", collect, &s) == 3);
    id_of(id, 0);
    CHECK_STR(s.ids[0], id);
    id_of(id, 4);
    CHECK_STR(s.ids[2], id);

    memset(&s, 0, sizeof(s));
    id_of(id, 1);
    CHECK(gw_recent_after(r, "odd", id, collect, &s) == 2); /* 3 and 5, not 1 */
    id_of(id, 3);
    CHECK_STR(s.ids[0], id);
    CHECK(gw_recent_after(r, "nobody", "", collect, &s) == 0);
    gw_recent_free(r);
}

static void test_evicts_by_count(void)
{
    gw_recent *r = gw_recent_new(3, 1 << 20);
    char id[26];
    gw_buf *first = gw_buf_from("a", 1);
    id_of(id, 0);
    gw_recent_add(r, "room", id, first);
    for (int i = 1; i < 5; i++) {
        gw_buf *b = gw_buf_from("a", 1);
        id_of(id, i);
        gw_recent_add(r, "room", id, b);
        gw_buf_unref(b);
    }
    CHECK(gw_recent_count(r) == 3);
    CHECK(first->refs == 1); /* the ring let go of the evicted frame */
    gw_buf_unref(first);
    seen s = {0};
    CHECK(gw_recent_after(r, "room", "", collect, &s) == 3);
    id_of(id, 2);
    CHECK_STR(s.ids[0], id);
    id_of(id, 4);
    CHECK_STR(s.ids[2], id);
    gw_recent_free(r);
}

static void test_evicts_by_bytes(void)
{
    gw_recent *r = gw_recent_new(100, 10);
    char id[26];
    for (int i = 0; i < 4; i++) {
        gw_buf *b = gw_buf_from("four", 4);
        id_of(id, i);
        gw_recent_add(r, "room", id, b);
        gw_buf_unref(b);
    }
    CHECK(gw_recent_count(r) == 2);
    CHECK(gw_recent_bytes(r) == 8);
    gw_buf *big = gw_buf_from("eleven char", 11);
    id_of(id, 9);
    CHECK(gw_recent_add(r, "room", id, big) == 0); /* larger than the bound: not kept */
    CHECK(big->refs == 1);
    CHECK(gw_recent_count(r) == 2);
    gw_buf_unref(big);
    char longroom[80];
    memset(longroom, 'r', sizeof(longroom) - 1);
    longroom[sizeof(longroom) - 1] = '\0';
    gw_buf *b = gw_buf_from("x", 1);
    CHECK(gw_recent_add(r, longroom, id, b) < 0);
    gw_buf_unref(b);
    gw_recent_free(r);
    CHECK(gw_recent_new(0, 10) == NULL);
}

int main(void)
{
    RUN(test_order_and_filter);
    RUN(test_evicts_by_count);
    RUN(test_evicts_by_bytes);
    return check_summary();
}
