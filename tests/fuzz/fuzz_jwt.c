/* fuzz_jwt.c: libFuzzer target for JWT verification (gw_auth_verify with an HS256 verifier).
 * The first input byte picks a mode:
 *   even: the rest is the token string as a client would send it. Nothing may be accepted:
 *         the fuzzer does not know the secret, so acceptance would mean a bypassed signature.
 *   odd:  the rest is a claims payload (any bytes), which this target signs properly with the
 *         secret, so libjwt's payload parsing and our claim checks see arbitrary claims. What is
 *         accepted must satisfy the identity rules (sub, name, exp; a rooms claim of at most
 *         GW_ACCESS_MAX_PATTERNS valid patterns), and what is refused owns nothing.
 * Nothing may crash, leak or read out of bounds in either mode. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_b64.h"
#include "chat_validate.h"
#include "gw_access.h"
#include "gw_auth.h"

#define FUZZ_SECRET "fuzz-secret-0123456789abcdef"
#define FUZZ_NOW 1764072000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* header.payload.signature over the given payload bytes, HS256 with FUZZ_SECRET. */
static char *sign(const uint8_t *payload, size_t n)
{
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *tok = malloc(64 + (n + 2) / 3 * 4 + 64);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!tok)
        return NULL;
    size_t o = gw_b64url_encode((const uint8_t *)hdr, strlen(hdr), tok);
    tok[o++] = '.';
    o += gw_b64url_encode(payload, n, tok + o);
    if (!HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET), (const unsigned char *)tok, o,
              mac, &maclen)) {
        free(tok);
        return NULL;
    }
    tok[o++] = '.';
    gw_b64url_encode(mac, maclen, tok + o);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gw_auth *auth;
    char err[256];
    gw_identity id;
    char *tok;

    if (!auth) {
        gw_auth_config cfg = {.alg = "HS256", .secret = FUZZ_SECRET, .leeway_s = 30};
        if (gw_auth_new(&auth, &cfg, err, sizeof(err)) != 0)
            abort();
    }
    if (size == 0 || size > 16384)
        return 0;
    bool signed_mode = data[0] & 1;
    data++;
    size--;
    if (signed_mode) {
        tok = sign(data, size);
    } else {
        tok = malloc(size + 1);
        if (tok) {
            memcpy(tok, data, size);
            tok[size] = '\0';
        }
    }
    if (!tok)
        return 0;

    err[0] = '\0';
    int rc = gw_auth_verify(auth, tok, FUZZ_NOW, &id, err, sizeof(err));
    if (rc == 0) {
        size_t sub = strlen(id.sub), name = strlen(id.name);
        if (!signed_mode || sub == 0 || sub > CHAT_USER_MAX ||
            !chat_valid_utf8_nonul(id.sub, sub) || name > CHAT_USER_MAX ||
            !chat_valid_utf8_nonul(id.name, name) || id.exp <= FUZZ_NOW - 30)
            abort();
        int n = 0;
        for (const char *p = id.rooms; p && *p; p += strlen(p) + 1, n++)
            if (!gw_access_valid_pattern(p, strlen(p)) || n >= GW_ACCESS_MAX_PATTERNS)
                abort();
        gw_identity_clear(&id);
    } else if (!err[0] || id.sub[0] || id.rooms) {
        abort();
    }
    free(tok);
    return 0;
}
