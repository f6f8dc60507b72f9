/* The producer against a real kn_client whose HTTP transport is a fake Kinesis: it decodes each PutRecords body,
 * records what arrived, and answers from a small script (per-entry errors, whole-request errors). Tests that need
 * records to pile up give the producer a long linger, so nothing leaves before the queue fills a batch or a flush. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <kinesis/producer.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "client.h"
#include "json.h"

#define MAX_SEEN 4096
#define LONG 10000 /* ms: longer than any test runs, so only a full batch or a flush sends */

typedef struct seen_record {
    char key[300];
    unsigned char data[64];
    size_t data_len;
    char hash_key[48];
    int request; /* which request carried it (1-based) */
} seen_record;

typedef struct fake {
    pthread_mutex_t lock;
    int requests;
    size_t largest_batch;
    size_t largest_batch_bytes;
    seen_record seen[MAX_SEEN];
    size_t n_seen;
    uint64_t next_seq;
    int fail_status;       /* whole-request failure when non-zero */
    const char *fail_type;
    const char *reject_key; /* entries with this key fail with reject_code */
    const char *reject_code;
    int throttle_attempts; /* entries keyed "throttle" fail retryably this many times */
    int throttled;
} fake;

static fake F;

static void fake_reset(void)
{
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.lock, NULL);
    F.next_seq = 1000;
}

static const char *no_env(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static const kn_env EMPTY_ENV = {.get = no_env};

static void answer_error(kn_http_response *resp)
{
    resp->status = F.fail_status;
    char body[256];
    snprintf(body, sizeof body, "{\"__type\":\"%s\",\"message\":\"scripted failure\"}", F.fail_type);
    kn_buf_append_str(&resp->body, body);
}

/* Records one entry and appends its result object to `out`. Called with F.lock held. */
static void answer_entry(const cJSON *rec, int request, cJSON *out, size_t *bytes)
{
    const char *key = kn_json_string(rec, "PartitionKey"), *data = kn_json_string(rec, "Data");
    const char *hash = kn_json_string(rec, "ExplicitHashKey");
    assert_non_null(key);
    assert_non_null(data);
    kn_buf raw;
    kn_buf_init(&raw, 1u << 20);
    assert_int_equal(kn_base64_decode(data, strlen(data), &raw), KN_OK);
    *bytes += raw.len + strlen(key);
    cJSON *res = cJSON_CreateObject();
    cJSON_AddItemToArray(out, res);
    if (strcmp(key, "throttle") == 0 && F.throttled < F.throttle_attempts) {
        F.throttled++;
        cJSON_AddStringToObject(res, "ErrorCode", "ProvisionedThroughputExceededException");
        cJSON_AddStringToObject(res, "ErrorMessage", "Rate exceeded for shard shardId-000000000000");
    } else if (F.reject_key && strcmp(key, F.reject_key) == 0) {
        cJSON_AddStringToObject(res, "ErrorCode", F.reject_code);
        cJSON_AddStringToObject(res, "ErrorMessage", "scripted entry failure");
    } else {
        assert_true(F.n_seen < MAX_SEEN);
        seen_record *s = &F.seen[F.n_seen++];
        snprintf(s->key, sizeof s->key, "%s", key);
        s->data_len = raw.len < sizeof s->data ? raw.len : sizeof s->data;
        memcpy(s->data, raw.data, s->data_len);
        snprintf(s->hash_key, sizeof s->hash_key, "%s", hash ? hash : "");
        s->request = request;
        char seq[32];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)F.next_seq++);
        cJSON_AddStringToObject(res, "ShardId", "shardId-000000000001");
        cJSON_AddStringToObject(res, "SequenceNumber", seq);
    }
    kn_buf_cleanup(&raw);
}

static kn_status fake_send(void *ctx, const kn_http_request *req, kn_http_response *resp, kn_error *err)
{
    (void)ctx;
    (void)err;
    kn_http_response_reset(resp);
    pthread_mutex_lock(&F.lock);
    int request = ++F.requests;
    if (F.fail_status) {
        answer_error(resp);
        pthread_mutex_unlock(&F.lock);
        return KN_OK;
    }
    cJSON *body = kn_json_parse(req->body, req->body_len);
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(body, "Records");
    assert_true(cJSON_IsArray(records));
    cJSON *answer = cJSON_CreateObject();
    cJSON *out = cJSON_AddArrayToObject(answer, "Records");
    size_t n = (size_t)cJSON_GetArraySize(records), bytes = 0;
    const cJSON *rec = NULL;
    cJSON_ArrayForEach(rec, records) answer_entry(rec, request, out, &bytes);
    if (n > F.largest_batch)
        F.largest_batch = n;
    if (bytes > F.largest_batch_bytes)
        F.largest_batch_bytes = bytes;
    pthread_mutex_unlock(&F.lock);
    char *text = cJSON_PrintUnformatted(answer);
    resp->status = 200;
    kn_buf_append_str(&resp->body, text);
    cJSON_free(text);
    cJSON_Delete(answer);
    cJSON_Delete(body);
    return KN_OK;
}

