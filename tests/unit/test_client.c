/* kn_client against a fake transport: what goes on the wire (headers, JSON body, signature), how answers and errors
 * are read, and the retry behaviour of PutRecord and PutRecords. Clock, sleep and randomness are injected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "error.h"
#include "json.h"

/* 2015-08-30T12:36:00Z, the SigV4 test suite's moment. */
#define FIXED_NOW 1440938160
#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "FQoGZXIvYXdzEXAMPLETOKEN"
#define MAX_CALLS 16
#define MAX_HEADERS 12

/* ---- the fake world ---- */

typedef struct reply {
    kn_status status; /* what the transport returns; KN_OK means an HTTP response arrived */
    int http_status;
    const char *body;
    const char *request_id;
    const char *error_type; /* x-amzn-ErrorType header */
} reply;

typedef struct captured {
    char url[256];
    size_t header_count;
    char names[MAX_HEADERS][64];
    char values[MAX_HEADERS][1024];
    char *body;
    size_t body_len;
} captured;

typedef struct fake {
    pthread_mutex_t lock;
    const reply *replies;
    size_t reply_count; /* the last reply repeats once the script runs out */
    size_t calls;
    captured req[MAX_CALLS];
    uint32_t sleeps[MAX_CALLS];
    size_t sleep_count;
    kn_buf trace;
} fake;

static kn_status fake_send(void *ctx, const kn_http_request *req, kn_http_response *resp, kn_error *err)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    size_t n = f->calls++;
    const reply *r = &f->replies[n < f->reply_count ? n : f->reply_count - 1];
    if (n < MAX_CALLS) {
        captured *c = &f->req[n];
        snprintf(c->url, sizeof c->url, "%s", req->url);
        c->header_count = req->header_count;
        for (size_t i = 0; i < req->header_count && i < MAX_HEADERS; i++) {
            const kn_sigv4_header *h = &req->headers[i];
            snprintf(c->names[i], sizeof c->names[i], "%.*s", (int)h->name_len, h->name);
            snprintf(c->values[i], sizeof c->values[i], "%.*s", (int)h->value_len, h->value);
        }
        c->body = malloc(req->body_len + 1);
        memcpy(c->body, req->body, req->body_len);
        c->body[req->body_len] = '\0';
        c->body_len = req->body_len;
    }
    pthread_mutex_unlock(&f->lock);
    kn_http_response_reset(resp);
    if (r->status != KN_OK)
        return kn_error_set(err, r->status, "fake transport failure");
    resp->status = r->http_status;
    kn_strlcpy(resp->request_id, r->request_id, sizeof resp->request_id);
    kn_strlcpy(resp->error_type, r->error_type, sizeof resp->error_type);
    kn_buf_append_str(&resp->body, r->body ? r->body : "");
    return KN_OK;
}

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return FIXED_NOW;
}

static double fake_random(void *ctx)
{
    (void)ctx;
    return 0.5;
}

static void fake_sleep(void *ctx, uint32_t ms)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    if (f->sleep_count < MAX_CALLS)
        f->sleeps[f->sleep_count++] = ms;
    pthread_mutex_unlock(&f->lock);
}

static void fake_trace(void *ctx, const char *text, size_t len)
{
    fake *f = ctx;
    kn_buf_append(&f->trace, text, len);
}

/* An environment with nothing in it but files that do not exist, so no test depends on the machine's. */
static const char *empty_get(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "AWS_CONFIG_FILE") == 0 || strcmp(name, "AWS_SHARED_CREDENTIALS_FILE") == 0)
        return "/nonexistent/kinesis-c-test";
    return NULL;
}
static const kn_env empty_env = {.get = empty_get};

static fake *fake_new(const reply *replies, size_t count)
{
    fake *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->replies = replies;
    f->reply_count = count;
    kn_buf_init(&f->trace, 1 << 20);
    return f;
}

