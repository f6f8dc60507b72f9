/* The libFuzzer targets of libkinesis (fuzz/fuzz_sigv4.c, fuzz_base64.c, fuzz_creds.c) run under CTest: every seed
 * of their committed corpora, and every input a fuzz run found crashing, goes through the same entry point with the
 * same property checks (a failed check fails the test). Sanitizer findings (UBSan, ASan) show up in
 * the ASan suite (scripts/test.sh asan); see docs/fuzzing.md for the findings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define KN_FUZZ_NO_ENTRY
#define KN_FUZZ_FAIL(message) fail_msg("%s", message)
#include "../../fuzz/fuzz_base64.c"
#include "../../fuzz/fuzz_creds.c"
#include "../../fuzz/fuzz_sigv4.c"

#include "fuzz_replay.h"

static void sigv4_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("sigv4", fuzz_sigv4) >= 30);
}

static void base64_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("base64", fuzz_base64) >= 5);
}

static void creds_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("creds", fuzz_creds) >= 5);
}

#define RUN(fn, lit) fn((const uint8_t *)(lit), sizeof(lit) - 1)

/* Found by fuzz_sigv4: a query whose only pair has an empty name and value ("?=") left the canonical query's scratch
 * buffer unallocated, and lib/sigv4.c append_query added an offset to its NULL data pointer (UBSan: "applying zero
 * offset to null pointer"), on the server's verification path for any request line "POST /?= HTTP/1.1". */
static void sigv4_query_of_empty_pairs(void **state)
{
    (void)state;
    RUN(fuzz_sigv4, "POST /?= HTTP/1.1\nHost: h\n\n");
    RUN(fuzz_sigv4, "POST /?=&=&& HTTP/1.1\nHost: h\nX-Amz-Date: 20150830T123600Z\n\n{}");
    RUN(fuzz_sigv4, "POST /a\xd0/?=\nxA \x9a"
                    "d"); /* the input as found */
}

/* Found by fuzz_sigv4 (a harness check, not a library bug): a 64-byte Signature holding a NUL is kept as sent, so
 * its strlen is shorter; it can never verify. */
static void sigv4_signature_with_nul(void **state)
{
    (void)state;
    RUN(fuzz_sigv4, "POST / HTTP/1.1\nHost: h\nX-Amz-Date: 20150830T123600Z\n\n"
                    "AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host, "
                    "Signature="
                    "00000000000000000000000000000000" "\0" "0000000000000000000000000000000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigv4_corpus_passes_the_target_checks),
        cmocka_unit_test(base64_corpus_passes_the_target_checks),
        cmocka_unit_test(creds_corpus_passes_the_target_checks),
        cmocka_unit_test(sigv4_query_of_empty_pairs),
        cmocka_unit_test(sigv4_signature_with_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
