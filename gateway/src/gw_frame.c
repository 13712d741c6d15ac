/* gw_frame.c: parsing and validating client frames of protocol v1 (see gw_frame.h).
 *
 * jansson parses the frame (duplicate keys refused; \u0000 allowed through so that a NUL in a
 * text is reported as invalid_text rather than invalid_json), then each frame type checks its
 * own fields with the shared rules of chat_validate.h. jansson refuses raw invalid UTF-8
 * anywhere in the input; so that such a text still gets invalid_text, the input is parsed a
 * second time with every invalid byte replaced by the escape \u0000 and run through the same
 * checks; a lone surrogate escape (\ud800), which jansson refuses as bad syntax, is replaced by
 * \u0000 for a second pass in the same way. That second pass can only choose the error: such
 * a frame is never accepted. Error messages never echo client bytes except printable ASCII. */
#include "gw_frame.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_msgid.h"

#define GW_TOKEN_MAX 8192               /* bytes of a JWT in an auth frame */
#define GW_FRAME_SANITIZE_MAX (1 << 20) /* larger inputs with invalid UTF-8: invalid_json */

__attribute__((format(printf, 3, 4))) static int fail(gw_frame_error *err, const char *code,
                                                      const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return CHAT_EINVAL;
}

/* The string of a JSON string value with its length; false for other JSON types. */
static bool get_str(const json_t *v, const char **s, size_t *len)
{
    if (!json_is_string(v))
        return false;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return true;
}

