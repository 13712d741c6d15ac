/* test_chat_envelope.c: the Envelope codec round-trips every field (unicode included) and the
 * decoder refuses every malformed or invalid input: bytes that are not protobuf, truncated
 * records, unknown versions, bad rooms, empty or over-long fields, NUL and invalid UTF-8. The
 * invalid records are built with the generated protobuf-c code, bypassing our encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.pb-c.h"
#include "chat_envelope.h"
#include "chat_error.h"
#include "chat_validate.h"
#include "check.h"

static chat_envelope sample(void)
{
    chat_envelope e = {0};
    e.version = CHAT_ENVELOPE_VERSION;
    e.room = "general";
    e.from = "alice";
    e.name = "Alice Ä";
    e.text = "héllo wörld \xf0\x9f\x91\x8b \xe4\xb8\xad\xe6\x96\x87";
    e.ts_ms = 1764072000123LL;
    e.cid = "c-1";
    return e;
}

static void test_round_trip(void)
{
    chat_envelope in = sample(), out;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[128];

    CHECK(chat_envelope_encode(&in, &buf, &len, err, sizeof(err)) == 0);
    CHECK(buf != NULL && len > 0);
    CHECK(chat_envelope_decode(buf, len, &out, err, sizeof(err)) == 0);
    CHECK(out.version == CHAT_ENVELOPE_VERSION);
    CHECK_STR(out.room, "general");
    CHECK_STR(out.from, "alice");
    CHECK_STR(out.name, "Alice Ä");
    CHECK_STR(out.text, in.text);
    CHECK(out.text_len == strlen(in.text));
    CHECK(out.ts_ms == 1764072000123LL);
    CHECK_STR(out.cid, "c-1");

    chat_envelope copy;
    CHECK(chat_envelope_copy(&copy, &out) == 0);
    CHECK(copy.text != out.text);
    CHECK_STR(copy.text, out.text);
    CHECK(copy.text_len == out.text_len);
    CHECK_STR(copy.room, "general");
    chat_envelope_clear(&copy);
    CHECK(copy.room == NULL);

    chat_envelope_clear(&out);
    CHECK(out.room == NULL && out.text == NULL && out.text_len == 0);
    chat_envelope_clear(&out); /* safe twice */
    free(buf);
}

static void test_optional_fields(void)
{
    chat_envelope in = sample(), out;
    uint8_t *buf = NULL;
    size_t len = 0;

    in.name = NULL;
    in.cid = NULL;
    CHECK(chat_envelope_encode(&in, &buf, &len, NULL, 0) == 0);
    CHECK(chat_envelope_decode(buf, len, &out, NULL, 0) == 0);
    CHECK_STR(out.name, "");
    CHECK_STR(out.cid, "");
    chat_envelope_clear(&out);
    free(buf);
}

static void test_text_len_explicit(void)
{
    /* text_len bounds the text: only the first 3 bytes are sent. */
    chat_envelope in = sample(), out;
    uint8_t *buf = NULL;
    size_t len = 0;

    in.text = "abcdef";
    in.text_len = 3;
    CHECK(chat_envelope_encode(&in, &buf, &len, NULL, 0) == 0);
    CHECK(chat_envelope_decode(buf, len, &out, NULL, 0) == 0);
    CHECK_STR(out.text, "abc");
    CHECK(out.text_len == 3);
    chat_envelope_clear(&out);
    free(buf);
}

