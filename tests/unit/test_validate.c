#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

static void utf8_counts_characters_not_bytes(void **state)
{
    (void)state;
    assert_int_equal(kn_utf8_chars(S("abc")), 3);
    assert_int_equal(kn_utf8_chars(S("\xc3\xa9")), 1);         /* é */
    assert_int_equal(kn_utf8_chars(S("\xe2\x82\xac")), 1);     /* € */
    assert_int_equal(kn_utf8_chars(S("\xf0\x9f\x98\x80")), 1); /* 😀 */
    assert_int_equal(kn_utf8_chars(S("\xf4\x8f\xbf\xbf")), 1); /* U+10FFFF */
    assert_int_equal(kn_utf8_chars("a\0b", 3), 3);
    assert_int_equal(kn_utf8_chars("", 0), 0);
}

static void utf8_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "\x80",             /* lone continuation */
        "\xc3",             /* truncated */
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xf0\x80\x80\xaf", /* overlong 4-byte */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* lead byte beyond range */
        "\xff",
        "\xe2\x82",         /* truncated 3-byte */
        "\xe2\x28\xa1",     /* bad continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_true(kn_utf8_chars(bad[i], strlen(bad[i])) == (size_t)-1);
}

/* The ASCII skip works on 8-byte blocks, so every start offset and run length around a multibyte sequence is tried:
 * the count must equal the number of bytes that do not continue a sequence. */