static bool str_eq(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Copies s into out when it is short printable ASCII (safe to show); else "". */
static void printable(const char *s, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    if (len >= outlen)
        return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* A required room field, validated. */
static int need_room(json_t *root, gw_frame *out, gw_frame_error *err)
{
    json_t *v = json_object_get(root, "room");
    const char *s;
    size_t len;

    if (!v)
        return fail(err, GW_ERR_MISSING_FIELD, "field \"room\" is required");
    if (!get_str(v, &s, &len))
        return fail(err, GW_ERR_INVALID_FIELD, "field \"room\" must be a string");
    if (!chat_valid_room(s, len))
        return fail(err, GW_ERR_INVALID_ROOM,
                    "field \"room\" must match [A-Za-z0-9._:-]{1,%d} (not starting with dm:) or "
                    "be a direct room dm:<a>:<b>",
                    CHAT_ROOM_PLAIN_MAX);
    out->room = s;
    return 0;
}

static int parse_auth(json_t *root, gw_frame *out, gw_frame_error *err)
{
    json_t *v = json_object_get(root, "token");
    const char *s;
    size_t len;

    if (!v)
        return fail(err, GW_ERR_MISSING_FIELD, "field \"token\" is required");
    if (!get_str(v, &s, &len) || len == 0 || len > GW_TOKEN_MAX)
        return fail(err, GW_ERR_INVALID_FIELD,
                    "field \"token\" must be a non-empty string of at most %d bytes", GW_TOKEN_MAX);
    /* A compact JWT is printable ASCII; anything else cannot verify, so say so early. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e)
            return fail(err, GW_ERR_INVALID_FIELD, "field \"token\" must be a JWT in compact form");
    out->token = s;
    return 0;
}

static int parse_send(json_t *root, const gw_frame_limits *lim, gw_frame *out, gw_frame_error *err)
{
    int rc = need_room(root, out, err);
    if (rc)
        return rc;

    json_t *v = json_object_get(root, "text");
    const char *s;
    size_t len;
    if (!v)
        return fail(err, GW_ERR_MISSING_FIELD, "field \"text\" is required");
    if (!get_str(v, &s, &len))
        return fail(err, GW_ERR_INVALID_FIELD, "field \"text\" must be a string");
    if (len == 0)
        return fail(err, GW_ERR_INVALID_TEXT, "field \"text\" must not be empty");
    if (len > lim->max_text)
        return fail(err, GW_ERR_TEXT_TOO_LONG, "field \"text\" is longer than %zu bytes",
                    lim->max_text);
    if (!chat_valid_utf8_nonul(s, len))
        return fail(err, GW_ERR_INVALID_TEXT,
                    "field \"text\" must be valid UTF-8 without NUL characters");
    out->text = s;
    out->text_len = len;

    v = json_object_get(root, "cid");
    if (v && !json_is_null(v)) {
        if (!get_str(v, &s, &len) || !chat_valid_cid(s, len))
            return fail(err, GW_ERR_INVALID_FIELD,
                        "field \"cid\" must be 1 to %d printable ASCII characters", CHAT_CID_MAX);
    }
    return 0;
}

/* An optional message id field (before, after, since). */
static int opt_msgid(json_t *root, const char *name, const char **out, gw_frame_error *err)
{
    json_t *v = json_object_get(root, name);
    const char *s;
    size_t len;
    if (!v || json_is_null(v))
        return 0;
    if (!get_str(v, &s, &len) || len != CHAT_MSGID_LEN || chat_msgid_parse(s, NULL, NULL))
        return fail(err, GW_ERR_INVALID_FIELD, "field \"%s\" must be a message id", name);
    *out = s;
    return 0;
}

/* The optional "limit": 1..max_history, default_history when absent. */
static int opt_limit(json_t *root, const gw_frame_limits *lim, gw_frame *out, gw_frame_error *err)
{
    out->limit = lim->default_history;
    json_t *v = json_object_get(root, "limit");
    if (v && !json_is_null(v)) {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        if (n < 1 || n > lim->max_history)
            return fail(err, GW_ERR_INVALID_FIELD,
                        "field \"limit\" must be an integer from 1 to %d", lim->max_history);
        out->limit = (int)n;
    }
    return 0;
}

static int parse_history(json_t *root, const gw_frame_limits *lim, gw_frame *out,
                         gw_frame_error *err)
{
    int rc;
    if ((rc = need_room(root, out, err)) || (rc = opt_msgid(root, "before", &out->before, err)) ||
        (rc = opt_msgid(root, "after", &out->after, err)))
        return rc;
    if (out->before && out->after && strcmp(out->after, out->before) >= 0)
        return fail(err, GW_ERR_INVALID_FIELD, "field \"after\" must be older than \"before\"");
    return opt_limit(root, lim, out, err);
}

static int parse_join(json_t *root, const gw_frame_limits *lim, gw_frame *out, gw_frame_error *err)
{
    int rc;
    if ((rc = need_room(root, out, err)) || (rc = opt_msgid(root, "since", &out->since, err)))
        return rc;
    json_t *v = json_object_get(root, "epoch");
    const char *s;
    size_t len;
    if (v && !json_is_null(v)) {
        if (!get_str(v, &s, &len) || len == 0 || len > GW_EPOCH_MAX || !chat_valid_cid(s, len))
            return fail(err, GW_ERR_INVALID_FIELD,
                        "field \"epoch\" must be the epoch string of a welcome");
        out->epoch = s;
    }
    v = json_object_get(root, "presence");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return fail(err, GW_ERR_INVALID_FIELD, "field \"presence\" must be true or false");
        out->presence = json_is_true(v);
    }
    return opt_limit(root, lim, out, err);
}

/* typing: room and the boolean on, both required. */
static int parse_typing(json_t *root, gw_frame *out, gw_frame_error *err)
{
    int rc = need_room(root, out, err);
    if (rc)
        return rc;
    json_t *v = json_object_get(root, "on");
    if (!v)
        return fail(err, GW_ERR_MISSING_FIELD, "field \"on\" is required");
    if (!json_is_boolean(v))
        return fail(err, GW_ERR_INVALID_FIELD, "field \"on\" must be true or false");
    out->on = json_is_true(v);
    return 0;
}

/* read: room and upto (a message id), both required. */
static int parse_read(json_t *root, gw_frame *out, gw_frame_error *err)
{
    int rc = need_room(root, out, err);
    if (rc)
        return rc;
    if (!json_object_get(root, "upto") || json_is_null(json_object_get(root, "upto")))
        return fail(err, GW_ERR_MISSING_FIELD, "field \"upto\" is required");
    return opt_msgid(root, "upto", &out->upto, err);
}

/* Validates a parsed root. On failure the caller still owns root. */
static int parse_root(json_t *root, const gw_frame_limits *lim, gw_frame *out, gw_frame_error *err)
{
    const char *s;
    size_t len;

    if (!json_is_object(root))
        return fail(err, GW_ERR_INVALID_JSON, "a frame must be a JSON object");

    /* A usable cid is echoed in any error, whatever else is wrong with the frame. */
    json_t *v = json_object_get(root, "cid");
    if (get_str(v, &s, &len) && chat_valid_cid(s, len)) {
        memcpy(err->cid, s, len);
        err->cid[len] = '\0';
        out->cid = s;
    }

    v = json_object_get(root, "type");
    if (!v)
        return fail(err, GW_ERR_MISSING_FIELD, "field \"type\" is required");
    if (!get_str(v, &s, &len))
        return fail(err, GW_ERR_INVALID_FIELD, "field \"type\" must be a string");

    if (str_eq(s, len, "auth")) {
        out->type = GW_FRAME_AUTH;
        return parse_auth(root, out, err);
    }
    if (str_eq(s, len, "refresh")) {
        out->type = GW_FRAME_REFRESH;
        return parse_auth(root, out, err);
    }
    if (str_eq(s, len, "join")) {
        out->type = GW_FRAME_JOIN;
        return parse_join(root, lim, out, err);
    }
    if (str_eq(s, len, "leave")) {
        out->type = GW_FRAME_LEAVE;
        return need_room(root, out, err);
    }
    if (str_eq(s, len, "send")) {
        out->type = GW_FRAME_SEND;
        return parse_send(root, lim, out, err);
    }
    if (str_eq(s, len, "history")) {
        out->type = GW_FRAME_HISTORY;
        return parse_history(root, lim, out, err);
    }
    if (str_eq(s, len, "ping")) {
        out->type = GW_FRAME_PING;
        return 0;
    }
    if (str_eq(s, len, "members")) {
        out->type = GW_FRAME_MEMBERS;
        return need_room(root, out, err);
    }
    if (str_eq(s, len, "typing")) {
        out->type = GW_FRAME_TYPING;
        return parse_typing(root, out, err);
    }
    if (str_eq(s, len, "read")) {
        out->type = GW_FRAME_READ;
        return parse_read(root, out, err);
    }
    if (str_eq(s, len, "rooms")) {
        out->type = GW_FRAME_ROOMS;
        return 0;
    }

    char shown[33];
    printable(s, len, shown, sizeof(shown));
    if (shown[0])
        return fail(err, GW_ERR_UNKNOWN_TYPE, "unknown frame type \"%s\"", shown);
    return fail(err, GW_ERR_UNKNOWN_TYPE, "unknown frame type");
}

/* Length of the valid UTF-8 sequence starting at p[0], or 0 when p[0] does not start one.
 * ASCII (NUL included: JSON has its own rule for raw control bytes) is always 1. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    size_t n;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (n > avail || !chat_valid_utf8_nonul((const char *)p, n))
        return 0;
    return n;
}

/* The input with each byte that is not part of valid UTF-8 replaced by the six characters
 * \u0000. malloc'd (caller frees) or NULL. */
static char *sanitize_utf8(const char *data, size_t len, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)data;
    char *buf = malloc(len * 6 + 1);
    size_t o = 0;

    if (!buf)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (n) {
            memcpy(buf + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\\u0000", 6);
            o += 6;
            i++;
        }
    }
    *outlen = o;
    return buf;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The input with each escape of a lone UTF-16 surrogate (\ud800 without its pair: not Unicode
 * text, and refused by jansson as a syntax error) replaced by \u0000, which has the same
 * length. malloc'd (caller frees) or NULL. */
static char *sanitize_surrogates(const char *data, size_t len, size_t *outlen)
{
    char *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    memcpy(buf, data, len);
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\\')
            continue;
        if (buf[i + 1] != 'u' || i + 6 > len) {
            i++; /* an escaped character, perhaps a backslash: not the start of another */
            continue;
        }
        int v = hex4(buf + i + 2), lo = -1;
        if (v >= 0xd800 && v <= 0xdbff && i + 12 <= len && buf[i + 6] == '\\' && buf[i + 7] == 'u')
            lo = hex4(buf + i + 8);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            i += 11; /* a valid pair */
            continue;
        }
        if (v >= 0xd800 && v <= 0xdfff)
            memcpy(buf + i, "\\u0000", 6);
        i += 5;
    }
    *outlen = len;
    return buf;
}

