/* knd_api end to end below HTTP: signed requests go through knd_api_dispatch against an in-memory store and an
 * anonymous knd_auth, with an injected clock, and the replies are checked field by field. The expected error texts
 * are AWS's (kinesalite's tests recorded them against the real service). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api.h"
#include "json.h"
#include "sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1764100000000LL /* 2025-11-25T19:46:40Z */

typedef struct reply {
    bool done;
    int status;
    char request_id[64];
    char content_type[64];
    char *body;
} reply;

typedef struct fixture {
    uv_loop_t loop;
    knd_store *store;
    knd_auth *auth;
    knd_api *api;
    int64_t now_ms;
} fixture;

static int64_t fake_clock(void *ctx)
{
    return ((fixture *)ctx)->now_ms;
}

static fixture *make_fixture_limited(uint32_t create_delay_ms, uint32_t delete_delay_ms, uint32_t shard_limit,
                                     uint64_t memory_limit_bytes)
{
    fixture *f = calloc(1, sizeof *f);
    kn_error err = {0};
    f->now_ms = T0;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    knd_store_options so = {.data_dir = NULL, .loop = &f->loop, .memory_limit_bytes = memory_limit_bytes};
    assert_int_equal(knd_store_open(&so, &f->store, &err), KN_OK);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    assert_int_equal(knd_auth_new(NULL, &f->auth, &err), KN_OK);
    knd_api_options ao = {.store = f->store,
                          .auth = f->auth,
                          .create_delay_ms = create_delay_ms,
                          .delete_delay_ms = delete_delay_ms,
                          .shard_limit = shard_limit,
                          .max_body_bytes = 1000,
                          .clock_ms = fake_clock,
                          .clock_ctx = f};
    assert_int_equal(knd_api_new(&ao, &f->api, &err), KN_OK);
    return f;
}

static fixture *make_fixture(uint32_t create_delay_ms, uint32_t delete_delay_ms, uint32_t shard_limit)
{
    return make_fixture_limited(create_delay_ms, delete_delay_ms, shard_limit, 0);
}

static int setup(void **state)
{
    *state = make_fixture(0, 0, 0);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(knd_api_pending(f->api), 0);
    knd_api_destroy(f->api);
    knd_store_close(f->store);
    knd_auth_destroy(f->auth);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void on_reply(void *ctx, int status, const kn_sigv4_header *headers, size_t header_count, const void *body,
                     size_t body_len)
{
    reply *r = ctx;
    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = status;
    for (size_t i = 0; i < header_count; i++) {
        char *dst = strncmp(headers[i].name, "x-amzn-RequestId", headers[i].name_len) == 0 ? r->request_id
                    : strncmp(headers[i].name, "Content-Type", headers[i].name_len) == 0 ? r->content_type
                                                                                        : NULL;
        if (dst)
            snprintf(dst, 64, "%.*s", (int)headers[i].value_len, headers[i].value);
    }
    r->body = malloc(body_len + 1);
    memcpy(r->body, body, body_len);
    r->body[body_len] = '\0';
}

typedef struct req_opts {
    const char *method;       /* default POST */
    const char *content_type; /* default application/x-amz-json-1.1; "" for none */
    const char *target;       /* full X-Amz-Target; default "Kinesis_20131202." + op */
    bool unsigned_request;
    bool too_large;
} req_opts;

/* Sends op with body through the API as a properly signed request and runs the loop until it is answered. */
static reply send_full(fixture *f, const char *op, const char *body, const req_opts *o)
{
    char target[128], amz_date[32];
    snprintf(target, sizeof target, "Kinesis_20131202.%s", op);
    kn_sigv4_scope scope = {.region = "us-east-1", .service = "kinesis"};
    kn_sigv4_format_time(f->now_ms / 1000, &scope);
    snprintf(amz_date, sizeof amz_date, "%s", scope.amz_date);
    const char *ct = o->content_type ? o->content_type : "application/x-amz-json-1.1";
    const char *tg = o->target ? o->target : target;
    kn_sigv4_header h[6];
    size_t n = 0;
    h[n++] = (kn_sigv4_header){"host", 4, "127.0.0.1:4567", 14};
    h[n++] = (kn_sigv4_header){"x-amz-date", 10, amz_date, strlen(amz_date)};
    if (*ct)
        h[n++] = (kn_sigv4_header){"content-type", 12, ct, strlen(ct)};
    if (*tg)
        h[n++] = (kn_sigv4_header){"x-amz-target", 12, tg, strlen(tg)};
    kn_buf auth;
    kn_buf_init(&auth, 4096);
    const char *method = o->method ? o->method : "POST";
    kn_sigv4_request sr = {.method = method, .path = "/", .path_len = 1, .query = "", .headers = h,
                           .header_count = n, .body = body, .body_len = strlen(body)};
    if (!o->unsigned_request) {
        assert_int_equal(kn_sigv4_sign(&sr, "AKIDEXAMPLE", "secret", &scope, NULL, &auth), KN_OK);
        h[n++] = (kn_sigv4_header){"authorization", 13, (char *)auth.data, auth.len};
    }
    knd_request req = {.method = method, .path = "/", .path_len = 1, .query = "", .headers = h, .header_count = n,
                       .body = o->too_large ? NULL : (const uint8_t *)body,
                       .body_len = o->too_large ? 0 : strlen(body), .body_too_large = o->too_large};
    reply r = {0};
    knd_api_dispatch(f->api, &req, on_reply, &r);
    while (!r.done)
        assert_true(uv_run(&f->loop, UV_RUN_ONCE) || r.done);
    kn_buf_cleanup(&auth);
    return r;
}

static reply send_op(fixture *f, const char *op, const char *body)
{
    return send_full(f, op, body, &(req_opts){0});
}

/* Sends a request that must succeed and returns its parsed body (NULL for an empty body). */
static cJSON *ok(fixture *f, const char *op, const char *body)
{
    reply r = send_op(f, op, body);
    if (r.status != 200)
        fail_msg("%s %s -> %d %s", op, body, r.status, r.body);
    assert_string_equal(r.content_type, "application/x-amz-json-1.1");
    cJSON *j = r.body[0] ? kn_json_parse(r.body, strlen(r.body)) : NULL;
    free(r.body);
    return j;
}

/* Checks that a request fails with this status, type and message (NULL: the body has no message). */
static void expect_error(fixture *f, const char *op, const char *body, int status, const char *type,
                         const char *message)
{
    reply r = send_op(f, op, body);
    if (r.status != status)
        fail_msg("%s %s -> %d %s", op, body, r.status, r.body);
    cJSON *j = kn_json_parse(r.body, strlen(r.body));
    assert_non_null(j);
    assert_string_equal(kn_json_string(j, "__type"), type);
    const char *m = kn_json_string(j, "message");
    if (!m)
        m = kn_json_string(j, "Message");
    if (message)
        assert_string_equal(m ? m : "(none)", message);
    else
        assert_null(m);
    cJSON_Delete(j);
    free(r.body);
}

static void create(fixture *f, const char *name, int shards)
{
    char body[256];
    snprintf(body, sizeof body, "{\"StreamName\":\"%s\",\"ShardCount\":%d}", name, shards);
    assert_null(ok(f, "CreateStream", body));
}

/* Puts one record and returns the response (caller frees). */
static cJSON *put(fixture *f, const char *stream, const char *data_b64, const char *pk)
{
    char body[512];
    snprintf(body, sizeof body, "{\"StreamName\":\"%s\",\"Data\":\"%s\",\"PartitionKey\":\"%s\"}", stream, data_b64,
             pk);
    return ok(f, "PutRecord", body);
}

/* GetShardIterator with extra members (", ..." or ""), returning the iterator (caller frees). */
static char *iterator(fixture *f, const char *stream, const char *shard, const char *type, const char *extra)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"StreamName\":\"%s\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"%s\"%s}", stream,
             shard, type, extra);
    cJSON *j = ok(f, "GetShardIterator", body);
    char *it = strdup(kn_json_string(j, "ShardIterator"));
    cJSON_Delete(j);
    return it;
}

