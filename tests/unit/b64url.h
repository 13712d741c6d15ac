/* b64url.h: base64url without padding (RFC 4648 section 5), for tests and fuzzers that craft
 * JWTs by hand. out needs (n + 2) / 3 * 4 + 1 bytes; returns the length written (a NUL
 * follows). */
#ifndef TEST_B64URL_H
#define TEST_B64URL_H

#include <stddef.h>
#include <stdint.h>

static inline size_t b64url_encode(const void *data, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *in = data;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = tab[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
    return o;
}

#endif