/* A frame jansson refused for invalid UTF-8 or a lone surrogate escape: the input parsed again
 * with what jansson refused replaced by \u0000 (clean, taken over), so that the error names the
 * field it is in (invalid_text in a text). Never returns 0. */
static int parse_cleaned(char *clean, size_t clean_len, const gw_frame_limits *lim, gw_frame *out,
                         gw_frame_error *err)
{
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    if (clean)
        root = json_loadb(clean, clean_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        rc = fail(err, GW_ERR_INVALID_JSON, "frame is not valid UTF-8 JSON");
        goto out;
    }
    rc = parse_root(root, lim, out, err);
    if (rc == 0) /* the bad bytes were in a key or an ignored field */
        rc = fail(err, GW_ERR_INVALID_JSON, "frame is not valid UTF-8 JSON");
out:
    json_decref(root);
    free(clean);
    memset(out, 0, sizeof(*out));
    return rc;
}

int gw_frame_parse(const char *data, size_t len, const gw_frame_limits *lim, gw_frame *out,
                   gw_frame_error *err)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (!data)
        len = 0;

    root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        switch (json_error_code(&jerr)) {
        case json_error_invalid_utf8: {
            size_t clean_len = 0;
            char *clean =
                len <= GW_FRAME_SANITIZE_MAX ? sanitize_utf8(data, len, &clean_len) : NULL;
            return parse_cleaned(clean, clean_len, lim, out, err);
        }
        case json_error_duplicate_key:
            return fail(err, GW_ERR_INVALID_JSON, "frame has a duplicate key");
        case json_error_out_of_memory:
            return fail(err, GW_ERR_INTERNAL, "out of memory");
        default:
            /* jansson 2.14 reports a lone surrogate escape as "invalid Unicode '\uD800'" */
            if (strncmp(jerr.text, "invalid Unicode", 15) == 0 && len <= GW_FRAME_SANITIZE_MAX) {
                size_t clean_len = 0;
                char *clean = sanitize_surrogates(data, len, &clean_len);
                return parse_cleaned(clean, clean_len, lim, out, err);
            }
            return fail(err, GW_ERR_INVALID_JSON, "frame is not valid JSON (at byte %d)",
                        jerr.position);
        }
    }
    rc = parse_root(root, lim, out, err);
    if (rc) {
        json_decref(root);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    out->json_ = root;
    return 0;
}

void gw_frame_free(gw_frame *f)
{
    if (!f)
        return;
    json_decref((json_t *)f->json_);
    memset(f, 0, sizeof(*f));
}