static void test_max_text(void)
{
    chat_envelope in = sample(), out;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *big = malloc(CHAT_TEXT_HARD_MAX + 2);
    char err[128];

    memset(big, 'x', CHAT_TEXT_HARD_MAX + 1);
    big[CHAT_TEXT_HARD_MAX] = '\0';
    in.text = big;
    CHECK(chat_envelope_encode(&in, &buf, &len, err, sizeof(err)) == 0);
    CHECK(chat_envelope_decode(buf, len, &out, err, sizeof(err)) == 0);
    CHECK(out.text_len == CHAT_TEXT_HARD_MAX);
    chat_envelope_clear(&out);
    free(buf);
    buf = NULL;

    big[CHAT_TEXT_HARD_MAX] = 'x';
    big[CHAT_TEXT_HARD_MAX + 1] = '\0';
    CHECK(chat_envelope_encode(&in, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(buf == NULL);
    CHECK(strstr(err, "text") != NULL);

    /* validate with a configured, smaller limit */
    in.text = "12345";
    CHECK(chat_envelope_validate(&in, 5, NULL, 0) == 0);
    CHECK(chat_envelope_validate(&in, 4, err, sizeof(err)) == CHAT_EINVAL);
    free(big);
}

static void test_encode_refuses_invalid(void)
{
    chat_envelope e;
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    char err[128];

    e = sample();
    e.room = "bad room";
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(buf == NULL && len == 0);
    e = sample();
    e.version = 2;
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.from = "";
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.from = NULL;
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.text = "";
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.text = "a\xc0\x80";
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.text = "a\0b";
    e.text_len = 3;
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.cid = "c\x01";
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    e = sample();
    e.ts_ms = -1;
    CHECK(chat_envelope_encode(&e, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(chat_envelope_encode(NULL, &buf, &len, err, sizeof(err)) == CHAT_EINVAL);
}

/* Packs a raw protobuf Envelope (bypassing our validation) and returns what decode says. */
static int decode_raw(const Chat__Envelope *m)
{
    size_t n = chat__envelope__get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    chat_envelope out;
    char err[128] = "";
    int rc;

    chat__envelope__pack(m, buf);
    memset(&out, 0x55, sizeof(out));
    rc = chat_envelope_decode(buf, n, &out, err, sizeof(err));
    if (rc == 0)
        chat_envelope_clear(&out);
    else
        CHECK(out.room == NULL && out.text == NULL && err[0] != '\0');
    free(buf);
    return rc;
}

static ProtobufCBinaryData B(const char *s)
{
    ProtobufCBinaryData b = {strlen(s), (uint8_t *)(uintptr_t)s};
    return b;
}

static ProtobufCBinaryData BL(const char *s, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)s};
    return b;
}

static Chat__Envelope raw_ok(void)
{
    Chat__Envelope m = CHAT__ENVELOPE__INIT;
    m.version = 1;
    m.room = B("general");
    m.from = B("alice");
    m.text = B("hi");
    m.ts_ms = 1;
    return m;
}

static void test_decode_refuses(void)
{
    Chat__Envelope m;
    char big[CHAT_USER_MAX + 2];

    m = raw_ok();
    CHECK(decode_raw(&m) == 0); /* the baseline is valid */

    m = raw_ok();
    m.version = 0;
    CHECK(decode_raw(&m) == CHAT_EVERSION);
    m.version = 2;
    CHECK(decode_raw(&m) == CHAT_EVERSION);

    m = raw_ok();
    m.room = B("");
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.room = B("room/x");
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.room = BL("gen\0ral", 7);
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.room = B("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 65 */
    CHECK(decode_raw(&m) == CHAT_EINVAL);

    m = raw_ok();
    m.from = B("");
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    memset(big, 'u', sizeof(big));
    m.from = BL(big, CHAT_USER_MAX);
    CHECK(decode_raw(&m) == 0);
    m.from = BL(big, CHAT_USER_MAX + 1);
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.from = BL("ali\0ce", 6);
    CHECK(decode_raw(&m) == CHAT_EINVAL);

    m = raw_ok();
    m.name = BL(big, CHAT_USER_MAX + 1);
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.name = B("\xff");
    CHECK(decode_raw(&m) == CHAT_EINVAL);

    m = raw_ok();
    m.text = B("");
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.text = BL("hi\0there", 8);
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.text = B("\xed\xa0\x80"); /* surrogate */
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.text = B("abc\xe2\x82"); /* truncated sequence */
    CHECK(decode_raw(&m) == CHAT_EINVAL);

    m = raw_ok();
    m.cid = B("has\ttab");
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.cid = B("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 65 */
    CHECK(decode_raw(&m) == CHAT_EINVAL);
    m.cid = B("ok-cid");
    CHECK(decode_raw(&m) == 0);

    m = raw_ok();
    m.ts_ms = -5;
    CHECK(decode_raw(&m) == CHAT_EINVAL);
}

static void test_decode_garbage(void)
{
    Chat__Envelope m = raw_ok();
    size_t n;
    uint8_t *buf;

    m.ts_ms = 0; /* not on the wire: the text (required) is the last field */
    n = chat__envelope__get_packed_size(&m);
    buf = malloc(n);
    chat_envelope out;
    char err[128];
    int truncated_refused = 0;

    chat__envelope__pack(&m, buf);
    /* every proper prefix is refused (decode error, or a missing required field) */
    for (size_t k = 0; k < n; k++) {
        uint8_t *p = malloc(k ? k : 1);
        memcpy(p, buf, k);
        if (chat_envelope_decode(p, k, &out, err, sizeof(err)) != 0)
            truncated_refused++;
        else
            chat_envelope_clear(&out);
        free(p);
    }
    CHECK(truncated_refused == (int)n);

    static const uint8_t junk1[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t junk2[] = {0x12, 0x7f, 'a'};         /* length past the end */
    static const uint8_t junk3[] = {0x0f};                    /* wire type 7 */
    static const uint8_t junk4[] = {'h', 'e', 'l', 'l', 'o'}; /* text, not protobuf */
    CHECK(chat_envelope_decode(junk1, sizeof(junk1), &out, err, sizeof(err)) == CHAT_EDECODE);
    CHECK(chat_envelope_decode(junk2, sizeof(junk2), &out, err, sizeof(err)) == CHAT_EDECODE);
    CHECK(chat_envelope_decode(junk3, sizeof(junk3), &out, err, sizeof(err)) == CHAT_EDECODE);
    CHECK(chat_envelope_decode(junk4, sizeof(junk4), &out, err, sizeof(err)) != 0);
    CHECK(chat_envelope_decode(NULL, 0, &out, err, sizeof(err)) == CHAT_EVERSION);
    CHECK(chat_envelope_decode(NULL, 5, &out, err, sizeof(err)) == CHAT_EDECODE);
    CHECK(chat_envelope_decode(buf, n, NULL, err, sizeof(err)) == CHAT_EINVAL);

    /* a record with an unknown extra field is still accepted (forward compatible) */
    uint8_t *ext = malloc(n + 3);
    memcpy(ext, buf, n);
    ext[n] = 0x48; /* field 9, varint */
    ext[n + 1] = 0x01;
    CHECK(chat_envelope_decode(ext, n + 2, &out, err, sizeof(err)) == 0);
    chat_envelope_clear(&out);
    free(ext);
    free(buf);
}

/* Field 8 was `bytes gateway` (now reserved): records written before it was dropped still
 * decode, with every other field intact, whatever the old value held. */
static void test_decode_old_gateway_field(void)
{
    Chat__Envelope m = raw_ok();
    size_t n = chat__envelope__get_packed_size(&m);
    uint8_t *buf = malloc(n + 2 + 200);
    chat_envelope out;
    char err[128];

    chat__envelope__pack(&m, buf);
    buf[n] = 0x42; /* field 8, length-delimited */
    buf[n + 1] = 4;
    memcpy(buf + n + 2, "gw-1", 4);
    CHECK(chat_envelope_decode(buf, n + 6, &out, err, sizeof(err)) == 0);
    CHECK_STR(out.room, "general");
    CHECK_STR(out.from, "alice");
    CHECK_STR(out.text, "hi");
    CHECK(out.ts_ms == 1);
    chat_envelope_clear(&out);

    /* no longer checked: an over-long value (once refused) is skipped like any unknown field */
    buf[n + 1] = 129;
    buf[n + 2] = 1; /* the length as a two-byte varint: 129 */
    memset(buf + n + 3, 'g', 129);
    CHECK(chat_envelope_decode(buf, n + 3 + 129, &out, err, sizeof(err)) == 0);
    CHECK_STR(out.text, "hi");
    chat_envelope_clear(&out);
    free(buf);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_optional_fields);
    RUN(test_text_len_explicit);
    RUN(test_max_text);
    RUN(test_encode_refuses_invalid);
    RUN(test_decode_refuses);
    RUN(test_decode_garbage);
    RUN(test_decode_old_gateway_field);
    return check_summary();
}