static void fake_free(fake *f)
{
    for (size_t i = 0; i < f->calls && i < MAX_CALLS; i++)
        free(f->req[i].body);
    kn_buf_cleanup(&f->trace);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static kn_client_options base_options(void)
{
    return (kn_client_options){.region = "us-east-1", .access_key_id = AKID, .secret_access_key = SECRET};
}

static kn_client *client_with(fake *f, kn_client_options o)
{
    kn_http_transport t = {.send = fake_send, .ctx = f};
    kn_client_deps deps = {.env = &empty_env, .transport = &t, .now = fake_now, .random = fake_random,
                           .sleep_ms = fake_sleep, .ctx = f};
    kn_client *c = NULL;
    kn_error err;
    kn_status st = kn_client_new_with(&o, &deps, &c, &err);
    if (st != KN_OK)
        fail_msg("kn_client_new_with: %s", err.message);
    return c;
}

static const char *header_of(const captured *c, const char *name)
{
    for (size_t i = 0; i < c->header_count; i++)
        if (strcasecmp(c->names[i], name) == 0)
            return c->values[i];
    return NULL;
}

static const uint8_t sample_data[] = {0x00, 0x01, 0x02, 0xff};

static kn_put_record_input sample_input(void)
{
    return (kn_put_record_input){.stream_name = "Testing", .data = sample_data, .data_len = sizeof sample_data,
                                 .partition_key = "123456"};
}

#define OK_BODY "{\"ShardId\":\"shardId-000000000002\",\"SequenceNumber\":\"4968\",\"EncryptionType\":\"NONE\"}"
static const reply ok_reply = {KN_OK, 200, OK_BODY, "req-ok", NULL};

/* One PutRecord through a fresh client over a fake that answers with replies. The fake is kept so the test can look
 * at what was sent: *fp is the caller's to fake_free. */
static kn_status put_with(const reply *replies, size_t count, kn_client_options o, kn_put_record_input in,
                          kn_put_record_output *out, fake **fp, kn_error *err)
{
    fake *f = fake_new(replies, count);
    kn_client *c = client_with(f, o);
    kn_status st = kn_put_record(c, &in, out, err);
    kn_client_destroy(c);
    *fp = f;
    return st;
}

/* put_with the sample record and the base options, when only the outcome matters. */
static kn_status put_once(const reply *replies, size_t count, fake **fp, kn_error *err)
{
    kn_put_record_output out;
    return put_with(replies, count, base_options(), sample_input(), &out, fp, err);
}

/* ---- PutRecord: the request ---- */

static void put_record_request_matches_botocore(void **state)
{
    (void)state;
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&ok_reply, 1, &f, &err), KN_OK);
    assert_int_equal(f->calls, 1);
    const captured *r = &f->req[0];
    assert_string_equal(r->url, "https://kinesis.us-east-1.amazonaws.com/");
    assert_string_equal(r->body, "{\"StreamName\":\"Testing\",\"Data\":\"AAEC/w==\",\"PartitionKey\":\"123456\"}");
    assert_string_equal(header_of(r, "Content-Type"), "application/x-amz-json-1.1");
    assert_string_equal(header_of(r, "X-Amz-Target"), "Kinesis_20131202.PutRecord");
    assert_string_equal(header_of(r, "Host"), "kinesis.us-east-1.amazonaws.com");
    assert_string_equal(header_of(r, "X-Amz-Date"), "20150830T123600Z");
    assert_null(header_of(r, "X-Amz-Security-Token"));
    /* Computed by botocore's SigV4Auth for the same request, body and moment. */
    assert_string_equal(header_of(r, "Authorization"),
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, "
                        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                        "Signature=78471241db1014695b13056080bbfddb598fcdd381d22795d9d1084702851895");
    fake_free(f);
}

static void session_token_is_sent_and_signed(void **state)
{
    (void)state;
    kn_client_options o = base_options();
    o.session_token = TOKEN;
    kn_put_record_output out;
    fake *f = NULL;
    assert_int_equal(put_with(&ok_reply, 1, o, sample_input(), &out, &f, NULL), KN_OK);
    assert_string_equal(header_of(&f->req[0], "X-Amz-Security-Token"), TOKEN);
    assert_string_equal(header_of(&f->req[0], "Authorization"),
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, "
                        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
                        "Signature=51738fe617b4b40c4cbdb64641712c57890d6e56d71dfd49f1849c31da09d547");
    fake_free(f);
}

static void optional_members_and_stream_arn_are_sent(void **state)
{
    (void)state;
    kn_put_record_input in = sample_input();
    in.stream_name = NULL;
    in.stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/Testing";
    in.partition_key = "cl\xc3\xa9\"\\";
    in.explicit_hash_key = "340282366920938463463374607431768211455";
    in.sequence_number_for_ordering = "49590338271490256608559692538361571095921575989136588898";
    kn_put_record_output out;
    fake *f = NULL;
    assert_int_equal(put_with(&ok_reply, 1, base_options(), in, &out, &f, NULL), KN_OK);
    cJSON *body = kn_json_parse(f->req[0].body, f->req[0].body_len);
    assert_non_null(body);
    assert_null(kn_json_string(body, "StreamName"));
    assert_string_equal(kn_json_string(body, "StreamARN"), in.stream_arn);
    assert_string_equal(kn_json_string(body, "PartitionKey"), in.partition_key);
    assert_string_equal(kn_json_string(body, "ExplicitHashKey"), in.explicit_hash_key);
    assert_string_equal(kn_json_string(body, "SequenceNumberForOrdering"), in.sequence_number_for_ordering);
    cJSON_Delete(body);
    fake_free(f);
}

