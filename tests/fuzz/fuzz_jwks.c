/* fuzz_jwks.c: libFuzzer target for JSON Web Key Set parsing (gw_jwks_parse), the input an
 * operator or an identity provider controls. The first input byte picks the algorithm (even:
 * RS256, odd: ES256), the rest is the document. Whatever it holds: no crash, leak or
 * out-of-bounds read; a set that parses has at least one key, every key has a kid and a PEM
 * public key that OpenSSL reads back as a key of the algorithm's type, and looking its kid up
 * finds it. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *alg = (data[0] & 1) ? "ES256" : "RS256";
    gw_jwks *s = NULL;
    char err[256];
    if (gw_jwks_parse(&s, (const char *)data + 1, size - 1, alg, err, sizeof(err)) != 0) {
        if (s || !err[0])
            abort(); /* a refusal gives no set and a reason */
        return 0;
    }
    if (gw_jwks_count(s) == 0)
        abort();
    for (size_t i = 0; i < gw_jwks_count(s); i++) {
        const char *kid = gw_jwks_kid(s, i);
        size_t len = 0;
        const unsigned char *pem = kid ? gw_jwks_pem(s, kid, &len) : NULL;
        if (!pem || len == 0)
            abort();
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        int want = (data[0] & 1) ? EVP_PKEY_EC : EVP_PKEY_RSA;
        if (!pk || EVP_PKEY_get_base_id(pk) != want)
            abort();
        EVP_PKEY_free(pk);
        BIO_free(bio);
    }
    ERR_clear_error();
    gw_jwks_free(s);
    return 0;
}
