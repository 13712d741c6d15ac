/* gw_recent.c: a ring of the last fanned-out message frames (see gw_recent.h). */
#include "gw_recent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat_msgid.h"
#include "chat_validate.h"

typedef struct gw_recent_entry {
    char room[CHAT_ROOM_MAX + 1];
    char id[CHAT_MSGID_LEN + 1];
    gw_buf *b;
} gw_recent_entry;

struct gw_recent {
    gw_recent_entry *ring;
    size_t max_items, max_bytes;
    size_t head, count, bytes; /* head: the oldest entry */
};

gw_recent *gw_recent_new(size_t max_items, size_t max_bytes)
{
    if (max_items < 1)
        return NULL;
    gw_recent *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ring = calloc(max_items, sizeof(*r->ring));
    if (!r->ring) {
        free(r);
        return NULL;
    }
    r->max_items = max_items;
    r->max_bytes = max_bytes;
    return r;
}

static void drop_oldest(gw_recent *r)
{
    gw_recent_entry *e = &r->ring[r->head];
    r->bytes -= e->b->len;
    gw_buf_unref(e->b);
    e->b = NULL;
    r->head = (r->head + 1) % r->max_items;
    r->count--;
}

void gw_recent_free(gw_recent *r)
{
    if (!r)
        return;
    while (r->count)
        drop_oldest(r);
    free(r->ring);
    free(r);
}

int gw_recent_add(gw_recent *r, const char *room, const char *id, gw_buf *b)
{
    if (strlen(room) > CHAT_ROOM_MAX || strlen(id) > CHAT_MSGID_LEN)
        return -EINVAL;
    if (b->len > r->max_bytes)
        return 0;
    while (r->count && (r->count == r->max_items || r->bytes + b->len > r->max_bytes))
        drop_oldest(r);
    gw_recent_entry *e = &r->ring[(r->head + r->count) % r->max_items];
    strcpy(e->room, room);
    strcpy(e->id, id);
    e->b = gw_buf_ref(b);
    r->bytes += b->len;
    r->count++;
    return 0;
}

size_t gw_recent_after(const gw_recent *r, const char *room, const char *after_id,
                       gw_recent_fn fn, void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) {
        gw_recent_entry *e = &r->ring[(r->head + i) % r->max_items];
        if (strcmp(e->room, room) == 0 && strcmp(e->id, after_id) > 0) {
            fn(e->id, e->b, arg);
            n++;
        }
    }
    return n;
}

size_t gw_recent_count(const gw_recent *r) { return r->count; }
size_t gw_recent_bytes(const gw_recent *r) { return r->bytes; }