/* Every member in order, and strings escaped by kn_json_escape: quote and backslash as \" and \\, every control
 * character as \u00XX in lowercase hex; DEL, '/' and UTF-8 as they are. The same JSON botocore sends, spelled
 * differently (botocore writes \n, \u007f, \u00e9 and spaces after ':' and ','). */
static void body_members_are_ordered_and_escaped(void **state)
{
    (void)state;
    kn_put_record_input in = sample_input();
    in.stream_name = NULL;
    in.stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/Testing";
    in.partition_key = "q\"b\\n\n\x01\x1f\x7f\t\b\f\r\xc3\xa9/";
    in.explicit_hash_key = "42";
    in.sequence_number_for_ordering = "4959";
    kn_put_record_output out;
    fake *f = NULL;
    assert_int_equal(put_with(&ok_reply, 1, base_options(), in, &out, &f, NULL), KN_OK);
    assert_string_equal(f->req[0].body,
                        "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:123456789012:stream/Testing\",\"Data\":\"AAEC/w==\","
                        "\"PartitionKey\":\"q\\\"b\\\\n\\u000a\\u0001\\u001f\x7f\\u0009\\u0008\\u000c\\u000d\xc3\xa9/\","
                        "\"ExplicitHashKey\":\"42\",\"SequenceNumberForOrdering\":\"4959\"}");
    fake_free(f);
}

static void endpoint_path_and_port_are_used(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client_options o = base_options();
    o.endpoint_url = "http://127.0.0.1:4567/kinesis";
    kn_client *c = client_with(f, o);
    assert_string_equal(kn_client_endpoint(c), "http://127.0.0.1:4567/kinesis");
    assert_string_equal(kn_client_region(c), "us-east-1");
    kn_put_record_input in = sample_input();
    kn_put_record_output out;
    assert_int_equal(kn_put_record(c, &in, &out, NULL), KN_OK);
    assert_string_equal(f->req[0].url, "http://127.0.0.1:4567/kinesis");
    assert_string_equal(header_of(&f->req[0], "Host"), "127.0.0.1:4567");
    kn_client_destroy(c);
    fake_free(f);
}

static void empty_data_is_sent_as_empty_string(void **state)
{
    (void)state;
    kn_put_record_input in = sample_input();
    in.data = NULL;
    in.data_len = 0;
    kn_put_record_output out;
    fake *f = NULL;
    assert_int_equal(put_with(&ok_reply, 1, base_options(), in, &out, &f, NULL), KN_OK);
    assert_non_null(strstr(f->req[0].body, "\"Data\":\"\""));
    fake_free(f);
}

/* ---- PutRecord: the answer ---- */

static void put_record_response_is_parsed(void **state)
{
    (void)state;
    static const reply kms = {KN_OK, 200,
                              "{\"SequenceNumber\":\"49590338271490256608559692538361571095921575989136588898\","
                              "\"ShardId\":\"shardId-000000000001\",\"EncryptionType\":\"KMS\"}",
                              "r1", NULL};
    kn_put_record_output out;
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_with(&kms, 1, base_options(), sample_input(), &out, &f, &err), KN_OK);
    assert_string_equal(out.shard_id, "shardId-000000000001");
    assert_string_equal(out.sequence_number, "49590338271490256608559692538361571095921575989136588898");
    assert_string_equal(out.encryption_type, "KMS");
    assert_int_equal(err.status, KN_OK);
    assert_int_equal(err.attempts, 1);
    fake_free(f);
}

static void malformed_success_is_protocol_error(void **state)
{
    (void)state;
    static const reply bad[] = {{KN_OK, 200, "{\"ShardId\":\"shardId-000000000001\"", "r-bad", NULL},
                                {KN_OK, 200, "{\"ShardId\":7,\"SequenceNumber\":\"1\"}", "r-bad2", NULL}};
    for (size_t i = 0; i < 2; i++) {
        kn_put_record_output out;
        fake *f = NULL;
        kn_error err;
        assert_int_equal(put_with(&bad[i], 1, base_options(), sample_input(), &out, &f, &err), KN_ERR_PROTOCOL);
        assert_int_equal(err.http_status, 200);
        assert_string_equal(err.request_id, bad[i].request_id);
        assert_string_equal(out.shard_id, "");
        fake_free(f);
    }
}

/* ---- errors ---- */

static void service_error_is_mapped_without_namespace(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 400,
                            "{\"__type\":\"com.amazonaws.kinesis#ResourceNotFoundException\","
                            "\"message\":\"Stream Testing under account 000000000000 not found.\"}",
                            "6b1d6c4c-0000", NULL};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_SERVICE);
    assert_int_equal(err.status, KN_ERR_SERVICE);
    assert_string_equal(err.type, "ResourceNotFoundException");
    assert_string_equal(err.message, "Stream Testing under account 000000000000 not found.");
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.request_id, "6b1d6c4c-0000");
    assert_int_equal(err.retry_class, KN_RETRY_NEVER);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(f->calls, 1);
    fake_free(f);
}

