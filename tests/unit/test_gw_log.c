/* test_gw_log.c: the room logs: positions (rseq) per room, coverage per partition, the byte
 * bound and what eviction does to coverage and cursors, the cid index, replays, and room
 * lifetime under references. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gw_log.h"

static gw_buf *frame(const char *text)
{
    return gw_buf_from(text, strlen(text));
}

/* Appends and drops the caller's frame reference; returns the entry. */
static gw_log_entry *add(gw_log *log, int p, long long off, const char *room, const char *from,
                         const char *cid, size_t size)
{
    char *text = malloc(size + 1);
    memset(text, 'x', size);
    text[size] = '\0';
    gw_buf *b = frame(text);
    free(text);
    gw_log_entry *e = gw_log_append(log, p, off, room, from, cid, b);
    gw_buf_unref(b);
    return e;
}

static void test_positions(void)
{
    gw_log *log = gw_log_new(1 << 20, 4, NULL);
    CHECK(log != NULL);
    gw_log_cover(log, 1, 100);
    int64_t start = -1, next = -1;
    CHECK(gw_log_coverage(log, 1, &start, &next) && start == 100 && next == 100);
    CHECK(!gw_log_coverage(log, 4, &start, &next));

    /* a room's entries get consecutive rseq whatever else the partition carries */
    CHECK(add(log, 1, 100, "a", "u", "", 10) != NULL);
    CHECK(add(log, 1, 101, "b", "u", "", 10) != NULL);
    CHECK(add(log, 1, 102, "a", "u", "", 10) != NULL);
    CHECK(add(log, 1, 105, "a", "u", "", 10) != NULL); /* skipped offsets are fine */
    gw_log_room *a = gw_log_room_find(log, "a");
    CHECK(a != NULL && a->partition == 1);
    CHECK(a->first_rseq == 0 && a->next_rseq == 3);
    CHECK(gw_log_at(a, 0)->offset == 100);
    CHECK(gw_log_at(a, 2)->offset == 105);
    CHECK(gw_log_at(a, 3) == NULL);
    CHECK(gw_log_after(a, 100) == 1);
    CHECK(gw_log_after(a, 101) == 1);
    CHECK(gw_log_after(a, 105) == 3);
    CHECK(gw_log_after(a, 99) == 0);
    CHECK(gw_log_from(a, 102) == 1);
    CHECK(gw_log_from(a, 103) == 2);
    CHECK(gw_log_coverage(log, 1, &start, &next) && start == 100 && next == 106);

    /* a replay of what the log already has is ignored */
    CHECK(add(log, 1, 102, "a", "u", "", 10) == NULL);
    CHECK(a->next_rseq == 3);
    CHECK(gw_log_entries(log) == 4);
    CHECK(gw_log_room_find(log, "nope") == NULL);
    CHECK(add(log, 9, 1, "a", "u", "", 1) == NULL);
    gw_log_free(log);
}

static void test_bound_and_coverage(void)
{
    /* entries cost their frame and strings plus a fixed overhead: about 164 bytes here */
    gw_log *log = gw_log_new(2000, 2, NULL);
    gw_log_cover(log, 0, 0);
    gw_log_cover(log, 1, 0);
    for (int i = 0; i < 100; i++)
        CHECK(add(log, i % 2, i / 2, i % 3 ? "busy" : "quiet", "u", "", 100) != NULL);
    CHECK(gw_log_bytes(log) <= 2000);
    CHECK(gw_log_entries(log) > 5 && gw_log_entries(log) < 20);
    CHECK(gw_log_evicted(log) == 100 - gw_log_entries(log));
    /* coverage moved past what was dropped, and only that */
    int64_t s0, n0, s1, n1;
    CHECK(gw_log_coverage(log, 0, &s0, &n0) && n0 == 50);
    CHECK(gw_log_coverage(log, 1, &s1, &n1) && n1 == 50);
    CHECK(s0 > 40 && s1 > 40);
    gw_log_room *busy = gw_log_room_find(log, "busy");
    CHECK(busy != NULL);
    /* every retained entry of a partition is at or after its start */
    for (uint64_t q = busy->first_rseq; q < busy->next_rseq; q++) {
        gw_log_entry *e = gw_log_at(busy, q);
        CHECK(e != NULL);
        CHECK(e->offset >= (e->room->partition ? s1 : s0));
    }
    /* a cursor that pointed at a dropped entry is behind first_rseq: the reader fell off */
    CHECK(busy->first_rseq > 0);
    CHECK(gw_log_at(busy, 0) == NULL);

    /* one frame larger than the whole bound stays, alone */
    CHECK(add(log, 0, 1000, "big", "u", "", 5000) != NULL);
    CHECK(gw_log_entries(log) == 1);
    CHECK(add(log, 0, 1001, "big", "u", "", 10) != NULL);
    CHECK(gw_log_entries(log) == 1);
    gw_log_free(log);
}