static void utf8_counts_mixed_text_at_every_alignment(void **state)
{
    (void)state;
    const char *wide[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char buf[64];
    for (size_t off = 0; off < 8; off++)
        for (size_t before = 0; before <= 17; before++)
            for (size_t w = 0; w < 3; w++)
                for (size_t after = 0; after <= 17; after++) {
                    size_t wl = strlen(wide[w]), len = 0;
                    char *p = buf + off;
                    memset(p, 'a', before);
                    len += before;
                    memcpy(p + len, wide[w], wl);
                    len += wl;
                    memset(p + len, 'b', after);
                    len += after;
                    memcpy(p + len, wide[w], wl); /* a second one, at a different alignment */
                    len += wl;
                    assert_int_equal(kn_utf8_chars(p, len), before + after + 2);
                }
}

static void utf8_rejects_malformed_after_long_ascii(void **state)
{
    (void)state;
    const char *bad[] = {"\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\xff", "\xe2\x82", "\xe2\x28\xa1"};
    char buf[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t run = 0; run <= 40; run++)
            for (size_t tail = 0; tail <= 9; tail += 9) {
                size_t bl = strlen(bad[i]);
                memset(buf, 'x', run);
                memcpy(buf + run, bad[i], bl);
                memset(buf + run + bl, 'y', tail);
                assert_true(kn_utf8_chars(buf, run + bl + tail) == (size_t)-1);
            }
}

static void partition_key_limits_are_in_characters(void **state)
{
    (void)state;
    char *ascii256 = repeat("k", 256), *ascii257 = repeat("k", 257);
    char *euro256 = repeat("\xe2\x82\xac", 256), *euro257 = repeat("\xe2\x82\xac", 257);
    assert_null(kn_validate_partition_key(ascii256, 256));
    assert_string_equal(kn_validate_partition_key(ascii257, 257), "Member must have length less than or equal to 256");
    assert_null(kn_validate_partition_key(euro256, strlen(euro256))); /* 768 bytes, 256 characters */
    assert_non_null(kn_validate_partition_key(euro257, strlen(euro257)));
    free(ascii256);
    free(ascii257);
    free(euro256);
    free(euro257);
}

static void partition_key_must_not_be_empty(void **state)
{
    (void)state;
    assert_string_equal(kn_validate_partition_key("", 0), "Member must have length greater than or equal to 1");
    assert_non_null(kn_validate_partition_key(NULL, 0));
}

static void partition_key_rejects_invalid_utf8(void **state)
{
    (void)state;
    assert_non_null(kn_validate_partition_key(S("ab\xff")));
    assert_null(kn_validate_partition_key(S("\xe6\x97\xa5\xe6\x9c\xac")));
}

static void explicit_hash_key_pattern_and_range(void **state)
{
    (void)state;
    assert_null(kn_validate_explicit_hash_key(S("0")));
    assert_null(kn_validate_explicit_hash_key(S("340282366920938463463374607431768211455")));
    assert_string_equal(kn_validate_explicit_hash_key(S("01")),
                        "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})");
    assert_non_null(kn_validate_explicit_hash_key(S("")));
    assert_non_null(kn_validate_explicit_hash_key(S("-1")));
    assert_non_null(kn_validate_explicit_hash_key(S("1000000000000000000000000000000000000000"))); /* 40 digits */
    assert_ptr_equal(kn_validate_explicit_hash_key(S("340282366920938463463374607431768211456")),
                     kn_validate_hash_key_range);
}

static void sequence_number_pattern(void **state)
{
    (void)state;
    char *d129 = repeat("9", 129), *d130 = repeat("9", 130);
    assert_null(kn_validate_sequence_number(S("0")));
    assert_null(kn_validate_sequence_number(S("49590338271490256608559692538361571095921575989136588898")));
    assert_null(kn_validate_sequence_number(d129, 129));
    assert_string_equal(kn_validate_sequence_number(d130, 130),
                        "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})");
    assert_non_null(kn_validate_sequence_number(S("00")));
    assert_non_null(kn_validate_sequence_number(S("12a")));
    assert_non_null(kn_validate_sequence_number(S("")));
    free(d129);
    free(d130);
}

static void stream_name_rules(void **state)
{
    (void)state;
    char *n128 = repeat("a", 128), *n129 = repeat("a", 129);
    assert_null(kn_validate_stream_name(S("Testing")));
    assert_null(kn_validate_stream_name(S("a-b_c.D9")));
    assert_null(kn_validate_stream_name(n128, 128));
    assert_string_equal(kn_validate_stream_name(n129, 129), "Member must have length less than or equal to 128");
    assert_string_equal(kn_validate_stream_name(S("")), "Member must have length greater than or equal to 1");
    assert_string_equal(kn_validate_stream_name(S("bad name")),
                        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    assert_non_null(kn_validate_stream_name(S("a/b")));
    assert_non_null(kn_validate_stream_name(S("\xc3\xa9")));
    free(n128);
    free(n129);
}

static void stream_arn_accepts_service_pattern(void **state)
{
    (void)state;
    assert_null(kn_validate_stream_arn(S("arn:aws:kinesis:us-east-1:123456789012:stream/Testing")));
    assert_null(kn_validate_stream_arn(S("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s")));
    assert_null(kn_validate_stream_arn(S("arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/s")));
    assert_null(kn_validate_stream_arn(S("arn:aws:kinesis::123456789012:stream/s")));
}

static void stream_arn_rejects_other_shapes(void **state)
{
    (void)state;
    const char *bad[] = {
        "arn:aws:kinesis:us-east-1:12345678901:stream/s",   /* 11-digit account */
        "arn:aws:kinesis:us-east-1:1234567890123:stream/s", /* 13-digit account */
        "arn:aws:kinesis:us-east-1:123456789012:stream/",   /* no name */
        "arn:aws:kinesis:us-east-1:123456789012:stream/a b",
        "arn:aws:sqs:us-east-1:123456789012:stream/s",
        "arn:aws:kinesis:us-east-1:123456789012:consumer/s",
        "arn:azure:kinesis:us-east-1:123456789012:stream/s",
        "arn:aws:kinesis:us-east-1\n:123456789012:stream/s",
        "Testing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_string_equal(kn_validate_stream_arn(bad[i], strlen(bad[i])),
                            "Member must satisfy regular expression pattern: "
                            "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+");
    assert_string_equal(kn_validate_stream_arn(S("")), "Member must have length greater than or equal to 1");
}

static void stream_arn_length_cap(void **state)
{
    (void)state;
    const char *prefix = "arn:aws:kinesis:us-east-1:123456789012:stream/";
    char *tail = repeat("x", 2049 - strlen(prefix));
    char arn[2100];
    snprintf(arn, sizeof arn, "%s%s", prefix, tail);
    assert_string_equal(kn_validate_stream_arn(arn, 2049), "Member must have length less than or equal to 2048");
    assert_null(kn_validate_stream_arn(arn, 2048));
    free(tail);
}

static void stream_arn_name_is_extracted(void **state)
{
    (void)state;
    const char *name = NULL;
    size_t n = kn_stream_arn_name(S("arn:aws:kinesis:us-east-1:123456789012:stream/Testing"), &name);
    assert_int_equal(n, 7);
    assert_memory_equal(name, "Testing", 7);
    assert_int_equal(kn_stream_arn_name(S("arn:aws:kinesis:us-east-1:123:stream/x"), &name), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_counts_characters_not_bytes),
        cmocka_unit_test(utf8_rejects_malformed),
        cmocka_unit_test(utf8_counts_mixed_text_at_every_alignment),
        cmocka_unit_test(utf8_rejects_malformed_after_long_ascii),
        cmocka_unit_test(partition_key_limits_are_in_characters),
        cmocka_unit_test(partition_key_must_not_be_empty),
        cmocka_unit_test(partition_key_rejects_invalid_utf8),
        cmocka_unit_test(explicit_hash_key_pattern_and_range),
        cmocka_unit_test(sequence_number_pattern),
        cmocka_unit_test(stream_name_rules),
        cmocka_unit_test(stream_arn_accepts_service_pattern),
        cmocka_unit_test(stream_arn_rejects_other_shapes),
        cmocka_unit_test(stream_arn_length_cap),
        cmocka_unit_test(stream_arn_name_is_extracted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