static void error_message_capitalised_is_read(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 400, "{\"__type\":\"ValidationException\",\"Message\":\"1 validation error\"}",
                            "r", NULL};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_SERVICE);
    assert_string_equal(err.type, "ValidationException");
    assert_string_equal(err.message, "1 validation error");
    fake_free(f);
}

static void error_type_header_is_used_when_body_is_not_json(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 403, "<html>denied</html>", "r",
                            "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_SERVICE);
    assert_string_equal(err.type, "AccessDeniedException");
    assert_int_equal(err.http_status, 403);
    assert_string_equal(err.message, "HTTP 403 with no message");
    fake_free(f);
}

static void unrecognized_client_is_not_retried(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 400,
                            "{\"__type\":\"UnrecognizedClientException\","
                            "\"message\":\"The security token included in the request is invalid.\"}",
                            "r-auth", NULL};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_SERVICE);
    assert_string_equal(err.type, "UnrecognizedClientException");
    assert_string_equal(err.message, "The security token included in the request is invalid.");
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->sleep_count, 0);
    assert_int_equal(err.attempts, 1);
    fake_free(f);
}

static void validation_exception_is_not_retried(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 400, "{\"__type\":\"ValidationException\",\"message\":\"bad\"}", "r", NULL};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_SERVICE);
    assert_int_equal(f->calls, 1);
    fake_free(f);
}

static void tls_failure_is_not_retried(void **state)
{
    (void)state;
    static const reply r = {KN_ERR_TLS, 0, NULL, NULL, NULL};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_TLS);
    assert_int_equal(f->calls, 1);
    assert_int_equal(err.http_status, 0);
    fake_free(f);
}

/* ---- retries ---- */

static void throttling_then_success_retries_with_backoff(void **state)
{
    (void)state;
    static const reply r[] = {
        {KN_OK, 400,
         "{\"__type\":\"ProvisionedThroughputExceededException\",\"message\":\"Rate exceeded for shard\"}", "r1",
         NULL},
        {KN_OK, 200, OK_BODY, "r2", NULL}};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(r, 2, &f, &err), KN_OK);
    assert_int_equal(f->calls, 2);
    assert_int_equal(err.attempts, 2);
    assert_int_equal(err.status, KN_OK);
    assert_string_equal(err.type, "");
    /* Full jitter with random 0.5 over base 100 ms. */
    assert_int_equal(f->sleep_count, 1);
    assert_int_equal(f->sleeps[0], 50);
    /* Both attempts carry the same body, each freshly signed. */
    assert_string_equal(f->req[0].body, f->req[1].body);
    assert_non_null(header_of(&f->req[1], "Authorization"));
    fake_free(f);
}

static void gives_up_after_max_attempts_with_last_error(void **state)
{
    (void)state;
    static const reply r[] = {{KN_OK, 500, "{\"__type\":\"InternalFailure\",\"message\":\"first\"}", "r1", NULL},
                              {KN_OK, 503, "{\"__type\":\"ServiceUnavailable\",\"message\":\"second\"}", "r2", NULL},
                              {KN_OK, 500, "{\"__type\":\"InternalFailure\",\"message\":\"third\"}", "r3", NULL},
                              {KN_OK, 200, OK_BODY, "r4", NULL}};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(r, 4, &f, &err), KN_ERR_SERVICE);
    assert_int_equal(f->calls, 3);
    assert_int_equal(err.attempts, 3);
    assert_string_equal(err.message, "third");
    assert_string_equal(err.request_id, "r3");
    assert_int_equal(err.http_status, 500);
    assert_int_equal(err.retry_class, KN_RETRY_TRANSIENT);
    assert_int_equal(f->sleep_count, 2);
    assert_int_equal(f->sleeps[0], 50);
    assert_int_equal(f->sleeps[1], 100);
    fake_free(f);
}

static void network_failure_is_retried(void **state)
{
    (void)state;
    static const reply r[] = {{KN_ERR_NETWORK, 0, NULL, NULL, NULL}, {KN_OK, 200, OK_BODY, "r", NULL}};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(r, 2, &f, &err), KN_OK);
    assert_int_equal(f->calls, 2);
    fake_free(f);
}

static void timeouts_exhaust_attempts_as_timeout(void **state)
{
    (void)state;
    static const reply r = {KN_ERR_TIMEOUT, 0, NULL, NULL, NULL};
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_once(&r, 1, &f, &err), KN_ERR_TIMEOUT);
    assert_int_equal(f->calls, 3);
    assert_int_equal(err.attempts, 3);
    fake_free(f);
}

