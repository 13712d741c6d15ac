/* gw_rooms.c: the gateway's room index (see gw_rooms.h).
 *
 * Two intrusive chained hash tables (gw_htab.h):
 *   rooms       room name        -> gw_room   (members as a list in join order)
 *   members     member pointer   -> gw_member (its memberships, for count_of and leave_all)
 * A membership (gw_link) sits on two doubly linked lists, the room's and the member's; join,
 * leave and is_member find it by walking the shorter of the two (a session is in few rooms),
 * and fan-out walks the room's list in join order. There is no third table of memberships:
 * every idle connection would pay for its node and slot. Room names come from clients, so they
 * are hashed with the keyed SipHash of gw_hash.h. */
#define _POSIX_C_SOURCE 200809L /* strnlen, clock_gettime */

#include "gw_rooms.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_validate.h"
#include "gw_hash.h"
#include "gw_htab.h"

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t ptr_hash(const void *p)
{
    return gw_hash_mix((uint64_t)(uintptr_t)p);
}

/* ---- the index ---------------------------------------------------------------------------- */

typedef struct gw_link gw_link;

typedef struct gw_room {
    gw_hnode node; /* first: the hash node is the struct */
    gw_link *head, *tail;
    size_t nmembers;
    size_t len;
    char name[CHAT_ROOM_MAX + 1];
} gw_room;

typedef struct gw_member {
    gw_hnode node;
    void *member;
    gw_link *head;
    size_t nrooms;
} gw_member;

struct gw_link {
    gw_room *room;
    gw_member *m;
    gw_link *rprev, *rnext; /* in room->head list, join order */
    gw_link *mprev, *mnext; /* in m->head list */
};

struct gw_rooms {
    gw_htab rooms, members;
    uint64_t key[2];
};

gw_rooms *gw_rooms_new(void)
{
    gw_rooms *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (gw_htab_init(&r->rooms) || gw_htab_init(&r->members)) {
        gw_rooms_free(r);
        return NULL;
    }
    gw_hash_seed(r->key, r);
    return r;
}

static void free_node(gw_hnode *node, void *arg)
{
    (void)arg;
    free(node);
}

static void free_member(gw_hnode *node, void *arg)
{
    (void)arg;
    gw_member *m = (gw_member *)node;
    for (gw_link *l = m->head, *next; l; l = next) {
        next = l->mnext;
        free(l);
    }
    free(m);
}

void gw_rooms_free(gw_rooms *r)
{
    if (!r)
        return;
    /* Every member and room is reachable from the tables (each node starts its struct), every
     * link from its member. */
    gw_htab_each(&r->members, free_member, NULL);
    gw_htab_free(&r->members);
    gw_htab_each(&r->rooms, free_node, NULL);
    gw_htab_free(&r->rooms);
    free(r);
}

static uint64_t room_hash(const gw_rooms *r, const char *room, size_t len)
{
    return gw_hash_sip(r->key, room, len);
}

static gw_room *find_room(const gw_rooms *r, const char *room, size_t len)
{
    uint64_t h = room_hash(r, room, len);
    for (gw_hnode *n = gw_htab_first(&r->rooms, h); n; n = gw_htab_next(n, h)) {
        gw_room *rm = (gw_room *)n;
        if (rm->len == len && memcmp(rm->name, room, len) == 0)
            return rm;
    }
    return NULL;
}

static gw_member *find_member(const gw_rooms *r, const void *member)
{
    uint64_t h = ptr_hash(member);
    for (gw_hnode *n = gw_htab_first(&r->members, h); n; n = gw_htab_next(n, h)) {
        gw_member *m = (gw_member *)n;
        if (m->member == member)
            return m;
    }
    return NULL;
}

/* The membership of m in room: O(min(rooms of m, members of room)). */
static gw_link *find_link(const gw_room *room, const gw_member *m)
{
    if (!room || !m)
        return NULL;
    if (m->nrooms <= room->nmembers) {
        for (gw_link *l = m->head; l; l = l->mnext)
            if (l->room == room)
                return l;
    } else {
        for (gw_link *l = room->head; l; l = l->rnext)
            if (l->m == m)
                return l;
    }
    return NULL;
}

/* A room name is at most CHAT_ROOM_MAX bytes; longer or invalid input is refused. */
static bool room_len(const char *room, size_t *len)
{
    if (!room)
        return false;
    size_t n = strnlen(room, CHAT_ROOM_MAX + 1);
    if (!chat_valid_room(room, n))
        return false;
    *len = n;
    return true;
}

