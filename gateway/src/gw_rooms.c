/* gw_rooms.c: the gateway's room index (see gw_rooms.h).
 *
 * One intrusive chained hash table (gw_htab.h) of rooms by name, each with its members as a
 * doubly linked list of the callers' links in join order. A membership costs the index nothing
 * but the caller's 32-byte link: no node per member or per membership, which every idle
 * connection would pay for (docs/internals.md, "Memory per connection"). Room names come from
 * clients, so they are hashed with the keyed SipHash of gw_hash.h. */
#define _POSIX_C_SOURCE 200809L /* strnlen */

#include "gw_rooms.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_validate.h"
#include "gw_hash.h"
#include "gw_htab.h"

struct gw_room {
    gw_hnode node; /* first: the hash node is the struct */
    gw_rooms_link *head, *tail;
    size_t nmembers;
    size_t len;
    char name[CHAT_ROOM_MAX + 1];
};

struct gw_rooms {
    gw_htab rooms;
    uint64_t key[2];
};

gw_rooms *gw_rooms_new(void)
{
    gw_rooms *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (gw_htab_init(&r->rooms)) {
        free(r);
        return NULL;
    }
    gw_hash_seed(r->key, r);
    return r;
}

static void free_room(gw_hnode *node, void *arg)
{
    (void)arg;
    free(node);
}

void gw_rooms_free(gw_rooms *r)
{
    if (!r)
        return;
    gw_htab_each(&r->rooms, free_room, NULL);
    gw_htab_free(&r->rooms);
    free(r);
}

static uint64_t room_hash(const gw_rooms *r, const char *room, size_t len)
{
    return gw_hash_sip(r->key, room, len);
}

static struct gw_room *find_room(const gw_rooms *r, const char *room, size_t len)
{
    uint64_t h = room_hash(r, room, len);
    for (gw_hnode *n = gw_htab_first(&r->rooms, h); n; n = gw_htab_next(n, h)) {
        struct gw_room *rm = (struct gw_room *)n;
        if (rm->len == len && memcmp(rm->name, room, len) == 0)
            return rm;
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

int gw_rooms_join(gw_rooms *r, const char *room, gw_rooms_link *l, void *member)
{
    size_t len;
    if (!room_len(room, &len))
        return -EINVAL;
    struct gw_room *rm = find_room(r, room, len);
    if (!rm) {
        rm = calloc(1, sizeof(*rm));
        if (!rm)
            return -ENOMEM;
        memcpy(rm->name, room, len);
        rm->len = len;
        rm->node.hash = room_hash(r, room, len);
        gw_htab_insert(&r->rooms, &rm->node);
    }
    l->room = rm;
    l->member = member;
    l->next = NULL;
    l->prev = rm->tail;
    if (rm->tail)
        rm->tail->next = l;
    else
        rm->head = l;
    rm->tail = l;
    rm->nmembers++;
    return 0;
}

void gw_rooms_leave(gw_rooms *r, gw_rooms_link *l)
{
    struct gw_room *rm = l->room;
    if (!rm)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        rm->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        rm->tail = l->prev;
    memset(l, 0, sizeof(*l));
    if (--rm->nmembers == 0) {
        gw_htab_remove(&r->rooms, &rm->node);
        free(rm);
    }
}

void gw_rooms_moved(gw_rooms_link *l)
{
    if (!l->room)
        return;
    if (l->prev)
        l->prev->next = l;
    else
        l->room->head = l;
    if (l->next)
        l->next->prev = l;
    else
        l->room->tail = l;
}

const char *gw_rooms_name(const gw_rooms_link *l)
{
    return l->room ? l->room->name : NULL;
}

size_t gw_rooms_foreach(const gw_rooms *r, const char *room, gw_rooms_visit_fn fn, void *arg)
{
    size_t len, n = 0;
    if (!room_len(room, &len))
        return 0;
    struct gw_room *rm = find_room(r, room, len);
    if (!rm)
        return 0;
    for (gw_rooms_link *l = rm->head; l; l = l->next) {
        fn(l->member, arg);
        n++;
    }
    return n;
}

size_t gw_rooms_member_count(const gw_rooms *r, const char *room)
{
    size_t len;
    if (!room_len(room, &len))
        return 0;
    struct gw_room *rm = find_room(r, room, len);
    return rm ? rm->nmembers : 0;
}

size_t gw_rooms_room_count(const gw_rooms *r)
{
    return r->rooms.count;
}