static void max_attempts_one_disables_retries(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 500, "{\"__type\":\"InternalFailure\",\"message\":\"x\"}", "r", NULL};
    kn_client_options o = base_options();
    o.max_attempts = 1;
    kn_put_record_output out;
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_with(&r, 1, o, sample_input(), &out, &f, &err), KN_ERR_SERVICE);
    assert_int_equal(f->calls, 1);
    fake_free(f);
}

/* ---- validation before sending ---- */

static void expect_invalid(kn_client *c, fake *f, kn_put_record_input in, const char *message_start)
{
    kn_put_record_output out;
    kn_error err;
    assert_int_equal(kn_put_record(c, &in, &out, &err), KN_ERR_INVALID_ARGUMENT);
    if (strncmp(err.message, message_start, strlen(message_start)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.message, message_start);
    assert_int_equal(err.attempts, 0);
    assert_int_equal(f->calls, 0);
}

static void invalid_input_is_refused_before_sending(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client *c = client_with(f, base_options());
    char long_key[258];
    memset(long_key, 'k', 257);
    long_key[257] = '\0';
    kn_put_record_input in = sample_input();
    in.partition_key = "";
    expect_invalid(c, f, in, "PartitionKey: ");
    in.partition_key = long_key;
    expect_invalid(c, f, in, "PartitionKey: ");
    in.partition_key = "bad\xc3";
    expect_invalid(c, f, in, "PartitionKey: ");
    in.partition_key = NULL;
    expect_invalid(c, f, in, "PartitionKey: ");
    in = sample_input();
    in.explicit_hash_key = "340282366920938463463374607431768211456"; /* 2^128 */
    expect_invalid(c, f, in, "ExplicitHashKey: ");
    in.explicit_hash_key = "01";
    expect_invalid(c, f, in, "ExplicitHashKey: ");
    in = sample_input();
    in.sequence_number_for_ordering = "12a";
    expect_invalid(c, f, in, "SequenceNumberForOrdering: ");
    in = sample_input();
    in.stream_name = "bad name";
    expect_invalid(c, f, in, "StreamName: ");
    in.stream_name = NULL;
    in.stream_arn = "arn:aws:s3:::bucket";
    expect_invalid(c, f, in, "StreamARN: ");
    in.stream_name = "Testing";
    in.stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/Testing";
    expect_invalid(c, f, in, "exactly one of StreamName and StreamARN");
    in.stream_name = in.stream_arn = NULL;
    expect_invalid(c, f, in, "exactly one of StreamName and StreamARN");
    kn_client_destroy(c);
    fake_free(f);
}

static void partition_key_counts_characters_not_bytes(void **state)
{
    (void)state;
    char key[256 * 3 + 1]; /* 256 three-byte characters: 768 bytes, still 256 characters */
    for (size_t i = 0; i < 256; i++)
        memcpy(key + 3 * i, "\xe2\x82\xac", 3);
    key[768] = '\0';
    kn_put_record_input in = sample_input();
    in.partition_key = key;
    kn_put_record_output out;
    fake *f = NULL;
    assert_int_equal(put_with(&ok_reply, 1, base_options(), in, &out, &f, NULL), KN_OK);
    fake_free(f);
}

static void record_size_limit_counts_data_and_key(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client *c = client_with(f, base_options());
    size_t max = 1024 * 1024;
    uint8_t *data = calloc(1, max);
    kn_put_record_input in = sample_input();
    in.partition_key = "k";
    in.data = data;
    in.data_len = max; /* + 1 byte of key: one over */
    expect_invalid(c, f, in, "Data: data (1048576 bytes) plus partition key (1 bytes) exceed the maximum record size");
    in.data_len = max - 1;
    kn_put_record_output out;
    assert_int_equal(kn_put_record(c, &in, &out, NULL), KN_OK);
    free(data);
    kn_client_destroy(c);
    fake_free(f);
}

static void max_record_size_is_configurable(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client_options o = base_options();
    o.max_record_size = 10;
    kn_client *c = client_with(f, o);
    kn_put_record_input in = sample_input();
    in.partition_key = "k";
    in.data = "123456789";
    in.data_len = 9;
    kn_put_record_output out;
    assert_int_equal(kn_put_record(c, &in, &out, NULL), KN_OK);
    in.data = "1234567890";
    in.data_len = 10;
    kn_error err;
    assert_int_equal(kn_put_record(c, &in, &out, &err), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "maximum record size of 10 bytes"));
    kn_client_destroy(c);
    fake_free(f);
}

/* ---- PutRecords ---- */

static const kn_put_records_entry three_entries[] = {
    {.data = "a", .data_len = 1, .partition_key = "p0"},
    {.data = "bb", .data_len = 2, .partition_key = "p1", .explicit_hash_key = "42"},
    {.data = "ccc", .data_len = 3, .partition_key = "p2"},
};

