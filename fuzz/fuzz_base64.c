/* Fuzz target: base64 (lib/base64.h), which kinesisd runs on every record's Data and the CLI on --data-base64.
 *
 * Input: any bytes, used twice: as text to decode, and as data to encode.
 * Properties:
 *   - decoding agrees with a reference decoder written here from RFC 4648 and the rules in base64.h (padded or
 *     unpadded, no whitespace, padding only completing the last quantum, unused low bits ignored): same verdict,
 *     same bytes, and kn_base64_decoded_len gives the decoded length;
 *   - whatever decodes re-encodes to text that decodes to the same bytes and differs from the input only in padding
 *     and in the unused low bits of the last character;
 *   - encode then decode gives the data back, padded and with the padding stripped; kn_base64_encoded_len is exact;
 *   - at a cap one byte too small both calls fail with KN_ERR_NO_MEMORY and leave the buffer as it was. */
#include "fuzz_util.h"

#include "base64.h"

static int ref_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Reference decoder: a bit accumulator, deliberately unlike base64.c's table of 4-character groups. Writes at most
 * len bytes to out; returns the decoded length, or -1 when text is not valid. */
static long ref_decode(const char *text, size_t len, uint8_t *out)
{
    size_t pad = 0;
    while (pad < len && text[len - 1 - pad] == '=')
        pad++;
    size_t n = len - pad;
    if (n % 4 == 1 || pad > 2)
        return -1;
    /* Padding, when present, makes the text whole quanta and is exactly what the last quantum lacks. */
    if (pad > 0 && (len % 4 != 0 || 4 - n % 4 != pad))
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    long out_len = 0;
    for (size_t i = 0; i < n; i++) {
        int v = ref_value((unsigned char)text[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[out_len++] = (uint8_t)(acc >> bits);
        }
    }
    return out_len;
}

static size_t strip_padding(const char *t, size_t n)
{
    while (n && t[n - 1] == '=')
        n--;
    return n;
}

/* Two valid texts of the same bytes differ at most in padding and in the unused low bits of the last character
 * (4 of them after 2 characters of a quantum, 2 after 3). */
static void check_same_text(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = strip_padding(a, a_len);
    KN_FUZZ_CHECK(strip_padding(b, b_len) == n);
    if (n == 0)
        return;
    KN_FUZZ_CHECK(memcmp(a, b, n - 1) == 0);
    int unused = n % 4 == 2 ? 4 : n % 4 == 3 ? 2 : 0;
    KN_FUZZ_CHECK(ref_value((unsigned char)a[n - 1]) >> unused == ref_value((unsigned char)b[n - 1]) >> unused);
}

static void check_decode(const char *text, size_t len)
{
    uint8_t *expect = malloc(len + 1);
    if (!expect)
        abort();
    long ref_len = ref_decode(text, len, expect);
    kn_buf out;
    kn_buf_init(&out, len + 16);
    KN_FUZZ_CHECK(kn_buf_append(&out, "prefix", 6) == KN_OK);
    kn_status st = kn_base64_decode(text, len, &out);
    if (ref_len < 0) {
        KN_FUZZ_CHECK(st == KN_ERR_INVALID_ARGUMENT);
        KN_FUZZ_CHECK(out.len == 6 && memcmp(out.data, "prefix", 6) == 0);
        goto cleanup;
    }
    KN_FUZZ_CHECK(st == KN_OK);
    KN_FUZZ_CHECK(out.len == 6 + (size_t)ref_len && memcmp(out.data + 6, expect, (size_t)ref_len) == 0);
    KN_FUZZ_CHECK(kn_base64_decoded_len(text, len) == (size_t)ref_len);
    KN_FUZZ_CHECK(out.data[out.len] == '\0');

    /* A cap one byte short of the result: refused, buffer untouched. */
    if (ref_len > 0) {
        kn_buf small;
        kn_buf_init(&small, 6 + (size_t)ref_len - 1);
        KN_FUZZ_CHECK(kn_buf_append(&small, "prefix", 6) == KN_OK);
        KN_FUZZ_CHECK(kn_base64_decode(text, len, &small) == KN_ERR_NO_MEMORY);
        KN_FUZZ_CHECK(small.len == 6 && memcmp(small.data, "prefix", 6) == 0);
        kn_buf_cleanup(&small);
    }

    /* Re-encoding decodes back to the same bytes and is the same text but for padding and unused bits. */
    kn_buf again, back;
    kn_buf_init(&again, 2 * len + 16);
    kn_buf_init(&back, len + 16);
    KN_FUZZ_CHECK(kn_base64_encode(expect, (size_t)ref_len, &again) == KN_OK);
    KN_FUZZ_CHECK(kn_base64_decode((const char *)again.data, again.len, &back) == KN_OK);
    KN_FUZZ_CHECK(back.len == (size_t)ref_len && (ref_len == 0 || memcmp(back.data, expect, back.len) == 0));
    check_same_text(text, len, (const char *)again.data, again.len);
    kn_buf_cleanup(&again);
    kn_buf_cleanup(&back);
cleanup:
    kn_buf_cleanup(&out);
    free(expect);
}

static void check_encode(const uint8_t *data, size_t size)
{
    size_t enc_len = kn_base64_encoded_len(size);
    kn_buf enc, dec;
    kn_buf_init(&enc, enc_len);
    kn_buf_init(&dec, size);
    KN_FUZZ_CHECK(kn_base64_encode(data, size, &enc) == KN_OK);
    KN_FUZZ_CHECK(enc.len == enc_len && enc.len % 4 == 0);
    KN_FUZZ_CHECK(kn_base64_decode((const char *)enc.data, enc.len, &dec) == KN_OK);
    KN_FUZZ_CHECK(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0));

    /* Unpadded, as the worked example's data is written. */
    size_t unpadded = enc.len;
    while (unpadded && enc.data[unpadded - 1] == '=')
        unpadded--;
    kn_buf_reset(&dec);
    KN_FUZZ_CHECK(kn_base64_decode((const char *)enc.data, unpadded, &dec) == KN_OK);
    KN_FUZZ_CHECK(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0));

    if (enc_len > 0) {
        kn_buf small;
        kn_buf_init(&small, enc_len - 1);
        KN_FUZZ_CHECK(kn_base64_encode(data, size, &small) == KN_ERR_NO_MEMORY);
        KN_FUZZ_CHECK(small.len == 0);
        kn_buf_cleanup(&small);
    }
    kn_buf_cleanup(&enc);
    kn_buf_cleanup(&dec);
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
    check_decode((const char *)data, size);
    check_encode(data, size);
}

KN_FUZZ_ENTRY(fuzz_base64)