static cJSON *get_records(fixture *f, const char *it, int limit)
{
    char body[1024];
    if (limit)
        snprintf(body, sizeof body, "{\"ShardIterator\":\"%s\",\"Limit\":%d}", it, limit);
    else
        snprintf(body, sizeof body, "{\"ShardIterator\":\"%s\"}", it);
    return ok(f, "GetRecords", body);
}

static const char *record_data(const cJSON *res, int i)
{
    return kn_json_string(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "Records"), i), "Data");
}

/* ---- routing and protocol errors ---- */

static void test_unknown_operation(void **state)
{
    expect_error(*state, "ListStream", "{}", 400, "UnknownOperationException", NULL);
    reply r = send_full(*state, "x", "{}", &(req_opts){.target = "Kinesis_20131202"});
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"__type\":\"UnknownOperationException\"}");
    free(r.body);
}

static void test_malformed_json_is_serialization_exception(void **state)
{
    expect_error(*state, "ListStreams", "hello", 400, "SerializationException", NULL);
    expect_error(*state, "ListStreams", "{\"Limit\":", 400, "SerializationException", NULL);
    expect_error(*state, "ListStreams", "[]", 400, "SerializationException", NULL);
    expect_error(*state, "ListStreams", "{} {}", 400, "SerializationException", NULL);
    expect_error(*state, "ListStreams", "{\"Limit\":\"\xff\"}", 400, "SerializationException", NULL);
}

static void test_empty_body(void **state)
{
    expect_error(*state, "ListStreams", "", 400, "SerializationException", NULL);
    expect_error(*state, "ListStreamz", "", 400, "UnknownOperationException", NULL);
}

static void test_routing_comes_before_authentication(void **state)
{
    reply r = send_full(*state, "ListStreamz", "{}", &(req_opts){.unsigned_request = true});
    assert_string_equal(r.body, "{\"__type\":\"UnknownOperationException\"}");
    free(r.body);
    r = send_full(*state, "ListStreams", "{}", &(req_opts){.unsigned_request = true});
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body,
                        "{\"__type\":\"MissingAuthenticationTokenException\",\"message\":\"Missing Authentication "
                        "Token\"}");
    free(r.body);
}

static void test_authentication_comes_before_validation(void **state)
{
    reply r = send_full(*state, "PutRecord", "{}", &(req_opts){.unsigned_request = true});
    assert_non_null(strstr(r.body, "MissingAuthenticationTokenException"));
    free(r.body);
}

static void test_wrong_method_and_content_type_get_xml(void **state)
{
    reply r = send_full(*state, "ListStreams", "{}", &(req_opts){.method = "GET"});
    assert_int_equal(r.status, 403);
    assert_string_equal(r.body, "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to "
                                "be authorized</Message>\n</AccessDeniedException>\n");
    free(r.body);
    r = send_full(*state, "ListStreams", "{}", &(req_opts){.method = "GET", .unsigned_request = true});
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "<MissingAuthenticationTokenException>"));
    free(r.body);
    r = send_full(*state, "ListStreams", "{}", &(req_opts){.content_type = "text/plain"});
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "<UnknownOperationException/>\n");
    free(r.body);
    r = send_full(*state, "ListStreams", "{}", &(req_opts){.content_type = "", .target = ""});
    assert_int_equal(r.status, 403);
    free(r.body);
}

static void test_application_json_is_accepted(void **state)
{
    reply r = send_full(*state, "ListStreams", "{}", &(req_opts){.content_type = "application/json; charset=utf-8"});
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/x-amz-json-1.1");
    free(r.body);
}

static void test_oversized_body_is_rejected(void **state)
{
    reply r = send_full(*state, "PutRecords", "", &(req_opts){.too_large = true});
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "{\"__type\":\"SerializationException\",\"message\":\"Request body exceeds the "
                                "1000-byte limit.\"}");
    free(r.body);
}

static void test_request_ids_are_uuids_and_differ(void **state)
{
    reply a = send_op(*state, "ListStreams", "{}"), b = send_op(*state, "ListStreams", "{}");
    assert_int_equal(strlen(a.request_id), 36);
    assert_int_equal(a.request_id[14], '4');
    assert_string_not_equal(a.request_id, b.request_id);
    free(a.body);
    free(b.body);
}

/* ---- input checks ---- */

static void test_type_error_uses_capital_message_key(void **state)
{
    reply r = send_op(*state, "DescribeStream", "{\"StreamName\":23}");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "{\"__type\":\"SerializationException\",\"Message\":\"class "
                                "com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an "
                                "String\"}");
    free(r.body);
}

