/* test_gw_rooms.c: the room index (gw_rooms.c): joins, leaves, names, fan-out order, links the
 * caller moves (as a session's realloc'd array of subs does), rooms freed when empty, and a few
 * thousand rooms and members. */
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

/* Whether member is among room's members, by a visit. */
static bool has(gw_rooms *r, const char *room, void *member)
{
    visit v = {0};
    gw_rooms_foreach(r, room, record, &v);
    for (size_t i = 0; i < v.n && i < 64; i++)
        if (v.seen[i] == member)
            return true;
    return false;
}

static void test_join_leave(void)
{
    gw_rooms *r = gw_rooms_new();
    int a, b;
    gw_rooms_link la1 = {0}, la2 = {0}, lb = {0};
    CHECK(r != NULL);
    if (!r)
        return;

    CHECK(gw_rooms_room_count(r) == 0);
    CHECK(gw_rooms_join(r, "general", &la1, &a) == 0);
    CHECK(gw_rooms_join(r, "general", &lb, &b) == 0);
    CHECK(gw_rooms_join(r, "random", &la2, &a) == 0);
    CHECK(gw_rooms_room_count(r) == 2);
    CHECK(gw_rooms_member_count(r, "general") == 2);
    CHECK(gw_rooms_member_count(r, "random") == 1);
    CHECK(gw_rooms_member_count(r, "nowhere") == 0);
    CHECK_STR(gw_rooms_name(&la2), "random");
    CHECK(has(r, "general", &a) && has(r, "general", &b) && !has(r, "random", &b));

    /* names are exact */
    CHECK(gw_rooms_member_count(r, "General") == 0);
    CHECK(gw_rooms_member_count(r, "genera") == 0);

    /* invalid names are refused, never stored, and the link stays out */
    gw_rooms_link lx = {0};
    CHECK(gw_rooms_join(r, "", &lx, &a) == -EINVAL);
    CHECK(gw_rooms_join(r, "a b", &lx, &a) == -EINVAL);
    CHECK(gw_rooms_join(r, NULL, &lx, &a) == -EINVAL);
    CHECK(gw_rooms_join(r, "0123456789012345678901234567890123456789012345678901234567890123x", &lx,
                        &a) == -EINVAL);
    CHECK(lx.room == NULL && gw_rooms_name(&lx) == NULL);
    CHECK(gw_rooms_room_count(r) == 2);
    CHECK(gw_rooms_member_count(r, NULL) == 0);

    /* a link in no room leaves as a no-op */
    gw_rooms_leave(r, &lx);
    gw_rooms_leave(r, &la2);
    CHECK(la2.room == NULL); /* zeroed */
    gw_rooms_leave(r, &la2);
    CHECK(gw_rooms_room_count(r) == 1); /* random is gone with its last member */
    visit v = {0};
    CHECK(gw_rooms_foreach(r, "random", record, &v) == 0);
    CHECK(v.n == 0);

    /* leave and join again */
    gw_rooms_leave(r, &la1);
    CHECK(!has(r, "general", &a));
    CHECK(gw_rooms_join(r, "general", &la1, &a) == 0);
    CHECK(has(r, "general", &a));
    gw_rooms_leave(r, &la1);
    gw_rooms_leave(r, &lb);
    CHECK(gw_rooms_room_count(r) == 0);
    gw_rooms_free(r);
}

static void test_foreach_order(void)
{
    gw_rooms *r = gw_rooms_new();
    int m[10];
    gw_rooms_link l[10] = {0};
    CHECK(r != NULL);
    if (!r)
        return;
    for (int i = 0; i < 10; i++)
        CHECK(gw_rooms_join(r, "room", &l[i], &m[i]) == 0);
    /* remove from the front, the middle and the back; rejoin goes to the end */
    gw_rooms_leave(r, &l[0]);
    gw_rooms_leave(r, &l[5]);
    gw_rooms_leave(r, &l[9]);
    CHECK(gw_rooms_join(r, "room", &l[0], &m[0]) == 0);

    visit v = {0};
    CHECK(gw_rooms_foreach(r, "room", record, &v) == 8);
    int want[] = {1, 2, 3, 4, 6, 7, 8, 0};
    CHECK(v.n == 8);
    for (size_t i = 0; i < 8 && i < v.n; i++)
        CHECK(v.seen[i] == &m[want[i]]);
    CHECK(gw_rooms_foreach(r, "other", record, &v) == 0);
    for (int i = 0; i < 10; i++)
        gw_rooms_leave(r, &l[i]);
    gw_rooms_free(r);
}

