/* test_gw_jwks.c: JSON Web Key Sets (gw_jwks.c) and key rotation through gw_auth
 * (CHAT_JWT_JWKS). Keys are generated with OpenSSL; their JWKs come from gw_jwk_encode and are
 * compared with OpenSSL's own PEM of the same key. Covers: good RSA and EC keys; keys for
 * another algorithm, curve or use skipped; broken keys (short RSA, a point off the curve, bad
 * base64url, private members, no kid, a repeated kid, not a set) refused with a reason;
 * tokens picked by kid, an unknown or missing kid refused, the algorithm pinned (HS256 with
 * the PEM as the secret, ES256 against an RS256 set); configuration errors naming the
 * setting; and gw_auth_reload: a rewritten file replaces the keys, an unchanged one is not
 * read, a bad one leaves the old keys in force. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_error.h"
#include "check.h"
#include "gw_auth.h"
#include "gw_jwks.h"

#define NOW 1764072000L
#define CLAIMS "{\"sub\":\"erin\",\"exp\":1764075600}"

typedef struct key {
    EVP_PKEY *pk;
    char *priv; /* PEM private key */
    size_t priv_len;
    char *pub; /* PEM public key */
    char *jwk; /* JSON */
} key;

static char *bio_string(BIO *bio, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    if (len)
        *len = (size_t)n;
    return s;
}

static key make_key(const char *type, const char *kid)
{
    key k;
    memset(&k, 0, sizeof(k));
    k.pk = strcmp(type, "RSA") == 0       ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
           : strcmp(type, "RSA1024") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024)
           : strcmp(type, "P-384") == 0   ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")
                                          : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(k.pk != NULL);
    BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, k.pk, NULL, NULL, 0, NULL, NULL);
    PEM_write_bio_PUBKEY(pub, k.pk);
    k.priv = bio_string(priv, &k.priv_len);
    k.pub = bio_string(pub, NULL);
    BIO_free(priv);
    BIO_free(pub);
    char err[256];
    if (strcmp(type, "RSA1024") == 0 || strcmp(type, "P-384") == 0)
        return k; /* gw_jwk_encode refuses P-384; RSA1024 is encoded, then refused by parse */
    CHECK(gw_jwk_encode(k.pk, kid, &k.jwk, err, sizeof(err)) == 0);
    return k;
}

static void free_key(key *k)
{
    EVP_PKEY_free(k->pk);
    free(k->priv);
    free(k->pub);
    free(k->jwk);
}

/* A token signed by k with alg and kid (NULL: none) in the header. malloc'd. */
static char *sign(jwt_alg_t alg, const void *keybytes, size_t keylen, const char *kid)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt))
        return NULL;
    if (jwt_add_grants_json(jwt, CLAIMS) == 0 && (!kid || jwt_add_header(jwt, "kid", kid) == 0) &&
        jwt_set_alg(jwt, alg, (const unsigned char *)keybytes, (int)keylen) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    CHECK(tok != NULL);
    return tok;
}

