/* kn_base64: table-driven, because records are up to 1 MiB (10 MiB per request) and OpenSSL's EVP_DecodeBlock
 * silently skips whitespace and cannot tell how much padding it removed. */
#include "base64.h"

#include <string.h>

static const char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0-63 for alphabet characters, 0xff for everything else ('=' included: padding is handled before decoding), so a
 * decoder can OR values together and test bit 6 once. Written out because designated initialisers would leave the
 * rest 0. Row r holds characters 16r to 16r+15. */
static const uint8_t k_values[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   62, 0xff, 0xff, 0xff,   63,
      52,   53,   54,   55,   56,   57,   58,   59,   60,   61, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff,    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,   10,   11,   12,   13,   14,
      15,   16,   17,   18,   19,   20,   21,   22,   23,   24,   25, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff,   26,   27,   28,   29,   30,   31,   32,   33,   34,   35,   36,   37,   38,   39,   40,
      41,   42,   43,   44,   45,   46,   47,   48,   49,   50,   51, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static bool is_alphabet(unsigned char c)
{
    return k_values[c] != 0xff;
}

size_t kn_base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

kn_status kn_base64_encode(const void *data, size_t len, kn_buf *out)
{
    if (len > (SIZE_MAX - 2) / 4 * 3)
        return KN_ERR_NO_MEMORY;
    size_t n = kn_base64_encoded_len(len);
    uint8_t *p = kn_buf_reserve(out, n);
    if (!p)
        return KN_ERR_NO_MEMORY;
    const uint8_t *in = data;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = (uint8_t)k_alphabet[v >> 18];
        *p++ = (uint8_t)k_alphabet[(v >> 12) & 63];
        *p++ = (uint8_t)k_alphabet[(v >> 6) & 63];
        *p++ = (uint8_t)k_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *p++ = (uint8_t)k_alphabet[v >> 18];
        *p++ = (uint8_t)k_alphabet[(v >> 12) & 63];
        *p++ = i + 1 < len ? (uint8_t)k_alphabet[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    out->len += n;
    out->data[out->len] = '\0';
    return KN_OK;
}

/* Characters of data once trailing padding is removed; SIZE_MAX when the padding itself is malformed. */
static size_t data_chars(const char *text, size_t len)
{
    size_t pad = 0;
    while (pad < len && text[len - 1 - pad] == '=')
        pad++;
    if (pad == 0)
        return len;
    size_t n = len - pad;
    /* Padding only ever completes the last quantum: 2 characters of data take "==", 3 take "=". */
    if (pad > 2 || len % 4 != 0 || (n % 4 == 2) != (pad == 2) || (n % 4 == 3) != (pad == 1))
        return SIZE_MAX;
    return n;
}

size_t kn_base64_decoded_len(const char *text, size_t len)
{
    size_t n = data_chars(text, len);
    if (n == SIZE_MAX)
        n = len;
    return n / 4 * 3 + (n % 4 >= 2 ? n % 4 - 1 : 0);
}

/* Whether every character of text[0, n) is in the alphabet. */
static bool all_alphabet(const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alphabet((unsigned char)text[i]))
            return false;
    return true;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* Decodes 32 characters at a time with AVX2 (Mula and Lemire's method, "Faster Base64 Encoding and Decoding using
 * AVX2 Instructions", 2018): two nibble lookups flag non-alphabet characters, a third gives the offset that turns
 * each character into its 6-bit value, and two multiply-adds pack four values into three bytes. Decodes as many
 * blocks of 32 characters of in[0, n) as it can; returns how many characters it consumed (a multiple of 32) and sets
 * *bad when any of them was outside the alphabet. */
__attribute__((target("avx2"))) static size_t decode_avx2(const unsigned char *in, size_t n, uint8_t *out, bool *bad)
{
    const __m256i lut_lo = _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A,
                                            0x1B, 0x1B, 0x1B, 0x1A, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                            0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
    const __m256i lut_hi = _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
                                            0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                            0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m256i lut_roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4,
                                              -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i nibble = _mm256_set1_epi8(0x0f), slash = _mm256_set1_epi8('/');
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5, 4,
                                          10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    __m256i flags = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32, out += 24) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi32(v, 4), nibble);
        __m256i lo = _mm256_and_si256(v, nibble);
        flags = _mm256_or_si256(flags, _mm256_and_si256(_mm256_shuffle_epi8(lut_lo, lo),
                                                        _mm256_shuffle_epi8(lut_hi, hi)));
        __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(v, slash), hi));
        v = _mm256_add_epi8(v, roll);                                      /* 6-bit values a b c d */
        v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));        /* a<<6|b, c<<6|d */
        v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));           /* a<<18|b<<12|c<<6|d */
        v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pack), lanes); /* 24 bytes, big-endian per triple */
        _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(v));
        _mm_storel_epi64((__m128i *)(out + 16), _mm256_extracti128_si256(v, 1));
    }
    *bad = !_mm256_testz_si256(flags, flags);
    return i;
}

