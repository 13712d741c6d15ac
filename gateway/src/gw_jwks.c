/* gw_jwks.c: JSON Web Key Sets of public signing keys (see gw_jwks.h).
 *
 * Keys are rebuilt with OpenSSL 3's EVP_PKEY_fromdata from their JWK members (RSA: the
 * modulus n and exponent e; EC: the P-256 point x, y, which OpenSSL checks is on the curve),
 * checked with EVP_PKEY_public_check, and written out as PEM public keys for libjwt. */
#define _POSIX_C_SOURCE 200809L /* strdup, strnlen */

#include "gw_jwks.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_error.h"
#include "gw_b64.h"

#define GW_JWK_RSA_MIN_BITS 2048
#define GW_JWK_RSA_MAX_BITS 8192
#define GW_JWK_P256_COORD 32 /* bytes of an x or y coordinate */

typedef struct gw_jwk {
    char *kid;
    unsigned char *pem; /* NUL-terminated */
    size_t pem_len;
} gw_jwk;

struct gw_jwks {
    gw_jwk *keys;
    size_t n, skipped;
};

void gw_jwks_free(gw_jwks *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i].kid);
        free(s->keys[i].pem);
    }
    free(s->keys);
    free(s);
}

size_t gw_jwks_count(const gw_jwks *s)
{
    return s ? s->n : 0;
}

size_t gw_jwks_skipped(const gw_jwks *s)
{
    return s ? s->skipped : 0;
}

const char *gw_jwks_kid(const gw_jwks *s, size_t i)
{
    return s && i < s->n ? s->keys[i].kid : NULL;
}

const unsigned char *gw_jwks_pem(const gw_jwks *s, const char *kid, size_t *pem_len)
{
    if (!s || !kid)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i].kid, kid) == 0) {
            *pem_len = s->keys[i].pem_len;
            return s->keys[i].pem;
        }
    return NULL;
}

/* ---- JWK -> EVP_PKEY ---------------------------------------------------------------------- */

/* A base64url member of key, decoded (malloc'd). NULL when absent or malformed. */
static unsigned char *member_bytes(json_t *key, const char *name, size_t *len)
{
    json_t *v = json_object_get(key, name);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return NULL;
    return (unsigned char *)gw_b64url_decode(json_string_value(v), json_string_length(v), len);
}

/* Builds a public key of type ("RSA" or "EC") from params. NULL on failure. check: run
 * EVP_PKEY_public_check (for EC: the point is on the curve). Not for RSA: OpenSSL 3's RSA
 * public check tests that n is composite (Miller-Rabin), about 30 ms for a 4096-bit key on the
 * loop thread; rsa_key checks what verification needs (odd n and e, the sizes) itself. */
static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld, bool check)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && pctx && EVP_PKEY_fromdata_init(pctx) == 1)
        if (EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
            pk = NULL;
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    if (pk && check) {
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        if (!chk || EVP_PKEY_public_check(chk) != 1) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
        EVP_PKEY_CTX_free(chk);
    }
    return pk;
}

static EVP_PKEY *rsa_key(json_t *key, char *why, size_t wlen)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = member_bytes(key, "n", &nlen), *e = member_bytes(key, "e", &elen);
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pk = NULL;

    if (!n || !e) {
        chat_errf(why, wlen, "n and e must be base64url");
        goto out;
    }
    if (nlen * 8 > GW_JWK_RSA_MAX_BITS + 8 || elen > 8) {
        chat_errf(why, wlen, "n or e too long");
        goto out;
    }
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
        chat_errf(why, wlen, "out of memory");
        goto out;
    }
    if (BN_num_bits(bn) < GW_JWK_RSA_MIN_BITS || BN_num_bits(bn) > GW_JWK_RSA_MAX_BITS) {
        chat_errf(why, wlen, "RSA modulus of %d bits (%d..%d accepted)", BN_num_bits(bn),
                  GW_JWK_RSA_MIN_BITS, GW_JWK_RSA_MAX_BITS);
        goto out;
    }
    if (!BN_is_odd(bn) || !BN_is_odd(be) || BN_is_one(be) || BN_cmp(be, bn) >= 0) {
        chat_errf(why, wlen, "not a valid RSA public key (n and e must be odd, 1 < e < n)");
        goto out;
    }
    pk = from_params("RSA", bld, false);
    if (!pk)
        chat_errf(why, wlen, "not a valid RSA public key");
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pk;
}

static EVP_PKEY *ec_key(json_t *key, char *why, size_t wlen)
{
    size_t xlen = 0, ylen = 0;
    unsigned char *x = member_bytes(key, "x", &xlen), *y = member_bytes(key, "y", &ylen);
    unsigned char point[1 + 2 * GW_JWK_P256_COORD];
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pk = NULL;

    if (!x || !y || xlen != GW_JWK_P256_COORD || ylen != GW_JWK_P256_COORD) {
        chat_errf(why, wlen, "x and y must be 32 bytes of base64url each");
        goto out;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, GW_JWK_P256_COORD);
    memcpy(point + 1 + GW_JWK_P256_COORD, y, GW_JWK_P256_COORD);
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point))) {
        chat_errf(why, wlen, "out of memory");
        goto out;
    }
    pk = from_params("EC", bld, true);
    if (!pk)
        chat_errf(why, wlen, "not a point on P-256");
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pk;
}

