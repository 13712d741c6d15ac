/* gw_sendq.c: a connection's bounded reply queue (see gw_sendq.h): a ring of gw_buf references
 * that exists only while something is queued, plus a running byte total checked on every
 * push. */
#include "gw_sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int gw_sendq_limits_init(gw_sendq_limits *lim, size_t max_items, size_t max_bytes)
{
    if (max_items < 1 || max_bytes < 1)
        return -EINVAL;
    lim->max_items = max_items > UINT32_MAX ? UINT32_MAX : (uint32_t)max_items;
    lim->max_bytes = max_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)max_bytes;
    return 0;
}

static int grow(gw_sendq *q, uint32_t max_items)
{
    size_t cap = q->cap ? (size_t)q->cap * 2 : 4;
    if (cap > max_items)
        cap = max_items;
    gw_buf **items = malloc(cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (uint32_t i = 0; i < q->count; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = (uint32_t)cap;
    q->head = 0;
    return 0;
}

int gw_sendq_push(gw_sendq *q, const gw_sendq_limits *lim, gw_buf *b)
{
    if (q->count >= lim->max_items || b->len > lim->max_bytes - q->bytes)
        return -ENOBUFS;
    if (q->count == q->cap && grow(q, lim->max_items) != 0)
        return -ENOMEM;
    q->items[(q->head + q->count) % q->cap] = gw_buf_ref(b);
    q->count++;
    q->bytes += (uint32_t)b->len; /* at most max_bytes: checked above */
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
    q->head = (q->head + 1) % q->cap;
    q->count--;
    q->bytes -= (uint32_t)b->len;
    gw_buf_unref(b);
    if (q->count == 0) {
        free(q->items);
        q->items = NULL;
        q->cap = q->head = 0;
    }
}

void gw_sendq_clear(gw_sendq *q)
{
    while (q->count)
        gw_sendq_pop(q);
}