static void test_put_record_validation_messages(void **state)
{
    expect_error(*state, "PutRecord", "{}", 400, "ValidationException",
                 "3 validation errors detected: "
                 "Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; "
                 "Value null at 'data' failed to satisfy constraint: Member must not be null; "
                 "Value null at 'streamName' failed to satisfy constraint: Member must not be null");
    expect_error(*state, "PutRecord",
                 "{\"StreamName\":\"\",\"PartitionKey\":\"\",\"Data\":\"\",\"ExplicitHashKey\":\"\","
                 "\"SequenceNumberForOrdering\":\"\"}",
                 400, "ValidationException",
                 "5 validation errors detected: "
                 "Value '' at 'sequenceNumberForOrdering' failed to satisfy constraint: Member must satisfy regular "
                 "expression pattern: 0|([1-9]\\d{0,128}); "
                 "Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or "
                 "equal to 1; "
                 "Value '' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression "
                 "pattern: 0|([1-9]\\d{0,38}); "
                 "Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression "
                 "pattern: [a-zA-Z0-9_.-]+; "
                 "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or "
                 "equal to 1");
}

static void test_get_shard_iterator_validation_messages(void **state)
{
    expect_error(*state, "GetShardIterator", "{}", 400, "ValidationException",
                 "3 validation errors detected: "
                 "Value null at 'shardId' failed to satisfy constraint: Member must not be null; "
                 "Value null at 'shardIteratorType' failed to satisfy constraint: Member must not be null; "
                 "Value null at 'streamName' failed to satisfy constraint: Member must not be null");
    expect_error(*state, "GetShardIterator",
                 "{\"StreamName\":\"s\",\"ShardId\":\"shardId-0\",\"ShardIteratorType\":\"NEWEST\"}", 400,
                 "ValidationException",
                 "1 validation error detected: Value 'NEWEST' at 'shardIteratorType' failed to satisfy constraint: "
                 "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, "
                 "AT_SEQUENCE_NUMBER, TRIM_HORIZON]");
}

static void test_get_records_validation_messages(void **state)
{
    expect_error(*state, "GetRecords", "{\"ShardIterator\":\"\",\"Limit\":0}", 400, "ValidationException",
                 "2 validation errors detected: "
                 "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to "
                 "1; "
                 "Value '' at 'shardIterator' failed to satisfy constraint: Member must have length greater than or "
                 "equal to 1");
}

/* ---- streams ---- */

static void test_stream_not_found_and_already_exists(void **state)
{
    fixture *f = *state;
    expect_error(f, "DescribeStream", "{\"StreamName\":\"nope\"}", 400, "ResourceNotFoundException",
                 "Stream nope under account 000000000000 not found.");
    expect_error(f, "PutRecord", "{\"StreamName\":\"nope\",\"PartitionKey\":\"a\",\"Data\":\"\"}", 400,
                 "ResourceNotFoundException", "Stream nope under account 000000000000 not found.");
    create(f, "s1", 1);
    expect_error(f, "CreateStream", "{\"StreamName\":\"s1\",\"ShardCount\":1}", 400, "ResourceInUseException",
                 "Stream s1 under account 000000000000 already exists.");
}

static void test_describe_stream_shards_split_hash_space(void **state)
{
    fixture *f = *state;
    create(f, "Testing", 3);
    cJSON *j = ok(f, "DescribeStream", "{\"StreamName\":\"Testing\"}");
    cJSON *d = cJSON_GetObjectItem(j, "StreamDescription");
    assert_string_equal(kn_json_string(d, "StreamStatus"), "ACTIVE");
    assert_string_equal(kn_json_string(d, "StreamARN"), "arn:aws:kinesis:us-east-1:000000000000:stream/Testing");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(d, "HasMoreShards")));
    cJSON *shards = cJSON_GetObjectItem(d, "Shards");
    assert_int_equal(cJSON_GetArraySize(shards), 3);
    cJSON *s2 = cJSON_GetArrayItem(shards, 2);
    assert_string_equal(kn_json_string(s2, "ShardId"), "shardId-000000000002");
    assert_string_equal(kn_json_string(cJSON_GetObjectItem(s2, "HashKeyRange"), "StartingHashKey"),
                        "226854911280625642308916404954512140970");
    assert_string_equal(kn_json_string(cJSON_GetObjectItem(s2, "HashKeyRange"), "EndingHashKey"),
                        "340282366920938463463374607431768211455");
    assert_int_equal(strlen(kn_json_string(cJSON_GetObjectItem(s2, "SequenceNumberRange"), "StartingSequenceNumber")),
                     56);
    cJSON_Delete(j);
    j = ok(f, "DescribeStream", "{\"StreamName\":\"Testing\",\"Limit\":1,\"ExclusiveStartShardId\":\"shardId-000000000000\"}");
    d = cJSON_GetObjectItem(j, "StreamDescription");
    assert_string_equal(kn_json_string(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "Shards"), 0), "ShardId"),
                        "shardId-000000000001");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "HasMoreShards")));
    cJSON_Delete(j);
}

static void test_stream_arn_names_the_stream(void **state)
{
    fixture *f = *state;
    create(f, "byarn", 1);
    cJSON *j = ok(f, "DescribeStreamSummary",
                  "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:000000000000:stream/byarn\"}");
    cJSON *d = cJSON_GetObjectItem(j, "StreamDescriptionSummary");
    assert_string_equal(kn_json_string(d, "StreamName"), "byarn");
    assert_int_equal(cJSON_GetObjectItem(d, "OpenShardCount")->valueint, 1);
    cJSON_Delete(j);
    expect_error(f, "DescribeStreamSummary", "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:111111111111:stream/byarn\"}",
                 400, "ResourceNotFoundException", "Stream byarn under account 111111111111 not found.");
}

