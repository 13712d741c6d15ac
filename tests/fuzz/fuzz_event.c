/* fuzz_event.c: libFuzzer target for the Event decoder, the parser every record of the events
 * topic goes through. Any input must be refused cleanly (the struct left zeroed) or decoded; a
 * decoded event must pass validation, re-encode, and decode again to exactly the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const chat_event zero;
    chat_event a, b;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];

    if (chat_event_decode(data, size, &a, err, sizeof(err)) != 0) {
        if (memcmp(&a, &zero, sizeof(a)) != 0)
            abort(); /* a failed decode must leave the struct zeroed */
        return 0;
    }
    if (chat_event_validate(&a, err, sizeof(err)) != 0)
        abort();
    if (chat_event_encode(&a, &buf, &len, err, sizeof(err)) != 0)
        abort();
    if (chat_event_decode(buf, len, &b, err, sizeof(err)) != 0)
        abort();
    if (a.version != b.version || a.kind != b.kind || a.on != b.on || a.unread != b.unread ||
        a.ts_ms != b.ts_ms || strcmp(a.room, b.room) || strcmp(a.user, b.user) ||
        strcmp(a.upto, b.upto) || strcmp(a.origin, b.origin))
        abort();
    free(buf);
    return 0;
}
