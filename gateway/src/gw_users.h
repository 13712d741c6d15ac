/* gw_users.h: the user index of one gateway: which local connections each user has. Direct
 * messages reach every connection of both users, read state syncs to a user's other devices,
 * and presence, kicks and connection limits count a user's connections: all start here.
 * A connection embeds a gw_user_link; the index owns one small entry per user with at least
 * one connection (freed with its last link) and never allocates per connection.
 * Loop thread only. */
#ifndef GW_USERS_H
#define GW_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_htab.h"

typedef struct gw_user gw_user;

/* Embedded in a connection; zeroed means "not in the index". */
typedef struct gw_user_link {
    struct gw_user_link *prev, *next;
    gw_user *user;
} gw_user_link;

typedef struct gw_users {
    gw_htab users;
    uint64_t key[2];
    size_t links; /* connections in the index */
} gw_users;

/* Returns 0 or -ENOMEM. */
int gw_users_init(gw_users *u);
/* Every link must have been removed. */
void gw_users_free(gw_users *u);

/* Adds link (not in the index) to user sub (NUL-terminated, 1..CHAT_USER_MAX bytes). Returns 0,
 * or -ENOMEM (link stays out of the index). */
int gw_users_add(gw_users *u, const char *sub, gw_user_link *link);
/* Removes link; no-op when it is not in the index. */
void gw_users_remove(gw_users *u, gw_user_link *link);

/* The first link of user sub, or NULL when it has no connection here; the rest follow
 * link->next. The list must not change while it is walked (collect first if it might). */
gw_user_link *gw_users_first(const gw_users *u, const char *sub);
/* Connections of user sub on this gateway. */
size_t gw_users_count(const gw_users *u, const char *sub);
/* The user id of a linked connection. */
const char *gw_users_sub(const gw_user_link *link);

#endif