static void test_create_delay_then_active_then_delete_delay(void **state)
{
    (void)state;
    fixture *f = make_fixture(500, 500, 0);
    create(f, "slow", 2);
    cJSON *j = ok(f, "DescribeStream", "{\"StreamName\":\"slow\"}");
    cJSON *d = cJSON_GetObjectItem(j, "StreamDescription");
    assert_string_equal(kn_json_string(d, "StreamStatus"), "CREATING");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "Shards")), 0);
    cJSON_Delete(j);
    expect_error(f, "PutRecord", "{\"StreamName\":\"slow\",\"PartitionKey\":\"a\",\"Data\":\"\"}", 400,
                 "ResourceNotFoundException", "Stream slow under account 000000000000 not found.");
    f->now_ms += 500;
    j = ok(f, "DescribeStreamSummary", "{\"StreamName\":\"slow\"}");
    assert_string_equal(kn_json_string(cJSON_GetObjectItem(j, "StreamDescriptionSummary"), "StreamStatus"), "ACTIVE");
    cJSON_Delete(j);
    assert_null(ok(f, "DeleteStream", "{\"StreamName\":\"slow\"}"));
    j = ok(f, "DescribeStreamSummary", "{\"StreamName\":\"slow\"}");
    assert_string_equal(kn_json_string(cJSON_GetObjectItem(j, "StreamDescriptionSummary"), "StreamStatus"),
                        "DELETING");
    cJSON_Delete(j);
    f->now_ms += 500;
    expect_error(f, "DescribeStreamSummary", "{\"StreamName\":\"slow\"}", 400, "ResourceNotFoundException",
                 "Stream slow under account 000000000000 not found.");
    void *s = f;
    teardown(&s);
}

static void test_shard_limit(void **state)
{
    (void)state;
    fixture *f = make_fixture(0, 0, 5);
    create(f, "a", 3);
    expect_error(f, "CreateStream", "{\"StreamName\":\"b\",\"ShardCount\":3}", 400, "LimitExceededException",
                 "This request would exceed the shard limit for the account 000000000000 in us-east-1. Current shard "
                 "count for the account: 3. Limit: 5. Number of additional shards that would have resulted from this "
                 "request: 3. Refer to the AWS Service Limits page "
                 "(http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how "
                 "to request higher limits.");
    cJSON *j = ok(f, "DescribeLimits", "{}");
    assert_int_equal(cJSON_GetObjectItem(j, "ShardLimit")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItem(j, "OpenShardCount")->valueint, 3);
    cJSON_Delete(j);
    void *s = f;
    teardown(&s);
}

static void test_on_demand_stream_has_four_shards(void **state)
{
    fixture *f = *state;
    assert_null(ok(f, "CreateStream", "{\"StreamName\":\"od\",\"StreamModeDetails\":{\"StreamMode\":\"ON_DEMAND\"}}"));
    cJSON *j = ok(f, "DescribeStreamSummary", "{\"StreamName\":\"od\"}");
    cJSON *d = cJSON_GetObjectItem(j, "StreamDescriptionSummary");
    assert_int_equal(cJSON_GetObjectItem(d, "OpenShardCount")->valueint, 4);
    assert_string_equal(kn_json_string(cJSON_GetObjectItem(d, "StreamModeDetails"), "StreamMode"), "ON_DEMAND");
    cJSON_Delete(j);
}

static void test_list_streams_pages(void **state)
{
    fixture *f = *state;
    create(f, "c", 1);
    create(f, "a", 1);
    create(f, "b", 1);
    cJSON *j = ok(f, "ListStreams", "{\"Limit\":2}");
    cJSON *names = cJSON_GetObjectItem(j, "StreamNames");
    assert_int_equal(cJSON_GetArraySize(names), 2);
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "a");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "HasMoreStreams")));
    assert_string_equal(kn_json_string(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "StreamSummaries"), 1), "StreamName"),
                        "b");
    char body[1024];
    snprintf(body, sizeof body, "{\"NextToken\":\"%s\"}", kn_json_string(j, "NextToken"));
    cJSON_Delete(j);
    j = ok(f, "ListStreams", body);
    names = cJSON_GetObjectItem(j, "StreamNames");
    assert_int_equal(cJSON_GetArraySize(names), 1);
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "c");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "HasMoreStreams")));
    assert_null(kn_json_string(j, "NextToken"));
    cJSON_Delete(j);
    j = ok(f, "ListStreams", "{\"ExclusiveStartStreamName\":\"a\"}");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "StreamNames")), 2);
    cJSON_Delete(j);
    expect_error(f, "ListStreams", "{\"NextToken\":\"bm9wZQ==\"}", 400, "InvalidArgumentException",
                 "Invalid NextToken.");
}

static void test_list_shards_pages_and_rules(void **state)
{
    fixture *f = *state;
    create(f, "ls", 5);
    cJSON *j = ok(f, "ListShards", "{\"StreamName\":\"ls\",\"MaxResults\":2}");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "Shards")), 2);
    char body[1024];
    snprintf(body, sizeof body, "{\"NextToken\":\"%s\",\"MaxResults\":10}", kn_json_string(j, "NextToken"));
    cJSON_Delete(j);
    j = ok(f, "ListShards", body);
    cJSON *shards = cJSON_GetObjectItem(j, "Shards");
    assert_int_equal(cJSON_GetArraySize(shards), 3);
    assert_string_equal(kn_json_string(cJSON_GetArrayItem(shards, 0), "ShardId"), "shardId-000000000002");
    assert_null(kn_json_string(j, "NextToken"));
    cJSON_Delete(j);
    j = ok(f, "ListShards",
           "{\"StreamName\":\"ls\",\"ShardFilter\":{\"Type\":\"AFTER_SHARD_ID\",\"ShardId\":\"shardId-000000000003\"}}");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "Shards")), 1);
    cJSON_Delete(j);
    expect_error(f, "ListShards", "{}", 400, "InvalidArgumentException",
                 "Either NextToken or StreamName should be provided.");
    expect_error(f, "ListShards", "{\"StreamName\":\"ls\",\"NextToken\":\"x\"}", 400, "InvalidArgumentException",
                 "NextToken and StreamName cannot be provided together.");
    f->now_ms += 300001;
    expect_error(f, "ListShards", body, 400, "ExpiredNextTokenException",
                 "The timestamp on the NextToken has expired. NextTokens are valid for 300 seconds.");
}

