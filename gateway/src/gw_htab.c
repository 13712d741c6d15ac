/* gw_htab.c: the intrusive chained hash table of gw_htab.h. */
#include "gw_htab.h"

#include <errno.h>
#include <stdlib.h>

#define GW_HTAB_MIN_SLOTS 64

int gw_htab_init(gw_htab *t)
{
    t->slots = calloc(GW_HTAB_MIN_SLOTS, sizeof(*t->slots));
    if (!t->slots)
        return -ENOMEM;
    t->nslots = GW_HTAB_MIN_SLOTS;
    t->count = 0;
    return 0;
}

void gw_htab_free(gw_htab *t)
{
    free(t->slots);
    t->slots = NULL;
    t->nslots = t->count = 0;
}

/* Moves every node into a table of n slots; on ENOMEM the old size stays (still correct). */
static void resize(gw_htab *t, size_t n)
{
    gw_hnode **slots = calloc(n, sizeof(*slots));
    if (!slots)
        return;
    for (size_t i = 0; i < t->nslots; i++) {
        gw_hnode *node = t->slots[i];
        while (node) {
            gw_hnode *next = node->next;
            size_t j = node->hash & (n - 1);
            node->next = slots[j];
            slots[j] = node;
            node = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
}

/* Doubles at two nodes per slot on average: chains stay short (the hashes are keyed SipHash or
 * a mixed pointer), and the tables indexed per connection (users, presence, room members) cost
 * 4 to 8 bytes of slots per entry, not 8 to 16. */
void gw_htab_insert(gw_htab *t, gw_hnode *node)
{
    if (t->count >= 2 * t->nslots && t->nslots <= SIZE_MAX / 4 / sizeof(*t->slots))
        resize(t, t->nslots * 2);
    size_t i = node->hash & (t->nslots - 1);
    node->next = t->slots[i];
    t->slots[i] = node;
    t->count++;
}

void gw_htab_remove(gw_htab *t, gw_hnode *node)
{
    gw_hnode **pp = &t->slots[node->hash & (t->nslots - 1)];
    while (*pp && *pp != node)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = node->next;
        t->count--;
    }
    if (t->nslots > GW_HTAB_MIN_SLOTS && t->count < t->nslots / 8)
        resize(t, t->nslots / 2);
}

gw_hnode *gw_htab_first(const gw_htab *t, uint64_t hash)
{
    gw_hnode *node = t->slots[hash & (t->nslots - 1)];
    while (node && node->hash != hash)
        node = node->next;
    return node;
}

gw_hnode *gw_htab_next(const gw_hnode *node, uint64_t hash)
{
    node = node->next;
    while (node && node->hash != hash)
        node = node->next;
    return (gw_hnode *)node;
}

void gw_htab_each(gw_htab *t, void (*fn)(gw_hnode *node, void *arg), void *arg)
{
    for (size_t i = 0; t->slots && i < t->nslots; i++) {
        gw_hnode *node = t->slots[i];
        while (node) {
            gw_hnode *next = node->next;
            fn(node, arg);
            node = next;
        }
    }
}
