/* test_gw_rooms.c: the room index (gw_rooms.c): joins, duplicate joins, leaves, leave_all,
 * fan-out order, rooms freed when empty, and a few thousand rooms and members. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gw_rooms.h"

typedef struct visit {
    void *seen[64];
    size_t n;
} visit;

static void record(void *member, void *arg)
{
    visit *v = arg;
    if (v->n < 64)
        v->seen[v->n] = member;
    v->n++;
}

static void test_join_leave(void)
{
    gw_rooms *r = gw_rooms_new();
    int a, b, c;
    CHECK(r != NULL);
    if (!r)
        return;

    CHECK(gw_rooms_room_count(r) == 0);
    CHECK(!gw_rooms_is_member(r, "general", &a));
    CHECK(gw_rooms_join(r, "general", &a) == 0);
    CHECK(gw_rooms_join(r, "general", &a) == 1); /* duplicate */
    CHECK(gw_rooms_join(r, "general", &b) == 0);
    CHECK(gw_rooms_join(r, "random", &a) == 0);
    CHECK(gw_rooms_room_count(r) == 2);
    CHECK(gw_rooms_is_member(r, "general", &a));
    CHECK(gw_rooms_is_member(r, "general", &b));
    CHECK(!gw_rooms_is_member(r, "random", &b));
    CHECK(!gw_rooms_is_member(r, "general", &c));
    CHECK(!gw_rooms_is_member(r, "nowhere", &a));
    CHECK(gw_rooms_count_of(r, &a) == 2);
    CHECK(gw_rooms_count_of(r, &b) == 1);
    CHECK(gw_rooms_count_of(r, &c) == 0);

    /* names are exact */
    CHECK(!gw_rooms_is_member(r, "General", &a));
    CHECK(!gw_rooms_is_member(r, "genera", &a));

    /* invalid names are refused, never stored */
    CHECK(gw_rooms_join(r, "", &a) == -EINVAL);
    CHECK(gw_rooms_join(r, "a b", &a) == -EINVAL);
    CHECK(gw_rooms_join(r, NULL, &a) == -EINVAL);
    CHECK(gw_rooms_join(r, "0123456789012345678901234567890123456789012345678901234567890123x",
                        &a) == -EINVAL);
    CHECK(gw_rooms_room_count(r) == 2);

    /* leave of a non-member, of an unknown room */
    CHECK(gw_rooms_leave(r, "random", &b) == 1);
    CHECK(gw_rooms_leave(r, "nowhere", &a) == 1);
    CHECK(gw_rooms_leave(r, "random", &a) == 0);
    CHECK(gw_rooms_leave(r, "random", &a) == 1);
    CHECK(gw_rooms_room_count(r) == 1); /* random is gone with its last member */
    CHECK(gw_rooms_count_of(r, &a) == 1);
    visit v = {0};
    CHECK(gw_rooms_foreach(r, "random", record, &v) == 0);
    CHECK(v.n == 0);

    /* leave and join again */
    CHECK(gw_rooms_leave(r, "general", &a) == 0);
    CHECK(gw_rooms_count_of(r, &a) == 0);
    CHECK(gw_rooms_join(r, "general", &a) == 0);
    CHECK(gw_rooms_count_of(r, &a) == 1);
    gw_rooms_free(r);
}

static void test_foreach_order(void)
{
    gw_rooms *r = gw_rooms_new();
    int m[10];
    CHECK(r != NULL);
    if (!r)
        return;
    for (int i = 0; i < 10; i++)
        CHECK(gw_rooms_join(r, "room", &m[i]) == 0);
    /* remove from the front, the middle and the back; rejoin goes to the end */
    CHECK(gw_rooms_leave(r, "room", &m[0]) == 0);
    CHECK(gw_rooms_leave(r, "room", &m[5]) == 0);
    CHECK(gw_rooms_leave(r, "room", &m[9]) == 0);
    CHECK(gw_rooms_join(r, "room", &m[0]) == 0);
    CHECK(gw_rooms_join(r, "room", &m[3]) == 1);

    visit v = {0};
    CHECK(gw_rooms_foreach(r, "room", record, &v) == 8);
    int want[] = {1, 2, 3, 4, 6, 7, 8, 0};
    CHECK(v.n == 8);
    for (size_t i = 0; i < 8 && i < v.n; i++)
        CHECK(v.seen[i] == &m[want[i]]);
    CHECK(gw_rooms_foreach(r, "other", record, &v) == 0);
    gw_rooms_free(r);
}

static void test_leave_all(void)
{
    gw_rooms *r = gw_rooms_new();
    int a, b;
    CHECK(r != NULL);
    if (!r)
        return;
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "room%d", i);
        CHECK(gw_rooms_join(r, name, &a) == 0);
        if (i % 2 == 0)
            CHECK(gw_rooms_join(r, name, &b) == 0);
    }
    CHECK(gw_rooms_room_count(r) == 20);
    CHECK(gw_rooms_count_of(r, &a) == 20);
    CHECK(gw_rooms_leave_all(r, &a) == 20);
    CHECK(gw_rooms_count_of(r, &a) == 0);
    CHECK(gw_rooms_room_count(r) == 10); /* the rooms b is still in */
    CHECK(gw_rooms_is_member(r, "room4", &b));
    CHECK(!gw_rooms_is_member(r, "room4", &a));
    CHECK(!gw_rooms_is_member(r, "room5", &b));
    CHECK(gw_rooms_leave_all(r, &a) == 0);
    CHECK(gw_rooms_leave_all(r, &b) == 10);
    CHECK(gw_rooms_room_count(r) == 0);
    gw_rooms_free(r);
}

static void test_many(void)
{
    enum { MEMBERS = 2000, ROOMS = 500, PER = 8 };
    gw_rooms *r = gw_rooms_new();
    char *members = calloc(MEMBERS, 1);
    CHECK(r != NULL && members != NULL);
    if (!r || !members) {
        gw_rooms_free(r);
        free(members);
        return;
    }
    char name[16];
    /* member i joins rooms (i + k * 61) % ROOMS for k < PER */
    for (int i = 0; i < MEMBERS; i++)
        for (int k = 0; k < PER; k++) {
            snprintf(name, sizeof(name), "r%d", (i + k * 61) % ROOMS);
            CHECK(gw_rooms_join(r, name, &members[i]) == 0);
        }
    CHECK(gw_rooms_room_count(r) == ROOMS);
    size_t total = 0;
    visit v;
    for (int j = 0; j < ROOMS; j++) {
        snprintf(name, sizeof(name), "r%d", j);
        memset(&v, 0, sizeof(v));
        total += gw_rooms_foreach(r, name, record, &v);
    }
    CHECK(total == (size_t)MEMBERS * PER);
    for (int i = 0; i < MEMBERS; i++)
        CHECK(gw_rooms_count_of(r, &members[i]) == PER);
    /* every member checks out: every room disappears */
    size_t left = 0;
    for (int i = 0; i < MEMBERS; i++)
        left += gw_rooms_leave_all(r, &members[i]);
    CHECK(left == (size_t)MEMBERS * PER);
    CHECK(gw_rooms_room_count(r) == 0);
    /* the index is still usable after shrinking */
    CHECK(gw_rooms_join(r, "again", &members[0]) == 0);
    CHECK(gw_rooms_is_member(r, "again", &members[0]));
    gw_rooms_free(r); /* frees a non-empty index (ASan checks for leaks) */
    free(members);
}

int main(void)
{
    RUN(test_join_leave);
    RUN(test_foreach_order);
    RUN(test_leave_all);
    RUN(test_many);
    gw_rooms_free(NULL);
    return check_summary();
}