/* The PartitionKey of each record a captured PutRecords body carries, joined with ','. */
static void body_keys(const captured *r, char *out, size_t cap)
{
    out[0] = '\0';
    cJSON *root = kn_json_parse(r->body, r->body_len);
    const cJSON *rec = NULL;
    cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(root, "Records")) {
        if (out[0])
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, kn_json_string(rec, "PartitionKey"), cap - strlen(out) - 1);
    }
    cJSON_Delete(root);
}

/* One PutRecords of the three entries to stream Testing through a fresh client over a fake that answers with
 * replies; *fp is the caller's to fake_free. */
static kn_status put_three_with(const reply *replies, size_t count, kn_put_records_result res[3], size_t *failed,
                                fake **fp, kn_error *err)
{
    fake *f = fake_new(replies, count);
    kn_client *c = client_with(f, base_options());
    kn_status st = kn_put_records(c, "Testing", NULL, three_entries, 3, res, failed, err);
    kn_client_destroy(c);
    *fp = f;
    return st;
}

static void put_records_request_is_built(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 200,
                            "{\"FailedRecordCount\":0,\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":\"s0\"},"
                            "{\"SequenceNumber\":\"2\",\"ShardId\":\"s1\"},{\"SequenceNumber\":\"3\",\"ShardId\":\"s2\"}]}",
                            "r", NULL};
    kn_put_records_result res[3];
    size_t failed = 99;
    fake *f = NULL;
    assert_int_equal(put_three_with(&r, 1, res, &failed, &f, NULL), KN_OK);
    assert_int_equal(failed, 0);
    assert_string_equal(header_of(&f->req[0], "X-Amz-Target"), "Kinesis_20131202.PutRecords");
    assert_string_equal(f->req[0].body, "{\"StreamName\":\"Testing\",\"Records\":[{\"Data\":\"YQ==\",\"PartitionKey\":\"p0\"},"
                                        "{\"Data\":\"YmI=\",\"PartitionKey\":\"p1\",\"ExplicitHashKey\":\"42\"},"
                                        "{\"Data\":\"Y2Nj\",\"PartitionKey\":\"p2\"}]}");
    for (int i = 0; i < 3; i++) {
        assert_true(res[i].ok);
        char want[8];
        snprintf(want, sizeof want, "s%d", i);
        assert_string_equal(res[i].shard_id, want);
    }
    fake_free(f);
}

static void put_records_retries_only_failed_retryable_entries(void **state)
{
    (void)state;
    static const reply r[] = {
        {KN_OK, 200,
         "{\"FailedRecordCount\":2,\"Records\":["
         "{\"SequenceNumber\":\"1\",\"ShardId\":\"s0\"},"
         "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"Rate exceeded\"},"
         "{\"ErrorCode\":\"KMSAccessDeniedException\",\"ErrorMessage\":\"denied\"}]}",
         "r1", NULL},
        {KN_OK, 200, "{\"FailedRecordCount\":0,\"Records\":[{\"SequenceNumber\":\"2\",\"ShardId\":\"s1\"}]}", "r2",
         NULL}};
    kn_put_records_result res[3];
    size_t failed = 0;
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_three_with(r, 2, res, &failed, &f, &err), KN_OK);
    assert_int_equal(f->calls, 2);
    assert_int_equal(err.attempts, 2);
    char keys[64];
    body_keys(&f->req[0], keys, sizeof keys);
    assert_string_equal(keys, "p0,p1,p2");
    body_keys(&f->req[1], keys, sizeof keys);
    assert_string_equal(keys, "p1"); /* only the throttled one; the denied one is final */
    assert_non_null(strstr(f->req[1].body, "\"ExplicitHashKey\":\"42\""));
    /* The retry reuses the body buffer and the stored encoding of the middle entry. */
    assert_string_equal(f->req[1].body, "{\"StreamName\":\"Testing\",\"Records\":[{\"Data\":\"YmI=\",\"PartitionKey\":\"p1\","
                                        "\"ExplicitHashKey\":\"42\"}]}");
    assert_true(res[0].ok);
    assert_string_equal(res[0].sequence_number, "1");
    assert_true(res[1].ok);
    assert_string_equal(res[1].shard_id, "s1");
    assert_false(res[2].ok);
    assert_string_equal(res[2].error_code, "KMSAccessDeniedException");
    assert_string_equal(res[2].error_message, "denied");
    assert_int_equal(failed, 1);
    assert_int_equal(f->sleep_count, 1);
    fake_free(f);
}