static bool have_avx2(void)
{
    static int have = -1; /* a benign race: every thread computes the same answer */
    if (have < 0)
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    return have == 1;
}
#endif

/* Decodes whole quanta 4 characters at a time, validating as it goes: an invalid character's 0xff sets bit 6 of
 * `bad`, which no alphabet value (0-63) has. Returns the end of the output, or NULL when a character was invalid. */
static uint8_t *decode_quanta(const unsigned char *in, size_t n, uint8_t *p)
{
    unsigned bad = 0;
    size_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (n >= 32 && have_avx2()) {
        bool simd_bad;
        i = decode_avx2(in, n, p, &simd_bad);
        if (simd_bad)
            return NULL;
        p += i / 4 * 3;
    }
#endif
    for (; i + 4 <= n; i += 4) {
        unsigned a = k_values[in[i]], b = k_values[in[i + 1]], c = k_values[in[i + 2]], d = k_values[in[i + 3]];
        bad |= a | b | c | d;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        p[0] = (uint8_t)(v >> 16);
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)v;
        p += 3;
    }
    return bad & 0x40 ? NULL : p;
}

kn_status kn_base64_decode(const char *text, size_t len, kn_buf *out)
{
    size_t n = data_chars(text, len);
    if (n == SIZE_MAX || n % 4 == 1)
        return KN_ERR_INVALID_ARGUMENT;
    size_t out_len = kn_base64_decoded_len(text, len);
    uint8_t *p = kn_buf_reserve(out, out_len);
    if (!p) /* invalid text is reported as such even when it would not fit */
        return all_alphabet(text, n) ? KN_ERR_NO_MEMORY : KN_ERR_INVALID_ARGUMENT;
    const unsigned char *in = (const unsigned char *)text;
    size_t i = n / 4 * 4;
    p = decode_quanta(in, n, p);
    if (!p || !all_alphabet(text + i, n - i)) {
        out->data[out->len] = '\0'; /* the failed attempt wrote past len */
        return KN_ERR_INVALID_ARGUMENT;
    }
    if (n - i >= 2) {
        uint32_t v = (uint32_t)k_values[in[i]] << 18 | (uint32_t)k_values[in[i + 1]] << 12 |
                     (n - i == 3 ? (uint32_t)k_values[in[i + 2]] << 6 : 0);
        *p++ = (uint8_t)(v >> 16);
        if (n - i == 3)
            *p++ = (uint8_t)(v >> 8);
    }
    out->len += out_len;
    out->data[out->len] = '\0';
    return KN_OK;
}

bool kn_base64_decode_canonical(const char *text, size_t len, uint8_t *out, size_t *out_len)
{
    if (len % 4 != 0)
        return false;
    *out_len = 0;
    if (len == 0)
        return true;
    const unsigned char *in = (const unsigned char *)text;
    uint8_t *p = decode_quanta(in, len - 4, out);
    if (!p)
        return false;
    /* The last quantum: "xxxx", "xxx=" or "xx==", and the bits padding drops must be zero. */
    const unsigned char *q = in + len - 4;
    size_t pad = q[3] != '=' ? 0 : q[2] != '=' ? 1 : 2;
    unsigned v[4] = {0, 0, 0, 0}, bad = 0;
    for (size_t i = 0; i < 4 - pad; i++)
        bad |= v[i] = k_values[q[i]];
    if ((bad & 0x40) || (pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
        return false;
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
    p[0] = (uint8_t)(w >> 16);
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)w;
    *out_len = (size_t)(p - out) + 3 - pad;
    return true;
}
