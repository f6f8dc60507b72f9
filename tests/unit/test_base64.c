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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