static void test_cids(void)
{
    gw_log *log = gw_log_new(1 << 20, 1, NULL);
    gw_log_cover(log, 0, 0);
    CHECK(add(log, 0, 0, "r", "alice", "c1", 5) != NULL);
    CHECK(add(log, 0, 1, "r", "bob", "c1", 5) != NULL);
    CHECK(add(log, 0, 2, "s", "alice", "c1", 5) != NULL);
    CHECK(add(log, 0, 3, "r", "alice", "", 5) != NULL);
    const gw_log_entry *e = gw_log_find_cid(log, "r", "alice", "c1");
    CHECK(e != NULL && e->offset == 0);
    e = gw_log_find_cid(log, "r", "bob", "c1");
    CHECK(e != NULL && e->offset == 1);
    e = gw_log_find_cid(log, "s", "alice", "c1");
    CHECK(e != NULL && e->offset == 2);
    CHECK(gw_log_find_cid(log, "r", "alice", "c2") == NULL);
    CHECK(gw_log_find_cid(log, "r", "alic", "ec1") == NULL);
    CHECK(gw_log_find_cid(log, "r", "alice", "") == NULL);
    gw_log_free(log);

    /* a dropped entry is no longer found */
    log = gw_log_new(600, 1, NULL);
    gw_log_cover(log, 0, 0);
    CHECK(add(log, 0, 0, "r", "alice", "c1", 100) != NULL);
    for (int i = 1; i < 10; i++)
        CHECK(add(log, 0, i, "r", "alice", "", 100) != NULL);
    CHECK(gw_log_find_cid(log, "r", "alice", "c1") == NULL);
    gw_log_free(log);
}

static void test_room_lifetime(void)
{
    gw_log *log = gw_log_new(400, 1, free);
    gw_log_cover(log, 0, 0);
    /* a referenced room outlives its entries and keeps its numbering */
    gw_log_room *r = gw_log_room_ref(log, "kept", 0);
    CHECK(r != NULL && r->refs == 1);
    r->user = malloc(16); /* freed with the room (ASan would see a leak otherwise) */
    CHECK(gw_log_room_ref(log, "kept", 0) == r && r->refs == 2);
    gw_log_room_unref(log, r);
    CHECK(add(log, 0, 0, "kept", "u", "", 100) != NULL);
    CHECK(r->next_rseq == 1);
    for (int i = 1; i < 10; i++)
        CHECK(add(log, 0, i, "other", "u", "", 100) != NULL);
    CHECK(gw_log_room_find(log, "kept") == r);
    CHECK(r->first_rseq == 1 && r->next_rseq == 1);
    /* an unreferenced room goes with its last entry */
    CHECK(gw_log_room_find(log, "other") != NULL);
    gw_log_room_unref(log, r);
    CHECK(gw_log_room_find(log, "kept") == NULL);
    CHECK(gw_log_rooms(log) == 1);
    CHECK(gw_log_room_ref(log, "", 0) == NULL);
    CHECK(gw_log_room_ref(log, "x", 3) == NULL);
    gw_log_free(log);
}

/* A second record of one send (same room, from and cid, later offset) is not kept, and the
 * partition's coverage moves past it; the first record itself, a replay, another sender or room,
 * or no cid are not copies. */
static void test_copies(void)
{
    gw_log *log = gw_log_new(1 << 20, 2, NULL);
    gw_log_cover(log, 0, 10);
    CHECK(add(log, 0, 10, "r", "alice", "c1", 10) != NULL);
    CHECK(!gw_log_skip_copy(log, 0, 10, "r", "alice", "c1")); /* a replay of the original */
    CHECK(gw_log_skip_copy(log, 0, 11, "r", "alice", "c1"));
    int64_t start = -1, next = -1;
    CHECK(gw_log_coverage(log, 0, &start, &next) && start == 10 && next == 12);
    CHECK(gw_log_skip_copy(log, 0, 14, "r", "alice", "c1")); /* another retry */
    CHECK(gw_log_coverage(log, 0, &start, &next) && next == 15);
    CHECK(!gw_log_skip_copy(log, 0, 15, "r", "bob", "c1"));
    CHECK(!gw_log_skip_copy(log, 0, 15, "s", "alice", "c1"));
    CHECK(!gw_log_skip_copy(log, 0, 15, "r", "alice", "c2"));
    CHECK(!gw_log_skip_copy(log, 0, 15, "r", "alice", ""));
    /* the room on another partition (the partition count changed): offsets do not compare */
    CHECK(!gw_log_skip_copy(log, 1, 20, "r", "alice", "c1"));
    CHECK(gw_log_coverage(log, 0, &start, &next) && next == 15);
    gw_log_room *r = gw_log_room_find(log, "r");
    CHECK(r && r->next_rseq - r->first_rseq == 1);
    CHECK(gw_log_find_cid(log, "r", "alice", "c1")->offset == 10);
    gw_log_free(log);
}

int main(void)
{
    RUN(test_copies);
    RUN(test_positions);
    RUN(test_bound_and_coverage);
    RUN(test_cids);
    RUN(test_room_lifetime);
    return check_summary();
}
