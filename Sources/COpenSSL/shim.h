#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
// Deprecated APIs (HMAC_CTX_*, RSA_*) must not be reachable.
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>

// Swift cannot import function-like macros: each wrapper below exists for that reason only.
static inline void COpenSSL_free(void *p) { OPENSSL_free(p); }
static inline long COpenSSL_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }

#endif
