/* gw_jwks.h: JSON Web Key Sets (RFC 7517) of public signing keys, for CHAT_JWT_JWKS.
 *
 * gw_jwks_parse() turns a JWKS document into the public keys usable with one configured
 * algorithm: RS256 takes keys with kty "RSA" (n, e; 2048 to 8192 bits), ES256 keys with kty
 * "EC" and crv "P-256" (x, y, a point on the curve). A key of another type, or whose "alg" or
 * "use" names something else (another algorithm, encryption), is skipped: it never signs for
 * the configured algorithm. Every usable key needs a "kid", unique in the set. A key that is
 * meant for the algorithm but broken (bad base64url, too short, not on the curve, private
 * parts "d"/"p"/...) makes the whole set invalid, so that an operator's mistake is an error,
 * not a silently missing key. Each key is kept as a PEM public key (what libjwt takes).
 *
 * Parsing is cheap enough for the loop thread: no primality test of RSA moduli (only odd n
 * and e, 1 < e < n, 2048..8192 bits); a 64 KiB file of 4096-bit keys takes about 15 ms.
 * A gw_jwks is immutable once made: any thread may look keys up; the owner frees it.
 * gw_jwk_encode() is the reverse: the JWK of a public key (chat-token --jwk, tests). */
#ifndef GW_JWKS_H
#define GW_JWKS_H

#include <openssl/evp.h>
#include <stddef.h>

#define GW_JWKS_FILE_MAX 65536 /* bytes of a JWKS document */
#define GW_JWKS_KEYS_MAX 64    /* keys in a set (usable or skipped) */
#define GW_JWKS_KID_MAX 128    /* bytes of a kid */

typedef struct gw_jwks gw_jwks;

/* Parses len bytes of JSON for alg ("RS256" or "ES256"). Returns 0 with *out (the caller's,
 * gw_jwks_free), or CHAT_EINVAL with a reason in err (no usable key is an error too), or
 * -ENOMEM. */
int gw_jwks_parse(gw_jwks **out, const char *json, size_t len, const char *alg, char *err,
                  size_t errlen);

/* Reads the file at path (at most GW_JWKS_FILE_MAX bytes) and parses it as above. */
int gw_jwks_load(gw_jwks **out, const char *path, const char *alg, char *err, size_t errlen);

void gw_jwks_free(gw_jwks *s);

/* The PEM public key for kid (len in *pem_len), or NULL when the set has no usable key of
 * that id. The pointer lives as long as the set. */
const unsigned char *gw_jwks_pem(const gw_jwks *s, const char *kid, size_t *pem_len);

size_t gw_jwks_count(const gw_jwks *s);   /* usable keys */
size_t gw_jwks_skipped(const gw_jwks *s); /* keys skipped as meant for something else */
/* The kid of usable key i (0 <= i < count), for logs. */
const char *gw_jwks_kid(const gw_jwks *s, size_t i);

/* The JWK of pk's public part as a malloc'd JSON object text (the caller frees it):
 * {"kty":"RSA","kid","use":"sig","alg":"RS256","n","e"} or
 * {"kty":"EC","kid","use":"sig","alg":"ES256","crv":"P-256","x","y"}. Returns 0,
 * CHAT_EINVAL (not an RSA or P-256 key, with err) or -ENOMEM. */
int gw_jwk_encode(EVP_PKEY *pk, const char *kid, char **json_out, char *err, size_t errlen);

#endif
