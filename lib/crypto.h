/* kn_crypto: SHA-256, HMAC-SHA256, MD5, hex and constant-time compare over OpenSSL 3.
 * The EVP_MD objects are fetched once per process (fetching per call doubles SigV4's cost) and each thread keeps its
 * own digest context (HMAC is built on it), so every function here is thread-safe and allocation-free after a thread's
 * first call. The digest and HMAC functions return false only when OpenSSL cannot allocate (out is then zeroed). */
#ifndef KN_CRYPTO_H
#define KN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_SHA256_LEN 32
#define KN_MD5_LEN 16

bool kn_crypto_sha256(const void *data, size_t len, uint8_t out[KN_SHA256_LEN]);
/* Keys of any length (RFC 2104: longer than the 64-byte block are hashed first); data of any length, not copied.
 * out may alias key. Padded copies of the key are wiped before returning. */
bool kn_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                           uint8_t out[KN_SHA256_LEN]);
bool kn_crypto_md5(const void *data, size_t len, uint8_t out[KN_MD5_LEN]);
/* Lowercase hex of len bytes into out[2*len+1] (NUL-terminated). */
void kn_crypto_hex(const uint8_t *in, size_t len, char *out);
/* Compares in time independent of where the inputs differ. */
bool kn_crypto_equal_ct(const void *a, const void *b, size_t len);
/* Fills out with cryptographically secure random bytes; false on failure. */
bool kn_crypto_random(void *out, size_t len);
/* Overwrites len bytes in a way the compiler cannot elide: for secrets and keys before their memory is reused. */
void kn_crypto_wipe(void *p, size_t len);

#endif