static void no_sleep(void *ctx, uint32_t ms)
{
    (void)ctx;
    (void)ms;
}

static kn_client *make_client(void)
{
    static const kn_http_transport transport = {.send = fake_send};
    kn_client_options o = {.region = "us-east-1", .endpoint_url = "http://127.0.0.1:9", .access_key_id = "AKID",
                           .secret_access_key = "secret", .max_attempts = 3};
    kn_client_deps d = {.env = &EMPTY_ENV, .transport = &transport, .sleep_ms = no_sleep};
    kn_client *c = NULL;
    kn_error err = {0};
    assert_int_equal(kn_client_new_with(&o, &d, &c, &err), KN_OK);
    return c;
}

/* What callbacks saw, per record index. */
typedef struct outcome {
    int calls;
    bool ok;
    char shard_id[KN_SHARD_ID_MAX];
    char sequence_number[KN_SEQUENCE_NUMBER_MAX];
    char error_code[KN_ERROR_TYPE_MAX];
} outcome;

static pthread_mutex_t outcome_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_result(void *ctx, const kn_put_records_result *r)
{
    outcome *o = ctx;
    pthread_mutex_lock(&outcome_lock);
    o->calls++;
    o->ok = r->ok;
    snprintf(o->shard_id, sizeof o->shard_id, "%s", r->shard_id);
    snprintf(o->sequence_number, sizeof o->sequence_number, "%s", r->sequence_number);
    snprintf(o->error_code, sizeof o->error_code, "%s", r->error_code);
    pthread_mutex_unlock(&outcome_lock);
}

typedef struct env {
    kn_client *client;
    kn_producer *producer;
} env;

static int setup(void **state)
{
    fake_reset();
    env *e = calloc(1, sizeof *e);
    e->client = make_client();
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    kn_producer_destroy(e->producer);
    kn_client_destroy(e->client);
    free(e);
    return 0;
}

static kn_producer *start(env *e, kn_producer_options o)
{
    if (!o.stream_name && !o.stream_arn)
        o.stream_name = "Testing";
    kn_error err = {0};
    assert_int_equal(kn_producer_new(e->client, &o, &e->producer, &err), KN_OK);
    return e->producer;
}

static void put_ok(kn_producer *p, const void *data, size_t len, const char *key, outcome *o)
{
    kn_error err = {0};
    assert_int_equal(kn_producer_put(p, data, len, key, NULL, on_result, o, &err), KN_OK);
}

static void flush_ok(kn_producer *p)
{
    kn_error err = {0};
    assert_int_equal(kn_producer_flush(p, &err), KN_OK);
}

static void delivers_each_record_once_with_its_result(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){0});
    outcome o[50] = {0};
    for (int i = 0; i < 50; i++) {
        char key[16], data[8] = {'d', 0, (char)0xff, (char)i};
        snprintf(key, sizeof key, "k%d", i);
        put_ok(p, data, 4, key, &o[i]);
    }
    flush_ok(p);
    assert_int_equal(F.n_seen, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_true(o[i].ok);
        assert_string_equal(o[i].shard_id, "shardId-000000000001");
        assert_true(strlen(o[i].sequence_number) > 0);
    }
    /* Binary data, NUL and 0xff included, arrives intact and in put order. */
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_string_equal(F.seen[i].key, key);
        const unsigned char want[4] = {'d', 0, 0xff, (unsigned char)i};
        assert_int_equal(F.seen[i].data_len, 4);
        assert_memory_equal(F.seen[i].data, want, 4);
    }
}

static void explicit_hash_key_is_sent(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){0});
    outcome o = {0};
    kn_error err = {0};
    assert_int_equal(kn_producer_put(p, "x", 1, "k", "340282366920938463463374607431768211455", on_result, &o, &err),
                     KN_OK);
    flush_ok(p);
    assert_int_equal(F.n_seen, 1);
    assert_string_equal(F.seen[0].hash_key, "340282366920938463463374607431768211455");
}

static void batches_respect_record_limit(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.max_batch_records = 7, .linger_ms = LONG});
    outcome o[40] = {0};
    for (int i = 0; i < 40; i++)
        put_ok(p, "abc", 3, "key", &o[i]);
    flush_ok(p);
    assert_int_equal(F.n_seen, 40);
    assert_int_equal(F.largest_batch, 7);
    /* Full batches leave at once, the remainder at the flush: 5 x 7 + 5. */
    assert_int_equal(F.requests, 6);
}

