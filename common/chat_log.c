/* chat_log.c: one-line log records to stderr (see chat_log.h). The component name, the minimum
 * level and the format are the only process-wide state of libchatcore: they are set once by
 * chat_log_init() and chat_log_set_format() before threads start and only read afterwards.
 * Each record is formatted into a bounded buffer (longer messages are cut and end in "...") and
 * written with one write(2), so lines from different threads never interleave. In text lines
 * control characters of the message are replaced by spaces so a value from a client cannot
 * forge a log line; JSON lines escape them (and replace invalid UTF-8), so every line parses. */
#define _POSIX_C_SOURCE 200809L
#include "chat_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_JSON_MAX 8192 /* a JSON line: the message and the fields, escaped */
#define LOG_COMPONENT_MAX 96
#define LOG_FIELDS_MAX 16
#define LOG_FIELD_VALUE_MAX 256

static struct {
    char component[LOG_COMPONENT_MAX];
    enum chat_log_level min;
    bool json;
} log_state = {"chat", CHAT_LOG_INFO, false};

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

int chat_log_init(const char *component, const char *level)
{
    int found = -1;

    if (level) {
        for (int i = 0; i < 4; i++)
            if (strcasecmp(level, level_names[i]) == 0)
                found = i;
        if (found < 0)
            return -EINVAL;
    }
    if (component && component[0])
        snprintf(log_state.component, sizeof(log_state.component), "%s", component);
    if (found >= 0)
        log_state.min = (enum chat_log_level)found;
    return 0;
}

int chat_log_set_format(const char *format)
{
    if (!format)
        return 0;
    if (strcasecmp(format, "text") == 0)
        log_state.json = false;
    else if (strcasecmp(format, "json") == 0)
        log_state.json = true;
    else
        return -EINVAL;
    return 0;
}

bool chat_log_enabled(enum chat_log_level level)
{
    return level >= log_state.min;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

size_t chat_log_json_escape(char *out, size_t cap, const char *in, size_t len, size_t *used)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, i = 0;

    if (cap == 0) {
        if (used)
            *used = 0;
        return 0;
    }
    while (i < len) {
        char esc[8];
        const char *piece = esc;
        size_t plen, adv = 1;
        unsigned char c = p[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            plen = 6;
        } else if (c < 0x80) {
            piece = (const char *)p + i;
            plen = 1;
        } else if ((adv = utf8_len(p + i, len - i)) > 0) {
            piece = (const char *)p + i;
            plen = adv;
        } else {
            memcpy(esc, "\\ufffd", 6); /* an invalid byte: the replacement character */
            plen = 6;
            adv = 1;
        }
        if (o + plen > cap - 1)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += adv;
    }
    out[o] = '\0';
    if (used)
        *used = i;
    return o;
}

/* Appends s to line (bounded by LOG_JSON_MAX, keeping room for "}\n"); false when it did not
 * fit whole. */
static bool put(char *line, size_t *n, const char *s, size_t len)
{
    if (*n + len > LOG_JSON_MAX - 3)
        return false;
    memcpy(line + *n, s, len);
    *n += len;
    return true;
}

/* Appends "value" (escaped, at most max input bytes, cut with "..." when longer or when the
 * line is full). */
static void put_string(char *line, size_t *n, const char *s, size_t len, size_t max)
{
    size_t room = LOG_JSON_MAX - 3 - *n, used = 0;
    bool cut = len > max;

    if (room < 6) /* "", and a little */
        return;
    if (cut)
        len = max;
    line[(*n)++] = '"';
    room -= 1 + 1 + 3; /* the closing quote and a possible "..." */
    *n += chat_log_json_escape(line + *n, room + 1, s, len, &used);
    if (cut || used < len) {
        memcpy(line + *n, "...", 3);
        *n += 3;
    }
    line[(*n)++] = '"';
}

