/* fuzz_frame.c: libFuzzer target for the client frame parser. Any bytes must either parse into
 * a frame whose fields satisfy the protocol rules, or fail with an error code and a message;
 * never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_msgid.h"
#include "chat_validate.h"
#include "gw_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gw_frame_limits lim = {
        .max_text = 4096, .max_history = 200, .default_history = 50};
    gw_frame f;
    gw_frame_error e;

    if (gw_frame_parse((const char *)data, size, &lim, &f, &e) != 0) {
        if (!e.code || !e.message[0] || strlen(e.cid) > CHAT_CID_MAX)
            abort();
        if (e.cid[0] && !chat_valid_cid(e.cid, strlen(e.cid)))
            abort();
        return 0;
    }
    /* What the parser accepts must hold up to the rules the rest of the gateway relies on. */
    switch (f.type) {
    case GW_FRAME_SEND:
        if (!f.text || f.text_len == 0 || f.text_len > lim.max_text ||
            !chat_valid_utf8_nonul(f.text, f.text_len))
            abort();
        /* fall through */
    case GW_FRAME_JOIN:
    case GW_FRAME_LEAVE:
    case GW_FRAME_HISTORY:
    case GW_FRAME_MEMBERS:
        if (!f.room || !chat_valid_room(f.room, strlen(f.room)))
            abort();
        if (f.type == GW_FRAME_HISTORY && (f.limit < 1 || f.limit > lim.max_history))
            abort();
        break;
    case GW_FRAME_AUTH:
    case GW_FRAME_REFRESH:
        if (!f.token || !f.token[0] || strlen(f.token) > 8192)
            abort();
        break;
    case GW_FRAME_TYPING:
        if (!f.room || !chat_valid_room(f.room, strlen(f.room)))
            abort();
        break;
    case GW_FRAME_READ:
        if (!f.room || !chat_valid_room(f.room, strlen(f.room)) || !f.upto ||
            chat_msgid_parse(f.upto, NULL, NULL) != 0)
            abort();
        break;
    case GW_FRAME_PING:
    case GW_FRAME_ROOMS:
        break;
    }
    if (f.presence && f.type != GW_FRAME_JOIN) /* only a join carries presence */
        abort();
    if (f.cid && !chat_valid_cid(f.cid, strlen(f.cid)))
        abort();
    gw_frame_free(&f);
    return 0;
}
