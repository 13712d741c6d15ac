/* fuzz_envelope.c: libFuzzer target for the Envelope decoder, the parser every Kafka record
 * goes through. Any input must be refused cleanly or decoded; a decoded envelope must pass
 * validation, re-encode, and decode again to exactly the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chat_envelope a = {0}, b = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];

    if (chat_envelope_decode(data, size, &a, err, sizeof(err)) != 0) {
        if (a.room || a.from || a.text)
            abort(); /* a failed decode must leave the struct zeroed */
        return 0;
    }
    if (chat_envelope_validate(&a, CHAT_TEXT_HARD_MAX, err, sizeof(err)) != 0)
        abort();
    if (strlen(a.text) != a.text_len)
        abort();
    if (chat_envelope_encode(&a, &buf, &len, err, sizeof(err)) != 0)
        abort();
    if (chat_envelope_decode(buf, len, &b, err, sizeof(err)) != 0)
        abort();
    if (a.version != b.version || a.ts_ms != b.ts_ms || a.text_len != b.text_len ||
        !same(a.room, b.room) || !same(a.from, b.from) || !same(a.name, b.name) ||
        !same(a.text, b.text) || !same(a.cid, b.cid))
        abort();
    free(buf);
    chat_envelope_clear(&a);
    chat_envelope_clear(&b);
    return 0;
}