/* {"keys":[a,b,...]} of JWK texts, NULL-terminated list. malloc'd. */
static char *set_of(const char *const *jwks)
{
    json_t *arr = json_array();
    for (size_t i = 0; jwks[i]; i++)
        json_array_append_new(arr, json_loads(jwks[i], 0, NULL));
    json_t *doc = json_pack("{s:o}", "keys", arr);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

/* The JWK text of k with member name set to the JSON value (NULL: removed). malloc'd. */
static char *jwk_with(const char *jwk, const char *name, const char *value)
{
    json_t *o = json_loads(jwk, 0, NULL);
    if (value)
        json_object_set_new(o, name, json_loads(value, JSON_DECODE_ANY, NULL));
    else
        json_object_del(o, name);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void write_file(const char *path, const char *text)
{
    /* a new file each time (write and rename), as an operator's tool would */
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    CHECK(rename(tmp, path) == 0);
}

static void parse_refused(const char *json, const char *alg, const char *want)
{
    gw_jwks *s = NULL;
    char err[256] = "";
    int rc = gw_jwks_parse(&s, json, strlen(json), alg, err, sizeof(err));
    CHECK(rc == CHAT_EINVAL && s == NULL);
    if (!strstr(err, want)) {
        fprintf(stderr, "   reason \"%s\", expected \"%s\"\n", err, want);
        CHECK(strstr(err, want) != NULL);
    }
    gw_jwks_free(s);
}

static gw_jwks *parse_ok(const char *json, const char *alg)
{
    gw_jwks *s = NULL;
    char err[256] = "";
    int rc = gw_jwks_parse(&s, json, strlen(json), alg, err, sizeof(err));
    if (rc)
        fprintf(stderr, "   gw_jwks_parse: %s\n", err);
    CHECK(rc == 0 && s != NULL);
    return s;
}

static int verify(const gw_auth *a, const char *tok, char *err, size_t errlen)
{
    gw_identity id;
    err[0] = '\0';
    int rc = gw_auth_verify(a, tok, NOW, &id, err, errlen);
    if (rc == 0)
        CHECK_STR(id.sub, "erin");
    return rc;
}

static void accepted(const gw_auth *a, const char *tok)
{
    char err[256];
    int rc = verify(a, tok, err, sizeof(err));
    if (rc)
        fprintf(stderr, "   refused: %s\n", err);
    CHECK(rc == 0);
}

static void refused(const gw_auth *a, const char *tok, const char *want)
{
    char err[256];
    CHECK(verify(a, tok, err, sizeof(err)) == CHAT_EAUTH);
    if (!strstr(err, want)) {
        fprintf(stderr, "   reason \"%s\", expected \"%s\"\n", err, want);
        CHECK(strstr(err, want) != NULL);
    }
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void test_good_keys(void)
{
    key r1 = make_key("RSA", "r1"), r2 = make_key("RSA", "r2"), e1 = make_key("P-256", "e1");
    const char *all[] = {r1.jwk, e1.jwk, r2.jwk, NULL};
    char *json = set_of(all);

    /* RS256: both RSA keys, the EC key skipped; each PEM is OpenSSL's own for that key */
    gw_jwks *s = parse_ok(json, "RS256");
    if (s) {
        size_t len = 0;
        CHECK(gw_jwks_count(s) == 2 && gw_jwks_skipped(s) == 1);
        CHECK_STR(gw_jwks_kid(s, 0), "r1");
        CHECK_STR(gw_jwks_kid(s, 1), "r2");
        CHECK_STR((const char *)gw_jwks_pem(s, "r1", &len), r1.pub);
        CHECK(len == strlen(r1.pub));
        CHECK_STR((const char *)gw_jwks_pem(s, "r2", &len), r2.pub);
        CHECK(gw_jwks_pem(s, "e1", &len) == NULL); /* not for RS256 */
        CHECK(gw_jwks_pem(s, "nope", &len) == NULL);
    }
    gw_jwks_free(s);

    /* ES256: the EC key only */
    s = parse_ok(json, "ES256");
    if (s) {
        size_t len = 0;
        CHECK(gw_jwks_count(s) == 1 && gw_jwks_skipped(s) == 2);
        CHECK_STR((const char *)gw_jwks_pem(s, "e1", &len), e1.pub);
        CHECK(gw_jwks_pem(s, "r1", &len) == NULL);
    }
    gw_jwks_free(s);
    free(json);

    /* alg and use that name something else: skipped; without alg and use: taken */
    char *other_alg = jwk_with(r2.jwk, "alg", "\"RS512\"");
    char *enc = jwk_with(e1.jwk, "use", "\"enc\"");
    char *bare = jwk_with(r1.jwk, "alg", NULL);
    char *bare2 = jwk_with(bare, "use", NULL);
    const char *mixed[] = {other_alg, enc, bare2, NULL};
    json = set_of(mixed);
    s = parse_ok(json, "RS256");
    if (s)
        CHECK(gw_jwks_count(s) == 1 && gw_jwks_skipped(s) == 2);
    gw_jwks_free(s);
    /* ES256: the EC key is for encryption, the others are RSA: nothing usable */
    parse_refused(json, "ES256", "no ES256 key");
    free(json);
    /* an EC key on another curve is skipped */
    char *p384 = jwk_with(e1.jwk, "crv", "\"P-384\"");
    const char *only384[] = {p384, NULL};
    json = set_of(only384);
    parse_refused(json, "ES256", "no ES256 key");
    free(json);

    free(other_alg);
    free(enc);
    free(bare);
    free(bare2);
    free(p384);
    free_key(&r1);
    free_key(&r2);
    free_key(&e1);
}

static void test_bad_keys(void)
{
    key r = make_key("RSA", "r"), e = make_key("P-256", "e"), weak = make_key("RSA1024", "w");
    char err[256], *json, *k;

    /* RSA shorter than 2048 bits (encoded by hand: gw_jwk_encode takes any RSA key) */
    CHECK(gw_jwk_encode(weak.pk, "w", &weak.jwk, err, sizeof(err)) == 0);
    const char *w[] = {weak.jwk, NULL};
    json = set_of(w);
    parse_refused(json, "RS256", "key 0: RSA modulus of 1024 bits");
    free(json);

    /* a point that is not on the curve: y changed */
    json_t *o = json_loads(e.jwk, 0, NULL);
    char y[64];
    snprintf(y, sizeof(y), "%s", json_string_value(json_object_get(o, "y")));
    y[5] = y[5] == 'A' ? 'B' : 'A';
    json_object_set_new(o, "y", json_string(y));
    k = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    const char *off[] = {k, NULL};
    json = set_of(off);
    parse_refused(json, "ES256", "not a point on P-256");
    free(json);
    free(k);

    static const struct {
        const char *member, *value, *want;
    } cases[] = {
        {"n", "\"abc$\"", "base64url"},
        {"e", NULL, "base64url"},
        {"n", "42", "base64url"},
        {"d", "\"AQAB\"", "private key material (\"d\")"},
        {"p", "\"AQAB\"", "private key material (\"p\")"},
        {"kid", NULL, "needs a kid"},
        {"kid", "\"\"", "needs a kid"},
        {"kid", "7", "needs a kid"},
        {"kid", "\"bad\\nkid\"", "needs a kid"},
        {"kty", NULL, "no kty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        k = jwk_with(r.jwk, cases[i].member, cases[i].value);
        const char *one[] = {k, NULL};
        json = set_of(one);
        parse_refused(json, "RS256", cases[i].want);
        free(json);
        free(k);
    }
    /* EC coordinates of the wrong length */
    k = jwk_with(e.jwk, "x", "\"AQAB\"");
    const char *shortx[] = {k, NULL};
    json = set_of(shortx);
    parse_refused(json, "ES256", "32 bytes");
    free(json);
    free(k);

    /* the same kid twice */
    key r2 = make_key("RSA", "r");
    const char *twice[] = {r.jwk, r2.jwk, NULL};
    json = set_of(twice);
    parse_refused(json, "RS256", "kid \"r\" appears twice");
    free(json);
    free_key(&r2);

    /* not a key set */
    parse_refused("", "RS256", "not JSON");
    parse_refused("[1,2]", "RS256", "not a JSON Web Key Set");
    parse_refused("{\"keys\":{}}", "RS256", "not a JSON Web Key Set");
    parse_refused("{\"keys\":[]}", "RS256", "no RS256 key");
    parse_refused("{\"keys\":[7]}", "RS256", "key 0");
    parse_refused("{\"keys\":[],\"keys\":[]}", "RS256", "not JSON");
    parse_refused("{\"keys\":[]}", "HS256", "RS256 or ES256 only");
    char big[200 * 70 + 32] = "{\"keys\":[";
    for (int i = 0; i < 70; i++)
        strcat(big, i ? ",{\"kty\":\"oct\"}" : "{\"kty\":\"oct\"}");
    strcat(big, "]}");
    parse_refused(big, "RS256", "more than 64 keys");

    free_key(&r);
    free_key(&e);
    free_key(&weak);
}

/* ---- verification and rotation ------------------------------------------------------------ */

static void test_verify_by_kid(const char *dir)
{
    key a = make_key("RSA", "key-a"), b = make_key("RSA", "key-b"), e = make_key("P-256", "ec");
    char path[512], err[256] = "";
    snprintf(path, sizeof(path), "%s/jwks.json", dir);
    const char *both[] = {a.jwk, b.jwk, NULL};
    char *json = set_of(both);
    write_file(path, json);
    free(json);

    gw_auth *auth = NULL;
    gw_auth_config cfg = {.alg = "RS256", .jwks_file = path, .leeway_s = 0};
    CHECK(gw_auth_new(&auth, &cfg, err, sizeof(err)) == 0);
    if (!auth) {
        fprintf(stderr, "   gw_auth_new: %s\n", err);
        goto out;
    }
    CHECK(gw_auth_key_count(auth) == 2);
    char *ta = sign(JWT_ALG_RS256, a.priv, a.priv_len, "key-a");
    char *tb = sign(JWT_ALG_RS256, b.priv, b.priv_len, "key-b");
    accepted(auth, ta);
    accepted(auth, tb);

    /* A's key under B's kid: the signature does not match */
    char *swapped = sign(JWT_ALG_RS256, a.priv, a.priv_len, "key-b");
    refused(auth, swapped, "signature invalid");
    char *nokid = sign(JWT_ALG_RS256, a.priv, a.priv_len, NULL);
    refused(auth, nokid, "no key id");
    char *unknown = sign(JWT_ALG_RS256, a.priv, a.priv_len, "key-z");
    refused(auth, unknown, "key id (kid) unknown");
    /* the algorithm stays pinned: HS256 with a set key's PEM as the secret, ES256 by an EC key */
    size_t pem_len = strlen(a.pub);
    char *confused = sign(JWT_ALG_HS256, a.pub, pem_len, "key-a");
    refused(auth, confused, "algorithm HS256 not accepted");
    char *es = sign(JWT_ALG_ES256, e.priv, e.priv_len, "key-a");
    refused(auth, es, "algorithm ES256 not accepted");
    char *rs512 = sign(JWT_ALG_RS512, a.priv, a.priv_len, "key-a");
    refused(auth, rs512, "algorithm RS512 not accepted");

    /* rotation: unchanged file, nothing read */
    CHECK(gw_auth_reload(auth, false, err, sizeof(err)) == 0);
    /* the file now holds only B */
    const char *onlyb[] = {b.jwk, NULL};
    json = set_of(onlyb);
    write_file(path, json);
    free(json);
    CHECK(gw_auth_reload(auth, false, err, sizeof(err)) == 1);
    CHECK(gw_auth_key_count(auth) == 1);
    refused(auth, ta, "key id (kid) unknown");
    accepted(auth, tb);
    /* a bad file: refused, B stays in force, and the same bad file is not read again */
    write_file(path, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"%%\",\"e\":\"AQAB\"}]}");
    CHECK(gw_auth_reload(auth, false, err, sizeof(err)) < 0);
    CHECK(strstr(err, "CHAT_JWT_JWKS") != NULL);
    CHECK(gw_auth_reload(auth, false, err, sizeof(err)) == 0);
    accepted(auth, tb);
    /* a missing file likewise */
    unlink(path);
    CHECK(gw_auth_reload(auth, false, err, sizeof(err)) < 0);
    accepted(auth, tb);
    /* back, with A again; forced (SIGHUP) reads even when nothing changed */
    const char *onlya[] = {a.jwk, NULL};
    json = set_of(onlya);
    write_file(path, json);
    free(json);
    CHECK(gw_auth_reload(auth, false, err, sizeof(err)) == 1);
    accepted(auth, ta);
    refused(auth, tb, "key id (kid) unknown");
    CHECK(gw_auth_reload(auth, true, err, sizeof(err)) == 1);
    accepted(auth, ta);

    free(ta);
    free(tb);
    free(swapped);
    free(nokid);
    free(unknown);
    free(confused);
    free(es);
    free(rs512);
out:
    gw_auth_free(auth);
    unlink(path);
    free_key(&a);
    free_key(&b);
    free_key(&e);
}

static void test_es256_set(const char *dir)
{
    key e = make_key("P-256", "ec-1");
    char path[512], err[256] = "";
    snprintf(path, sizeof(path), "%s/ec.json", dir);
    const char *one[] = {e.jwk, NULL};
    char *json = set_of(one);
    write_file(path, json);
    free(json);
    gw_auth *auth = NULL;
    gw_auth_config cfg = {.alg = "ES256", .jwks_file = path};
    CHECK(gw_auth_new(&auth, &cfg, err, sizeof(err)) == 0);
    if (auth) {
        char *t = sign(JWT_ALG_ES256, e.priv, e.priv_len, "ec-1");
        accepted(auth, t);
        free(t);
    }
    gw_auth_free(auth);
    /* the same file for RS256 has no usable key */
    gw_auth_config rs = {.alg = "RS256", .jwks_file = path};
    auth = NULL;
    CHECK(gw_auth_new(&auth, &rs, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_JWT_JWKS") && strstr(err, "no RS256 key"));
    gw_auth_free(auth);
    unlink(path);
    free_key(&e);
}

static void test_config(const char *dir)
{
    char path[512], err[256];
    gw_auth *auth = NULL;
    snprintf(path, sizeof(path), "%s/missing.json", dir);
    gw_auth_config missing = {.alg = "RS256", .jwks_file = path};
    CHECK(gw_auth_new(&auth, &missing, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_JWT_JWKS: cannot read") != NULL);
    gw_auth_config both = {.alg = "RS256", .jwks_file = path, .public_key_file = path};
    CHECK(gw_auth_new(&auth, &both, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_JWT_JWKS: set either") != NULL);
    gw_auth_config hs = {.alg = "HS256", .secret = "0123456789abcdef0123", .jwks_file = path};
    CHECK(gw_auth_new(&auth, &hs, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_JWT_JWKS: needs CHAT_JWT_ALG RS256 or ES256") != NULL);
    gw_auth_config none = {.alg = "ES256"};
    CHECK(gw_auth_new(&auth, &none, err, sizeof(err)) == CHAT_EINVAL);
    CHECK(strstr(err, "CHAT_JWT_PUBLIC_KEY") != NULL);
    CHECK(auth == NULL);

    /* gw_jwk_encode refuses what a JWKS could not carry for RS256/ES256 */
    key p384 = make_key("P-384", NULL);
    char *out = NULL;
    CHECK(gw_jwk_encode(p384.pk, "k", &out, err, sizeof(err)) == CHAT_EINVAL && !out);
    free_key(&p384);
}

int main(void)
{
    char dir[] = "/tmp/test_gw_jwks.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_good_keys);
    RUN(test_bad_keys);
    fprintf(stderr, "-- test_verify_by_kid\n");
    test_verify_by_kid(dir);
    fprintf(stderr, "-- test_es256_set\n");
    test_es256_set(dir);
    fprintf(stderr, "-- test_config\n");
    test_config(dir);
    rmdir(dir);
    return check_summary();
}
