/* kn_crypto over OpenSSL 3.
 *
 * Fetching an EVP_MD walks the provider store under a lock and costs more than hashing a small request, so the
 * algorithms are fetched once per process (pthread_once). Contexts cannot be shared between threads, so each thread
 * lazily makes one EVP_MD_CTX and reuses it for every call; a pthread key destructor frees it when the thread exits.
 * HMAC is built from that digest context (RFC 2104) rather than EVP_MAC, whose re-keying copies and allocates on every
 * call and cost as much as the hashing itself: SigV4 makes five HMACs per request. The main thread's stay reachable until the process ends (not freed in a library
 * destructor: that would run after OpenSSL's own atexit cleanup). */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct crypto_thread {
    EVP_MD_CTX *md;
} crypto_thread;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_sha256;
static EVP_MD *g_md5;
static pthread_key_t g_thread_key;
static bool g_key_ok;

static void thread_free(void *p)
{
    crypto_thread *t = p;
    if (!t)
        return;
    EVP_MD_CTX_free(t->md);
    free(t);
}

static void fetch_once(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_md5 = EVP_MD_fetch(NULL, "MD5", NULL); /* absent under a FIPS-only configuration: kn_crypto_md5 then fails */
    g_key_ok = pthread_key_create(&g_thread_key, thread_free) == 0;
}

/* This thread's context, made on first use; NULL when OpenSSL or malloc fails. */
static crypto_thread *thread_ctx(void)
{
    pthread_once(&g_once, fetch_once);
    if (!g_key_ok || !g_sha256)
        return NULL;
    crypto_thread *t = pthread_getspecific(g_thread_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->md = EVP_MD_CTX_new();
    if (!t->md || pthread_setspecific(g_thread_key, t) != 0) {
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

#define SHA256_BLOCK 64

/* SHA-256 of prefix || data through this thread's context: the padded HMAC key is hashed in place, with no copy of the
 * message. */
static bool sha256_two(crypto_thread *t, const uint8_t *prefix, size_t prefix_len, const void *data, size_t len,
                       uint8_t out[KN_SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex2(t->md, g_sha256, NULL) && EVP_DigestUpdate(t->md, prefix, prefix_len) &&
           EVP_DigestUpdate(t->md, data, len) && EVP_DigestFinal_ex(t->md, out, &n) && n == KN_SHA256_LEN;
}

/* RFC 2104: H((K ^ opad) || H((K ^ ipad) || data)), K zero-padded to the block after hashing a longer key. out may
 * alias key (SigV4's key derivation chains this way): the key is read in full before out is written. */
bool kn_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                           uint8_t out[KN_SHA256_LEN])
{
    crypto_thread *t = thread_ctx();
    uint8_t k[SHA256_BLOCK] = {0}, ipad[SHA256_BLOCK], opad[SHA256_BLOCK + KN_SHA256_LEN];
    bool ok = t != NULL;
    if (key_len > SHA256_BLOCK)
        ok = ok && digest(g_sha256, key, key_len, k, KN_SHA256_LEN);
    else if (key_len > 0)
        memcpy(k, key, key_len);
    if (ok) {
        for (size_t i = 0; i < SHA256_BLOCK; i++) {
            ipad[i] = k[i] ^ 0x36;
            opad[i] = k[i] ^ 0x5c;
        }
        ok = sha256_two(t, ipad, SHA256_BLOCK, data, len, opad + SHA256_BLOCK) &&
             sha256_two(t, opad, SHA256_BLOCK, opad + SHA256_BLOCK, KN_SHA256_LEN, out);
    }
    kn_crypto_wipe(k, sizeof k);
    kn_crypto_wipe(ipad, sizeof ipad);
    kn_crypto_wipe(opad, sizeof opad);
    if (!ok)
        memset(out, 0, KN_SHA256_LEN);
    return ok;
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
