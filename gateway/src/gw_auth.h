/* gw_auth.h: JWT verification with libjwt, pinned to one configured algorithm.
 * libjwt 1.10 verifies only the signature, so this module also refuses any token whose header
 * alg differs from the configured one (alg "none" included), and checks exp (required), nbf
 * (when present), sub (required, 1..CHAT_USER_MAX bytes), name (optional, truncated to
 * CHAT_USER_MAX), and iss/aud when configured (aud may be a string or an array); rooms
 * (optional: an array of at most GW_ACCESS_MAX_PATTERNS room names or prefixes ending in '*',
 * see gw_access.h) and role (optional string; "server" opens the server API).
 * RS256/ES256 keys come from one PEM public key, or from a JSON Web Key Set (gw_jwks.h) where
 * the token header's kid picks the key (a token without kid, or with a kid the set does not
 * hold, is refused).
 * Threads: with a PEM key or a secret a gw_auth is immutable after gw_auth_new() and
 * gw_auth_verify() may be called from any thread. With a JWKS, gw_auth_reload() replaces the
 * key set: gw_auth_verify() and gw_auth_reload() must then be called from one thread (the
 * gateway's loop thread). */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "chat_validate.h"

typedef struct gw_auth gw_auth;

typedef struct gw_auth_config {
    const char *alg;             /* "HS256", "RS256" or "ES256" */
    const char *secret;          /* HS256: the shared secret (>= 16 bytes) */
    const char *public_key_file; /* RS256/ES256: PEM public key file, read once */
    const char *jwks_file;       /* RS256/ES256: JWKS file instead (not both), re-readable */
    const char *issuer;          /* NULL or "": not checked */
    const char *audience;        /* NULL or "": not checked */
    long leeway_s;               /* clock skew allowed on exp/nbf, seconds */
} gw_auth_config;

/* What a verified token says. rooms is owned by the identity: NULL when the token has no rooms
 * claim, else one malloc'd block (gw_access.h's packed form), freed by gw_identity_clear. A
 * copy of the struct moves that ownership: clear only one of the two. */
typedef struct gw_identity {
    char sub[CHAT_USER_MAX + 1];
    char name[CHAT_USER_MAX + 1]; /* "" when the token has none */
    long long exp;
    char *rooms; /* the rooms claim, packed; NULL: no claim */
    bool server; /* "role":"server": may use the server API */
} gw_identity;

/* A user id as a token's sub must be: 1..CHAT_USER_MAX bytes of UTF-8 without control
 * characters (the server API checks its "from" by the same rule). */
bool gw_auth_valid_sub(const char *s, size_t len);

/* Frees what id owns and zeroes it. */
void gw_identity_clear(gw_identity *id);

/* Returns 0, or CHAT_EINVAL with a message naming the setting (e.g. "CHAT_JWT_SECRET: ...")
 * when the configuration is unusable. *out is owned by the caller (gw_auth_free). */
int gw_auth_new(gw_auth **out, const gw_auth_config *cfg, char *err, size_t errlen);
void gw_auth_free(gw_auth *a);

/* Verifies token at time now. Returns 0 with *id filled (the caller owns it: gw_identity_clear),
 * or CHAT_EAUTH (*id zeroed, owning nothing) with a reason for a
 * log and a person ("token expired", "algorithm RS256 not accepted", ...). */
int gw_auth_verify(const gw_auth *a, const char *token, time_t now, gw_identity *id, char *err,
                   size_t errlen);

/* CHAT_JWT_JWKS: reads the key set file again when it changed since it was last read (its
 * inode, size or modification time; every time when force). Returns 0 when there was nothing
 * to read (no JWKS, or unchanged), 1 when the new set is in force, or a negative code with err
 * naming the setting: the previous set then stays in force. Tokens already verified (open
 * connections) are not affected. Loop thread. */
int gw_auth_reload(gw_auth *a, bool force, char *err, size_t errlen);

/* The JWKS's usable keys (0 without a JWKS) and their kids, for logs. */
size_t gw_auth_key_count(const gw_auth *a);
const char *gw_auth_key_id(const gw_auth *a, size_t i);

#endif
