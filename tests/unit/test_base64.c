/* kn_base64: RFC 4648 section 10 vectors both ways, unpadded input, the worked example's data, and every way input can
 * be invalid (each leaving the output untouched). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base64.h"

#define CAP (1 << 20)

static const struct {
    const char *plain, *encoded;
} k_rfc4648[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void encode_matches_rfc_4648(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_rfc4648 / sizeof k_rfc4648[0]; i++) {
        kn_buf out;
        kn_buf_init(&out, CAP);
        assert_int_equal(kn_base64_encode(k_rfc4648[i].plain, strlen(k_rfc4648[i].plain), &out), KN_OK);
        assert_int_equal(out.len, strlen(k_rfc4648[i].encoded));
        assert_int_equal(out.len, kn_base64_encoded_len(strlen(k_rfc4648[i].plain)));
        assert_memory_equal(out.data ? out.data : (uint8_t *)"", k_rfc4648[i].encoded, out.len);
        kn_buf_cleanup(&out);
    }
}

static void assert_decodes(const char *text, const void *want, size_t want_len)
{
    kn_buf out;
    kn_buf_init(&out, CAP);
    assert_int_equal(kn_base64_decode(text, strlen(text), &out), KN_OK);
    assert_int_equal(out.len, want_len);
    assert_int_equal(kn_base64_decoded_len(text, strlen(text)), want_len);
    if (want_len)
        assert_memory_equal(out.data, want, want_len);
    kn_buf_cleanup(&out);
}

static void decode_matches_rfc_4648(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_rfc4648 / sizeof k_rfc4648[0]; i++)
        assert_decodes(k_rfc4648[i].encoded, k_rfc4648[i].plain, strlen(k_rfc4648[i].plain));
}

static void decode_accepts_unpadded(void **state)
{
    (void)state;
    assert_decodes("Zg", "f", 1);
    assert_decodes("Zm8", "fo", 2);
    assert_decodes("Zm9vYg", "foob", 4);
    assert_decodes("Zm9vYmE", "fooba", 5);
}

static void decode_accepts_worked_example_data(void **state)
{
    (void)state;
    /* The README's worked example passes this unpadded value to --data-base64. */
    const char *text = "SGVsbG8slFRoaXMgaXMgYSB0ZXN0IHN0cmluZw";
    const uint8_t want[] = {'H', 'e', 'l', 'l', 'o', ',', 0x94, 'T', 'h', 'i', 's', ' ', 'i', 's', ' ', 'a',
                            ' ', 't', 'e', 's', 't', ' ', 's', 't', 'r', 'i', 'n', 'g'};
    assert_decodes(text, want, sizeof want);
}

static void decode_appends_after_existing_content(void **state)
{
    (void)state;
    kn_buf out;
    kn_buf_init(&out, CAP);
    assert_int_equal(kn_buf_append_str(&out, "x:"), KN_OK);
    assert_int_equal(kn_base64_decode("Zm9vYmFy", 8, &out), KN_OK);
    assert_string_equal((const char *)out.data, "x:foobar");
    kn_buf_cleanup(&out);
}

static void binary_round_trips(void **state)
{
    (void)state;
    uint8_t bytes[256 * 3 + 2];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof bytes; len += 1 + len / 8) {
        kn_buf enc, dec;
        kn_buf_init(&enc, CAP);
        kn_buf_init(&dec, CAP);
        assert_int_equal(kn_base64_encode(bytes, len, &enc), KN_OK);
        assert_int_equal(kn_base64_decode((const char *)enc.data, enc.len, &dec), KN_OK);
        assert_int_equal(dec.len, len);
        if (len)
            assert_memory_equal(dec.data, bytes, len);
        kn_buf_cleanup(&enc);
        kn_buf_cleanup(&dec);
    }
}

static void decode_rejects_invalid_and_leaves_out_unchanged(void **state)
{
    (void)state;
    const char *bad[] = {
        "Z",          /* 1 mod 4 characters */
        "Zm9vY",      /* 1 mod 4 */
        "Zm9vY===",   /* 1 mod 4 with padding */
        "=",          "==", "====",
        "Zg=",        /* "==" needed */
        "Zm8==",      /* "=" needed, and length not a multiple of 4 */
        "Zm9v=",      /* padding after a complete quantum */
        "Zm9v====",
        "Zg===",      /* too much padding */
        "Z=g=",       /* padding inside */
        "Zm=9v",
        "Zm9v Yg==",  /* whitespace */
        "Zm9v\nYg==",
        "Zm9vYg==\n",
        "Zm9v-_8=",   /* URL-safe alphabet is not ours */
        "Zm9v*g==",
        "Zm9vYg\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kn_buf out;
        kn_buf_init(&out, CAP);
        assert_int_equal(kn_buf_append_str(&out, "keep"), KN_OK);
        assert_int_equal(kn_base64_decode(bad[i], strlen(bad[i]), &out), KN_ERR_INVALID_ARGUMENT);
        assert_int_equal(out.len, 4);
        assert_string_equal((const char *)out.data, "keep");
        kn_buf_cleanup(&out);
    }
}

