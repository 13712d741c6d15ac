/* gw_sendq.c: a connection's bounded send queue (see gw_sendq.h): a fixed ring of gw_buf
 * references allocated once, plus a running byte total checked on every push. */
#include "gw_sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gw_sendq_init(gw_sendq *q, size_t max_items, size_t max_bytes)
{
    memset(q, 0, sizeof(*q));
    if (max_items < 1 || max_bytes < 1)
        return -EINVAL;
    q->items = calloc(max_items, sizeof(*q->items));
    if (!q->items)
        return -ENOMEM;
    q->max_items = max_items;
    q->max_bytes = max_bytes;
    return 0;
}

int gw_sendq_push(gw_sendq *q, gw_buf *b)
{
    if (!q->items || q->count >= q->max_items)
        return -ENOBUFS;
    if (b->len > q->max_bytes - q->bytes)
        return -ENOBUFS;
    size_t tail = (q->head + q->count) % q->max_items;
    q->items[tail] = gw_buf_ref(b);
    q->count++;
    q->bytes += b->len;
    return 0;
}

gw_buf *gw_sendq_peek(const gw_sendq *q)
{
    return q->count ? q->items[q->head] : NULL;
}

void gw_sendq_pop(gw_sendq *q)
{
    if (!q->count)
        return;
    gw_buf *b = q->items[q->head];
    q->items[q->head] = NULL;
    q->head = (q->head + 1) % q->max_items;
    q->count--;
    q->bytes -= b->len;
    gw_buf_unref(b);
}

void gw_sendq_free(gw_sendq *q)
{
    while (q->count)
        gw_sendq_pop(q);
    free(q->items);
    memset(q, 0, sizeof(*q));
}
