/* Sequence numbers: the layout real AWS returns (as decoded by kinesalite), ordering, and decimal conversion. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "seqnum.h"

/* A number returned by real Kinesis (kinesalite's tests use it): shard 6, created 2018-11-21. */
#define AWS_SEQ "49590338271490256608559692538361571095921575989136588898"
#define MAX_192 "6277101735386680763835789423207666416102355444464034512895" /* 2^192 - 1 */

static knd_seq parse_ok(const char *s)
{
    knd_seq v;
    assert_true(knd_seq_parse(s, strlen(s), &v));
    return v;
}

static void assert_dec(const knd_seq *v, const char *want)
{
    char buf[KND_SEQ_DEC_MAX];
    size_t n = knd_seq_format(v, buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void decodes_a_real_aws_number(void **state)
{
    (void)state;
    knd_seq v = parse_ok(AWS_SEQ);
    knd_seq_parts p;
    assert_true(knd_seq_parts_of(&v, &p));
    assert_int_equal(p.shard_create_ms, 1542776258000);
    assert_int_equal(p.shard_index, 6);
    assert_int_equal(p.seq_ix, 1734642199);
    assert_int_equal(p.time_ms, 1545084650000);
}

static void make_reproduces_the_aws_number(void **state)
{
    (void)state;
    knd_seq_parts p = {1542776258000, 6, 1734642199, 1545084650000};
    knd_seq v = knd_seq_make(&p);
    assert_dec(&v, AWS_SEQ);
}

/* Expected values computed with kinesalite's stringifySequence layout (hex concatenation), independently. */
static void make_matches_kinesalite_layout(void **state)
{
    (void)state;
    knd_seq_parts a = {1700000000000, 3, 42, 1700000123456};
    knd_seq_parts b = {1700000000000, 17, 1, 1700000000999};
    knd_seq va = knd_seq_make(&a), vb = knd_seq_make(&b);
    assert_dec(&va, "49646437577175378652512468275301311464827197638626508850");
    assert_dec(&vb, "49646437577130777162115407028968674069677692666955956498");
}

static void numbers_have_56_digits(void **state)
{
    (void)state;
    char buf[KND_SEQ_DEC_MAX];
    knd_seq_parts lo = {0, 0, 0, 0}, hi = {68719476735000, UINT32_MAX, INT64_MAX, 68719476735000};
    knd_seq a = knd_seq_make(&lo), b = knd_seq_make(&hi);
    assert_int_equal(knd_seq_format(&a, buf), 56);
    assert_int_equal(knd_seq_format(&b, buf), 56);
}

static void parts_round_trip_to_the_second(void **state)
{
    (void)state;
    knd_seq_parts p = {1700000000123, 1234, 987654321, 1700000555999}, q;
    knd_seq v = knd_seq_make(&p);
    assert_true(knd_seq_parts_of(&v, &q));
    assert_int_equal(q.shard_create_ms, 1700000000000);
    assert_int_equal(q.shard_index, 1234);
    assert_int_equal(q.seq_ix, 987654321);
    assert_int_equal(q.time_ms, 1700000555000);
}

static void seq_ix_orders_numbers_even_when_the_clock_goes_back(void **state)
{
    (void)state;
    knd_seq_parts a = {1700000000000, 2, 10, 1800000000000}, b = {1700000000000, 2, 11, 1700000000000};
    knd_seq va = knd_seq_make(&a), vb = knd_seq_make(&b);
    assert_true(knd_seq_cmp(&va, &vb) < 0);
    assert_true(knd_seq_cmp(&vb, &va) > 0);
    assert_int_equal(knd_seq_cmp(&va, &va), 0);
}

static void shards_give_distinct_numbers(void **state)
{
    (void)state;
    /* Same counter, time and creation; shard 1 and 17 even share the low nibble. */
    knd_seq_parts a = {1700000000000, 1, 5, 1700000000000}, b = a;
    b.shard_index = 17;
    knd_seq va = knd_seq_make(&a), vb = knd_seq_make(&b);
    assert_int_not_equal(knd_seq_cmp(&va, &vb), 0);
}

static void decimal_round_trips(void **state)
{
    (void)state;
    const char *vals[] = {"0", "1", "9", "10", "18446744073709551615", "18446744073709551616",
                          "340282366920938463463374607431768211456", MAX_192, AWS_SEQ};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        knd_seq v = parse_ok(vals[i]);
        assert_dec(&v, vals[i]);
    }
}

static void parse_rejects_malformed_and_too_large(void **state)
{
    (void)state;
    knd_seq v;
    const char *bad[] = {"", "01", "-1", "+1", "1a", " 1", "1.5",
                         "6277101735386680763835789423207666416102355444464034512896" /* 2^192 */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(knd_seq_parse(bad[i], strlen(bad[i]), &v));
    char digits[131];
    memset(digits, '9', 130);
    digits[130] = '\0';
    assert_false(knd_seq_parse(digits, 130, &v)); /* over the pattern's 129 digits */
    assert_false(knd_seq_parse(digits, 129, &v)); /* within the pattern but over 192 bits */
}

static void parse_uses_length_not_nul(void **state)
{
    (void)state;
    knd_seq w;
    assert_true(knd_seq_parse("12345", 3, &w));
    assert_dec(&w, "123");
}

static void parts_of_rejects_other_layouts(void **state)
{
    (void)state;
    knd_seq_parts p;
    knd_seq zero = parse_ok("0"), big = parse_ok(MAX_192);
    assert_false(knd_seq_parts_of(&zero, &p));
    assert_false(knd_seq_parts_of(&big, &p));
    /* An AWS number with its last digit changed: the low version nibble is no longer 2. */
    knd_seq bad = parse_ok("49590338271490256608559692538361571095921575989136588899");
    assert_false(knd_seq_parts_of(&bad, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_a_real_aws_number),
        cmocka_unit_test(make_reproduces_the_aws_number),
        cmocka_unit_test(make_matches_kinesalite_layout),
        cmocka_unit_test(numbers_have_56_digits),
        cmocka_unit_test(parts_round_trip_to_the_second),
        cmocka_unit_test(seq_ix_orders_numbers_even_when_the_clock_goes_back),
        cmocka_unit_test(shards_give_distinct_numbers),
        cmocka_unit_test(decimal_round_trips),
        cmocka_unit_test(parse_rejects_malformed_and_too_large),
        cmocka_unit_test(parse_uses_length_not_nul),
        cmocka_unit_test(parts_of_rejects_other_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
