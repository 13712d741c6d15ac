/* gw_typing.h: typing indicators (docs/protocol.md, "Typing"). A typing frame from a connection
 * joined to the room goes to every other connection joined to it: on this gateway at once, on
 * the others through the events topic (gw_events.h). Nothing is stored, there is no id, and
 * the room log is not touched. The gateway forwards at most one on:true per (user, room) every
 * GW_TYPING_WINDOW_MS (ctx->typing, fixed memory); on:false is always forwarded. Each gateway
 * applies the same gate to the events it receives (by the event's timestamp), so a receiver
 * gets at most one on:true per window even when the user types on several gateways.
 * Loop thread only. */
#ifndef GW_TYPING_H
#define GW_TYPING_H

#include "chat_event.h"
#include "gw_ctx.h"
#include "gw_frame.h"

#define GW_TYPING_WINDOW_MS 2000
#define GW_TYPING_BUCKETS 16384 /* x 4 slots x 16 bytes: 1 MiB per gateway */

/* A typing frame (f->room, f->on) from s. */
void gw_typing_on_frame(gw_session *s, const gw_frame *f);
/* A typing event of another gateway. */
void gw_typing_on_event(gw_ctx *ctx, const chat_event *e);

#endif
