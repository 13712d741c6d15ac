/* gw_reads.h: read state (docs/protocol.md, "Read state"): the read frame moves a user's
 * position in a room forward, the rooms frame lists the user's rooms with their unread counts.
 * The gateway writes the state itself, through its store worker threads (gw_store_job; the loop
 * never blocks): one atomic forward-only update per read ({$max: {upto}} on the document of
 * (room, user), chat_store_doc.h), whose previous value says whether it moved. When it moved,
 * the gateway tells the user's other connections (read, with the unread count) and, in a
 * direct room, the other user's (receipt): on this gateway at once, on the others through the
 * events topic. An older upto changes nothing and is not answered.
 * Unread counts come from the room log when it holds every message after upto, else from a
 * store count (at most CHAT_UNREAD_MAX).
 * Loop thread only (the run functions are the workers'). */
#ifndef GW_READS_H
#define GW_READS_H

#include "chat_event.h"
#include "gw_ctx.h"
#include "gw_frame.h"
#include "gw_store.h"

#define GW_READS_KIND_FIRST 16 /* gw_store result kinds from here on are the read state's */
#define GW_READS_ROOMS_MAX 100 /* rooms a rooms answer lists at most */
#define GW_READS_PER_CONN 16   /* read-state jobs waiting per connection */

/* What a join adds to joined: the user's read state of the room, looked up in the store while
 * the join is parked (one job per join, in the connection's read-state lane). */
typedef struct gw_join_read {
    bool pending;                  /* the lookup is under way: the join waits */
    bool ok;                       /* the lookup answered: joined carries the fields */
    char upto[CHAT_MSGID_LEN + 1]; /* "" when the user has no read state in the room */
    int store_unread;              /* the store's count, or -1 when the log counts */
} gw_join_read;

/* A join of s to sub's room starts: looks the read state up (sub->rd) unless the store cannot
 * take it now (then joined comes without the fields). */
void gw_reads_join_begin(gw_session *s, gw_sub *sub);
/* Whether the join must wait for its lookup. */
bool gw_reads_join_pending(const gw_sub *sub);
/* The fields for joined into out ("" when there are none): "read_upto":..,"unread":n. */
void gw_reads_join_fields(gw_ctx *ctx, const gw_sub *sub, char *out, size_t outlen);
/* The join was answered, or the sub goes: frees sub->rd. */
void gw_reads_join_end(gw_sub *sub);

void gw_reads_on_read(gw_session *s, const gw_frame *f);
void gw_reads_on_rooms(gw_session *s, const gw_frame *f);
/* A store result of kind >= GW_READS_KIND_FIRST (its job is freed here). */
void gw_reads_on_result(gw_ctx *ctx, gw_store_result *res);
/* A read event of another gateway. */
void gw_reads_on_event(gw_ctx *ctx, const chat_event *e);
/* The store owner of s's read-state jobs (apart from its history reads, so neither lane fills
 * the other's bound); cancel it when s closes. Derived from s's handle, which every job holds:
 * NULL while s has none (it then has no job either). */
const void *gw_reads_owner(const gw_session *s);

#endif
