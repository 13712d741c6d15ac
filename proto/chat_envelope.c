/* chat_envelope.c: encode, decode and validate chat.Envelope, the Kafka record value.
 * The protobuf wire work is done by the protobuf-c generated code (chat.pb-c.h); this file
 * maps it to the plain C struct of chat_envelope.h and enforces the field rules, so nothing
 * a gateway would not have produced gets past chat_envelope_decode(). The text fields are
 * `bytes` in chat.proto (see there) so their exact lengths are known here. */
#include "chat_envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat.pb-c.h"
#include "chat_error.h"
#include "chat_validate.h"

static size_t opt_len(const char *s)
{
    return s ? strlen(s) : 0;
}

static size_t text_len_of(const chat_envelope *e)
{
    if (!e->text)
        return 0;
    return e->text_len ? e->text_len : strlen(e->text);
}

/* Validates one field given as (pointer, length); returns 0 or CHAT_EINVAL. */
static int check_field(const char *what, const char *s, size_t len, size_t min, size_t max,
                       char *err, size_t errlen)
{
    if (len < min) {
        chat_errf(err, errlen, "%s is empty", what);
        return CHAT_EINVAL;
    }
    if (len > max) {
        chat_errf(err, errlen, "%s is %zu bytes, more than %zu", what, len, max);
        return CHAT_EINVAL;
    }
    if (len > 0 && !chat_valid_utf8_nonul(s, len)) {
        chat_errf(err, errlen, "%s is not valid UTF-8 or contains NUL", what);
        return CHAT_EINVAL;
    }
    return 0;
}

int chat_envelope_validate(const chat_envelope *e, size_t max_text, char *err, size_t errlen)
{
    size_t tl;
    int rc;

    if (!e) {
        chat_errf(err, errlen, "no envelope");
        return CHAT_EINVAL;
    }
    if (e->version != CHAT_ENVELOPE_VERSION) {
        chat_errf(err, errlen, "unknown envelope version %" PRIu32, e->version);
        return CHAT_EINVAL;
    }
    if (!e->room || !chat_valid_room(e->room, strlen(e->room))) {
        chat_errf(err, errlen, "invalid room name");
        return CHAT_EINVAL;
    }
    if (!e->from) {
        chat_errf(err, errlen, "from is empty");
        return CHAT_EINVAL;
    }
    if ((rc = check_field("from", e->from, strlen(e->from), 1, CHAT_USER_MAX, err, errlen)))
        return rc;
    if ((rc = check_field("name", e->name, opt_len(e->name), 0, CHAT_USER_MAX, err, errlen)))
        return rc;
    if (max_text > CHAT_TEXT_HARD_MAX)
        max_text = CHAT_TEXT_HARD_MAX;
    tl = text_len_of(e);
    if ((rc = check_field("text", e->text, tl, 1, max_text, err, errlen)))
        return rc;
    if (e->ts_ms < 0) {
        chat_errf(err, errlen, "negative timestamp");
        return CHAT_EINVAL;
    }
    if (opt_len(e->cid) > 0 && !chat_valid_cid(e->cid, strlen(e->cid))) {
        chat_errf(err, errlen, "invalid cid");
        return CHAT_EINVAL;
    }
    return 0;
}

static ProtobufCBinaryData bin(const char *s, size_t len)
{
    ProtobufCBinaryData b = {.len = len, .data = (uint8_t *)(uintptr_t)s};
    return b;
}