static unsigned char *pem_of(EVP_PKEY *pk, size_t *len)
{
    BIO *mem = BIO_new(BIO_s_mem());
    unsigned char *out = NULL;
    char *data;
    long n;
    if (mem && PEM_write_bio_PUBKEY(mem, pk) == 1 && (n = BIO_get_mem_data(mem, &data)) > 0) {
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
            *len = (size_t)n;
        }
    }
    BIO_free(mem);
    return out;
}

/* A kid: 1..GW_JWKS_KID_MAX bytes of printable ASCII. */
static bool valid_kid(json_t *v)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > GW_JWKS_KID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

/* 1: usable (added to s), 0: skipped, CHAT_EINVAL (why filled), -ENOMEM. */
static int add_key(gw_jwks *s, json_t *key, const char *alg, char *why, size_t wlen)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    bool rsa = strcmp(alg, "RS256") == 0;
    const char *kty = json_string_value(json_object_get(key, "kty"));
    json_t *jalg = json_object_get(key, "alg"), *use = json_object_get(key, "use");

    if (!json_is_object(key)) {
        chat_errf(why, wlen, "not an object");
        return CHAT_EINVAL;
    }
    if (!kty) {
        chat_errf(why, wlen, "no kty");
        return CHAT_EINVAL;
    }
    if (strcmp(kty, rsa ? "RSA" : "EC") != 0)
        return 0;
    if (jalg && (!json_is_string(jalg) || strcmp(json_string_value(jalg), alg) != 0))
        return 0;
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return 0;
    if (!rsa) {
        const char *crv = json_string_value(json_object_get(key, "crv"));
        if (!crv || strcmp(crv, "P-256") != 0)
            return 0; /* another curve: for ES384/ES512, not ES256 */
    }
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
        if (json_object_get(key, private_members[i])) {
            chat_errf(why, wlen, "holds private key material (\"%s\"): publish public keys only",
                      private_members[i]);
            return CHAT_EINVAL;
        }
    json_t *kid = json_object_get(key, "kid");
    if (!valid_kid(kid)) {
        chat_errf(why, wlen, "needs a kid of 1..%d printable ASCII characters", GW_JWKS_KID_MAX);
        return CHAT_EINVAL;
    }
    size_t dummy;
    if (gw_jwks_pem(s, json_string_value(kid), &dummy)) {
        chat_errf(why, wlen, "kid \"%s\" appears twice", json_string_value(kid));
        return CHAT_EINVAL;
    }
    EVP_PKEY *pk = rsa ? rsa_key(key, why, wlen) : ec_key(key, why, wlen);
    ERR_clear_error();
    if (!pk)
        return CHAT_EINVAL;
    gw_jwk *k = &s->keys[s->n];
    k->pem = pem_of(pk, &k->pem_len);
    EVP_PKEY_free(pk);
    k->kid = strdup(json_string_value(kid));
    if (!k->pem || !k->kid) {
        free(k->pem);
        free(k->kid);
        return -ENOMEM;
    }
    s->n++;
    return 1;
}

int gw_jwks_parse(gw_jwks **out, const char *json, size_t len, const char *alg, char *err,
                  size_t errlen)
{
    json_error_t jerr;
    json_t *doc = NULL, *keys;
    gw_jwks *s = NULL;
    int rc = CHAT_EINVAL;
    char why[160];

    *out = NULL;
    if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)) {
        chat_errf(err, errlen, "a JWKS serves RS256 or ES256 only");
        return CHAT_EINVAL;
    }
    if (len > GW_JWKS_FILE_MAX) {
        chat_errf(err, errlen, "larger than %d bytes", GW_JWKS_FILE_MAX);
        return CHAT_EINVAL;
    }
    doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        chat_errf(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return CHAT_EINVAL;
    }
    keys = json_object_get(doc, "keys");
    if (!json_is_object(doc) || !json_is_array(keys)) {
        chat_errf(err, errlen, "not a JSON Web Key Set (an object with a \"keys\" array)");
        goto out;
    }
    if (json_array_size(keys) > GW_JWKS_KEYS_MAX) {
        chat_errf(err, errlen, "more than %d keys", GW_JWKS_KEYS_MAX);
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s)
        s->keys = calloc(json_array_size(keys) + 1, sizeof(*s->keys));
    if (!s || !s->keys) {
        rc = -ENOMEM;
        goto out;
    }
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key)
    {
        why[0] = '\0';
        int r = add_key(s, key, alg, why, sizeof(why));
        if (r == -ENOMEM) {
            rc = r;
            goto out;
        }
        if (r < 0) {
            chat_errf(err, errlen, "key %zu: %s", i, why);
            goto out;
        }
        if (r == 0)
            s->skipped++;
    }
    if (s->n == 0) {
        chat_errf(err, errlen, "no %s key (kty %s%s) among its %zu keys", alg,
                  strcmp(alg, "RS256") == 0 ? "RSA" : "EC",
                  strcmp(alg, "RS256") == 0 ? "" : ", crv P-256", json_array_size(keys));
        goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        chat_errf(err, errlen, "out of memory");
    gw_jwks_free(s);
    json_decref(doc);
    return rc;
}

