/* gw_auth.h: JWT verification with libjwt, pinned to one configured algorithm.
 * libjwt 1.10 verifies only the signature, so this module also refuses any token whose header
 * alg differs from the configured one (alg "none" included), and checks exp (required), nbf
 * (when present), sub (required, 1..CHAT_USER_MAX bytes), name (optional, truncated to
 * CHAT_USER_MAX), and iss/aud when configured (aud may be a string or an array).
 * A gw_auth is immutable after gw_auth_new(): gw_auth_verify() may be called from any thread. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <time.h>

#include "chat_validate.h"

typedef struct gw_auth gw_auth;

typedef struct gw_auth_config {
    const char *alg;             /* "HS256", "RS256" or "ES256" */
    const char *secret;          /* HS256: the shared secret (>= 16 bytes) */
    const char *public_key_file; /* RS256/ES256: PEM public key file, read once */
    const char *issuer;          /* NULL or "": not checked */
    const char *audience;        /* NULL or "": not checked */
    long leeway_s;               /* clock skew allowed on exp/nbf, seconds */
} gw_auth_config;

typedef struct gw_identity {
    char sub[CHAT_USER_MAX + 1];
    char name[CHAT_USER_MAX + 1]; /* "" when the token has none */
    long long exp;
} gw_identity;

/* Returns 0, or CHAT_EINVAL with a message naming the setting (e.g. "CHAT_JWT_SECRET: ...")
 * when the configuration is unusable. *out is owned by the caller (gw_auth_free). */
int gw_auth_new(gw_auth **out, const gw_auth_config *cfg, char *err, size_t errlen);
void gw_auth_free(gw_auth *a);

/* Verifies token at time now. Returns 0 with *id filled, or CHAT_EAUTH with a reason for a
 * log and a person ("token expired", "algorithm RS256 not accepted", ...). */
int gw_auth_verify(const gw_auth *a, const char *token, time_t now, gw_identity *id, char *err,
                   size_t errlen);

#endif