static void test_retention_changes(void **state)
{
    fixture *f = *state;
    create(f, "ret", 1);
    assert_null(ok(f, "IncreaseStreamRetentionPeriod", "{\"StreamName\":\"ret\",\"RetentionPeriodHours\":48}"));
    expect_error(f, "IncreaseStreamRetentionPeriod", "{\"StreamName\":\"ret\",\"RetentionPeriodHours\":30}", 400,
                 "InvalidArgumentException",
                 "Requested retention period (30 hours) for stream ret can not be shorter than existing retention "
                 "period (48 hours). Use DecreaseRetentionPeriod API.");
    expect_error(f, "DecreaseStreamRetentionPeriod", "{\"StreamName\":\"ret\",\"RetentionPeriodHours\":12}", 400,
                 "InvalidArgumentException",
                 "Minimum allowed retention period is 24 hours. Requested retention period (12 hours) is too short.");
    assert_null(ok(f, "DecreaseStreamRetentionPeriod", "{\"StreamName\":\"ret\",\"RetentionPeriodHours\":24}"));
    cJSON *j = ok(f, "DescribeStreamSummary", "{\"StreamName\":\"ret\"}");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "StreamDescriptionSummary"), "RetentionPeriodHours")
                         ->valueint,
                     24);
    cJSON_Delete(j);
}

/* ---- records ---- */

static void test_worked_example_routes_to_shard_two(void **state)
{
    fixture *f = *state;
    create(f, "Testing", 3);
    cJSON *j = put(f, "Testing", "SGVsbG8=", "123456");
    assert_string_equal(kn_json_string(j, "ShardId"), "shardId-000000000002");
    assert_int_equal(strlen(kn_json_string(j, "SequenceNumber")), 56);
    assert_string_equal(kn_json_string(j, "EncryptionType"), "NONE");
    cJSON_Delete(j);
}

/* A PutRecord body whose Data is n zero bytes (caller frees). */
static char *zero_record(const char *stream, size_t n)
{
    size_t len = (n + 2) / 3 * 4;
    char *body = malloc(len + 128);
    int at = sprintf(body, "{\"StreamName\":\"%s\",\"PartitionKey\":\"a\",\"Data\":\"", stream);
    memset(body + at, 'A', len);
    if (n % 3)
        memset(body + at + len - (3 - n % 3), '=', 3 - n % 3);
    strcpy(body + at + len, "\"}");
    return body;
}

/* Dispatches a signed request without running the loop, so a test can act between append and commit. auth holds
 * the Authorization value and must live until the reply. */
static void dispatch_signed(fixture *f, const char *target, const char *body, kn_buf *auth, kn_sigv4_header h[5],
                            knd_request *req, reply *r)
{
    static kn_sigv4_scope scope;
    scope = (kn_sigv4_scope){.region = "us-east-1", .service = "kinesis"};
    kn_sigv4_format_time(f->now_ms / 1000, &scope);
    h[0] = (kn_sigv4_header){"host", 4, "h", 1};
    h[1] = (kn_sigv4_header){"x-amz-date", 10, scope.amz_date, strlen(scope.amz_date)};
    h[2] = (kn_sigv4_header){"content-type", 12, "application/x-amz-json-1.1", 26};
    h[3] = (kn_sigv4_header){"x-amz-target", 12, target, strlen(target)};
    kn_buf_init(auth, 4096);
    kn_sigv4_request sr = {.method = "POST", .path = "/", .path_len = 1, .headers = h, .header_count = 4,
                           .body = body, .body_len = strlen(body)};
    assert_int_equal(kn_sigv4_sign(&sr, "AKID", "s", &scope, NULL, auth), KN_OK);
    h[4] = (kn_sigv4_header){"authorization", 13, (char *)auth->data, auth->len};
    *req = (knd_request){.method = "POST", .path = "/", .path_len = 1, .query = "", .headers = h, .header_count = 5,
                         .body = (const uint8_t *)body, .body_len = strlen(body)};
    knd_api_dispatch(f->api, req, on_reply, r);
}

static void test_put_answers_only_after_commit(void **state)
{
    fixture *f = *state;
    create(f, "wait", 1);
    kn_buf auth;
    kn_sigv4_header h[5];
    knd_request req;
    reply r = {0};
    dispatch_signed(f, "Kinesis_20131202.PutRecord", "{\"StreamName\":\"wait\",\"Data\":\"AAEC\",\"PartitionKey\":\"k\"}",
                    &auth, h, &req, &r);
    assert_false(r.done);
    assert_int_equal(knd_api_pending(f->api), 1);
    while (!r.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(knd_api_pending(f->api), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    kn_buf_cleanup(&auth);
}

static void test_failed_commit_answers_internal_failure(void **state)
{
    fixture *f = *state;
    create(f, "doomed", 1);
    kn_buf auth;
    kn_sigv4_header h[5];
    knd_request req;
    reply r = {0};
    dispatch_signed(f, "Kinesis_20131202.PutRecords",
                    "{\"StreamName\":\"doomed\",\"Records\":[{\"Data\":\"AAEC\",\"PartitionKey\":\"k\"}]}", &auth, h,
                    &req, &r);
    assert_false(r.done);
    assert_null(ok(f, "DeleteStream", "{\"StreamName\":\"doomed\"}")); /* the commit now has nowhere to go */
    while (!r.done)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "{\"__type\":\"InternalFailure\",\"message\":\"The request processing has failed "
                                "because of an unknown error, exception or failure.\"}");
    assert_int_equal(knd_api_pending(f->api), 0);
    free(r.body);
    kn_buf_cleanup(&auth);
}

static void test_full_store_answers_service_unavailable(void **state)
{
    (void)state;
    fixture *f = make_fixture_limited(0, 0, 0, 4096);
    create(f, "full", 1);
    char *body = zero_record("full", 8192);
    reply r = send_op(f, "PutRecord", body);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"__type\":\"ServiceUnavailable\",\"message\":\"The request has failed due to a "
                                "temporary failure of the server.\"}");
    free(r.body);
    free(body);
    void *s = f;
    teardown(&s);
}

static void test_explicit_hash_key_routes_and_is_range_checked(void **state)
{
    fixture *f = *state;
    create(f, "ehk", 3);
    cJSON *j = ok(f, "PutRecord",
                  "{\"StreamName\":\"ehk\",\"PartitionKey\":\"a\",\"Data\":\"\","
                  "\"ExplicitHashKey\":\"226854911280625642308916404954512140969\"}");
    assert_string_equal(kn_json_string(j, "ShardId"), "shardId-000000000001");
    cJSON_Delete(j);
    expect_error(f, "PutRecord",
                 "{\"StreamName\":\"ehk\",\"PartitionKey\":\"a\",\"Data\":\"\","
                 "\"ExplicitHashKey\":\"340282366920938463463374607431768211456\"}",
                 400, "InvalidArgumentException",
                 "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was "
                 "340282366920938463463374607431768211456");
}

