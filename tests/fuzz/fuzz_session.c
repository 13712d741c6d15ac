/* fuzz_session.c: libFuzzer target for the whole inbound path of sessions without a socket:
 * frame reassembly, parsing, dispatch, joins and resumes against the room logs, sends and their
 * retries, store answers, slow readers, closes, typing, read state and its store jobs. The input is
 * a script of steps for a few connections over the fakes of session_harness.h (Kafka and the store
 * answer when the script says so; the room log is tiny, so eviction and 4008 happen; joins with
 * presence, members frames and presence frames on the presence table's clock). Never crash, leak or
 * misbehave: every frame written must be a JSON object with a type, every joined or history answer
 * must list its messages in stream order, and no connection may ever get a room's message, page or
 * history that its user may not use (gw_access: the direct room dm:x:y is x's and y's only; one
 * connection has a rooms claim). */
#include <jansson.h>
#include <stdint.h>

#include "gw_access.h"
#include "session_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCONN 4

static const char *const rooms[] = {"a", "b", "c", "dm:x:y"};

/* Every frame written so far must be an object with a type; lists must be in id order. */
static void check_frames(h_conn *c)
{
    const char *f;
    while ((f = h_next(c))) {
        json_t *j = json_loads(f, JSON_REJECT_DUPLICATES, NULL);
        if (!j || !json_is_string(json_object_get(j, "type")))
            abort();
        json_t *mem = json_object_get(j, "members"); /* joined with presence */
        if (!mem && strcmp(json_string_value(json_object_get(j, "type")), "members") == 0)
            mem = j;
        if (mem) { /* at most 100 listed, never more than counted */
            size_t listed = json_array_size(json_object_get(mem, "users"));
            json_int_t count = json_integer_value(json_object_get(mem, "count"));
            if (listed > 100 || (json_int_t)listed > count)
                abort();
        }
        const char *room = json_string_value(json_object_get(j, "room")), *code;
        if (room && c->open && c->s.state == GW_S_READY &&
            (json_object_get(j, "history") || json_object_get(j, "messages") ||
             json_object_get(j, "text")) &&
            !gw_access_may_join_as(c->s.id.sub, gw_session_id_rooms(&c->s.id), room, &code, NULL,
                                   0))
            abort(); /* a room this user may not use reached it */
        json_t *list = json_object_get(j, "history");
        if (!list)
            list = json_object_get(j, "messages");
        const char *prev = "";
        size_t i;
        json_t *m;
        json_array_foreach(list, i, m)
        {
            const char *id = json_string_value(json_object_get(m, "id"));
            if (!id || strcmp(id, prev) <= 0)
                abort();
            prev = id;
        }
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    harness *h = h_new(data[0] & 1 ? 4096 : 1 << 20, data[0] & 2 ? 50 : 0);
    h->jobs_on = data[0] & 4; /* typing, read state: joins wait for their lookups */
    static const char claim[] = "a\0dm:*\0";
    h_open(h, 0, "x");
    h_open_rooms(h, 1, "y", claim, sizeof(claim));
    h_open(h, 2, "bob");
    h_open(h, 3, NULL);
    for (int i = 0; i < NCONN; i++)
        h->conns[i].quiet = true;
    size_t pos = 1;
    while (pos + 2 <= size) {
        uint8_t op = data[pos++], arg = data[pos++];
        h_conn *c = &h->conns[arg % NCONN];
        switch (op % 8) {
        case 0: { /* a raw chunk: reassembly, parser, binary frames */
            size_t len = arg;
            if (len > size - pos)
                len = size - pos;
            if (c->open &&
                gw_session_receive(&c->s, data + pos, len, op & 0x10, op & 0x20, op & 0x40) != 0)
                h_close(h, c);
            pos += len;
            break;
        }
        case 1:
            h_flush(h);
            break;
        case 2:
            h->store_down = op & 0x10;
            h_store(h);
            h_jobs(h);
            break;
        case 3:
            h_write(h, c);
            check_frames(c);
            break;
        case 4:
            c->choked = !c->choked;
            break;
        case 5:
            if (c->open) {
                h_close(h, c);
            } else {
                h_conn *again = h_open(h, arg % NCONN, op & 0x10 ? "x" : "carol");
                again->quiet = true;
            }
            break;
        case 6:
            h->sync_pending = op & 0x10;
            gw_sessions_tick(&h->ctx);
            h_presence_tick(h, 100 * (arg % 16)); /* presence frames, heartbeats */
            break;
        case 7: { /* a well-formed frame, to reach deep paths quickly */
            char buf[256], id[CHAT_MSGID_LEN + 1];
            const char *room = rooms[(op >> 3) % 4];
            int limit = 1 + arg % 60;
            chat_msgid_format(id, (op >> 5) % H_PARTS, arg % 64);
            switch (arg % 13) {
            case 10:
                snprintf(buf, sizeof(buf), "{\"type\":\"typing\",\"room\":\"%s\",\"on\":%s}", room,
                         op & 4 ? "true" : "false");
                break;
            case 11:
                snprintf(buf, sizeof(buf), "{\"type\":\"read\",\"room\":\"%s\",\"upto\":\"%s\"}",
                         room, id);
                break;
            case 12:
                snprintf(buf, sizeof(buf), "{\"type\":\"rooms\"}");
                break;
            case 0:
                snprintf(buf, sizeof(buf), "{\"type\":\"join\",\"room\":\"%s\"}", room);
                break;
            case 8:
                snprintf(buf, sizeof(buf), "{\"type\":\"join\",\"room\":\"%s\",\"presence\":%s}",
                         room, op & 0x80 ? "true" : "false");
                break;
            case 9:
                snprintf(buf, sizeof(buf), "{\"type\":\"members\",\"room\":\"%s\"}", room);
                break;
            case 1:
                snprintf(buf, sizeof(buf),
                         "{\"type\":\"join\",\"room\":\"%s\",\"since\":\"%s\","
                         "\"epoch\":\"test.4\",\"limit\":%d}",
                         room, id, limit);
                break;
            case 2:
                snprintf(buf, sizeof(buf),
                         "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"t\",\"cid\":\"c%d\"}", room,
                         arg % 3);
                break;
            case 3:
                snprintf(buf, sizeof(buf),
                         "{\"type\":\"history\",\"room\":\"%s\",\"after\":\"%s\",\"limit\":%d}",
                         room, id, limit);
                break;
            case 4:
                snprintf(buf, sizeof(buf),
                         "{\"type\":\"history\",\"room\":\"%s\",\"before\":\"%s\",\"limit\":%d}",
                         room, id, limit);
                break;
            case 5:
                snprintf(buf, sizeof(buf), "{\"type\":\"leave\",\"room\":\"%s\"}", room);
                break;
            case 6:
                snprintf(buf, sizeof(buf), "{\"type\":\"ping\"}");
                break;
            default:
                snprintf(buf, sizeof(buf), "{\"type\":\"auth\",\"token\":\"a.b.c\"}");
                break;
            }
            h_frame(h, c, buf);
            break;
        }
        }
    }
    for (int i = 0; i < NCONN; i++) {
        h_write(h, &h->conns[i]);
        check_frames(&h->conns[i]);
    }
    h_free(h);
    return 0;
}
