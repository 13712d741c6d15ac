/* gw_rooms.h: the room index of one gateway: which local sessions are joined to which room, in
 * join order. The caller embeds one gw_rooms_link per (member, room) (the gateway keeps it in the
 * session's gw_sub); the index allocates only one entry per room that has members, and never per
 * connection. Members are opaque pointers the index never dereferences. Join is O(1) on average
 * plus a hash of the name, leave O(1); fan-out visits a room's members in join order. Rooms with
 * no members are freed. Whether a member is in a room, and which rooms it is in, is the caller's
 * to know (it holds the links). Loop thread only. */
#ifndef GW_ROOMS_H
#define GW_ROOMS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_rooms gw_rooms;
struct gw_room;

/* One membership, embedded by the caller; zeroed means "in no room". A linked link that the
 * caller moves to another address (realloc, or a copy over another slot) must be announced with
 * gw_rooms_moved before the index is used again. */
typedef struct gw_rooms_link {
    struct gw_room *room;              /* NULL: in no room */
    struct gw_rooms_link *prev, *next; /* the room's members, in join order */
    void *member;
} gw_rooms_link;

/* NULL on ENOMEM. */
gw_rooms *gw_rooms_new(void);
/* Frees the index and its room entries; links still joined must not be used with it again. */
void gw_rooms_free(gw_rooms *r);

/* Links l (in no room) as member's membership of room, a NUL-terminated valid room name (copied
 * into the room's entry). The caller must not join a member to a room twice. Returns 0, -ENOMEM,
 * or -EINVAL when room is not a valid room name; l stays in no room on failure. */
int gw_rooms_join(gw_rooms *r, const char *room, gw_rooms_link *l, void *member);
/* Unlinks l and zeroes it; no-op when l is in no room. */
void gw_rooms_leave(gw_rooms *r, gw_rooms_link *l);
/* l's contents were moved here from another address: its neighbours and its room now point at
 * l. No-op when l is in no room. */
void gw_rooms_moved(gw_rooms_link *l);
/* The room name of a linked l. */
const char *gw_rooms_name(const gw_rooms_link *l);

/* Calls fn(member, arg) for each member of room; fn must not join, leave or move links during the
 * visit. Returns the number visited (0 for an unknown room). */
typedef void (*gw_rooms_visit_fn)(void *member, void *arg);
size_t gw_rooms_foreach(const gw_rooms *r, const char *room, gw_rooms_visit_fn fn, void *arg);

/* Local members of room (0 for an unknown room). O(1). */
size_t gw_rooms_member_count(const gw_rooms *r, const char *room);

/* Totals, for logs and /readyz details. */
size_t gw_rooms_room_count(const gw_rooms *r);

#endif