static void test_record_size_limit(void **state)
{
    fixture *f = *state;
    create(f, "big", 1);
    char *body = zero_record("big", 1048577);
    expect_error(f, "PutRecord", body, 400, "ValidationException",
                 "1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length "
                 "less than or equal to 1048576");
    free(body);
    body = zero_record("big", 1048576); /* fits alone, not with its 1-byte partition key */
    expect_error(f, "PutRecord", body, 400, "InvalidArgumentException",
                 "Record size of 1048577 bytes (data and partition key) exceeds the maximum record size of 1048576 "
                 "bytes of stream big under account 000000000000.");
    free(body);
    body = zero_record("big", 1048575);
    cJSON_Delete(ok(f, "PutRecord", body));
    free(body);
}

static void test_sequence_number_for_ordering(void **state)
{
    fixture *f = *state;
    create(f, "ord", 1);
    cJSON *first = put(f, "ord", "AA==", "k");
    char body[512];
    snprintf(body, sizeof body,
             "{\"StreamName\":\"ord\",\"PartitionKey\":\"k\",\"Data\":\"AQ==\",\"SequenceNumberForOrdering\":\"%s\"}",
             kn_json_string(first, "SequenceNumber"));
    cJSON *second = ok(f, "PutRecord", body);
    assert_true(strcmp(kn_json_string(second, "SequenceNumber"), kn_json_string(first, "SequenceNumber")) > 0);
    cJSON_Delete(first);
    cJSON_Delete(second);
    expect_error(f, "PutRecord",
                 "{\"StreamName\":\"ord\",\"PartitionKey\":\"k\",\"Data\":\"\",\"SequenceNumberForOrdering\":\"5\"}",
                 400, "InvalidArgumentException",
                 "ExclusiveMinimumSequenceNumber 5 used in PutRecord on stream ord under account 000000000000 is "
                 "invalid.");
}

static void test_put_records_results_in_order(void **state)
{
    fixture *f = *state;
    create(f, "batch", 3);
    cJSON *j = ok(f, "PutRecords",
                  "{\"StreamName\":\"batch\",\"Records\":[{\"Data\":\"AQ==\",\"PartitionKey\":\"123456\"},"
                  "{\"Data\":\"Ag==\",\"PartitionKey\":\"x\",\"ExplicitHashKey\":\"0\"}]}");
    assert_int_equal(cJSON_GetObjectItem(j, "FailedRecordCount")->valueint, 0);
    cJSON *recs = cJSON_GetObjectItem(j, "Records");
    assert_int_equal(cJSON_GetArraySize(recs), 2);
    assert_string_equal(kn_json_string(cJSON_GetArrayItem(recs, 0), "ShardId"), "shardId-000000000002");
    assert_string_equal(kn_json_string(cJSON_GetArrayItem(recs, 1), "ShardId"), "shardId-000000000000");
    cJSON_Delete(j);
    expect_error(f, "PutRecords", "{\"StreamName\":\"batch\",\"Records\":[]}", 400, "ValidationException",
                 "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: Member must have "
                 "length greater than or equal to 1");
}

/* PutRecords bodies that knd_schema_scan takes and the same bodies with an unknown member (which only the general
 * path reads) store the same records in the same shards and fail the same way. */
static void test_put_records_scanned_and_general_paths_agree(void **state)
{
    fixture *f = *state;
    create(f, "agree", 4);
    const char *records = "\"Records\":[{\"Data\":\"AAEC\",\"PartitionKey\":\"a\"},{\"Data\":\"\",\"PartitionKey\":"
                          "\"b\",\"ExplicitHashKey\":\"0\"},{\"Data\":\"/w==\",\"PartitionKey\":\"c\"}]";
    char scanned[512], general[512];
    snprintf(scanned, sizeof scanned, "{\"StreamName\":\"agree\",%s}", records);
    snprintf(general, sizeof general, "{\"StreamName\":\"agree\",\"Unknown\":1,%s}", records);
    cJSON *a = ok(f, "PutRecords", scanned), *b = ok(f, "PutRecords", general);
    cJSON *ra = cJSON_GetObjectItem(a, "Records"), *rb = cJSON_GetObjectItem(b, "Records");
    assert_int_equal(cJSON_GetArraySize(ra), 3);
    assert_int_equal(cJSON_GetArraySize(rb), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(kn_json_string(cJSON_GetArrayItem(ra, i), "ShardId"),
                            kn_json_string(cJSON_GetArrayItem(rb, i), "ShardId"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* each shard holds its records twice, once from each path, with the same data */
    int seen = 0;
    for (int shard = 0; shard < 4; shard++) {
        char id[8];
        snprintf(id, sizeof id, "%d", shard);
        char *it = iterator(f, "agree", id, "TRIM_HORIZON", "");
        cJSON *res = get_records(f, it, 0);
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(res, "Records"));
        assert_int_equal(n % 2, 0);
        for (int i = 0; i < n / 2; i++) {
            assert_string_equal(record_data(res, i), record_data(res, i + n / 2));
            const cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "Records"), i);
            const cJSON *y = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "Records"), i + n / 2);
            assert_string_equal(kn_json_string(x, "PartitionKey"), kn_json_string(y, "PartitionKey"));
        }
        seen += n;
        cJSON_Delete(res);
        free(it);
    }
    assert_int_equal(seen, 6);
    /* PutRecord too: the same shard, and the same answer to a bad SequenceNumberForOrdering */
    cJSON *pa = ok(f, "PutRecord", "{\"StreamName\":\"agree\",\"PartitionKey\":\"a\",\"Data\":\"AAEC\"}");
    cJSON *pb =
        ok(f, "PutRecord", "{\"StreamName\":\"agree\",\"Unknown\":1,\"PartitionKey\":\"a\",\"Data\":\"AAEC\"}");
    assert_string_equal(kn_json_string(pa, "ShardId"), kn_json_string(pb, "ShardId"));
    for (int k = 0; k < 2; k++) { /* each stored its own data */
        const cJSON *put = k ? pb : pa;
        char extra[256];
        snprintf(extra, sizeof extra, ",\"StartingSequenceNumber\":\"%s\"", kn_json_string(put, "SequenceNumber"));
        char *it = iterator(f, "agree", kn_json_string(put, "ShardId"), "AT_SEQUENCE_NUMBER", extra);
        cJSON *res = get_records(f, it, 1);
        assert_string_equal(record_data(res, 0), "AAEC");
        cJSON_Delete(res);
        free(it);
    }
    cJSON_Delete(pa);
    cJSON_Delete(pb);
    for (int general_path = 0; general_path < 2; general_path++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{%s\"StreamName\":\"agree\",\"PartitionKey\":\"a\",\"Data\":\"\","
                 "\"SequenceNumberForOrdering\":\"9\"}",
                 general_path ? "\"Unknown\":1," : "");
        expect_error(f, "PutRecord", body, 400, "InvalidArgumentException",
                     "ExclusiveMinimumSequenceNumber 9 used in PutRecord on stream agree under account 000000000000 is "
                     "invalid.");
    }
    const char *too_big = "{\"StreamName\":\"agree\",%s\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"k\","
                          "\"ExplicitHashKey\":\"340282366920938463463374607431768211456\"}]}";
    for (int general_path = 0; general_path < 2; general_path++) {
        char body[512];
        snprintf(body, sizeof body, too_big, general_path ? "\"Unknown\":1," : "");
        expect_error(f, "PutRecords", body, 400, "InvalidArgumentException",
                     "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value "
                     "was 340282366920938463463374607431768211456");
    }
}

