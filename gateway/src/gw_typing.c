/* gw_typing.c: typing indicators (see gw_typing.h). */
#include "gw_typing.h"

#include <stdio.h>
#include <string.h>

#include "chat_log.h"
#include "gw_out.h"
#include "gw_session.h"

typedef struct typing_delivery {
    gw_buf *frame;
    gw_session *skip; /* the connection that typed */
} typing_delivery;

static void deliver_one(void *member, void *arg)
{
    typing_delivery *d = arg;
    gw_session *s = member;
    if (s != d->skip)
        gw_session_push(s, d->frame);
}

/* Every connection of this gateway joined to room, except skip. */
static void deliver(gw_ctx *ctx, const char *room, const char *user, bool on, gw_session *skip)
{
    if (gw_rooms_member_count(ctx->rooms, room) == 0)
        return;
    typing_delivery d = {.frame = gw_out_typing(room, user, on), .skip = skip};
    if (!d.frame) {
        chat_log(CHAT_LOG_ERROR, "out of memory encoding a typing frame");
        return;
    }
    gw_rooms_foreach(ctx->rooms, room, deliver_one, &d);
    gw_buf_unref(d.frame);
}

void gw_typing_on_frame(gw_session *s, const gw_frame *f)
{
    gw_ctx *ctx = s->ctx;
    if (!gw_session_in_room(s, f->room)) {
        gw_session_error(s, GW_ERR_NOT_JOINED, "join the room before typing in it", f->cid);
        return;
    }
    if (f->on && !gw_throttle_take(&ctx->typing, s->id.sub, f->room, gw_wall_ms())) {
        ctx->stats.typing_throttled++;
        return; /* forwarded less than GW_TYPING_WINDOW_MS ago: receivers still show it */
    }
    ctx->stats.typing_forwarded++;
    deliver(ctx, f->room, s->id.sub, f->on, s);
    if (!ctx->ops->publish)
        return;
    chat_event e = {.kind = CHAT_EVENT_TYPING, .on = f->on};
    snprintf(e.room, sizeof(e.room), "%s", f->room);
    snprintf(e.user, sizeof(e.user), "%s", s->id.sub);
    char err[160];
    if (ctx->ops->publish(ctx->ops_arg, &e, err, sizeof(err)) != 0)
        chat_log(CHAT_LOG_DEBUG, "typing of %s in %s not published: %s", s->id.sub, f->room, err);
}

void gw_typing_on_event(gw_ctx *ctx, const chat_event *e)
{
    if (e->on && !gw_throttle_take(&ctx->typing, e->user, e->room, e->ts_ms))
        return;
    deliver(ctx, e->room, e->user, e->on, NULL);
}
