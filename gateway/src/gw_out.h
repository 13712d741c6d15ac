/* gw_out.h: encoding the server's frames (protocols v1 and v2) as JSON text in gw_buf buffers,
 * ready for lws_write(). Each function returns a new buffer with one reference, or NULL on ENOMEM.
 * String arguments are NUL-terminated; an optional one may be NULL or "" (then it is left out).
 * Any thread (buffers are handed to the loop thread afterwards). */
#ifndef GW_OUT_H
#define GW_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_envelope.h"
#include "gw_buf.h"

/* {"type":"welcome","user","gateway","protocol":2,"exp","epoch"} */
gw_buf *gw_out_welcome(const char *user, const char *gateway, int64_t exp, const char *epoch);
gw_buf *gw_out_error(const char *code, const char *message, const char *cid);
gw_buf *gw_out_ack(const char *cid, const char *id);
gw_buf *gw_out_pong(void);
gw_buf *gw_out_left(const char *room);
/* {"type":"message","id","room","from","text","ts","cid"} (cid left out when empty). */
gw_buf *gw_out_message(const chat_message *m);
/* The same frame built with jansson: the reference gw_out_message's one-pass writer is tested
 * against. */
gw_buf *gw_out_message_jansson(const chat_message *m);
/* {"type":type,"room":room,key:[frame,...],extra} from already encoded message frames (oldest
 * first), without decoding them again: how joined and history answers share the frames of the
 * room log. room must need no JSON escaping (a valid room name); extra is NULL or JSON members
 * without braces, e.g. "\"recovered\":true". */
/* A user as presence lists them: {"user","name"}; name NULL or "" is given as the user id. */
typedef struct gw_out_user {
    const char *user;
    const char *name;
} gw_out_user;

/* "members":{"count","users":[{"user","name"}...],"truncated"}: a malloc'd string (free()) to
 * put among a joined answer's fields, or NULL on ENOMEM. */
char *gw_out_members_field(const gw_out_user *users, size_t n, size_t count, bool truncated);
/* {"type":"members","room","count","users","truncated"} */
gw_buf *gw_out_members(const char *room, const gw_out_user *users, size_t n, size_t count,
                       bool truncated);
/* {"type":"presence","room","joined":[{"user","name"}...],"left":[user...],"count"} */
gw_buf *gw_out_presence(const char *room, const gw_out_user *joined, size_t nj,
                        const char *const *left, size_t nl, size_t count);

gw_buf *gw_out_list(const char *type, const char *key, const char *room, gw_buf *const *frames,
                    size_t n, const char *extra);

/* {"type":"typing","room","user","on"} */
gw_buf *gw_out_typing(const char *room, const char *user, bool on);
/* {"type":"read","room","upto","unread"} (to the reader's other connections) */
gw_buf *gw_out_read(const char *room, const char *upto, unsigned unread);
/* {"type":"receipt","room","user","upto"} (to the other user of a direct room) */
gw_buf *gw_out_receipt(const char *room, const char *user, const char *upto);
/* One entry of a rooms answer. upto and last may be "" (then null). */
typedef struct gw_out_room {
    const char *room;
    const char *read_upto;
    const char *last;
    unsigned unread;
} gw_out_room;
/* {"type":"rooms","rooms":[{"room","unread","read_upto","last"}...]} */
gw_buf *gw_out_rooms(const gw_out_room *rooms, size_t n);

#endif
