/* gw_access.c: the room access rule (see gw_access.h). */
#include "gw_access.h"

#include <stdio.h>
#include <string.h>

#include "chat_validate.h"

bool gw_access_valid_pattern(const char *p, size_t len)
{
    if (len == 0)
        return false;
    if (p[len - 1] != '*')
        return len <= CHAT_ROOM_MAX && chat_valid_room(p, len);
    len--;
    return len == 0 || chat_valid_charset(p, len, CHAT_ROOM_MAX - 1, "._:@-");
}

bool gw_access_claim_allows(const char *rooms, const char *room)
{
    if (!rooms)
        return true;
    size_t rlen = strlen(room);
    for (const char *p = rooms; *p; p += strlen(p) + 1) {
        size_t n = strlen(p);
        if (p[n - 1] == '*') {
            if (rlen >= n - 1 && memcmp(p, room, n - 1) == 0)
                return true;
        } else if (n == rlen && memcmp(p, room, n) == 0) {
            return true;
        }
    }
    return false;
}

static void say(char *why, size_t whylen, const char *msg)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", msg);
}

bool gw_access_may_join(const gw_identity *id, const char *room, const char **code, char *why,
                        size_t whylen)
{
    return gw_access_may_join_as(id->sub, id->rooms, room, code, why, whylen);
}

bool gw_access_may_join_as(const char *sub, const char *rooms, const char *room, const char **code,
                           char *why, size_t whylen)
{
    chat_dm dm;
    if (chat_dm_parse(room, strlen(room), &dm)) {
        if (!chat_valid_dm_user(sub, strlen(sub))) {
            *code = GW_ERR_INVALID_USER;
            say(why, whylen, "your user id cannot have direct rooms");
            return false;
        }
        if (!chat_dm_has_user(&dm, sub)) {
            *code = GW_ERR_FORBIDDEN;
            say(why, whylen, "this direct room belongs to two other users");
            return false;
        }
    }
    if (!gw_access_claim_allows(rooms, room)) {
        *code = GW_ERR_FORBIDDEN;
        say(why, whylen, "your token does not allow this room");
        return false;
    }
    return true;
}
