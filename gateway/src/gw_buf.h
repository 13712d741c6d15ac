/* gw_buf.h: reference-counted, immutable frame buffers. A fan-out frame is encoded once, JSON
 * and WebSocket header, and the same gw_buf is written to every recipient. The payload sits after
 * GW_BUF_PRE bytes of headroom, where gw_buf_frame() puts the WebSocket header.
 * Loop thread only (the count is not atomic). */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>

#define GW_BUF_PRE 16 /* >= LWS_PRE (checked with a static assert in gw_server.c) */

typedef struct gw_buf {
    unsigned refs;
    unsigned char hlen;   /* 0, or the length of the WebSocket header in the headroom */
    size_t len;           /* payload length */
    unsigned char data[]; /* GW_BUF_PRE headroom, then len payload bytes, then a NUL */
} gw_buf;

/* A new buffer with one reference and room for len payload bytes (+ NUL). NULL on ENOMEM. */
gw_buf *gw_buf_new(size_t len);
/* A new buffer holding a copy of the bytes. NULL on ENOMEM. */
gw_buf *gw_buf_from(const void *bytes, size_t len);
static inline unsigned char *gw_buf_payload(gw_buf *b)
{
    return b->data + GW_BUF_PRE;
}
/* The payload as a whole WebSocket text frame (a server frame: unmasked, FIN set), its header
 * written into the headroom on the first call: what goes on the wire, shared by every
 * connection the frame is written to. Sets *len to the frame's length. */
const unsigned char *gw_buf_frame(gw_buf *b, size_t *len);
gw_buf *gw_buf_ref(gw_buf *b);
/* Drops one reference; frees at zero. NULL is a no-op. */
void gw_buf_unref(gw_buf *b);

#endif
