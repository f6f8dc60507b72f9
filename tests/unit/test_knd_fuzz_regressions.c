/* kinesisd's libFuzzer targets (fuzz/fuzz_knd_api.c, fuzz_knd_auth.c, fuzz_knd_store.c, fuzz_knd_journal.c,
 * fuzz_knd_scan.c) under CTest: every seed of
 * their committed corpora, and the inputs fuzz runs found failing, go through the same entry points with the same
 * property checks (a failed check fails the test). docs/fuzzing.md lists the findings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define KN_FUZZ_NO_ENTRY
#define KN_FUZZ_FAIL(message) fail_msg("%s", message)
#include "../../fuzz/fuzz_knd_api.c"
#include "../../fuzz/fuzz_knd_auth.c"
#include "../../fuzz/fuzz_knd_store.c"
#include "../../fuzz/fuzz_knd_journal.c"
#include "../../fuzz/fuzz_knd_scan.c"

#include "fuzz_replay.h"

static void knd_api_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("knd_api", fuzz_knd_api) >= 25);
}

static void knd_auth_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("knd_auth", fuzz_knd_auth) >= 15);
}

static void knd_store_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("knd_store", fuzz_knd_store) >= 15);
}

/* Includes regress-epoch-wraps (finding #5 in docs/fuzzing.md): a journal whose header carries epoch 2^64-1 and
 * whose first record, of epoch 0, has a good checksum. The first open ignored that record, then started epoch 0
 * (the counter wrapped), so the next open replayed records the first one had not shown. */
static void knd_journal_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("knd_journal", fuzz_knd_journal) >= 25);
}

static void knd_scan_corpus_passes_the_target_checks(void **state)
{
    (void)state;
    assert_true(replay_corpus("knd_scan", fuzz_knd_scan) >= 25);
}

/* ---- credentials ---- */

/* Found by fuzz_knd_auth: server/auth.c on_ini_entry keeps the current section's name in a 128-byte buffer and
 * detects a new section by comparing with it, so in a section whose name is 128 bytes or longer every line looks
 * like the start of a new section: the file is refused with "section [...] needs both aws_access_key_id and
 * aws_secret_access_key" although the section holds both. */
static void auth_loads_a_section_with_a_long_name(void **state)
{
    (void)state;
    char in[512];
    int n = snprintf(in, sizeof in, "%c[%0200d]\naws_access_key_id = AKIDLONG\naws_secret_access_key = s\n", 0, 0);
    fuzz_knd_auth((const uint8_t *)in, (size_t)n);
}

/* ---- storage recovery ---- */

/* The template's records as fuzz_knd_store mode 2 input (checksums are fixed by the target), with frame `which`'s
 * seq_ix replaced. */
static size_t store_input_with_ix(uint8_t *out, size_t cap, int which, uint64_t ix)
{
    fuzz_knd_store(NULL, 0); /* makes the template */
    const tfile *tf = &g_t.files[g_t.seg_file];
    size_t n = g_t.frames_end - 64;
    assert_true(n + 1 <= cap);
    out[0] = 2;
    memcpy(out + 1, tf->data + 64, n);
    size_t off = 0;
    for (int i = 0; i < which; i++)
        off += ref_frame_size(tf->data, tf->len, 64 + off);
    for (int b = 0; b < 8; b++)
        out[1 + off + 8 + b] = (uint8_t)(ix >> (8 * b));
    return n + 1;
}

/* Found by fuzz_knd_store: a frame whose seq_ix has its top bit set (no kinesisd writes one: seqnum.c keeps 63 bits)
 * passes the scan (server/segment.c scan_frame only checks that ix increases) and is kept. Its sequence number is
 * made from ix & INT64_MAX, and recovery's next_ix = last_ix + 1 (server/store.c log_recover) wraps to 0 for
 * UINT64_MAX, so the next PutRecord gets a sequence number below the recovered record's: numbers go backwards after
 * a restart. */
static void store_keeps_no_frame_with_seq_ix_at_the_counter_end(void **state)
{
    (void)state;
    uint8_t in[1024];
    size_t n = store_input_with_ix(in, sizeof in, 0, UINT64_MAX);
    fuzz_knd_store(in, n);
}

static void store_keeps_no_frame_with_seq_ix_beyond_2_63(void **state)
{
    (void)state;
    uint8_t in[1024];
    size_t n = store_input_with_ix(in, sizeof in, 1, (UINT64_C(1) << 63) + 2);
    fuzz_knd_store(in, n);
}

/* ---- the request path ---- */

static answer send_request(harness *h, const char *op, const char *body)
{
    answer a;
    exchange(h, 0, (kn_fuzz_span){op, strlen(op)}, (kn_fuzz_span){body, strlen(body)}, &a);
    if (a.status == 200 && a.body)
        learn(h, a.body);
    return a;
}

/* Found with fuzz_knd_api's control-character seeds: "\u0000" inside a JSON string is decoded by cJSON into a C
 * string that ends there (lib/json.c kn_json_parse accepts it), so kinesisd silently cuts the value. A partition key
 * "k\u0000x" was stored, hashed and returned as "k". AWS keeps all three characters; rejecting the request would at
 * least not corrupt it. */
static void api_partition_key_with_nul_is_not_cut(void **state)
{
    (void)state;
    harness h;
    harness_open(&h);
    answer put =
        send_request(&h, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\\u0000x\",\"Data\":\"AA==\"}");
    if (put.status == 200) {
        answer it = send_request(&h, "GetShardIterator", "{\"StreamName\":\"s\",\"ShardId\":\"shardId-000000000000\","
                                                         "\"ShardIteratorType\":\"TRIM_HORIZON\"}");
        answer got = send_request(&h, "GetRecords", "{\"ShardIterator\":\"$ITER\"}");
        assert_int_equal(got.status, 200);
        assert_non_null(strstr(got.raw, "\"PartitionKey\":\"k\\u0000x\""));
        answer_free(&it);
        answer_free(&got);
    } else {
        assert_int_equal(put.status, 400);
    }
    answer_free(&put);
    harness_close(&h);
}

/* The same cut turned the stream name "a\u0000b", which AWS refuses ([a-zA-Z0-9_.-]+), into a valid "a". */
static void api_stream_name_with_nul_is_refused(void **state)
{
    (void)state;
    harness h;
    harness_open(&h);
    answer a = send_request(&h, "CreateStream", "{\"StreamName\":\"a\\u0000b\",\"ShardCount\":1}");
    assert_int_equal(a.status, 400);
    answer_free(&a);
    harness_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(knd_api_corpus_passes_the_target_checks),
        cmocka_unit_test(knd_auth_corpus_passes_the_target_checks),
        cmocka_unit_test(knd_store_corpus_passes_the_target_checks),
        cmocka_unit_test(knd_journal_corpus_passes_the_target_checks),
        cmocka_unit_test(knd_scan_corpus_passes_the_target_checks),
        cmocka_unit_test(auth_loads_a_section_with_a_long_name),
        cmocka_unit_test(store_keeps_no_frame_with_seq_ix_at_the_counter_end),
        cmocka_unit_test(store_keeps_no_frame_with_seq_ix_beyond_2_63),
        cmocka_unit_test(api_partition_key_with_nul_is_not_cut),
        cmocka_unit_test(api_stream_name_with_nul_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