int gw_jwks_load(gw_jwks **out, const char *path, const char *alg, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t n = 0;
    int rc;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    if (!f) {
        chat_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return CHAT_EINVAL;
    }
    buf = malloc(GW_JWKS_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        chat_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    n = fread(buf, 1, GW_JWKS_FILE_MAX + 1, f);
    if (ferror(f)) {
        chat_errf(err, errlen, "cannot read %s", path);
        rc = CHAT_EINVAL;
    } else if (n > GW_JWKS_FILE_MAX) {
        chat_errf(err, errlen, "%s is larger than %d bytes", path, GW_JWKS_FILE_MAX);
        rc = CHAT_EINVAL;
    } else {
        char why[200];
        rc = gw_jwks_parse(out, buf, n, alg, why, sizeof(why));
        if (rc)
            chat_errf(err, errlen, "%s: %s", path, why);
    }
    fclose(f);
    free(buf);
    return rc;
}

/* ---- EVP_PKEY -> JWK ---------------------------------------------------------------------- */

/* Sets obj[name] to the base64url of len bytes. */
static int set_b64(json_t *obj, const char *name, const unsigned char *data, size_t len)
{
    char *s = malloc(gw_b64url_len(len) + 1);
    if (!s)
        return -ENOMEM;
    gw_b64url_encode(data, len, s);
    int rc = json_object_set_new(obj, name, json_string(s)) ? -ENOMEM : 0;
    free(s);
    return rc;
}

static int set_bn(json_t *obj, const char *name, EVP_PKEY *pk, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char *buf = NULL;
    int rc = -ENOMEM;
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return CHAT_EINVAL;
    buf = malloc((size_t)BN_num_bytes(bn) + 1);
    if (buf) {
        int n = BN_bn2bin(bn, buf);
        rc = set_b64(obj, name, buf, (size_t)n);
    }
    free(buf);
    BN_free(bn);
    return rc;
}

int gw_jwk_encode(EVP_PKEY *pk, const char *kid, char **json_out, char *err, size_t errlen)
{
    json_t *o = json_object();
    int rc = -ENOMEM;
    *json_out = NULL;
    if (!o)
        goto out;
    if (!kid || !*kid || strnlen(kid, GW_JWKS_KID_MAX + 1) > GW_JWKS_KID_MAX) {
        chat_errf(err, errlen, "kid must be 1..%d characters", GW_JWKS_KID_MAX);
        rc = CHAT_EINVAL;
        goto out;
    }
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        if (json_object_set_new(o, "kty", json_string("RSA")) ||
            json_object_set_new(o, "kid", json_string(kid)) ||
            json_object_set_new(o, "use", json_string("sig")) ||
            json_object_set_new(o, "alg", json_string("RS256")))
            goto out;
        if ((rc = set_bn(o, "n", pk, OSSL_PKEY_PARAM_RSA_N)) ||
            (rc = set_bn(o, "e", pk, OSSL_PKEY_PARAM_RSA_E)))
            goto out;
    } else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        char group[64] = "";
        size_t glen = 0, plen = 0;
        unsigned char point[1 + 2 * GW_JWK_P256_COORD];
        if (!EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) ||
            strcmp(group, "prime256v1") != 0 ||
            EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                            &plen) != 1 ||
            plen != sizeof(point) || point[0] != 0x04) {
            chat_errf(err, errlen, "not a P-256 key (ES256)");
            rc = CHAT_EINVAL;
            goto out;
        }
        rc = -ENOMEM;
        if (json_object_set_new(o, "kty", json_string("EC")) ||
            json_object_set_new(o, "kid", json_string(kid)) ||
            json_object_set_new(o, "use", json_string("sig")) ||
            json_object_set_new(o, "alg", json_string("ES256")) ||
            json_object_set_new(o, "crv", json_string("P-256")))
            goto out;
        if ((rc = set_b64(o, "x", point + 1, GW_JWK_P256_COORD)) ||
            (rc = set_b64(o, "y", point + 1 + GW_JWK_P256_COORD, GW_JWK_P256_COORD)))
            goto out;
    } else {
        chat_errf(err, errlen, "not an RSA or EC key");
        rc = CHAT_EINVAL;
        goto out;
    }
    *json_out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = *json_out ? 0 : -ENOMEM;
out:
    if (rc == -ENOMEM)
        chat_errf(err, errlen, "out of memory");
    ERR_clear_error();
    json_decref(o);
    return rc;
}
