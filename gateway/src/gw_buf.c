/* gw_buf.c: reference-counted, immutable frame buffers (see gw_buf.h). One allocation holds
 * the header, GW_BUF_PRE bytes of headroom for the WebSocket header, the payload and a trailing
 * NUL so the payload can be logged or parsed as a C string. */
#include "gw_buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

gw_buf *gw_buf_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(gw_buf) - GW_BUF_PRE - 1)
        return NULL;
    gw_buf *b = malloc(sizeof(*b) + GW_BUF_PRE + len + 1);
    if (!b)
        return NULL;
    b->refs = 1;
    b->hlen = 0;
    b->len = len;
    memset(b->data, 0, GW_BUF_PRE);
    b->data[GW_BUF_PRE + len] = '\0';
    return b;
}

gw_buf *gw_buf_from(const void *bytes, size_t len)
{
    gw_buf *b = gw_buf_new(len);
    if (b && len)
        memcpy(gw_buf_payload(b), bytes, len);
    return b;
}

const unsigned char *gw_buf_frame(gw_buf *b, size_t *len)
{
    unsigned char *p = b->data + GW_BUF_PRE;
    if (!b->hlen) {
        /* RFC 6455 5.2: FIN + opcode 1 (text), then the 7-bit, 16-bit or 64-bit length */
        unsigned char h[10];
        size_t n;
        h[0] = 0x81;
        if (b->len < 126) {
            h[1] = (unsigned char)b->len;
            n = 2;
        } else if (b->len <= 0xffff) {
            h[1] = 126;
            h[2] = (unsigned char)(b->len >> 8);
            h[3] = (unsigned char)b->len;
            n = 4;
        } else {
            h[1] = 127;
            for (int i = 0; i < 8; i++)
                h[2 + i] = (unsigned char)((uint64_t)b->len >> (56 - 8 * i));
            n = 10;
        }
        memcpy(p - n, h, n);
        b->hlen = (unsigned char)n;
    }
    *len = b->hlen + b->len;
    return p - b->hlen;
}

gw_buf *gw_buf_ref(gw_buf *b)
{
    if (b)
        b->refs++;
    return b;
}

void gw_buf_unref(gw_buf *b)
{
    if (!b)
        return;
    if (--b->refs == 0)
        free(b);
}