static void test_put_records_request_size_limit(void **state)
{
    fixture *f = *state;
    create(f, "five", 1);
    /* 6 records of 1,000,000 bytes: each under the record limit, 6 MB in all. */
    size_t b64_len = 1000000 / 3 * 4 + 4;
    char *b64 = malloc(b64_len + 1);
    memset(b64, 'A', b64_len);
    memcpy(b64 + b64_len - 4, "AA==", 4);
    b64[b64_len] = '\0';
    char *body = malloc(7 * (b64_len + 64) + 64);
    strcpy(body, "{\"StreamName\":\"five\",\"Records\":[");
    for (int i = 0; i < 6; i++) {
        strcat(body, i ? ",{\"PartitionKey\":\"k\",\"Data\":\"" : "{\"PartitionKey\":\"k\",\"Data\":\"");
        strcat(body, b64);
        strcat(body, "\"}");
    }
    strcat(body, "]}");
    expect_error(f, "PutRecords", body, 400, "InvalidArgumentException", "Records size exceeds 5 MB limit");
    free(body);
    free(b64);
}

static void test_every_iterator_type_reads_exact_bytes(void **state)
{
    fixture *f = *state;
    create(f, "it", 1);
    cJSON *p0 = put(f, "it", "AAEC", "k"); /* 00 01 02 */
    f->now_ms += 2000;
    cJSON *p1 = put(f, "it", "/wA=", "k"); /* ff 00 */
    char *trim = iterator(f, "it", "shardId-000000000000", "TRIM_HORIZON", "");
    char *latest = iterator(f, "it", "0", "LATEST", "");
    char extra[256];
    snprintf(extra, sizeof extra, ",\"StartingSequenceNumber\":\"%s\"", kn_json_string(p1, "SequenceNumber"));
    char *at = iterator(f, "it", "shardId-0", "AT_SEQUENCE_NUMBER", extra);
    snprintf(extra, sizeof extra, ",\"StartingSequenceNumber\":\"%s\"", kn_json_string(p0, "SequenceNumber"));
    char *after = iterator(f, "it", "shardId-000000000000", "AFTER_SEQUENCE_NUMBER", extra);
    snprintf(extra, sizeof extra, ",\"Timestamp\":%lld.5", (long long)(f->now_ms / 1000 - 1));
    char *ts = iterator(f, "it", "shardId-000000000000", "AT_TIMESTAMP", extra);

    cJSON *r = get_records(f, trim, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Records")), 2);
    assert_string_equal(record_data(r, 0), "AAEC");
    assert_string_equal(record_data(r, 1), "/wA=");
    cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "Records"), 0);
    assert_string_equal(kn_json_string(rec, "PartitionKey"), "k");
    assert_string_equal(kn_json_string(rec, "SequenceNumber"), kn_json_string(p0, "SequenceNumber"));
    assert_true(cJSON_GetObjectItem(rec, "ApproximateArrivalTimestamp")->valuedouble > 1.7e9);
    assert_int_equal(cJSON_GetObjectItem(r, "MillisBehindLatest")->valueint, 0);
    cJSON *r2 = get_records(f, kn_json_string(r, "NextShardIterator"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r2, "Records")), 0);
    assert_non_null(kn_json_string(r2, "NextShardIterator"));
    cJSON_Delete(r2);
    cJSON_Delete(r);

    r = get_records(f, latest, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Records")), 0);
    cJSON *p2 = put(f, "it", "Kg==", "k");
    r2 = get_records(f, kn_json_string(r, "NextShardIterator"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r2, "Records")), 1);
    assert_string_equal(record_data(r2, 0), "Kg==");
    cJSON_Delete(r2);
    cJSON_Delete(r);

    r = get_records(f, at, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Records")), 1);
    assert_string_equal(record_data(r, 0), "/wA=");
    assert_true(cJSON_GetObjectItem(r, "MillisBehindLatest")->valueint >= 0);
    cJSON_Delete(r);
    r = get_records(f, after, 1);
    assert_string_equal(record_data(r, 0), "/wA=");
    cJSON_Delete(r);
    r = get_records(f, ts, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r, "Records")), 2);
    assert_string_equal(record_data(r, 0), "/wA=");
    cJSON_Delete(r);
    free(trim);
    free(latest);
    free(at);
    free(after);
    free(ts);
    cJSON_Delete(p0);
    cJSON_Delete(p1);
    cJSON_Delete(p2);
}

