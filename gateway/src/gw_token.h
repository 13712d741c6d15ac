/* gw_token.h: minting tokens: HS256 development tokens, for the chat-token tool and the
 * gateway's development sign-in endpoint (only when CHAT_DEV_TOKENS is on), and RS256/ES256
 * tokens signed with a PEM private key, with a kid for a JWKS (chat-token --key). Any thread. */
#ifndef GW_TOKEN_H
#define GW_TOKEN_H

#include <stddef.h>
#include <time.h>

typedef struct gw_token_claims {
    const char *sub;      /* required */
    const char *name;     /* optional */
    const char *issuer;   /* optional */
    const char *audience; /* optional */
    long ttl_s;           /* exp = now + ttl_s; > 0 */
    const char *rooms;    /* optional: the rooms claim as a comma list ("" an empty array) */
    const char *role;     /* optional: the role claim, e.g. "server" */
} gw_token_claims;

/* *out is a malloc'd NUL-terminated compact JWT owned by the caller (free()).
 * Returns 0, CHAT_EINVAL (bad claims, with err) or -ENOMEM. */
int gw_token_mint(const char *secret, const gw_token_claims *c, time_t now, char **out, char *err,
                  size_t errlen);

/* The same signed with RS256 or ES256 (alg) by the PEM private key key_pem (key_len bytes),
 * with kid in the header when not NULL. Returns 0, CHAT_EINVAL (bad claims or key, with err) or
 * -ENOMEM. */
int gw_token_mint_key(const char *alg, const unsigned char *key_pem, size_t key_len,
                      const char *kid, const gw_token_claims *c, time_t now, char **out, char *err,
                      size_t errlen);

#endif
