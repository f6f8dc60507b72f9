/* Shard iterators and pagination tokens: round trips, tamper evidence, expiry, and a restart's key change. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base64.h"
#include "token.h"

#include <stdlib.h>
#include <string.h>

#define NOW 1764100000000LL

static knd_token_key key(void)
{
    knd_token_key k;
    assert_true(knd_token_key_init(&k));
    return k;
}

static knd_iterator sample(void)
{
    knd_iterator it = {.shard_index = 7, .after = true, .created_ms = NOW};
    strcpy(it.stream, "Testing");
    for (int i = 0; i < KND_SEQ_BYTES; i++)
        it.seq.b[i] = (uint8_t)(i * 11 + 3);
    return it;
}

/* Encodes it with k into a NUL-terminated string the caller frees. */
static char *encode(const knd_token_key *k, const knd_iterator *it)
{
    kn_buf b;
    kn_buf_init(&b, 4096);
    assert_int_equal(knd_token_encode_iterator(k, it, &b), KN_OK);
    return (char *)b.data;
}

static void test_iterator_round_trip(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator it = sample(), back;
    char *text = encode(&k, &it);
    assert_int_equal(knd_token_decode_iterator(&k, text, strlen(text), NOW + 1000, &back), KND_TOKEN_OK);
    assert_string_equal(back.stream, "Testing");
    assert_int_equal(back.shard_index, 7);
    assert_true(back.after);
    assert_int_equal(back.created_ms, NOW);
    assert_memory_equal(back.seq.b, it.seq.b, KND_SEQ_BYTES);
    free(text);
}

static void test_iterator_fits_aws_length_limit(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator it = sample();
    memset(it.stream, 'n', KND_TOKEN_NAME_MAX);
    it.stream[KND_TOKEN_NAME_MAX] = '\0';
    char *text = encode(&k, &it);
    assert_true(strlen(text) <= 512); /* ShardIterator's maximum length in the service model */
    free(text);
}

static void test_every_flipped_byte_is_rejected(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator it = sample(), back;
    char *text = encode(&k, &it);
    kn_buf raw, again;
    kn_buf_init(&raw, 4096);
    assert_int_equal(kn_base64_decode(text, strlen(text), &raw), KN_OK);
    for (size_t i = 0; i < raw.len; i++) {
        if (i >= 2 && i < 6)
            continue; /* the key epoch: a changed epoch reads as an earlier process's token, tested below */
        raw.data[i] ^= 0x01;
        kn_buf_init(&again, 4096);
        assert_int_equal(kn_base64_encode(raw.data, raw.len, &again), KN_OK);
        assert_int_equal(knd_token_decode_iterator(&k, (char *)again.data, again.len, NOW, &back), KND_TOKEN_INVALID);
        kn_buf_cleanup(&again);
        raw.data[i] ^= 0x01;
    }
    kn_buf_cleanup(&raw);
    free(text);
}

static void test_garbage_is_invalid(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator back;
    const char *bad[] = {"", "hello", "AAAA", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(knd_token_decode_iterator(&k, bad[i], strlen(bad[i]), NOW, &back), KND_TOKEN_INVALID);
}

static void test_iterator_expires_after_five_minutes(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator it = sample(), back;
    char *text = encode(&k, &it);
    assert_int_equal(knd_token_decode_iterator(&k, text, strlen(text), NOW + 300000, &back), KND_TOKEN_OK);
    assert_int_equal(knd_token_decode_iterator(&k, text, strlen(text), NOW + 300001, &back), KND_TOKEN_EXPIRED);
    assert_int_equal(back.created_ms, NOW); /* for the ExpiredIteratorException message */
    free(text);
}

static void test_iterator_from_the_future_is_invalid(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator it = sample(), back;
    char *text = encode(&k, &it);
    assert_int_equal(knd_token_decode_iterator(&k, text, strlen(text), NOW - 60000, &back), KND_TOKEN_INVALID);
    free(text);
}

static void test_earlier_process_token_reads_as_expired(void **state)
{
    (void)state;
    knd_token_key old = key(), now = key();
    knd_iterator it = sample(), back;
    char *text = encode(&old, &it);
    assert_int_equal(knd_token_decode_iterator(&now, text, strlen(text), NOW, &back), KND_TOKEN_EXPIRED);
    free(text);
}

static void test_same_epoch_other_key_is_invalid(void **state)
{
    (void)state;
    knd_token_key a = key(), b = key();
    memcpy(b.epoch, a.epoch, sizeof a.epoch);
    knd_iterator it = sample(), back;
    char *text = encode(&a, &it);
    assert_int_equal(knd_token_decode_iterator(&b, text, strlen(text), NOW, &back), KND_TOKEN_INVALID);
    free(text);
}

static void test_list_token_round_trip_and_kind(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_list_token t = {.next_index = 42, .created_ms = NOW}, back;
    strcpy(t.name, "stream-a");
    kn_buf b;
    kn_buf_init(&b, 4096);
    assert_int_equal(knd_token_encode_list(&k, KND_TOKEN_LIST_SHARDS, &t, &b), KN_OK);
    assert_int_equal(knd_token_decode_list(&k, KND_TOKEN_LIST_SHARDS, (char *)b.data, b.len, NOW, &back),
                     KND_TOKEN_OK);
    assert_string_equal(back.name, "stream-a");
    assert_int_equal(back.next_index, 42);
    assert_int_equal(knd_token_decode_list(&k, KND_TOKEN_LIST_STREAMS, (char *)b.data, b.len, NOW, &back),
                     KND_TOKEN_INVALID);
    knd_iterator it;
    assert_int_equal(knd_token_decode_iterator(&k, (char *)b.data, b.len, NOW, &it), KND_TOKEN_INVALID);
    kn_buf_cleanup(&b);
}

static void test_encode_rejects_bad_names(void **state)
{
    (void)state;
    knd_token_key k = key();
    knd_iterator it = sample();
    it.stream[0] = '\0';
    kn_buf b;
    kn_buf_init(&b, 4096);
    assert_int_equal(knd_token_encode_iterator(&k, &it, &b), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(b.len, 0);
    kn_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iterator_round_trip),
        cmocka_unit_test(test_iterator_fits_aws_length_limit),
        cmocka_unit_test(test_every_flipped_byte_is_rejected),
        cmocka_unit_test(test_garbage_is_invalid),
        cmocka_unit_test(test_iterator_expires_after_five_minutes),
        cmocka_unit_test(test_iterator_from_the_future_is_invalid),
        cmocka_unit_test(test_earlier_process_token_reads_as_expired),
        cmocka_unit_test(test_same_epoch_other_key_is_invalid),
        cmocka_unit_test(test_list_token_round_trip_and_kind),
        cmocka_unit_test(test_encode_rejects_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