static void put_records_gives_up_with_each_entrys_last_error(void **state)
{
    (void)state;
    static const reply r[] = {
        {KN_OK, 200,
         "{\"FailedRecordCount\":2,\"Records\":[{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"i1\"},"
         "{\"SequenceNumber\":\"1\",\"ShardId\":\"s1\"},"
         "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"t1\"}]}",
         "r1", NULL},
        {KN_OK, 200,
         "{\"FailedRecordCount\":2,\"Records\":[{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"i2\"},"
         "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"t2\"}]}",
         "r2", NULL},
        {KN_OK, 200,
         "{\"FailedRecordCount\":1,\"Records\":[{\"SequenceNumber\":\"3\",\"ShardId\":\"s0\"},"
         "{\"ErrorCode\":\"ProvisionedThroughputExceededException\",\"ErrorMessage\":\"t3\"}]}",
         "r3", NULL}};
    kn_put_records_result res[3];
    size_t failed = 0;
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_three_with(r, 3, res, &failed, &f, &err), KN_OK);
    assert_int_equal(f->calls, 3);
    assert_int_equal(err.attempts, 3);
    assert_true(res[0].ok);
    assert_string_equal(res[0].sequence_number, "3");
    assert_true(res[1].ok);
    assert_false(res[2].ok);
    assert_string_equal(res[2].error_code, "ProvisionedThroughputExceededException");
    assert_string_equal(res[2].error_message, "t3");
    assert_int_equal(failed, 1);
    fake_free(f);
}

static void put_records_request_failure_keeps_earlier_successes(void **state)
{
    (void)state;
    static const reply r[] = {
        {KN_OK, 200,
         "{\"FailedRecordCount\":2,\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":\"s0\"},"
         "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"i\"},"
         "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"i\"}]}",
         "r1", NULL},
        {KN_OK, 500, "{\"__type\":\"InternalFailure\",\"message\":\"down\"}", "r2", NULL}};
    kn_put_records_result res[3];
    size_t failed = 0;
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_three_with(r, 2, res, &failed, &f, &err), KN_ERR_SERVICE);
    assert_int_equal(f->calls, 3);
    assert_string_equal(err.message, "down");
    assert_true(res[0].ok);
    assert_false(res[1].ok);
    assert_string_equal(res[1].error_code, "InternalFailure");
    assert_string_equal(res[1].error_message, "down");
    assert_int_equal(failed, 2);
    fake_free(f);
}

static void put_records_result_count_mismatch_is_protocol_error(void **state)
{
    (void)state;
    static const reply r = {KN_OK, 200, "{\"Records\":[{\"SequenceNumber\":\"1\",\"ShardId\":\"s0\"}]}", "r", NULL};
    kn_put_records_result res[3];
    fake *f = NULL;
    kn_error err;
    assert_int_equal(put_three_with(&r, 1, res, NULL, &f, &err), KN_ERR_PROTOCOL);
    assert_false(res[0].ok);
    fake_free(f);
}

static void put_records_validation_names_the_entry(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client *c = client_with(f, base_options());
    kn_put_records_entry e[2] = {{.data = "a", .data_len = 1, .partition_key = "ok"},
                                 {.data = "b", .data_len = 1, .partition_key = ""}};
    kn_put_records_result res[2];
    size_t failed = 0;
    kn_error err;
    assert_int_equal(kn_put_records(c, "Testing", NULL, e, 2, res, &failed, &err), KN_ERR_INVALID_ARGUMENT);
    assert_memory_equal(err.message, "Records[1].PartitionKey: ", 25);
    assert_int_equal(failed, 2);
    assert_int_equal(kn_put_records(c, "Testing", NULL, e, 0, res, NULL, &err), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "1 to 500"));
    assert_int_equal(f->calls, 0);
    kn_client_destroy(c);
    fake_free(f);
}

static void put_records_total_size_is_limited(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client *c = client_with(f, base_options());
    size_t n = 6, each = 1024 * 1024 - 1; /* six records just under 1 MiB each: over 5 MiB together */
    uint8_t *data = calloc(1, each);
    kn_put_records_entry e[6];
    for (size_t i = 0; i < n; i++)
        e[i] = (kn_put_records_entry){.data = data, .data_len = each, .partition_key = "k"};
    kn_put_records_result res[6];
    kn_error err;
    assert_int_equal(kn_put_records(c, "Testing", NULL, e, n, res, NULL, &err), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "request limit of 5242880 bytes"));
    assert_int_equal(f->calls, 0);
    free(data);
    kn_client_destroy(c);
    fake_free(f);
}

/* ---- the debug trace ---- */

