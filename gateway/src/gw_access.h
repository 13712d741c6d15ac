/* gw_access.h: who may use which room (docs/protocol.md, "Access"). One rule for joins, sends,
 * history, direct-message delivery, read state and presence:
 *
 *  - a direct room dm:<a>:<b> belongs to a and b only: anyone else is refused (forbidden), and
 *    a user whose id cannot have direct rooms (chat_valid_dm_user) is refused with invalid_user;
 *  - the token's rooms claim, when present, limits every room, direct rooms included: a room is
 *    allowed when it equals one of its entries or starts with an entry's prefix (an entry ending
 *    in '*'). So a direct room needs both: being a or b, and a claim (if any) that covers it;
 *  - without the claim, every room is allowed except other people's direct rooms.
 *
 * The claim is kept compactly (gw_identity.rooms): its patterns one after another, each
 * NUL-terminated, then an empty string; NULL when the token has no claim. Pure functions; any
 * thread. */
#ifndef GW_ACCESS_H
#define GW_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_auth.h"

#define GW_ACCESS_MAX_PATTERNS 64 /* entries of a rooms claim */

#define GW_ERR_FORBIDDEN "forbidden"       /* the room is not one this user may use */
#define GW_ERR_INVALID_USER "invalid_user" /* this user id cannot have direct rooms */

/* A rooms claim entry: a room name (chat_valid_room), or a prefix of 0..CHAT_ROOM_MAX - 1
 * characters of [A-Za-z0-9._:@-] followed by '*' ("*" alone allows every room). len bytes, not
 * necessarily NUL-terminated. */
bool gw_access_valid_pattern(const char *p, size_t len);

/* Whether rooms (the packed claim, or NULL: no claim) allows room. */
bool gw_access_claim_allows(const char *rooms, const char *room);

/* Whether id may join, send to and read room (a valid room name). When not, *code is
 * GW_ERR_FORBIDDEN or GW_ERR_INVALID_USER and why (may be NULL) says why for a person. */
bool gw_access_may_join(const gw_identity *id, const char *room, const char **code, char *why,
                        size_t whylen);
/* The same for a user sub with the packed claim rooms (NULL: no claim): what a session keeps of
 * its identity (gw_session_id). */
bool gw_access_may_join_as(const char *sub, const char *rooms, const char *room, const char **code,
                           char *why, size_t whylen);

#endif