/* Links moved by the caller, at the head, the middle and the tail of a room's list, and over
 * another slot (as sub_remove copies the last sub over the one that leaves): order and
 * membership hold, and the old addresses are never read again (ASan: they are freed). */
static void test_moved(void)
{
    gw_rooms *r = gw_rooms_new();
    int m[4];
    gw_rooms_link *l[4];
    CHECK(r != NULL);
    if (!r)
        return;
    for (int i = 0; i < 4; i++) {
        l[i] = calloc(1, sizeof(*l[i]));
        CHECK(l[i] && gw_rooms_join(r, "room", l[i], &m[i]) == 0);
    }
    int order[] = {0, 3, 1, 2}; /* head, tail, middle, middle */
    for (int k = 0; k < 4; k++) {
        int i = order[k];
        gw_rooms_link *to = malloc(sizeof(*to));
        CHECK(to != NULL);
        memcpy(to, l[i], sizeof(*to));
        free(l[i]);
        l[i] = to;
        gw_rooms_moved(to);
    }
    visit v = {0};
    CHECK(gw_rooms_foreach(r, "room", record, &v) == 4);
    for (size_t i = 0; i < 4 && i < v.n; i++)
        CHECK(v.seen[i] == &m[i]);
    /* an array whose last entry is copied over one that leaves */
    gw_rooms_link arr[3] = {0};
    int x[3];
    for (int i = 0; i < 3; i++)
        CHECK(gw_rooms_join(r, i == 1 ? "other" : "room", &arr[i], &x[i]) == 0);
    gw_rooms_leave(r, &arr[0]);
    arr[0] = arr[2];
    memset(&arr[2], 0xa5, sizeof(arr[2])); /* the old slot is garbage from now on */
    gw_rooms_moved(&arr[0]);
    memset(&v, 0, sizeof(v));
    CHECK(gw_rooms_foreach(r, "room", record, &v) == 5);
    CHECK(v.n == 5 && v.seen[4] == &x[2]);
    gw_rooms_moved(&(gw_rooms_link){0}); /* in no room: a no-op */
    for (int i = 0; i < 4; i++) {
        gw_rooms_leave(r, l[i]);
        free(l[i]);
    }
    gw_rooms_leave(r, &arr[0]);
    gw_rooms_leave(r, &arr[1]);
    CHECK(gw_rooms_room_count(r) == 0);
    gw_rooms_free(r);
}

static void test_many(void)
{
    enum { MEMBERS = 2000, ROOMS = 500, PER = 8 };
    gw_rooms *r = gw_rooms_new();
    char *members = calloc(MEMBERS, 1);
    gw_rooms_link *links = calloc((size_t)MEMBERS * PER, sizeof(*links));
    CHECK(r != NULL && members != NULL && links != NULL);
    if (!r || !members || !links) {
        gw_rooms_free(r);
        free(members);
        free(links);
        return;
    }
    char name[16];
    /* member i joins rooms (i + k * 61) % ROOMS for k < PER */
    for (int i = 0; i < MEMBERS; i++)
        for (int k = 0; k < PER; k++) {
            snprintf(name, sizeof(name), "r%d", (i + k * 61) % ROOMS);
            CHECK(gw_rooms_join(r, name, &links[i * PER + k], &members[i]) == 0);
        }
    CHECK(gw_rooms_room_count(r) == ROOMS);
    size_t total = 0;
    visit v;
    for (int j = 0; j < ROOMS; j++) {
        snprintf(name, sizeof(name), "r%d", j);
        memset(&v, 0, sizeof(v));
        total += gw_rooms_foreach(r, name, record, &v);
        CHECK(gw_rooms_member_count(r, name) == v.n);
    }
    CHECK(total == (size_t)MEMBERS * PER);
    /* every member checks out: every room disappears */
    for (int i = 0; i < MEMBERS * PER; i++)
        gw_rooms_leave(r, &links[i]);
    CHECK(gw_rooms_room_count(r) == 0);
    /* the index is still usable after shrinking */
    CHECK(gw_rooms_join(r, "again", &links[0], &members[0]) == 0);
    CHECK(has(r, "again", &members[0]));
    gw_rooms_free(r); /* frees a non-empty index (ASan checks for leaks) */
    free(members);
    free(links);
}

int main(void)
{
    RUN(test_join_leave);
    RUN(test_foreach_order);
    RUN(test_moved);
    RUN(test_many);
    gw_rooms_free(NULL);
    return check_summary();
}