int chat_envelope_encode(const chat_envelope *e, uint8_t **out, size_t *outlen, char *err,
                         size_t errlen)
{
    Chat__Envelope m = CHAT__ENVELOPE__INIT;
    uint8_t *buf;
    size_t n;
    int rc;

    if (!out || !outlen) {
        chat_errf(err, errlen, "no output buffer");
        return CHAT_EINVAL;
    }
    *out = NULL;
    *outlen = 0;
    if ((rc = chat_envelope_validate(e, CHAT_TEXT_HARD_MAX, err, errlen)))
        return rc;
    m.version = e->version;
    m.room = bin(e->room, strlen(e->room));
    m.from = bin(e->from, strlen(e->from));
    m.name = bin(e->name, opt_len(e->name));
    m.text = bin(e->text, text_len_of(e));
    m.ts_ms = e->ts_ms;
    m.cid = bin(e->cid, opt_len(e->cid));
    n = chat__envelope__get_packed_size(&m);
    buf = malloc(n ? n : 1);
    if (!buf) {
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (chat__envelope__pack(&m, buf) != n) {
        free(buf);
        chat_errf(err, errlen, "protobuf pack size mismatch");
        return CHAT_EINVAL;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

/* malloc'd NUL-terminated copy of a bytes field (may be empty). */
static char *dup_bin(const ProtobufCBinaryData *b)
{
    char *s = malloc(b->len + 1);

    if (!s)
        return NULL;
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    return s;
}

int chat_envelope_decode(const uint8_t *buf, size_t len, chat_envelope *out, char *err,
                         size_t errlen)
{
    Chat__Envelope *m = NULL;
    chat_envelope e = {0};
    int rc = 0;

    if (!out) {
        chat_errf(err, errlen, "no output envelope");
        return CHAT_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (!buf && len) {
        chat_errf(err, errlen, "no input");
        return CHAT_EDECODE;
    }
    m = chat__envelope__unpack(NULL, len, buf);
    if (!m) {
        chat_errf(err, errlen, "not a valid protobuf Envelope");
        rc = CHAT_EDECODE;
        goto out;
    }
    if (m->version != CHAT_ENVELOPE_VERSION) {
        chat_errf(err, errlen, "unknown envelope version %" PRIu32, m->version);
        rc = CHAT_EVERSION;
        goto out;
    }
    /* Validate lengths and content on the raw bytes first: a NUL inside a field would be
     * hidden once the value is a C string. */
    if (!chat_valid_room((const char *)m->room.data, m->room.len)) {
        chat_errf(err, errlen, "invalid room name");
        rc = CHAT_EINVAL;
        goto out;
    }
    if ((rc = check_field("from", (const char *)m->from.data, m->from.len, 1, CHAT_USER_MAX, err,
                          errlen)) ||
        (rc = check_field("name", (const char *)m->name.data, m->name.len, 0, CHAT_USER_MAX, err,
                          errlen)) ||
        (rc = check_field("text", (const char *)m->text.data, m->text.len, 1, CHAT_TEXT_HARD_MAX,
                          err, errlen)))
        goto out;
    if (m->cid.len > 0 && !chat_valid_cid((const char *)m->cid.data, m->cid.len)) {
        chat_errf(err, errlen, "invalid cid");
        rc = CHAT_EINVAL;
        goto out;
    }
    if (m->ts_ms < 0) {
        chat_errf(err, errlen, "negative timestamp");
        rc = CHAT_EINVAL;
        goto out;
    }
    e.version = m->version;
    e.ts_ms = m->ts_ms;
    e.text_len = m->text.len;
    e.room = dup_bin(&m->room);
    e.from = dup_bin(&m->from);
    e.name = dup_bin(&m->name);
    e.text = dup_bin(&m->text);
    e.cid = dup_bin(&m->cid);
    if (!e.room || !e.from || !e.name || !e.text || !e.cid) {
        chat_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    *out = e;
    memset(&e, 0, sizeof(e));
out:
    chat_envelope_clear(&e);
    if (m)
        chat__envelope__free_unpacked(m, NULL);
    return rc;
}

void chat_envelope_clear(chat_envelope *e)
{
    if (!e)
        return;
    free(e->room);
    free(e->from);
    free(e->name);
    free(e->text);
    free(e->cid);
    memset(e, 0, sizeof(*e));
}

/* Copy of s (NULL becomes ""), or of len bytes when len is given. */
static char *dup_str(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (!d)
        return NULL;
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

int chat_envelope_copy(chat_envelope *dst, const chat_envelope *src)
{
    chat_envelope e = {0};

    if (!dst || !src)
        return -EINVAL;
    e.version = src->version;
    e.ts_ms = src->ts_ms;
    e.text_len = text_len_of(src);
    e.room = dup_str(src->room, opt_len(src->room));
    e.from = dup_str(src->from, opt_len(src->from));
    e.name = dup_str(src->name, opt_len(src->name));
    e.text = dup_str(src->text, e.text_len);
    e.cid = dup_str(src->cid, opt_len(src->cid));
    if (!e.room || !e.from || !e.name || !e.text || !e.cid) {
        chat_envelope_clear(&e);
        return -ENOMEM;
    }
    *dst = e;
    return 0;
}
