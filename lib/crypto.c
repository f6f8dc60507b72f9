/* kn_crypto over OpenSSL 3.
 *
 * Fetching an EVP_MD / EVP_MAC walks the provider store under a lock and costs more than hashing a small request, so
 * the algorithms are fetched once per process (pthread_once). Contexts cannot be shared between threads, so each
 * thread lazily makes one EVP_MD_CTX and one EVP_MAC_CTX and reuses them for every call; a pthread key destructor
 * frees them when the thread exits. The main thread's stay reachable until the process ends (not freed in a library
 * destructor: that would run after OpenSSL's own atexit cleanup). */
#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct crypto_thread {
    EVP_MD_CTX *md;
    EVP_MAC_CTX *hmac; /* bound to SHA-256 at creation; re-keyed per call */
} crypto_thread;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_sha256;
static EVP_MD *g_md5;
static EVP_MAC *g_hmac;
static pthread_key_t g_thread_key;
static bool g_key_ok;

static void thread_free(void *p)
{
    crypto_thread *t = p;
    if (!t)
        return;
    EVP_MD_CTX_free(t->md);
    EVP_MAC_CTX_free(t->hmac);
    free(t);
}

static void fetch_once(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_md5 = EVP_MD_fetch(NULL, "MD5", NULL); /* absent under a FIPS-only configuration: kn_crypto_md5 then fails */
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g_key_ok = pthread_key_create(&g_thread_key, thread_free) == 0;
}

static EVP_MAC_CTX *hmac_ctx_new(void)
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(g_hmac);
    if (!ctx)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_CTX_set_params(ctx, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* This thread's contexts, made on first use; NULL when OpenSSL or malloc fails. */
static crypto_thread *thread_ctx(void)
{
    pthread_once(&g_once, fetch_once);
    if (!g_key_ok || !g_sha256 || !g_hmac)
        return NULL;
    crypto_thread *t = pthread_getspecific(g_thread_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->md = EVP_MD_CTX_new();
    t->hmac = hmac_ctx_new();
    if (!t->md || !t->hmac || pthread_setspecific(g_thread_key, t) != 0) {
        thread_free(t);
        return NULL;
    }
    return t;
}

static bool digest(const EVP_MD *md, const void *data, size_t len, uint8_t *out, size_t out_len)
{
    crypto_thread *t = thread_ctx();
    unsigned int n = 0;
    if (t && md && EVP_DigestInit_ex2(t->md, md, NULL) && EVP_DigestUpdate(t->md, data, len) &&
        EVP_DigestFinal_ex(t->md, out, &n) && n == out_len)
        return true;
    memset(out, 0, out_len);
    return false;
}

bool kn_crypto_sha256(const void *data, size_t len, uint8_t out[KN_SHA256_LEN])
{
    pthread_once(&g_once, fetch_once);
    return digest(g_sha256, data, len, out, KN_SHA256_LEN);
}

bool kn_crypto_md5(const void *data, size_t len, uint8_t out[KN_MD5_LEN])
{
    pthread_once(&g_once, fetch_once);
    return digest(g_md5, data, len, out, KN_MD5_LEN);
}

bool kn_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                           uint8_t out[KN_SHA256_LEN])
{
    crypto_thread *t = thread_ctx();
    size_t n = 0;
    /* EVP_MAC_init rejects a NULL key even when its length is 0. */
    static const uint8_t empty_key[1];
    if (t && EVP_MAC_init(t->hmac, key_len ? key : empty_key, key_len, NULL) && EVP_MAC_update(t->hmac, data, len) &&
        EVP_MAC_final(t->hmac, out, &n, KN_SHA256_LEN) && n == KN_SHA256_LEN)
        return true;
    memset(out, 0, KN_SHA256_LEN);
    return false;
}

void kn_crypto_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

bool kn_crypto_equal_ct(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

bool kn_crypto_random(void *out, size_t len)
{
    /* RAND_bytes takes an int; larger requests are served in pieces. */
    uint8_t *p = out;
    while (len > 0) {
        int n = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
        if (RAND_bytes(p, n) != 1)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

void kn_crypto_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}