static void debug_trace_redacts_signature_and_token(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client_options o = base_options();
    o.session_token = TOKEN;
    o.debug = fake_trace;
    o.debug_ctx = f;
    kn_client *c = client_with(f, o);
    kn_put_record_input in = sample_input();
    kn_put_record_output out;
    assert_int_equal(kn_put_record(c, &in, &out, NULL), KN_OK);
    const char *t = (const char *)f->trace.data;
    assert_non_null(t);
    assert_non_null(strstr(t, "> POST https://kinesis.us-east-1.amazonaws.com/ (attempt 1)"));
    assert_non_null(strstr(t, "Signature=<redacted>"));
    assert_non_null(strstr(t, "> X-Amz-Security-Token: <redacted>"));
    assert_non_null(strstr(t, "\"PartitionKey\":\"123456\""));
    assert_non_null(strstr(t, "shardId-000000000002"));
    assert_null(strstr(t, TOKEN));
    assert_null(strstr(t, SECRET));
    const char *sig = strstr(header_of(&f->req[0], "Authorization"), "Signature=") + 10;
    assert_null(strstr(t, sig));
    kn_client_destroy(c);
    fake_free(f);
}

/* ---- construction ---- */

static void missing_region_and_credentials_are_config_errors(void **state)
{
    (void)state;
    kn_http_transport t = {.send = fake_send};
    kn_client_deps deps = {.env = &empty_env, .transport = &t};
    kn_client *c = NULL;
    kn_error err;
    kn_client_options o = {.access_key_id = AKID, .secret_access_key = SECRET};
    assert_int_equal(kn_client_new_with(&o, &deps, &c, &err), KN_ERR_NO_REGION);
    assert_null(c);
    o = (kn_client_options){.region = "us-east-1"};
    assert_int_equal(kn_client_new_with(&o, &deps, &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_null(c);
    o = base_options();
    o.endpoint_url = "ftp://example.com";
    assert_int_equal(kn_client_new_with(&o, &deps, &c, &err), KN_ERR_CONFIG);
    o = base_options();
    o.max_attempts = -1;
    assert_int_equal(kn_client_new_with(&o, &deps, &c, &err), KN_ERR_INVALID_ARGUMENT);
}

/* ---- threads ---- */

typedef struct worker {
    kn_client *client;
    int ok;
} worker;

static void *put_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        kn_put_record_input in = sample_input();
        kn_put_record_output out;
        w->ok += kn_put_record(w->client, &in, &out, NULL) == KN_OK && strcmp(out.shard_id, "shardId-000000000002") == 0;
    }
    return NULL;
}

static void one_client_serves_several_threads(void **state)
{
    (void)state;
    fake *f = fake_new(&ok_reply, 1);
    kn_client *c = client_with(f, base_options());
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.client = c};
        pthread_create(&th[i], NULL, put_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 50);
    }
    assert_int_equal(f->calls, 200);
    kn_client_destroy(c);
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_record_request_matches_botocore),
        cmocka_unit_test(session_token_is_sent_and_signed),
        cmocka_unit_test(optional_members_and_stream_arn_are_sent),
        cmocka_unit_test(body_members_are_ordered_and_escaped),
        cmocka_unit_test(endpoint_path_and_port_are_used),
        cmocka_unit_test(empty_data_is_sent_as_empty_string),
        cmocka_unit_test(put_record_response_is_parsed),
        cmocka_unit_test(malformed_success_is_protocol_error),
        cmocka_unit_test(service_error_is_mapped_without_namespace),
        cmocka_unit_test(error_message_capitalised_is_read),
        cmocka_unit_test(error_type_header_is_used_when_body_is_not_json),
        cmocka_unit_test(unrecognized_client_is_not_retried),
        cmocka_unit_test(validation_exception_is_not_retried),
        cmocka_unit_test(tls_failure_is_not_retried),
        cmocka_unit_test(throttling_then_success_retries_with_backoff),
        cmocka_unit_test(gives_up_after_max_attempts_with_last_error),
        cmocka_unit_test(network_failure_is_retried),
        cmocka_unit_test(timeouts_exhaust_attempts_as_timeout),
        cmocka_unit_test(max_attempts_one_disables_retries),
        cmocka_unit_test(invalid_input_is_refused_before_sending),
        cmocka_unit_test(partition_key_counts_characters_not_bytes),
        cmocka_unit_test(record_size_limit_counts_data_and_key),
        cmocka_unit_test(max_record_size_is_configurable),
        cmocka_unit_test(put_records_request_is_built),
        cmocka_unit_test(put_records_retries_only_failed_retryable_entries),
        cmocka_unit_test(put_records_gives_up_with_each_entrys_last_error),
        cmocka_unit_test(put_records_request_failure_keeps_earlier_successes),
        cmocka_unit_test(put_records_result_count_mismatch_is_protocol_error),
        cmocka_unit_test(put_records_validation_names_the_entry),
        cmocka_unit_test(put_records_total_size_is_limited),
        cmocka_unit_test(debug_trace_redacts_signature_and_token),
        cmocka_unit_test(missing_region_and_credentials_are_config_errors),
        cmocka_unit_test(one_client_serves_several_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