static void test_get_shard_iterator_errors(void **state)
{
    fixture *f = *state;
    create(f, "gsi", 1);
    expect_error(f, "GetShardIterator",
                 "{\"StreamName\":\"gsi\",\"ShardId\":\"shardId-0\",\"ShardIteratorType\":\"AT_SEQUENCE_NUMBER\"}",
                 400, "InvalidArgumentException",
                 "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or "
                 "(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified AT_SEQUENCE_NUMBER and "
                 "no StartingSequenceNumber.");
    expect_error(f, "GetShardIterator",
                 "{\"StreamName\":\"gsi\",\"ShardId\":\"shardId-0\",\"ShardIteratorType\":\"LATEST\","
                 "\"StartingSequenceNumber\":\"5\"}",
                 400, "InvalidArgumentException",
                 "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or "
                 "(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified LATEST and also a "
                 "StartingSequenceNumber.");
    expect_error(f, "GetShardIterator",
                 "{\"StreamName\":\"gsi\",\"ShardId\":\"shardId-5\",\"ShardIteratorType\":\"LATEST\"}", 400,
                 "ResourceNotFoundException",
                 "Shard shardId-000000000005 in stream gsi under account 000000000000 does not exist");
    expect_error(f, "GetShardIterator",
                 "{\"StreamName\":\"nope\",\"ShardId\":\"2147483648\",\"ShardIteratorType\":\"LATEST\"}", 400,
                 "ResourceNotFoundException",
                 "Could not find shard 2147483648 in stream nope under account 000000000000.");
    expect_error(f, "GetShardIterator",
                 "{\"StreamName\":\"gsi\",\"ShardId\":\"shardId-0\",\"ShardIteratorType\":\"AT_TIMESTAMP\"}", 400,
                 "InvalidArgumentException",
                 "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no "
                 "timestamp parameter.");
    cJSON *p = put(f, "gsi", "", "k");
    cJSON_Delete(p);
    create(f, "gsi2", 2);
    p = put(f, "gsi2", "", "k"); /* goes to shard 1 of gsi2 */
    char body[512];
    snprintf(body, sizeof body,
             "{\"StreamName\":\"gsi2\",\"ShardId\":\"shardId-0\",\"ShardIteratorType\":\"AT_SEQUENCE_NUMBER\","
             "\"StartingSequenceNumber\":\"%s\"}",
             kn_json_string(p, "SequenceNumber"));
    expect_error(f, "GetShardIterator", body, 400, "InvalidArgumentException",
                 "Invalid StartingSequenceNumber. It encodes shardId-000000000001, while it was used in a call to a "
                 "shard with shardId-000000000000");
    cJSON_Delete(p);
}

static void test_invalid_and_expired_iterators(void **state)
{
    fixture *f = *state;
    create(f, "exp", 1);
    expect_error(f, "GetRecords", "{\"ShardIterator\":\"not-an-iterator\"}", 400, "InvalidArgumentException",
                 "Invalid ShardIterator.");
    char *it = iterator(f, "exp", "shardId-000000000000", "TRIM_HORIZON", "");
    f->now_ms += 300001;
    char body[1024];
    snprintf(body, sizeof body, "{\"ShardIterator\":\"%s\"}", it);
    expect_error(f, "GetRecords", body, 400, "ExpiredIteratorException",
                 "Iterator expired. The iterator was created at time Tue Nov 25 19:46:40 UTC 2025 while right now it "
                 "is Tue Nov 25 19:51:40 UTC 2025 which is further in the future than the tolerated delay of 300000 "
                 "milliseconds.");
    free(it);
}

static void test_iterator_of_deleted_stream(void **state)
{
    fixture *f = *state;
    create(f, "gone", 1);
    char *it = iterator(f, "gone", "shardId-000000000000", "LATEST", "");
    assert_null(ok(f, "DeleteStream", "{\"StreamName\":\"gone\"}"));
    char body[1024];
    snprintf(body, sizeof body, "{\"ShardIterator\":\"%s\"}", it);
    expect_error(f, "GetRecords", body, 400, "ResourceNotFoundException",
                 "Shard shardId-000000000000 in stream gone under account 000000000000 does not exist");
    free(it);
}

static void test_create_stream_helper_for_startup(void **state)
{
    fixture *f = *state;
    kn_error err = {0};
    assert_int_equal(knd_api_create_stream(f->api, "boot", 2, &err), KN_OK);
    assert_int_equal(knd_api_create_stream(f->api, "boot", 2, &err), KN_OK);
    assert_int_equal(knd_api_create_stream(f->api, "bad name", 2, &err), KN_ERR_INVALID_ARGUMENT);
    cJSON *j = ok(f, "DescribeStreamSummary", "{\"StreamName\":\"boot\"}");
    assert_string_equal(kn_json_string(cJSON_GetObjectItem(j, "StreamDescriptionSummary"), "StreamStatus"), "ACTIVE");
    cJSON_Delete(j);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_unknown_operation),
        T(test_malformed_json_is_serialization_exception),
        T(test_empty_body),
        T(test_routing_comes_before_authentication),
        T(test_authentication_comes_before_validation),
        T(test_wrong_method_and_content_type_get_xml),
        T(test_application_json_is_accepted),
        T(test_oversized_body_is_rejected),
        T(test_request_ids_are_uuids_and_differ),
        T(test_type_error_uses_capital_message_key),
        T(test_put_record_validation_messages),
        T(test_get_shard_iterator_validation_messages),
        T(test_get_records_validation_messages),
        T(test_stream_not_found_and_already_exists),
        T(test_describe_stream_shards_split_hash_space),
        T(test_stream_arn_names_the_stream),
        cmocka_unit_test(test_create_delay_then_active_then_delete_delay),
        cmocka_unit_test(test_shard_limit),
        T(test_on_demand_stream_has_four_shards),
        T(test_list_streams_pages),
        T(test_list_shards_pages_and_rules),
        T(test_retention_changes),
        T(test_worked_example_routes_to_shard_two),
        T(test_put_answers_only_after_commit),
        T(test_failed_commit_answers_internal_failure),
        cmocka_unit_test(test_full_store_answers_service_unavailable),
        T(test_explicit_hash_key_routes_and_is_range_checked),
        T(test_record_size_limit),
        T(test_sequence_number_for_ordering),
        T(test_put_records_results_in_order),
        T(test_put_records_scanned_and_general_paths_agree),
        T(test_put_records_request_size_limit),
        T(test_every_iterator_type_reads_exact_bytes),
        T(test_get_shard_iterator_errors),
        T(test_invalid_and_expired_iterators),
        T(test_iterator_of_deleted_stream),
        T(test_create_stream_helper_for_startup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
