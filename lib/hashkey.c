#include "hashkey.h"

#include "crypto.h"

#include <string.h>

#define U128_MAX (~(kn_u128)0)

bool kn_hashkey_parse(const char *s, size_t len, kn_u128 *out)
{
    /* The service's pattern 0|([1-9]\d{0,38}) forbids signs, spaces and leading zeros. */
    if (!s || len == 0 || len > KN_U128_DEC_MAX - 1)
        return false;
    if (s[0] == '0' && len > 1)
        return false;
    kn_u128 v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (U128_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (out)
        *out = v;
    return true;
}

size_t kn_hashkey_format(kn_u128 v, char out[KN_U128_DEC_MAX])
{
    char tmp[KN_U128_DEC_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (unsigned)(v % 10));
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

kn_u128 kn_hashkey_of_partition_key(const char *key, size_t len)
{
    uint8_t md5[KN_MD5_LEN];
    kn_crypto_md5(key, len, md5);
    uint64_t hi, lo; /* big-endian halves */
    memcpy(&hi, md5, 8);
    memcpy(&lo, md5 + 8, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    hi = __builtin_bswap64(hi);
    lo = __builtin_bswap64(lo);
#endif
    return (kn_u128)hi << 64 | lo;
}

/* floor(2^128 / n) without a 129-bit type: 2^128 = n*q + r + 1 where q, r are (2^128-1)'s quotient and remainder,
 * so the floor is q + 1 exactly when r + 1 == n. */
static kn_u128 shard_width(unsigned n)
{
    kn_u128 q = U128_MAX / n;
    kn_u128 r = U128_MAX % n;
    return r + 1 == n ? q + 1 : q;
}

void kn_hashkey_shard_range(unsigned i, unsigned n, kn_u128 *start, kn_u128 *end)
{
    if (n <= 1) {
        /* One shard owns everything; also keeps shard_width(1) = 2^128 from being needed. */
        *start = 0;
        *end = U128_MAX;
        return;
    }
    kn_u128 w = shard_width(n);
    *start = (kn_u128)i * w;
    *end = i + 1 >= n ? U128_MAX : (kn_u128)(i + 1) * w - 1;
}
