/* gw_rooms.h: the room index of one gateway: which local sessions are joined to which room.
 * Members are opaque pointers (the gateway's sessions); the index never dereferences them.
 * Join, leave and membership checks are O(1) on average, plus O(min(rooms of the member,
 * members of the room)) to find the membership; leave_all is O(rooms of the member);
 * fan-out visits the room's members in join order. Rooms with no members are freed.
 * Loop thread only. */
#ifndef GW_ROOMS_H
#define GW_ROOMS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_rooms gw_rooms;

/* NULL on ENOMEM. */
gw_rooms *gw_rooms_new(void);
void gw_rooms_free(gw_rooms *r);

/* room is a NUL-terminated valid room name (copied). Returns 0 when added, 1 when the member
 * was already joined, -ENOMEM, or -EINVAL when room is not a valid room name. */
int gw_rooms_join(gw_rooms *r, const char *room, void *member);
/* Returns 0 when removed, 1 when the member was not joined. */
int gw_rooms_leave(gw_rooms *r, const char *room, void *member);
bool gw_rooms_is_member(const gw_rooms *r, const char *room, const void *member);
/* Number of rooms the member is joined to. */
size_t gw_rooms_count_of(const gw_rooms *r, const void *member);
/* Removes the member from every room (on disconnect). Returns how many rooms it left. */
size_t gw_rooms_leave_all(gw_rooms *r, void *member);

/* Calls fn(member, arg) for each member of room; fn must not join or leave during the visit.
 * Returns the number visited (0 for an unknown room). */
typedef void (*gw_rooms_visit_fn)(void *member, void *arg);
size_t gw_rooms_foreach(const gw_rooms *r, const char *room, gw_rooms_visit_fn fn, void *arg);

/* Local members of room (0 for an unknown room). O(1). */
size_t gw_rooms_member_count(const gw_rooms *r, const char *room);

/* Totals, for logs and /readyz details. */
size_t gw_rooms_room_count(const gw_rooms *r);

#endif
