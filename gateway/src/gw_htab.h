/* gw_htab.h: a minimal intrusive chained hash table. A node (gw_hnode: the chain link and the
 * full 64-bit hash) is embedded in the caller's struct; the table never allocates nodes, only its
 * slot array, which grows by doubling past two nodes per slot and shrinks below one per eight.
 * Lookups walk the slot's chain comparing hashes; the caller compares keys. Callers hash what
 * clients choose with gw_hash_sip (gw_hash.h). Not thread-safe; the gateway uses it on the loop
 * thread. */
#ifndef GW_HTAB_H
#define GW_HTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_hnode {
    struct gw_hnode *next;
    uint64_t hash;
} gw_hnode;

typedef struct gw_htab {
    gw_hnode **slots;
    size_t nslots; /* a power of two */
    size_t count;
} gw_htab;

/* Returns 0 or -ENOMEM. */
int gw_htab_init(gw_htab *t);
/* Frees the slot array (not the nodes: free them first, e.g. with gw_htab_each). */
void gw_htab_free(gw_htab *t);
/* node->hash must be set. On ENOMEM while growing the table keeps its size (slower only). */
void gw_htab_insert(gw_htab *t, gw_hnode *node);
/* No-op when node is not in t. */
void gw_htab_remove(gw_htab *t, gw_hnode *node);
/* The first node with this hash, or NULL; then gw_htab_next for the others. */
gw_hnode *gw_htab_first(const gw_htab *t, uint64_t hash);
gw_hnode *gw_htab_next(const gw_hnode *node, uint64_t hash);
/* Calls fn on every node; fn may free the node (the chain is read before the call). */
void gw_htab_each(gw_htab *t, void (*fn)(gw_hnode *node, void *arg), void *arg);

#define gw_htab_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

#endif
