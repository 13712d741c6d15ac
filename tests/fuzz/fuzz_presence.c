/* fuzz_presence.c: libFuzzer target for the presence topic's records (proto/chat_presence.c),
 * which every gateway reads from every other: the input's first byte splits it into a record
 * key and a value. A key must parse or be refused; a value must decode or be refused, and a
 * decoded one must validate, re-encode, decode to the same fields and give a key that parses
 * back to them. Then the presence table takes the pair as a record (with and without a value)
 * and must neither crash nor leak. Then the input is read again as a tape of operations on a
 * small table (two bytes each: local joins, leaves, watches and counts, member, count and
 * heartbeat records of three gateways and their runs in any order, ticks), so entries and counts
 * of one user come and go in every order; a members answer must list what the room's count
 * says. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_presence.h"
#include "gw_presence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void emit(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
    (void)arg, (void)key, (void)klen, (void)val, (void)vlen;
}

static void deliver(void *arg, const char *room, gw_buf *frame)
{
    (void)arg, (void)room, (void)frame;
}

static const char *const ROOMS[] = {"r", "s", "t", "dm:alice:bob"};
static const char *const USERS[] = {"alice", "bob", "carol", "user-0000000003"};
static const char *const NODES[] = {"gw-fuzz", "gw-b", "gw-c"};
static const char *const NAMES[] = {"", "Alice", "Bob", "alice"};

/* A record of node (run inc) about user (in room for a member record; n connections for a
 * count record), with a value or a tombstone. */
static void record(gw_presence *p, chat_presence_kind kind, int node, uint64_t inc,
                   const char *room, const char *user, const char *name, uint32_t n, bool val,
                   int64_t age, int64_t now)
{
    chat_presence r = {.kind = kind, .incarnation = inc, .ts_ms = 1000, .conns = n};
    strcpy(r.node, NODES[node]);
    if (kind == CHAT_PRESENCE_MEMBER) {
        strcpy(r.room, room);
        strcpy(r.name, name);
    }
    if (kind != CHAT_PRESENCE_HEARTBEAT)
        strcpy(r.user, user);
    char key[CHAT_PRESENCE_KEY_MAX];
    int kl = chat_presence_key(&r, key, sizeof(key));
    uint8_t *buf = NULL;
    size_t len = 0;
    if (kl < 0 || (val && chat_presence_encode(&r, &buf, &len, NULL, 0) != 0))
        abort(); /* the tape only makes valid records */
    if (gw_presence_on_record(p, key, (size_t)kl, buf, len, age, now) != 0)
        abort();
    free(buf);
}

/* A presence table of this gateway's run 1, records to emit and frames to deliver. */
static gw_presence *presence_new(const char *node, size_t max_entries, size_t max_changes)
{
    gw_presence_config c = {.node_id = node,
                            .incarnation = 1,
                            .max_entries = max_entries,
                            .heartbeat_ms = 2000,
                            .dead_ms = 8000,
                            .flush_ms = 1000,
                            .max_changes = max_changes,
                            .emit = emit,
                            .deliver = deliver};
    gw_presence *p = gw_presence_new(&c, 0);
    if (!p)
        abort();
    return p;
}

static void tape(const uint8_t *data, size_t size)
{
    gw_presence *p = presence_new(NODES[0], 8, 2);
    int64_t now = 0;
    for (size_t i = 0; i + 1 < size; i += 2) {
        uint8_t op = data[i], a = data[i + 1];
        const char *room = ROOMS[a & 3], *user = USERS[(a >> 2) & 3], *name = NAMES[a >> 6];
        int node = (a >> 4) % 3;
        uint64_t inc = 1 + (a >> 6); /* this gateway's run is 1: the others are earlier runs */
        switch (op % 11) {
        case 0:
            gw_presence_join(p, room, user, name);
            break;
        case 1:
            gw_presence_leave(p, room, user);
            break;
        case 2:
            gw_presence_watch(p, room, a & 0x80 ? -1 : 1);
            break;
        case 3:
            gw_presence_set_conns(p, user, a >> 6);
            break;
        case 4:
        case 5:
            record(p, CHAT_PRESENCE_MEMBER, node, inc, room, user, name, 0, op % 11 == 4,
                   op & 0x80 ? 3000 : 0, now);
            break;
        case 6:
        case 7:
            record(p, CHAT_PRESENCE_CONNS, node, inc, room, user, name, 1 + (a >> 6), op % 11 == 6,
                   0, now);
            break;
        case 8:
            record(p, CHAT_PRESENCE_HEARTBEAT, node, inc, room, user, name, 0, !(op & 0x80), 0,
                   now);
            break;
        case 9:
            now += 40 * a;
            gw_presence_tick(p, now, 1000 + now);
            break;
        default: {
            gw_presence_view v;
            gw_presence_members(p, room, user, &v);
            bool listed = false;
            for (size_t j = 0; j < v.n; j++)
                listed |= strcmp(v.users[j].user, user) == 0;
            size_t want = v.count < GW_PRESENCE_LIST_MAX ? v.count : GW_PRESENCE_LIST_MAX;
            if (v.n != want || v.truncated != (v.n < v.count) ||
                listed != gw_presence_has(p, room, user))
                abort(); /* the room's count and its entries disagree */
            (void)gw_presence_remote_conns(p, user);
        }
        }
    }
    if (size & 1)
        gw_presence_shutdown(p);
    gw_presence_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t klen = data[0] < size - 1 ? data[0] : size - 1;
    const char *key = (const char *)data + 1;
    const uint8_t *val = data + 1 + klen;
    size_t vlen = size - 1 - klen;
    chat_presence k, v, w;
    char err[128], key2[CHAT_PRESENCE_KEY_MAX];

    if (chat_presence_key_parse(key, klen, &k, err, sizeof(err)) == 0 &&
        k.kind == CHAT_PRESENCE_MEMBER && chat_presence_key(&k, key2, sizeof(key2)) != (int)klen)
        abort(); /* a member key parses back from exactly its bytes */
    if (chat_presence_decode(val, vlen, &v, err, sizeof(err)) == 0) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (chat_presence_validate(&v, err, sizeof(err)) != 0 ||
            chat_presence_encode(&v, &buf, &len, err, sizeof(err)) != 0 ||
            chat_presence_decode(buf, len, &w, err, sizeof(err)) != 0 ||
            memcmp(&v, &w, sizeof(v)) != 0)
            abort();
        free(buf);
        int kl = chat_presence_key(&v, key2, sizeof(key2));
        if (kl < 0 || chat_presence_key_parse(key2, (size_t)kl, &w, err, sizeof(err)) != 0 ||
            strcmp(w.node, v.node) != 0 || strcmp(w.room, v.room) != 0 ||
            strcmp(w.user, v.user) != 0)
            abort();
    }
    gw_presence *p = presence_new("gw-fuzz", 1000, 100);
    gw_presence_watch(p, "r", 1);
    gw_presence_on_record(p, key, klen, val, vlen, data[0] * 100, 0);
    gw_presence_tick(p, 1000, 1000);
    gw_presence_on_record(p, key, klen, NULL, 0, 0, 1000);
    gw_presence_tick(p, 20000, 20000);
    gw_presence_free(p);
    tape(data, size);
    return 0;
}
