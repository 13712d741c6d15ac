/* gw_b64.h: base64url without padding (RFC 4648 section 5, as JWTs and JWKs use it).
 * Pure functions; any thread. */
#ifndef GW_B64_H
#define GW_B64_H

#include <stddef.h>

/* Decodes len bytes of unpadded base64url into a malloc'd buffer with a NUL after the data
 * (owned by the caller, free()), its length in *outlen. NULL when the input is not canonical
 * base64url (a character outside the alphabet, a length of 4n+1, non-zero leftover bits) or
 * on ENOMEM. */
char *gw_b64url_decode(const char *s, size_t len, size_t *outlen);

/* Encodes n bytes into out, which needs gw_b64url_len(n) + 1 bytes; returns the length
 * written (a NUL follows). */
size_t gw_b64url_encode(const void *data, size_t n, char *out);
#define gw_b64url_len(n) (((n) + 2) / 3 * 4)

#endif
