/* gw_token.c: minting HS256 development tokens with libjwt (see gw_token.h). The claims are
 * checked with the same rules the verifier applies, so a minted token always verifies under a
 * gw_auth with the same secret, issuer and audience. */
#define _POSIX_C_SOURCE 200809L /* strnlen */

#include "gw_token.h"

#include <errno.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "chat_validate.h"

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

int gw_token_mint(const char *secret, const gw_token_claims *c, time_t now, char **out, char *err,
                  size_t errlen)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    int rc = CHAT_EINVAL;

    *out = NULL;
    if (!secret || strlen(secret) < GW_TOKEN_SECRET_MIN) {
        chat_errf(err, errlen, "the secret must be at least %d bytes", GW_TOKEN_SECRET_MIN);
        return CHAT_EINVAL;
    }
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

    rc = -ENOMEM;
    if (jwt_new(&jwt) != 0)
        goto fail;
    if (jwt_add_grant(jwt, "sub", c->sub) || jwt_add_grant_int(jwt, "iat", (long)now) ||
        jwt_add_grant_int(jwt, "exp", (long)now + c->ttl_s))
        goto fail;
    if (c->name && *c->name && jwt_add_grant(jwt, "name", c->name))
        goto fail;
    if (c->issuer && *c->issuer && jwt_add_grant(jwt, "iss", c->issuer))
        goto fail;
    if (c->audience && *c->audience && jwt_add_grant(jwt, "aud", c->audience))
        goto fail;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
        goto fail;
    tok = jwt_encode_str(jwt);
    if (!tok)
        goto fail;
    *out = tok;
    jwt_free(jwt);
    return 0;
fail:
    chat_errf(err, errlen, "cannot create the token (out of memory)");
    jwt_free(jwt);
    return rc;
}
