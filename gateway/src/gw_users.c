/* gw_users.c: the per-gateway user index (see gw_users.h): a gw_htab of users, hashed with the
 * keyed SipHash since clients choose their ids through their tokens' issuers, each holding a
 * doubly linked list of the links its connections embed. */
#include "gw_users.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_hash.h"

struct gw_user {
    gw_hnode node;
    gw_user_link *head;
    size_t count;
    char sub[]; /* NUL-terminated */
};

static uint64_t hash_of(const gw_users *u, const char *sub)
{
    return gw_hash_sip(u->key, sub, strlen(sub));
}

static gw_user *find(const gw_users *u, const char *sub, uint64_t h)
{
    for (gw_hnode *n = gw_htab_first(&u->users, h); n; n = gw_htab_next(n, h)) {
        gw_user *e = gw_htab_entry(n, gw_user, node);
        if (strcmp(e->sub, sub) == 0)
            return e;
    }
    return NULL;
}

int gw_users_init(gw_users *u)
{
    memset(u, 0, sizeof(*u));
    gw_hash_seed(u->key, u);
    return gw_htab_init(&u->users) ? -ENOMEM : 0;
}

static void drop(gw_hnode *n, void *arg)
{
    (void)arg;
    free(gw_htab_entry(n, gw_user, node));
}

void gw_users_free(gw_users *u)
{
    gw_htab_each(&u->users, drop, NULL);
    gw_htab_free(&u->users);
}

int gw_users_add(gw_users *u, const char *sub, gw_user_link *link)
{
    uint64_t h = hash_of(u, sub);
    gw_user *e = find(u, sub, h);
    if (!e) {
        size_t n = strlen(sub);
        e = calloc(1, sizeof(*e) + n + 1);
        if (!e)
            return -ENOMEM;
        memcpy(e->sub, sub, n + 1);
        e->node.hash = h;
        gw_htab_insert(&u->users, &e->node);
    }
    link->prev = NULL;
    link->next = e->head;
    if (e->head)
        e->head->prev = link;
    e->head = link;
    link->user = e;
    e->count++;
    u->links++;
    return 0;
}

void gw_users_remove(gw_users *u, gw_user_link *link)
{
    gw_user *e = link->user;
    if (!e)
        return;
    if (link->prev)
        link->prev->next = link->next;
    else
        e->head = link->next;
    if (link->next)
        link->next->prev = link->prev;
    link->prev = link->next = NULL;
    link->user = NULL;
    u->links--;
    if (--e->count == 0) {
        gw_htab_remove(&u->users, &e->node);
        free(e);
    }
}

gw_user_link *gw_users_first(const gw_users *u, const char *sub)
{
    gw_user *e = find(u, sub, hash_of(u, sub));
    return e ? e->head : NULL;
}

size_t gw_users_count(const gw_users *u, const char *sub)
{
    gw_user *e = find(u, sub, hash_of(u, sub));
    return e ? e->count : 0;
}

const char *gw_users_sub(const gw_user_link *link)
{
    return link->user ? link->user->sub : NULL;
}
