/* gw_tls.c: checks of the gateway's certificate and key files (see gw_tls.h), with OpenSSL. */
#include "gw_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "chat_error.h"

/* The private key must not be encrypted: never ask for a passphrase on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int gw_tls_check_files(const char *cert_file, const char *key_file, time_t now, char *err,
                       size_t errlen)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = CHAT_EINVAL;
    FILE *f = fopen(cert_file, "r");

    if (!f) {
        chat_errf(err, errlen, "CHAT_TLS_CERT: cannot read %s: %s", cert_file, strerror(errno));
        goto out;
    }
    cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!cert) {
        chat_errf(err, errlen, "CHAT_TLS_CERT: %s holds no PEM certificate", cert_file);
        goto out;
    }
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0) {
        chat_errf(err, errlen, "CHAT_TLS_CERT: the certificate in %s has expired", cert_file);
        goto out;
    }
    if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) {
        chat_errf(err, errlen, "CHAT_TLS_CERT: the certificate in %s is not valid yet", cert_file);
        goto out;
    }
    f = fopen(key_file, "r");
    if (!f) {
        chat_errf(err, errlen, "CHAT_TLS_KEY: cannot read %s: %s", key_file, strerror(errno));
        goto out;
    }
    key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!key) {
        chat_errf(err, errlen, "CHAT_TLS_KEY: %s holds no unencrypted PEM private key", key_file);
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        chat_errf(err, errlen, "CHAT_TLS_KEY: %s is not the key of the certificate in %s", key_file,
                  cert_file);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}
