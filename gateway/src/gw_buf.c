/* gw_buf.c: reference-counted, immutable frame buffers (see gw_buf.h). One allocation holds
 * the header, GW_BUF_PRE bytes of headroom for lws_write(), the payload and a trailing NUL so
 * the payload can be logged or parsed as a C string. */
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