static bool reserved(const char *key)
{
    static const char *const names[] = {"time", "level", "component", "message"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

static void write_all(const char *line, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        off += (size_t)w;
    }
}

static bool b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Length of the JWT at p (three base64url segments joined by dots, the first starting with
 * "eyJ", the JSON header's "{\"", the last at least 16 characters), or 0. */
static size_t jwt_len(const char *p, size_t n)
{
    size_t i = 0, seg = 0, seglen = 0;
    if (n < 3 || memcmp(p, "eyJ", 3) != 0)
        return 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (b64url_char(c)) {
            seglen++;
        } else if (c == '.' && seglen > 0 && seg < 2) {
            seg++;
            seglen = 0;
        } else
            break;
    }
    return seg == 2 && seglen >= 16 ? i : 0;
}

/* Copies msg into out (cap bytes, NUL-terminated) with what must never reach a log replaced:
 * a JWT by "[jwt]", and the password of a URI's user:password@ by "***". Defence in depth:
 * call sites do not log these in the first place. Returns the length written. */
static size_t redact(char *out, size_t cap, const char *msg, size_t len)
{
    size_t o = 0, i = 0;
    while (i < len && o + 1 < cap) {
        size_t j = jwt_len(msg + i, len - i);
        if (j > 0 && (i == 0 || !b64url_char((unsigned char)msg[i - 1]))) {
            static const char mark[] = "[jwt]";
            size_t k = sizeof(mark) - 1 < cap - 1 - o ? sizeof(mark) - 1 : cap - 1 - o;
            memcpy(out + o, mark, k);
            o += k;
            i += j;
            continue;
        }
        if (i + 3 <= len && memcmp(msg + i, "://", 3) == 0) {
            /* userinfo: up to an '@' before any '/', '?', '#' or space */
            size_t at = i + 3, colon = 0;
            while (at < len && msg[at] != '@' && msg[at] != '/' && msg[at] != '?' &&
                   msg[at] != '#' && msg[at] != ' ') {
                if (msg[at] == ':' && !colon)
                    colon = at;
                at++;
            }
            if (at < len && msg[at] == '@' && colon) {
                size_t keep = colon + 1 - i; /* "://user:" */
                if (o + keep + 3 >= cap)
                    break;
                memcpy(out + o, msg + i, keep);
                o += keep;
                memcpy(out + o, "***", 3);
                o += 3;
                i = at; /* from the '@' on */
                continue;
            }
        }
        out[o++] = msg[i++];
    }
    out[o] = '\0';
    return o;
}

static void emit_text(const char *stamp, enum chat_log_level level, const char *msg, size_t mlen)
{
    char line[LOG_LINE_MAX];
    size_t n, head;
    int r =
        snprintf(line, sizeof(line), "%s %s %s: ", stamp, level_tags[level], log_state.component);

    if (r < 0)
        return;
    head = (size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1;
    n = head + mlen;
    if (n > sizeof(line) - 2) { /* cut: keep room for the newline */
        n = sizeof(line) - 2;
        memcpy(line + n - 3, "...", 3);
        mlen = n - 3 - head;
    }
    memcpy(line + head, msg, mlen);
    for (size_t i = head; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = ' ';
    }
    line[n++] = '\n';
    write_all(line, n);
}

static void emit_json(const char *stamp, enum chat_log_level level, const char *msg, size_t mlen,
                      const chat_log_field *fields, size_t nfields)
{
    char line[LOG_JSON_MAX];
    size_t n = 0;
    int r = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"component\":", stamp,
                     level_names[level]);

    if (r < 0 || (size_t)r >= sizeof(line))
        return;
    n = (size_t)r;
    put_string(line, &n, log_state.component, strlen(log_state.component), LOG_COMPONENT_MAX);
    put(line, &n, ",\"message\":", 11);
    /* the message may take what the fields leave: at most LOG_LINE_MAX input bytes */
    put_string(line, &n, msg, mlen, LOG_LINE_MAX);
    for (size_t i = 0; i < nfields && i < LOG_FIELDS_MAX; i++) {
        const chat_log_field *f = &fields[i];
        char num[32];
        size_t mark = n;

        if (!f->key || !f->key[0] || reserved(f->key))
            continue;
        if (!put(line, &n, ",", 1)) {
            n = mark;
            break;
        }
        put_string(line, &n, f->key, strlen(f->key), 64);
        if (!put(line, &n, ":", 1)) {
            n = mark;
            break;
        }
        if (f->is_num) {
            r = snprintf(num, sizeof(num), "%lld", f->num);
            if (!put(line, &n, num, (size_t)r)) {
                n = mark;
                break;
            }
        } else if (!f->str) {
            if (!put(line, &n, "null", 4)) {
                n = mark;
                break;
            }
        } else {
            char red[LOG_FIELD_VALUE_MAX + 64];
            size_t before = n, sl = strlen(f->str);
            sl = redact(red, sizeof(red), f->str, sl < sizeof(red) - 1 ? sl : sizeof(red) - 1);
            put_string(line, &n, red, sl, LOG_FIELD_VALUE_MAX);
            if (n == before) { /* the line is full */
                n = mark;
                break;
            }
        }
    }
    line[n++] = '}';
    line[n++] = '\n';
    write_all(line, n);
}

static void vlog(enum chat_log_level level, const chat_log_field *fields, size_t nfields,
                 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void vlog(enum chat_log_level level, const chat_log_field *fields, size_t nfields,
                 const char *fmt, va_list ap)
{
    char raw[LOG_LINE_MAX], msg[LOG_LINE_MAX], stamp[128];
    struct timespec ts;
    struct tm tm;
    size_t mlen;
    int r;

    if ((int)level < CHAT_LOG_DEBUG || level > CHAT_LOG_ERROR)
        level = CHAT_LOG_ERROR;
    if (level < log_state.min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    r = vsnprintf(raw, sizeof(raw), fmt, ap);
    if (r < 0)
        r = 0;
    mlen = (size_t)r;
    if (mlen > sizeof(raw) - 1) { /* cut */
        mlen = sizeof(raw) - 1;
        memcpy(raw + mlen - 3, "...", 3);
    }
    mlen = redact(msg, sizeof(msg), raw, mlen);
    if (log_state.json)
        emit_json(stamp, level, msg, mlen, fields, nfields);
    else
        emit_text(stamp, level, msg, mlen);
}

void chat_log(enum chat_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void chat_log_kv(enum chat_log_level level, const chat_log_field *fields, size_t nfields,
                 const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, fields, nfields, fmt, ap);
    va_end(ap);
}