static void batches_respect_byte_limit(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.max_batch_bytes = 1000, .linger_ms = LONG});
    static char data[300];
    memset(data, 'z', sizeof data);
    outcome o[20] = {0};
    for (int i = 0; i < 20; i++)
        put_ok(p, data, sizeof data, "k", &o[i]); /* 301 bytes each: three fit in 1000 */
    flush_ok(p);
    assert_int_equal(F.n_seen, 20);
    assert_true(F.largest_batch_bytes <= 1000);
    assert_int_equal(F.largest_batch, 3);
    assert_int_equal(F.requests, 7); /* 6 x 3 + 2 */
}

static int calls_of(const outcome *o)
{
    pthread_mutex_lock(&outcome_lock);
    int calls = o->calls;
    pthread_mutex_unlock(&outcome_lock);
    return calls;
}

/* Polls for up to 5 s until o has been called back. */
static void wait_called(const outcome *o)
{
    for (int i = 0; i < 500 && !calls_of(o); i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    assert_int_equal(calls_of(o), 1);
}

static void linger_gathers_a_batch(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = 300});
    outcome o[5] = {0};
    for (int i = 0; i < 5; i++)
        put_ok(p, "abc", 3, "key", &o[i]);
    wait_called(&o[4]); /* no flush: the linger alone sends */
    assert_int_equal(F.requests, 1);
    assert_int_equal(F.largest_batch, 5);
}

static void linger_expires_without_flush(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = 20});
    outcome o = {0};
    put_ok(p, "abc", 3, "key", &o);
    wait_called(&o);
}

static void full_buffer_refuses_then_recovers(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.max_buffered_bytes = 1000, .linger_ms = LONG});
    static char data[99];
    outcome o[11] = {0};
    kn_error err = {0};
    for (int i = 0; i < 10; i++)
        put_ok(p, data, sizeof data, "k", &o[i]); /* 100 bytes each: exactly 1000 */
    assert_int_equal(kn_producer_put(p, data, sizeof data, "k", NULL, on_result, &o[10], &err), KN_ERR_NO_MEMORY);
    assert_non_null(strstr(err.message, "buffer full"));
    flush_ok(p);
    assert_int_equal(o[10].calls, 0); /* refused up front: never called back */
    put_ok(p, data, sizeof data, "k", &o[10]);
    flush_ok(p);
    assert_int_equal(F.n_seen, 11);
    assert_int_equal(o[10].calls, 1);
}

static void entry_failure_reaches_only_that_record(void **state)
{
    env *e = *state;
    F.reject_key = "bad";
    F.reject_code = "KMSAccessDeniedException";
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = LONG});
    outcome good = {0}, bad = {0};
    put_ok(p, "1", 1, "good", &good);
    put_ok(p, "2", 1, "bad", &bad);
    flush_ok(p);
    assert_true(good.ok);
    assert_false(bad.ok);
    assert_string_equal(bad.error_code, "KMSAccessDeniedException");
    assert_int_equal(bad.calls, 1);
}

static void throttled_entries_are_retried_alone(void **state)
{
    env *e = *state;
    F.throttle_attempts = 1;
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = LONG});
    outcome a = {0}, t = {0};
    put_ok(p, "1", 1, "plain", &a);
    put_ok(p, "2", 1, "throttle", &t);
    flush_ok(p);
    assert_true(a.ok);
    assert_true(t.ok);
    assert_int_equal(F.n_seen, 2); /* "plain" was not sent twice */
    assert_int_equal(F.requests, 2);
}

static void request_failure_reaches_every_record(void **state)
{
    env *e = *state;
    F.fail_status = 400;
    F.fail_type = "ResourceNotFoundException";
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = LONG});
    outcome o[3] = {0};
    for (int i = 0; i < 3; i++)
        put_ok(p, "x", 1, "k", &o[i]);
    flush_ok(p);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_false(o[i].ok);
        assert_string_equal(o[i].error_code, "ResourceNotFoundException");
    }
}

static void invalid_records_are_refused_up_front(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.max_record_size = 100});
    outcome o = {0};
    kn_error err = {0};
    static char big[100];
    assert_int_equal(kn_producer_put(p, "x", 1, "", NULL, on_result, &o, &err), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_producer_put(p, "x", 1, NULL, NULL, on_result, &o, &err), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_producer_put(p, "x", 1, "k\xff", NULL, on_result, &o, &err), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_producer_put(p, "x", 1, "k", "01", on_result, &o, &err), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_producer_put(p, NULL, 1, "k", NULL, on_result, &o, &err), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_producer_put(p, big, sizeof big, "k", NULL, on_result, &o, &err), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "exceed"));
    assert_int_equal(kn_producer_put(p, big, 99, "k", NULL, on_result, &o, &err), KN_OK);
    assert_int_equal(kn_producer_put(p, NULL, 0, "k", NULL, NULL, NULL, &err), KN_OK); /* empty data is allowed */
    flush_ok(p);
    assert_int_equal(o.calls, 1);
    assert_int_equal(F.n_seen, 2);
}