int gw_rooms_join(gw_rooms *r, const char *room, void *member)
{
    size_t len;
    gw_room *rm;
    gw_member *m;
    gw_link *l;
    bool new_room = false, new_member = false;

    if (!room_len(room, &len))
        return -EINVAL;
    rm = find_room(r, room, len);
    m = find_member(r, member);
    if (find_link(rm, m))
        return 1;

    if (!rm) {
        rm = calloc(1, sizeof(*rm));
        if (!rm)
            goto fail;
        memcpy(rm->name, room, len);
        rm->len = len;
        rm->node.hash = room_hash(r, room, len);
        new_room = true;
    }
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            goto fail;
        m->member = member;
        m->node.hash = ptr_hash(member);
        new_member = true;
    }
    l = calloc(1, sizeof(*l));
    if (!l)
        goto fail;

    if (new_room)
        gw_htab_insert(&r->rooms, &rm->node);
    if (new_member)
        gw_htab_insert(&r->members, &m->node);
    l->room = rm;
    l->m = m;

    l->rprev = rm->tail;
    if (rm->tail)
        rm->tail->rnext = l;
    else
        rm->head = l;
    rm->tail = l;
    rm->nmembers++;

    l->mnext = m->head;
    if (m->head)
        m->head->mprev = l;
    m->head = l;
    m->nrooms++;
    return 0;

fail:
    if (new_room)
        free(rm);
    if (new_member)
        free(m);
    return -ENOMEM;
}

/* Unlinks and frees one membership, then the room and the member record when they are
 * left empty. */
static void drop_link(gw_rooms *r, gw_link *l)
{
    gw_room *rm = l->room;
    gw_member *m = l->m;

    if (l->rprev)
        l->rprev->rnext = l->rnext;
    else
        rm->head = l->rnext;
    if (l->rnext)
        l->rnext->rprev = l->rprev;
    else
        rm->tail = l->rprev;
    rm->nmembers--;

    if (l->mprev)
        l->mprev->mnext = l->mnext;
    else
        m->head = l->mnext;
    if (l->mnext)
        l->mnext->mprev = l->mprev;
    m->nrooms--;

    free(l);
    if (rm->nmembers == 0) {
        gw_htab_remove(&r->rooms, &rm->node);
        free(rm);
    }
    if (m->nrooms == 0) {
        gw_htab_remove(&r->members, &m->node);
        free(m);
    }
}

int gw_rooms_leave(gw_rooms *r, const char *room, void *member)
{
    size_t len;
    if (!room_len(room, &len))
        return 1;
    gw_room *rm = find_room(r, room, len);
    if (!rm)
        return 1;
    gw_link *l = find_link(rm, find_member(r, member));
    if (!l)
        return 1;
    drop_link(r, l);
    return 0;
}

bool gw_rooms_is_member(const gw_rooms *r, const char *room, const void *member)
{
    size_t len;
    if (!room_len(room, &len))
        return false;
    gw_room *rm = find_room(r, room, len);
    return find_link(rm, find_member(r, member)) != NULL;
}

size_t gw_rooms_count_of(const gw_rooms *r, const void *member)
{
    gw_member *m = find_member(r, member);
    return m ? m->nrooms : 0;
}

size_t gw_rooms_leave_all(gw_rooms *r, void *member)
{
    gw_member *m = find_member(r, member);
    if (!m)
        return 0;
    size_t n = m->nrooms;
    /* drop_link frees m together with the last link: count down instead of testing m. */
    for (size_t i = 0; i < n; i++)
        drop_link(r, m->head);
    return n;
}

size_t gw_rooms_foreach(const gw_rooms *r, const char *room, gw_rooms_visit_fn fn, void *arg)
{
    size_t len, n = 0;
    if (!room_len(room, &len))
        return 0;
    gw_room *rm = find_room(r, room, len);
    if (!rm)
        return 0;
    for (gw_link *l = rm->head; l; l = l->rnext) {
        fn(l->m->member, arg);
        n++;
    }
    return n;
}

size_t gw_rooms_member_count(const gw_rooms *r, const char *room)
{
    size_t len;
    if (!room_len(room, &len))
        return 0;
    gw_room *rm = find_room(r, room, len);
    return rm ? rm->nmembers : 0;
}

size_t gw_rooms_room_count(const gw_rooms *r)
{
    return r->rooms.count;
}