static void decode_rejects_embedded_nul(void **state)
{
    (void)state;
    kn_buf out;
    kn_buf_init(&out, CAP);
    assert_int_equal(kn_base64_decode("Zm9v\0mFy", 8, &out), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(out.len, 0);
    kn_buf_cleanup(&out);
}

static void decode_respects_cap_and_leaves_out_unchanged(void **state)
{
    (void)state;
    kn_buf out;
    kn_buf_init(&out, 5);
    assert_int_equal(kn_buf_append_str(&out, "ab"), KN_OK);
    assert_int_equal(kn_base64_decode("Zm9vYg==", 8, &out), KN_ERR_NO_MEMORY);
    assert_string_equal((const char *)out.data, "ab");
    kn_buf_cleanup(&out);
}

static void encode_respects_cap(void **state)
{
    (void)state;
    kn_buf out;
    kn_buf_init(&out, 7);
    assert_int_equal(kn_base64_encode("foobar", 6, &out), KN_ERR_NO_MEMORY);
    assert_int_equal(out.len, 0);
    kn_buf_cleanup(&out);
}

static void decode_uses_length_not_nul(void **state)
{
    (void)state;
    kn_buf out;
    kn_buf_init(&out, CAP);
    assert_int_equal(kn_base64_decode("Zm9vYmFy!!!", 8, &out), KN_OK);
    assert_string_equal((const char *)out.data, "foobar");
    kn_buf_cleanup(&out);
}

static void decoded_len_bounds_invalid_text(void **state)
{
    (void)state;
    assert_int_equal(kn_base64_decoded_len("Zm9vYmFy", 8), 6);
    assert_int_equal(kn_base64_decoded_len("Zm9vYg==", 8), 4);
    /* Never more than three bytes per four characters, whatever the text. */
    assert_true(kn_base64_decoded_len("Zm=9vYg=", 8) <= 6);
    assert_true(kn_base64_decoded_len("=====", 5) <= 3);
    assert_int_equal(kn_base64_decoded_len("A", 1), 0);
}

/* The rule AWS's deserialiser applies to a blob, spelled out the way kinesisd's schema check (server/schema.c
 * check_blob) spells it: a multiple of 4, alphabet characters, '=' only in a trailing run of at most 2, and no bits
 * set that the padding drops. */
static int reference_value(char c)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c ? strchr(alphabet, c) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

static bool reference_canonical(const char *s, size_t len)
{
    if (len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (reference_value(s[i]) < 0 && !(s[i] == '=' && (i + 1 == len || s[i + 1] == '=')))
            return false;
    size_t pad = 0;
    while (pad < len && s[len - 1 - pad] == '=')
        pad++;
    if (len == 0)
        return true;
    int last = pad < len ? reference_value(s[len - 1 - pad]) : 0;
    return !(pad > 2 || (pad == 1 && (last & 3)) || (pad == 2 && (last & 15)));
}

/* Checks decode_canonical against the reference rule, and its bytes against kn_base64_decode. */
static void check_canonical(const char *s, size_t len)
{
    uint8_t got[64];
    size_t got_len = 99;
    bool ok = kn_base64_decode_canonical(s, len, got, &got_len);
    if (ok != reference_canonical(s, len))
        fail_msg("'%.*s': decode_canonical says %d", (int)len, s, ok);
    if (!ok)
        return;
    kn_buf want;
    kn_buf_init(&want, CAP);
    assert_int_equal(kn_base64_decode(s, len, &want), KN_OK);
    assert_int_equal(got_len, want.len);
    assert_memory_equal(got, want.data ? want.data : (uint8_t *)"", got_len);
    kn_buf_cleanup(&want);
}

static void decode_canonical_matches_rfc_4648(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_rfc4648 / sizeof k_rfc4648[0]; i++) {
        uint8_t out[16];
        size_t n = 99;
        const char *e = k_rfc4648[i].encoded;
        assert_true(kn_base64_decode_canonical(e, strlen(e), out, &n));
        assert_int_equal(n, strlen(k_rfc4648[i].plain));
        assert_memory_equal(out, k_rfc4648[i].plain, n);
    }
}

/* Every 4- and 8-character text over characters that hit each rule: alphabet ends (A, /), values with low bits set
 * or clear (Q has 16 = 0b010000, R 17, g 32, B 1), padding, and outsiders (whitespace, '-', NUL, a UTF-8 byte). */
static void decode_canonical_agrees_with_the_rule_exhaustively(void **state)
{
    (void)state;
    const char set[] = {'A', 'B', 'Q', 'R', 'g', '/', '+', '9', '=', ' ', '-', '\0', '\xc3'};
    const size_t k = sizeof set;
    char s[8];
    for (size_t v = 0; v < k * k * k * k; v++) {
        size_t x = v;
        for (int i = 0; i < 4; i++, x /= k)
            s[i] = set[x % k];
        check_canonical(s, 4);
        /* the same quantum last after a valid one, and first before a valid one */
        memcpy(s + 4, s, 4);
        memcpy(s, "Zm9v", 4);
        check_canonical(s, 8);
        memcpy(s, s + 4, 4);
        memcpy(s + 4, "Zm9v", 4);
        check_canonical(s, 8);
    }
    for (size_t len = 0; len < 12; len++)
        check_canonical("QUJDREVGR0hJ", len); /* lengths that are not a multiple of 4 */
    check_canonical("Zm9vYg==Zm9v", 12);     /* padding inside */
    check_canonical("Zm9vYmFyYmF6", 12);
}

/* Long texts go through the 32-characters-at-a-time decoder where the CPU has one: every byte value at every
 * position of texts of several lengths is accepted exactly when it is in the alphabet, and decodes to what a
 * character-by-character decoder gives. */
static void long_text_is_checked_at_every_position(void **state)
{
    (void)state;
    static const size_t lens[] = {32, 36, 44, 64, 68, 96, 132, 136};
    uint8_t bytes[102], got[128], want[128];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        size_t len = lens[l];
        kn_buf enc;
        kn_buf_init(&enc, CAP);
        assert_int_equal(kn_base64_encode(bytes, len / 4 * 3, &enc), KN_OK);
        char text[160];
        for (size_t pos = 0; pos < len; pos++) {
            for (int c = 0; c < 256; c++) {
                memcpy(text, enc.data, len);
                text[pos] = (char)c;
                size_t n = 0;
                bool ok = kn_base64_decode_canonical(text, len, got, &n);
                if (ok != reference_canonical(text, len))
                    fail_msg("length %zu, byte %d at %zu: decode_canonical says %d", len, c, pos, ok);
                if (!ok)
                    continue;
                size_t w = 0;
                for (size_t i = 0; i + 4 <= len; i += 4) {
                    uint32_t v = 0;
                    int chars = 0;
                    for (int k = 0; k < 4; k++)
                        if (text[i + k] != '=') {
                            v |= (uint32_t)reference_value(text[i + k]) << (18 - 6 * k);
                            chars++;
                        }
                    for (int k = 0; k < chars - 1; k++)
                        want[w++] = (uint8_t)(v >> (16 - 8 * k));
                }
                assert_int_equal(n, w);
                assert_memory_equal(got, want, n);
            }
        }
        kn_buf_cleanup(&enc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_matches_rfc_4648),
        cmocka_unit_test(decode_matches_rfc_4648),
        cmocka_unit_test(decode_accepts_unpadded),
        cmocka_unit_test(decode_accepts_worked_example_data),
        cmocka_unit_test(decode_appends_after_existing_content),
        cmocka_unit_test(binary_round_trips),
        cmocka_unit_test(decode_rejects_invalid_and_leaves_out_unchanged),
        cmocka_unit_test(decode_rejects_embedded_nul),
        cmocka_unit_test(decode_respects_cap_and_leaves_out_unchanged),
        cmocka_unit_test(encode_respects_cap),
        cmocka_unit_test(decode_uses_length_not_nul),
        cmocka_unit_test(decoded_len_bounds_invalid_text),
        cmocka_unit_test(decode_canonical_matches_rfc_4648),
        cmocka_unit_test(decode_canonical_agrees_with_the_rule_exhaustively),
        cmocka_unit_test(long_text_is_checked_at_every_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