static void inputs_are_copied(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = LONG});
    char data[4] = "abc", key[4] = "key";
    outcome o = {0};
    put_ok(p, data, 3, key, &o);
    memset(data, 'X', sizeof data);
    memset(key, 'Y', 3);
    flush_ok(p);
    assert_string_equal(F.seen[0].key, "key");
    assert_memory_equal(F.seen[0].data, "abc", 3);
}

static int destroyed_calls;

static void count_result(void *ctx, const kn_put_records_result *r)
{
    (void)ctx;
    if (r->ok)
        destroyed_calls++;
}

static void destroy_delivers_what_is_buffered(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.linger_ms = LONG});
    destroyed_calls = 0;
    kn_error err = {0};
    for (int i = 0; i < 30; i++)
        assert_int_equal(kn_producer_put(p, "d", 1, "k", NULL, count_result, NULL, &err), KN_OK);
    kn_producer_destroy(p); /* must not wait out the 10 s linger either */
    e->producer = NULL;
    assert_int_equal(destroyed_calls, 30);
    assert_int_equal(F.n_seen, 30);
}

typedef struct flush_from_callback {
    kn_producer *p;
    kn_status flush_status;
    kn_status put_status;
} flush_from_callback;

static void call_flush(void *ctx, const kn_put_records_result *r)
{
    (void)r;
    flush_from_callback *f = ctx;
    kn_error err = {0};
    f->flush_status = kn_producer_flush(f->p, &err);
    f->put_status = kn_producer_put(f->p, "again", 5, "k", NULL, NULL, NULL, &err);
}

static void callback_may_put_but_not_flush(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){0});
    flush_from_callback f = {.p = p, .flush_status = KN_OK, .put_status = KN_ERR_IO};
    kn_error err = {0};
    assert_int_equal(kn_producer_put(p, "x", 1, "k", NULL, call_flush, &f, &err), KN_OK);
    flush_ok(p);
    flush_ok(p);
    assert_int_equal(f.flush_status, KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(f.put_status, KN_OK);
    assert_int_equal(F.n_seen, 2);
}

typedef struct putter {
    kn_producer *p;
    int id;
    outcome o[200];
} putter;

static void *put_many(void *arg)
{
    putter *t = arg;
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d-%d", t->id, i);
        kn_error err = {0};
        if (kn_producer_put(t->p, key, strlen(key), key, NULL, on_result, &t->o[i], &err) != KN_OK)
            return (void *)1;
    }
    kn_error err = {0};
    return kn_producer_flush(t->p, &err) == KN_OK ? NULL : (void *)1;
}

static void concurrent_putters_all_delivered(void **state)
{
    env *e = *state;
    kn_producer *p = start(e, (kn_producer_options){.max_batch_records = 50, .linger_ms = 1});
    static putter t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].p = p;
        t[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, put_many, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        pthread_join(th[i], &rc);
        assert_null(rc);
    }
    assert_int_equal(F.n_seen, 800);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 200; j++)
            assert_int_equal(t[i].o[j].calls, 1);
    assert_true(F.largest_batch <= 50);
}

static void bad_options_are_refused(void **state)
{
    env *e = *state;
    kn_producer *p = NULL;
    kn_error err = {0};
    const kn_producer_options bad[] = {
        {0},
        {.stream_name = "a", .stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/a"},
        {.stream_name = "bad name"},
        {.stream_arn = "arn:nope"},
        {.stream_name = "s", .max_batch_records = 501},
        {.stream_name = "s", .max_batch_bytes = 5 * 1024 * 1024 + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kn_producer_new(e->client, &bad[i], &p, &err), KN_ERR_INVALID_ARGUMENT);
        assert_null(p);
    }
    assert_int_equal(kn_producer_new(NULL, &bad[2], &p, &err), KN_ERR_INVALID_ARGUMENT);
    const kn_producer_options arn = {.stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/Testing"};
    assert_int_equal(kn_producer_new(e->client, &arn, &p, &err), KN_OK);
    kn_producer_destroy(p);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(delivers_each_record_once_with_its_result),
        T(explicit_hash_key_is_sent),
        T(batches_respect_record_limit),
        T(batches_respect_byte_limit),
        T(linger_gathers_a_batch),
        T(linger_expires_without_flush),
        T(full_buffer_refuses_then_recovers),
        T(entry_failure_reaches_only_that_record),
        T(throttled_entries_are_retried_alone),
        T(request_failure_reaches_every_record),
        T(invalid_records_are_refused_up_front),
        T(inputs_are_copied),
        T(destroy_delivers_what_is_buffered),
        T(callback_may_put_but_not_flush),
        T(concurrent_putters_all_delivered),
        T(bad_options_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
