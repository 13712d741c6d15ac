/* gw_token.c: minting tokens with libjwt (see gw_token.h). The claims are
 * checked with the same rules the verifier applies, so a minted token always verifies under a
 * gw_auth with the same secret, issuer and audience. */
#define _POSIX_C_SOURCE 200809L /* strnlen */

#include "gw_token.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_validate.h"
#include "gw_access.h"

#define GW_TOKEN_SECRET_MIN 16
#define GW_TOKEN_TTL_MAX (366L * 24 * 3600) /* a development token lives at most a year */
#define GW_TOKEN_CLAIM_MAX 1024             /* iss and aud */

/* NUL-terminated UTF-8 of 1..max bytes without control characters. */
static int valid_text(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max || !chat_valid_utf8_nonul(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* The rooms claim from a comma list, as a JSON object {"rooms":[...]} for jwt_add_grants_json
 * (malloc'd). NULL with err when an entry is not a pattern gw_access accepts. */
static char *rooms_json(const char *list, char *err, size_t errlen)
{
    json_t *arr = json_array(), *obj = json_object();
    char *out = NULL;
    size_t n = 0;
    if (!arr || !obj)
        goto done;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!gw_access_valid_pattern(p, len) || ++n > GW_ACCESS_MAX_PATTERNS) {
            chat_errf(err, errlen,
                      "rooms: each entry must be a room name or a prefix ending in *, at most %d",
                      GW_ACCESS_MAX_PATTERNS);
            goto done;
        }
        json_array_append_new(arr, json_stringn(p, len));
        p += len + (end ? 1 : 0);
        if (end && !*p) {
            chat_errf(err, errlen, "rooms: empty entry");
            goto done;
        }
    }
    if (json_object_set(obj, "rooms", arr) == 0)
        out = json_dumps(obj, JSON_COMPACT);
    if (!out)
        chat_errf(err, errlen, "out of memory");
done:
    json_decref(arr);
    json_decref(obj);
    return out;
}

/* Checks the claims with the verifier's rules. */
static int check_claims(const gw_token_claims *c, char *err, size_t errlen)
{
    if (!c || !c->sub || !valid_text(c->sub, CHAT_USER_MAX)) {
        chat_errf(err, errlen, "sub must be 1..%d bytes of UTF-8 text", CHAT_USER_MAX);
        return CHAT_EINVAL;
    }
    if (c->name && *c->name && !valid_text(c->name, CHAT_USER_MAX)) {
        chat_errf(err, errlen, "name must be at most %d bytes of UTF-8 text", CHAT_USER_MAX);
        return CHAT_EINVAL;
    }
    if ((c->issuer && *c->issuer && !valid_text(c->issuer, GW_TOKEN_CLAIM_MAX)) ||
        (c->audience && *c->audience && !valid_text(c->audience, GW_TOKEN_CLAIM_MAX))) {
        chat_errf(err, errlen, "issuer and audience must be at most %d bytes of UTF-8 text",
                  GW_TOKEN_CLAIM_MAX);
        return CHAT_EINVAL;
    }
    if (c->ttl_s <= 0 || c->ttl_s > GW_TOKEN_TTL_MAX) {
        chat_errf(err, errlen, "ttl must be 1..%ld seconds", GW_TOKEN_TTL_MAX);
        return CHAT_EINVAL;
    }
    if (c->role && *c->role && !valid_text(c->role, GW_TOKEN_CLAIM_MAX)) {
        chat_errf(err, errlen, "role must be at most %d bytes of UTF-8 text", GW_TOKEN_CLAIM_MAX);
        return CHAT_EINVAL;
    }
    if (c->rooms) {
        char *rooms = rooms_json(c->rooms, err, errlen);
        if (!rooms)
            return CHAT_EINVAL;
        free(rooms);
    }
    return 0;
}

/* A jwt with c's claims (and kid in its header), not yet signed. NULL on ENOMEM. */
static jwt_t *new_jwt(const gw_token_claims *c, const char *kid, time_t now)
{
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "sub", c->sub) || jwt_add_grant_int(jwt, "iat", (long)now) ||
        jwt_add_grant_int(jwt, "exp", (long)now + c->ttl_s) ||
        (c->name && *c->name && jwt_add_grant(jwt, "name", c->name)) ||
        (c->issuer && *c->issuer && jwt_add_grant(jwt, "iss", c->issuer)) ||
        (c->audience && *c->audience && jwt_add_grant(jwt, "aud", c->audience)) ||
        (c->role && *c->role && jwt_add_grant(jwt, "role", c->role)) ||
        (kid && jwt_add_header(jwt, "kid", kid))) {
        jwt_free(jwt);
        return NULL;
    }
    if (c->rooms) { /* checked by check_claims */
        char err[160];
        char *rooms = rooms_json(c->rooms, err, sizeof(err));
        int rc = rooms ? jwt_add_grants_json(jwt, rooms) : -1;
        free(rooms);
        if (rc) {
            jwt_free(jwt);
            return NULL;
        }
    }
    return jwt;
}

int gw_token_mint(const char *secret, const gw_token_claims *c, time_t now, char **out, char *err,
                  size_t errlen)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;

    *out = NULL;
    if (!secret || strlen(secret) < GW_TOKEN_SECRET_MIN) {
        chat_errf(err, errlen, "the secret must be at least %d bytes", GW_TOKEN_SECRET_MIN);
        return CHAT_EINVAL;
    }
    if (check_claims(c, err, errlen))
        return CHAT_EINVAL;
    jwt = new_jwt(c, NULL, now);
    if (jwt &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!tok) {
        chat_errf(err, errlen, "cannot create the token (out of memory)");
        return -ENOMEM;
    }
    *out = tok;
    return 0;
}

int gw_token_mint_key(const char *alg, const unsigned char *key_pem, size_t key_len,
                      const char *kid, const gw_token_claims *c, time_t now, char **out, char *err,
                      size_t errlen)
{
    jwt_alg_t a;
    jwt_t *jwt = NULL;
    char *tok = NULL;

    *out = NULL;
    if (alg && strcmp(alg, "RS256") == 0)
        a = JWT_ALG_RS256;
    else if (alg && strcmp(alg, "ES256") == 0)
        a = JWT_ALG_ES256;
    else {
        chat_errf(err, errlen, "the algorithm must be RS256 or ES256 with a key");
        return CHAT_EINVAL;
    }
    if (!key_pem || key_len == 0 || key_len > INT_MAX) {
        chat_errf(err, errlen, "no private key");
        return CHAT_EINVAL;
    }
    if (kid && (!*kid || !valid_text(kid, GW_TOKEN_CLAIM_MAX))) {
        chat_errf(err, errlen, "kid must be 1..%d bytes of text", GW_TOKEN_CLAIM_MAX);
        return CHAT_EINVAL;
    }
    if (check_claims(c, err, errlen))
        return CHAT_EINVAL;
    jwt = new_jwt(c, kid, now);
    if (!jwt) {
        chat_errf(err, errlen, "cannot create the token (out of memory)");
        return -ENOMEM;
    }
    if (jwt_set_alg(jwt, a, key_pem, (int)key_len) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!tok) {
        chat_errf(err, errlen, "cannot sign with that key: not a PEM %s private key",
                  a == JWT_ALG_RS256 ? "RSA" : "EC P-256");
        return CHAT_EINVAL;
    }
    *out = tok;
    return 0;
}
