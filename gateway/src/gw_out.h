/* gw_out.h: encoding the server's frames (protocol v1) as JSON text in gw_buf buffers, ready
 * for lws_write(). Each function returns a new buffer with one reference, or NULL on ENOMEM.
 * String arguments are NUL-terminated; an optional one may be NULL or "" (then it is left out).
 * Any thread (buffers are handed to the loop thread afterwards). */
#ifndef GW_OUT_H
#define GW_OUT_H

#include <stddef.h>

#include "chat_envelope.h"
#include "gw_buf.h"

gw_buf *gw_out_welcome(const char *user, const char *gateway);
gw_buf *gw_out_error(const char *code, const char *message, const char *cid);
gw_buf *gw_out_ack(const char *cid, const char *id);
gw_buf *gw_out_pong(void);
gw_buf *gw_out_left(const char *room);
/* {"type":"message","id","room","from","text","ts","cid"} (cid left out when empty). */
gw_buf *gw_out_message(const chat_message *m);
/* {"type":"joined","room","history":[message...]} with msgs oldest first. */
gw_buf *gw_out_joined(const char *room, const chat_message *msgs, size_t n);
/* {"type":"history","room","messages":[message...]} with msgs oldest first. */
gw_buf *gw_out_history(const char *room, const chat_message *msgs, size_t n);

#endif
