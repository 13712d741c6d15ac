/* fuzz_presence.c: libFuzzer target for the presence topic's records (proto/chat_presence.c),
 * which every gateway reads from every other: the input's first byte splits it into a record
 * key and a value. A key must parse or be refused; a value must decode or be refused, and a
 * decoded one must validate, re-encode, decode to the same fields and give a key that parses
 * back to them. Then the presence table takes the pair as a record (with and without a value)
 * and must neither crash nor leak. */
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
    gw_presence_config c = {.node_id = "gw-fuzz",
                            .incarnation = 1,
                            .max_entries = 1000,
                            .heartbeat_ms = 2000,
                            .dead_ms = 8000,
                            .flush_ms = 1000,
                            .max_changes = 100,
                            .emit = emit,
                            .deliver = deliver};
    gw_presence *p = gw_presence_new(&c, 0);
    if (!p)
        abort();
    gw_presence_watch(p, "r", 1);
    gw_presence_on_record(p, key, klen, val, vlen, data[0] * 100, 0);
    gw_presence_tick(p, 1000, 1000);
    gw_presence_on_record(p, key, klen, NULL, 0, 0, 1000);
    gw_presence_tick(p, 20000, 20000);
    gw_presence_free(p);
    return 0;
}
