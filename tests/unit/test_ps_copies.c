/* test_ps_copies.c: the persister's memory of recent sends: a second record of one send is a
 * copy, the first one replayed is not, nor another sender, room, cid or partition; the oldest
 * key is forgotten first once the window is full. */
#include <errno.h>
#include <stdio.h>

#include "check.h"
#include "ps_copies.h"

static void test_copies(void)
{
    ps_copies *c = NULL;
    CHECK(ps_copies_new(&c, 0) == -EINVAL && c == NULL);
    CHECK(ps_copies_new(&c, 4) == 0 && c != NULL);
    CHECK(!ps_copies_seen(c, "r", "alice", "c1", 0, 10));
    CHECK(!ps_copies_seen(c, "r", "alice", "c1", 0, 10)); /* a replay of the same record */
    CHECK(ps_copies_seen(c, "r", "alice", "c1", 0, 11));
    CHECK(ps_copies_seen(c, "r", "alice", "c1", 0, 40));
    CHECK(!ps_copies_seen(c, "r", "alice", "", 0, 12)); /* no cid: never a copy */
    CHECK(!ps_copies_seen(c, "r", "bob", "c1", 0, 13));
    CHECK(!ps_copies_seen(c, "s", "alice", "c1", 1, 14));
    CHECK(!ps_copies_seen(c, "r", "alice", "c2", 0, 15));
    CHECK(!ps_copies_seen(c, "r", "alice", "c1", 3, 99)); /* another partition: not comparable */
    CHECK(ps_copies_count(c) == 4);
    /* the keys must not run into each other: ("ra", "b") is not ("r", "ab") */
    CHECK(!ps_copies_seen(c, "ra", "b", "x", 0, 50));
    CHECK(!ps_copies_seen(c, "r", "ab", "x", 0, 51));
    /* full: the oldest keys went first (r/alice/c1, then r/bob/c1) */
    CHECK(ps_copies_count(c) == 4);
    CHECK(!ps_copies_seen(c, "r", "alice", "c1", 0, 60));
    CHECK(ps_copies_seen(c, "r", "ab", "x", 0, 61));
    ps_copies_free(c);
}

static void test_many(void)
{
    ps_copies *c = NULL;
    CHECK(ps_copies_new(&c, 1000) == 0);
    char cid[32];
    int copies = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(cid, sizeof(cid), "c%d", i);
        copies += ps_copies_seen(c, "room", "u", cid, 2, i);
        /* the retry of the send 10 records back: within the window */
        if (i >= 10) {
            snprintf(cid, sizeof(cid), "c%d", i - 10);
            copies += ps_copies_seen(c, "room", "u", cid, 2, 100000 + i);
        }
    }
    CHECK(copies == 4990);
    CHECK(ps_copies_count(c) == 1000);
    ps_copies_free(c);
}

int main(void)
{
    RUN(test_copies);
    RUN(test_many);
    return check_summary();
}
