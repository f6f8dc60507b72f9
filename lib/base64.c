/* kn_base64: table-driven, because records are up to 1 MiB (10 MiB per request) and OpenSSL's EVP_DecodeBlock
 * silently skips whitespace and cannot tell how much padding it removed. */
#include "base64.h"

#include <string.h>

static const char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0-63 for alphabet characters, 0xff for everything else ('=' included: padding is handled before decoding). */
static const uint8_t k_values[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,
    ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
    ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
    ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['+'] = 62, ['/'] = 63,
};

static bool is_alphabet(unsigned char c)
{
    return c == 'A' || k_values[c] != 0;
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

kn_status kn_base64_decode(const char *text, size_t len, kn_buf *out)
{
    size_t n = data_chars(text, len);
    if (n == SIZE_MAX || n % 4 == 1)
        return KN_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++)
        if (!is_alphabet((unsigned char)text[i]))
            return KN_ERR_INVALID_ARGUMENT;
    size_t out_len = kn_base64_decoded_len(text, len);
    uint8_t *p = kn_buf_reserve(out, out_len);
    if (!p)
        return KN_ERR_NO_MEMORY;
    const unsigned char *in = (const unsigned char *)text;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t v = (uint32_t)k_values[in[i]] << 18 | (uint32_t)k_values[in[i + 1]] << 12 |
                     (uint32_t)k_values[in[i + 2]] << 6 | k_values[in[i + 3]];
        *p++ = (uint8_t)(v >> 16);
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
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
