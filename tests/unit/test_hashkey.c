#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hashkey.h"

#define MAX_DEC "340282366920938463463374607431768211455" /* 2^128 - 1 */

static kn_u128 parse_ok(const char *s)
{
    kn_u128 v = 0;
    assert_true(kn_hashkey_parse(s, strlen(s), &v));
    return v;
}

static void assert_dec(kn_u128 v, const char *want)
{
    char buf[KN_U128_DEC_MAX];
    size_t n = kn_hashkey_format(v, buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void parse_accepts_zero_and_max(void **state)
{
    (void)state;
    assert_true(parse_ok("0") == 0);
    assert_true(parse_ok("1") == 1);
    assert_true(parse_ok(MAX_DEC) == ~(kn_u128)0);
}

static void parse_rejects_2_pow_128(void **state)
{
    (void)state;
    assert_false(kn_hashkey_parse("340282366920938463463374607431768211456", 39, NULL));
    assert_false(kn_hashkey_parse("999999999999999999999999999999999999999", 39, NULL));
}

static void parse_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"", "00", "01", "-1", "+1", " 1", "1 ", "1a", "1.0", "1000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(kn_hashkey_parse(bad[i], strlen(bad[i]), NULL));
}

static void parse_uses_length_not_nul(void **state)
{
    (void)state;
    kn_u128 v = 0;
    assert_true(kn_hashkey_parse("12345", 2, &v));
    assert_true(v == 12);
}

static void format_round_trips(void **state)
{
    (void)state;
    assert_dec(0, "0");
    assert_dec(10, "10");
    assert_dec(~(kn_u128)0, MAX_DEC);
    assert_dec(parse_ok("113427455640312821154458202477256070485"), "113427455640312821154458202477256070485");
}

static void partition_key_hash_is_md5_big_endian(void **state)
{
    (void)state;
    /* Expected values: int.from_bytes(hashlib.md5(key).digest(), "big"). */
    assert_true(kn_hashkey_of_partition_key("123456", 6) == parse_ok("299132688689127175738334524183350839358"));
    assert_true(kn_hashkey_of_partition_key("a", 1) == parse_ok("16955237001963240173058271559858726497"));
    assert_true(kn_hashkey_of_partition_key("\xc3\xa9t\xc3\xa9", 5) ==
                parse_ok("295999419373203071729176520050689792210"));
}

static void three_shards_split_like_aws(void **state)
{
    (void)state;
    kn_u128 s, e;
    kn_hashkey_shard_range(0, 3, &s, &e);
    assert_dec(s, "0");
    assert_dec(e, "113427455640312821154458202477256070484");
    kn_hashkey_shard_range(1, 3, &s, &e);
    assert_dec(s, "113427455640312821154458202477256070485");
    assert_dec(e, "226854911280625642308916404954512140969");
    kn_hashkey_shard_range(2, 3, &s, &e);
    assert_dec(s, "226854911280625642308916404954512140970");
    assert_dec(e, MAX_DEC);
}

static void worked_example_lands_in_shard_2(void **state)
{
    (void)state;
    kn_u128 h = kn_hashkey_of_partition_key("123456", 6);
    unsigned found = 99;
    for (unsigned i = 0; i < 3; i++) {
        kn_u128 s, e;
        kn_hashkey_shard_range(i, 3, &s, &e);
        if (h >= s && h <= e)
            found = i;
    }
    assert_int_equal(found, 2);
}

static void one_shard_owns_everything(void **state)
{
    (void)state;
    kn_u128 s, e;
    kn_hashkey_shard_range(0, 1, &s, &e);
    assert_true(s == 0);
    assert_true(e == ~(kn_u128)0);
}

static void power_of_two_shards_split_exactly(void **state)
{
    (void)state;
    /* 2^128 / 4 = 2^126 exactly: floor(2^128/n) must not lose the +1 that (2^128-1)/n would. */
    kn_u128 s, e;
    kn_hashkey_shard_range(1, 4, &s, &e);
    assert_true(s == (kn_u128)1 << 126);
    assert_true(e == ((kn_u128)1 << 127) - 1);
    kn_hashkey_shard_range(3, 4, &s, &e);
    assert_true(s == (kn_u128)3 << 126);
    assert_true(e == ~(kn_u128)0);
}

static void ranges_are_contiguous(void **state)
{
    (void)state;
    const unsigned counts[] = {2, 3, 7, 10, 100, 1000};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        unsigned n = counts[c];
        kn_u128 prev_end = 0;
        for (unsigned i = 0; i < n; i++) {
            kn_u128 s, e;
            kn_hashkey_shard_range(i, n, &s, &e);
            if (i == 0)
                assert_true(s == 0);
            else
                assert_true(s == prev_end + 1);
            assert_true(e >= s);
            prev_end = e;
        }
        assert_true(prev_end == ~(kn_u128)0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_accepts_zero_and_max),
        cmocka_unit_test(parse_rejects_2_pow_128),
        cmocka_unit_test(parse_rejects_malformed),
        cmocka_unit_test(parse_uses_length_not_nul),
        cmocka_unit_test(format_round_trips),
        cmocka_unit_test(partition_key_hash_is_md5_big_endian),
        cmocka_unit_test(three_shards_split_like_aws),
        cmocka_unit_test(worked_example_lands_in_shard_2),
        cmocka_unit_test(one_shard_owns_everything),
        cmocka_unit_test(power_of_two_shards_split_exactly),
        cmocka_unit_test(ranges_are_contiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
