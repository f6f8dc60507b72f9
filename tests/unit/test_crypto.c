/* kn_crypto against published vectors: FIPS 180-2 (SHA-256), RFC 4231 (HMAC-SHA256), RFC 1321 (MD5). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "crypto.h"

static void hex_of(const uint8_t *bytes, size_t len, char *out)
{
    kn_crypto_hex(bytes, len, out);
}

static void assert_sha256(const void *data, size_t len, const char *want)
{
    uint8_t d[KN_SHA256_LEN];
    char hex[2 * KN_SHA256_LEN + 1];
    assert_true(kn_crypto_sha256(data, len, d));
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, want);
}

static void sha256_matches_fips_180_vectors(void **state)
{
    (void)state;
    assert_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_sha256(two_blocks, strlen(two_blocks), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void sha256_of_a_million_a(void **state)
{
    (void)state;
    static char million[1000000];
    memset(million, 'a', sizeof million);
    assert_sha256(million, sizeof million, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void assert_hmac(const void *key, size_t key_len, const void *data, size_t len, const char *want)
{
    uint8_t mac[KN_SHA256_LEN];
    char hex[2 * KN_SHA256_LEN + 1];
    assert_true(kn_crypto_hmac_sha256(key, key_len, data, len, mac));
    hex_of(mac, sizeof mac, hex);
    assert_string_equal(hex, want);
}

static void hmac_sha256_matches_rfc_4231(void **state)
{
    (void)state;
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof key1);
    assert_hmac(key1, sizeof key1, "Hi There", 8,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_hmac("Jefe", 4, "what do ya want for nothing?", 28,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t key3[20], data3[50];
    memset(key3, 0xaa, sizeof key3);
    memset(data3, 0xdd, sizeof data3);
    assert_hmac(key3, sizeof key3, data3, sizeof data3,
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    uint8_t key4[25], data4[50];
    for (size_t i = 0; i < sizeof key4; i++)
        key4[i] = (uint8_t)(i + 1);
    memset(data4, 0xcd, sizeof data4);
    assert_hmac(key4, sizeof key4, data4, sizeof data4,
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    /* Test case 6: a key longer than the block size is hashed first. */
    uint8_t key6[131];
    memset(key6, 0xaa, sizeof key6);
    const char *data6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_hmac(key6, sizeof key6, data6, strlen(data6),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* Test case 7: long key and a message longer than the block. */
    const char *data7 = "This is a test using a larger than block-size key and a larger than block-size data. The key "
                        "needs to be hashed before being used by the HMAC algorithm.";
    assert_hmac(key6, sizeof key6, data7, strlen(data7),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* SigV4's key derivation passes the previous MAC as both key and output. */
static void hmac_sha256_output_may_alias_key(void **state)
{
    (void)state;
    uint8_t k[KN_SHA256_LEN], want[KN_SHA256_LEN];
    memset(k, 0x0b, sizeof k);
    assert_true(kn_crypto_hmac_sha256(k, sizeof k, "Hi There", 8, want));
    assert_true(kn_crypto_hmac_sha256(k, sizeof k, "Hi There", 8, k));
    assert_memory_equal(k, want, sizeof k);
}

static void hmac_sha256_accepts_empty_key_and_data(void **state)
{
    (void)state;
    assert_hmac("", 0, "", 0, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void assert_md5(const char *text, const char *want)
{
    uint8_t d[KN_MD5_LEN];
    char hex[2 * KN_MD5_LEN + 1];
    assert_true(kn_crypto_md5(text, strlen(text), d));
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, want);
}

static void md5_matches_rfc_1321(void **state)
{
    (void)state;
    assert_md5("", "d41d8cd98f00b204e9800998ecf8427e");
    assert_md5("a", "0cc175b9c0f1b6a831c399e269772661");
    assert_md5("abc", "900150983cd24fb0d6963f7d28e17f72");
    assert_md5("message digest", "f96b697d7cb7938d525a2f31aaf161d0");
    assert_md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
               "57edf4a22be3c955ac49da2e2107b67a");
}

static void hex_is_lowercase_and_terminated(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];
    memset(out, 'x', sizeof out);
    kn_crypto_hex(bytes, sizeof bytes, out);
    assert_string_equal(out, "000fa5ff");
}

static void equal_ct_compares_every_byte(void **state)
{
    (void)state;
    const char a[] = "0123456789abcdef", b[] = "0123456789abcdeF", c[] = "X123456789abcdef";
    assert_true(kn_crypto_equal_ct(a, a, 16));
    assert_false(kn_crypto_equal_ct(a, b, 16));
    assert_false(kn_crypto_equal_ct(a, c, 16));
    assert_true(kn_crypto_equal_ct(a, b, 15));
    assert_true(kn_crypto_equal_ct(a, c, 0));
}

static void random_fills_and_differs(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_true(kn_crypto_random(a, sizeof a));
    assert_true(kn_crypto_random(b, sizeof b));
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
    assert_true(kn_crypto_random(a, 0));
}

static void wipe_zeroes(void **state)
{
    (void)state;
    uint8_t key[32];
    memset(key, 0x5a, sizeof key);
    kn_crypto_wipe(key, sizeof key);
    for (size_t i = 0; i < sizeof key; i++)
        assert_int_equal(key[i], 0);
}

/* Each thread has its own contexts: interleaved hashing in many threads must give the single-threaded answers. */
static void *hash_many(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < 2000; i++) {
        uint8_t d[KN_SHA256_LEN], m[KN_SHA256_LEN], md5[KN_MD5_LEN];
        char hex[2 * KN_SHA256_LEN + 1], mhex[2 * KN_SHA256_LEN + 1], md5hex[2 * KN_MD5_LEN + 1];
        kn_crypto_sha256("abc", 3, d);
        kn_crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, m);
        kn_crypto_md5("abc", 3, md5);
        kn_crypto_hex(d, sizeof d, hex);
        kn_crypto_hex(m, sizeof m, mhex);
        kn_crypto_hex(md5, sizeof md5, md5hex);
        *bad += strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0 ||
                strcmp(mhex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") != 0 ||
                strcmp(md5hex, "900150983cd24fb0d6963f7d28e17f72") != 0;
    }
    return NULL;
}

static void digests_are_thread_safe(void **state)
{
    (void)state;
    pthread_t t[4];
    int bad[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hash_many, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(bad[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_fips_180_vectors),
        cmocka_unit_test(sha256_of_a_million_a),
        cmocka_unit_test(hmac_sha256_matches_rfc_4231),
        cmocka_unit_test(hmac_sha256_accepts_empty_key_and_data),
        cmocka_unit_test(hmac_sha256_output_may_alias_key),
        cmocka_unit_test(md5_matches_rfc_1321),
        cmocka_unit_test(hex_is_lowercase_and_terminated),
        cmocka_unit_test(equal_ct_compares_every_byte),
        cmocka_unit_test(random_fills_and_differs),
        cmocka_unit_test(wipe_zeroes),
        cmocka_unit_test(digests_are_thread_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
