/* knd_api: routing and the operation table. The table below is the one place that says which operations exist, what
 * their input looks like (after botocore's service-2.json, in the member order AWS's messages use) and which function
 * runs them. */
#include "api_int.h"

#include "../lib/crypto.h"
#include "../lib/error.h"
#include "../lib/json.h"
#include "../lib/validate.h"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TARGET_PREFIX "Kinesis_20131202."
#define HOUSEKEEPING_MS 1000
#define EXPIRE_EVERY_MS 60000
#define DEFAULT_SHARD_LIMIT 500
#define KEEP_SCAN_BLOBS (4u << 20) /* PutRecords bodies up to ~5 MiB of base64 reuse the decoding buffer */

/* ---- input shapes ---- */

#define STREAM_NAME(req)                                                                                            \
    {.name = "StreamName", .type = KND_T_STRING, .flags = (req) | KND_F_MIN_LEN | KND_F_MAX_LEN,                  \
     .pattern = KND_PAT_NAME, .min_len = 1, .max_len = 128}
#define STREAM_ARN                                                                                                  \
    {.name = "StreamARN", .type = KND_T_STRING, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN,                           \
     .pattern = KND_PAT_STREAM_ARN, .min_len = 1, .max_len = 2048}
#define SHARD_ID(n, req)                                                                                            \
    {.name = (n), .type = KND_T_STRING, .flags = (req) | KND_F_MIN_LEN | KND_F_MAX_LEN, .pattern = KND_PAT_NAME,  \
     .min_len = 1, .max_len = 128}
#define INT_RANGE(n, lo, hi)                                                                                        \
    {.name = (n), .type = KND_T_INTEGER, .flags = KND_F_MIN | KND_F_MAX, .min = (lo), .max = (hi)}
#define NEXT_TOKEN                                                                                                  \
    {.name = "NextToken", .type = KND_T_STRING, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1,             \
     .max_len = 1048576}
#define PARTITION_KEY                                                                                               \
    {.name = "PartitionKey", .type = KND_T_STRING, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN,       \
     .min_len = 1, .max_len = 256}
#define EXPLICIT_HASH_KEY {.name = "ExplicitHashKey", .type = KND_T_STRING, .pattern = KND_PAT_HASH_KEY}
/* Data's model limit (10 MiB) cannot be reached through the body limit; the stream's own maximum record size is
 * checked once the stream is known. */
#define DATA {.name = "Data", .type = KND_T_BLOB, .flags = KND_F_NOT_NULL}
#define END {0}

static const char *const k_stream_modes[] = {"PROVISIONED", "ON_DEMAND", NULL};
static const char *const k_iterator_types[] = {"AFTER_SEQUENCE_NUMBER", "LATEST", "AT_TIMESTAMP",
                                               "AT_SEQUENCE_NUMBER", "TRIM_HORIZON", NULL};
static const char *const k_shard_filters[] = {"AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON",
                                              "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP", NULL};

static const knd_field k_stream_mode_details[] = {
    {.name = "StreamMode", .type = KND_T_STRING, .flags = KND_F_NOT_NULL, .enum_values = k_stream_modes},
    END,
};
static const knd_field k_tag_value = {.name = "member", .type = KND_T_STRING, .min_len = 0, .max_len = 256};

static const knd_field k_create_stream[] = {
    {.name = "ShardCount", .type = KND_T_INTEGER, .flags = KND_F_MIN, .min = 1},
    STREAM_NAME(KND_F_NOT_NULL),
    {.name = "StreamModeDetails", .type = KND_T_STRUCT, .fields = k_stream_mode_details},
    {.name = "Tags", .type = KND_T_MAP, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1, .max_len = 200,
     .member = &k_tag_value, .key_min_len = 1, .key_max_len = 128},
    INT_RANGE("MaxRecordSizeInKiB", 1024, 10240),
    END,
};
static const knd_field k_delete_stream[] = {
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    {.name = "EnforceConsumerDeletion", .type = KND_T_BOOLEAN},
    END,
};
static const knd_field k_describe_stream[] = {
    INT_RANGE("Limit", 1, 10000),
    SHARD_ID("ExclusiveStartShardId", 0),
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    END,
};
static const knd_field k_stream_only[] = {
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    END,
};
static const knd_field k_list_streams[] = {
    INT_RANGE("Limit", 1, 10000),
    SHARD_ID("ExclusiveStartStreamName", 0),
    NEXT_TOKEN,
    END,
};
static const knd_field k_shard_filter[] = {
    {.name = "Type", .type = KND_T_STRING, .flags = KND_F_NOT_NULL, .enum_values = k_shard_filters},
    SHARD_ID("ShardId", 0),
    {.name = "Timestamp", .type = KND_T_TIMESTAMP},
    END,
};
static const knd_field k_list_shards[] = {
    SHARD_ID("ExclusiveStartShardId", 0),
    INT_RANGE("MaxResults", 1, 10000),
    NEXT_TOKEN,
    {.name = "StreamCreationTimestamp", .type = KND_T_TIMESTAMP},
    STREAM_NAME(0),
    STREAM_ARN,
    {.name = "ShardFilter", .type = KND_T_STRUCT, .fields = k_shard_filter},
    END,
};
static const knd_field k_put_record[] = {
    {.name = "SequenceNumberForOrdering", .type = KND_T_STRING, .pattern = KND_PAT_SEQUENCE},
    PARTITION_KEY,
    EXPLICIT_HASH_KEY,
    DATA,
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    END,
};
static const knd_field k_put_records_entry[] = {PARTITION_KEY, EXPLICIT_HASH_KEY, DATA, END};
static const knd_field k_put_records_member = {.name = "member", .type = KND_T_STRUCT, .fields = k_put_records_entry};
static const knd_field k_put_records[] = {
    {.name = "Records", .type = KND_T_LIST, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1,
     .max_len = 500, .member = &k_put_records_member,
     .member_str = "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310"},
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    END,
};
static const knd_field k_get_shard_iterator[] = {
    SHARD_ID("ShardId", KND_F_NOT_NULL),
    {.name = "ShardIteratorType", .type = KND_T_STRING, .flags = KND_F_NOT_NULL, .enum_values = k_iterator_types},
    {.name = "StartingSequenceNumber", .type = KND_T_STRING, .pattern = KND_PAT_SEQUENCE},
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    {.name = "Timestamp", .type = KND_T_TIMESTAMP},
    END,
};
static const knd_field k_get_records[] = {
    INT_RANGE("Limit", 1, 10000),
    {.name = "ShardIterator", .type = KND_T_STRING, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN,
     .min_len = 1, .max_len = 512},
    STREAM_ARN,
    END,
};
static const knd_field k_retention[] = {
    {.name = "RetentionPeriodHours", .type = KND_T_INTEGER, .flags = KND_F_NOT_NULL},
    STREAM_NAME(KND_F_NOT_NULL_UNLESS_ARN),
    STREAM_ARN,
    END,
};
static const knd_field k_no_input[] = {END};

/* The operations kinesisd serves. Anything else is UnknownOperationException. */
static const knd_op k_ops[] = {
    {"CreateStream", knd_api_streams_create, k_create_stream, false},
    {"DecreaseStreamRetentionPeriod", knd_api_streams_decrease_retention, k_retention, false},
    {"DeleteStream", knd_api_streams_delete, k_delete_stream, false},
    {"DescribeLimits", knd_api_streams_describe_limits, k_no_input, false},
    {"DescribeStream", knd_api_streams_describe, k_describe_stream, false},
    {"DescribeStreamSummary", knd_api_streams_describe_summary, k_stream_only, false},
    {"GetRecords", knd_api_records_get, k_get_records, false},
    {"GetShardIterator", knd_api_records_get_iterator, k_get_shard_iterator, false},
    {"IncreaseStreamRetentionPeriod", knd_api_streams_increase_retention, k_retention, false},
    {"ListShards", knd_api_streams_list_shards, k_list_shards, false},
    {"ListStreams", knd_api_streams_list, k_list_streams, false},
    {"PutRecord", knd_api_records_put, k_put_record, true},
    {"PutRecords", knd_api_records_put_batch, k_put_records, true},
};

static const knd_op *find_op(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++)
        if (strlen(k_ops[i].name) == len && memcmp(k_ops[i].name, name, len) == 0)
            return &k_ops[i];
    return NULL;
}

/* ---- time, ids ---- */

static int64_t system_clock_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* A version-4-shaped UUID, unique per process (a counter mixed with a random seed); request ids need uniqueness, not
 * secrecy, and this costs no system call per request. */
static void make_request_id(knd_api *api, char out[KND_REQUEST_ID_LEN + 1])
{
    uint64_t n = api->request_counter++;
    uint64_t hi = splitmix64(api->request_seed ^ (n << 1)), lo = splitmix64(api->request_seed ^ (n << 1 | 1));
    hi = (hi & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
    lo = (lo & ~(UINT64_C(0xc) << 60)) | (UINT64_C(0x8) << 60);
    static const char hex[] = "0123456789abcdef";
    /* 8-4-4-4-12 hex digits: hi gives the first 16, lo the last 16 (snprintf here showed in profiles) */
    size_t at = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[at++] = '-';
        uint64_t half = i < 16 ? hi : lo;
        out[at++] = hex[(half >> (60 - 4 * (i % 16))) & 0xf];
    }
    out[at] = '\0';
}

/* ---- replies ---- */

static void send_raw(knd_api_reply_fn reply, void *ctx, const char *request_id, int status, const char *content_type,
                     const void *body, size_t len)
{
    kn_sigv4_header h[2];
    size_t n = 0;
    if (content_type)
        h[n++] = (kn_sigv4_header){"Content-Type", 12, content_type, strlen(content_type)};
    h[n++] = (kn_sigv4_header){"x-amzn-RequestId", 16, request_id, strlen(request_id)};
    reply(ctx, status, h, n, body, len);
}

void knd_api_send(knd_api_reply_fn reply, void *reply_ctx, const char *request_id, int status, const void *body,
                  size_t body_len)
{
    send_raw(reply, reply_ctx, request_id, status, "application/x-amz-json-1.1", body, body_len);
}

void knd_api_send_error(knd_api_reply_fn reply, void *reply_ctx, const char *request_id, const knd_apierr *err)
{
    kn_buf body;
    kn_buf_init(&body, KND_APIERR_MESSAGE_CAP + 4096);
    if (knd_apierr_json(err, &body) != KN_OK) {
        kn_buf_reset(&body);
        kn_buf_append_str(&body, "{\"__type\":\"InternalFailure\"}");
    }
    int status = err->http_status ? err->http_status : 500;
    knd_api_send(reply, reply_ctx, request_id, status, body.data, body.len);
    kn_buf_cleanup(&body);
}

void knd_api_fail(knd_call *c)
{
    if (!c->err.type)
        knd_apierr_internal(&c->err);
    knd_api_send_error(c->reply, c->reply_ctx, c->request_id, &c->err);
}

void knd_api_reply_json(knd_call *c, knd_jsonw *w)
{
    if (knd_jsonw_finish(w) != KN_OK) {
        knd_log_error("%s: response did not fit its buffer", c->request_id);
        knd_apierr_internal(&c->err);
        knd_api_fail(c);
        return;
    }
    knd_api_send(c->reply, c->reply_ctx, c->request_id, 200, w->buf.data, w->buf.len);
}

void knd_api_reply_empty(knd_call *c)
{
    knd_api_send(c->reply, c->reply_ctx, c->request_id, 200, "", 0);
}

/* The XML answers AWS gives requests it cannot route (wrong method or content type), before any JSON. */
static void reply_xml(knd_call *c, int status, const char *type, const char *message)
{
    kn_buf body;
    kn_buf_init(&body, 1024);
    if (message)
        kn_buf_printf(&body, "<%s>\n  <Message>%s</Message>\n</%s>\n", type, message, type);
    else
        kn_buf_printf(&body, "<%s/>\n", type);
    send_raw(c->reply, c->reply_ctx, c->request_id, status, NULL, body.data ? (const char *)body.data : "",
             body.len);
    kn_buf_cleanup(&body);
}

static void reply_error(knd_call *c, int status, const char *type, const char *message)
{
    knd_apierr_set(&c->err, status, type, message ? "%s" : NULL, message);
    knd_api_fail(c);
}

/* ---- inputs ---- */

const char *knd_api_str(const knd_call *c, const char *name)
{
    const cJSON *v = knd_schema_get(c->in, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool knd_api_int(const knd_call *c, const char *name, int64_t *out)
{
    const cJSON *v = knd_schema_get(c->in, name);
    if (!cJSON_IsNumber(v))
        return false;
    *out = knd_schema_int(v);
    return true;
}

void knd_api_shard_id(uint32_t index, char out[KND_SHARD_ID_MAX])
{
    /* "shardId-%012u" by hand: PutRecords names a shard per record */
    memcpy(out, "shardId-", 8);
    for (int i = 19; i >= 8; i--, index /= 10)
        out[i] = (char)('0' + index % 10);
    out[20] = '\0';
}

void knd_api_stream_arn(const knd_api *api, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "arn:aws:kinesis:%s:%s:stream/%s", api->region, api->account_id, name);
}

const char *knd_api_status_name(knd_stream_status s)
{
    switch (s) {
    case KND_STREAM_CREATING:
        return "CREATING";
    case KND_STREAM_ACTIVE:
        return "ACTIVE";
    case KND_STREAM_UPDATING:
        return "UPDATING";
    case KND_STREAM_DELETING:
        return "DELETING";
    }
    return "ACTIVE";
}

knd_stream *knd_api_find_stream(knd_call *c, const char **name_out)
{
    const char *name = knd_api_str(c, "StreamName");
    const char *arn = knd_api_str(c, "StreamARN");
    const char *account = c->api->account_id;
    char arn_account[13] = {0};
    if (arn) {
        const char *arn_name = NULL;
        size_t n = kn_stream_arn_name(arn, strlen(arn), &arn_name);
        /* A valid ARN ends ":<12-digit account>:stream/<name>". */
        memcpy(arn_account, arn_name - strlen(":stream/") - 12, 12);
        if (name && (strlen(name) != n || memcmp(name, arn_name, n) != 0)) {
            *name_out = name;
            knd_apierr_invalid_argument(&c->err, "StreamARN %s and StreamName %s do not name the same stream.", arn,
                                        name);
            return NULL;
        }
        name = arn_name;
        account = arn_account;
    }
    *name_out = name ? name : "";
    if (!name) {
        knd_apierr_invalid_argument(&c->err, "Either StreamName or StreamARN should be provided.");
        return NULL;
    }
    knd_stream *s = strcmp(account, c->api->account_id) == 0 ? knd_store_find(c->api->store, name, strlen(name))
                                                               : NULL;
    if (!s)
        knd_apierr_not_found(&c->err, "Stream %s under account %s not found.", name, account);
    return s;
}

/* ---- stream status changes ---- */

typedef struct stream_list {
    knd_stream **v;
    size_t n, cap;
    bool failed;
} stream_list;

static bool collect_in_transition(void *ctx, knd_stream *s)
{
    stream_list *l = ctx;
    if (s->status == KND_STREAM_ACTIVE)
        return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        knd_stream **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = true;
            return false;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return true;
}

void knd_api_status_change_at(knd_api *api, int64_t when)
{
    if (when < api->next_status_change_ms)
        api->next_status_change_ms = when;
}

/* Applies every status change that is due. Streams are collected first because deleting one while the store walks
 * its list would pull the list from under the walk. */
static void apply_status_changes(knd_api *api, int64_t now)
{
    stream_list l = {0};
    knd_store_each(api->store, collect_in_transition, &l);
    api->next_status_change_ms = l.failed ? now + HOUSEKEEPING_MS : INT64_MAX;
    for (size_t i = 0; i < l.n; i++) {
        knd_stream *s = l.v[i];
        if (s->status_until_ms > now) {
            knd_api_status_change_at(api, s->status_until_ms);
            continue;
        }
        kn_error err = {0};
        kn_status st;
        if (s->status == KND_STREAM_DELETING) {
            st = knd_store_delete_stream(api->store, s, &err);
        } else {
            s->status = KND_STREAM_ACTIVE;
            st = knd_store_save_stream(api->store, s, &err);
        }
        if (st != KN_OK) {
            knd_log_warn("stream status change failed, will retry: %s", err.message);
            knd_api_status_change_at(api, now + HOUSEKEEPING_MS);
        }
    }
    free(l.v);
}

static void on_housekeeping(uv_timer_t *t)
{
    knd_api *api = t->data;
    int64_t now = api->clock_ms(api->clock_ctx);
    if (now >= api->next_status_change_ms)
        apply_status_changes(api, now);
    if (now >= api->next_expire_ms) {
        knd_store_expire(api->store, now);
        api->next_expire_ms = now + EXPIRE_EVERY_MS;
    }
}

/* ---- lifecycle ---- */

kn_status knd_api_new(const knd_api_options *opts, knd_api **out, kn_error *err)
{
    *out = NULL;
    if (!opts || !opts->store || !opts->auth)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "knd_api_new needs a store and an auth");
    knd_api *api = calloc(1, sizeof *api);
    if (!api)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    api->store = opts->store;
    api->auth = opts->auth;
    api->create_delay_ms = opts->create_delay_ms;
    api->delete_delay_ms = opts->delete_delay_ms;
    kn_strlcpy(api->region, opts->region ? opts->region : "us-east-1", sizeof api->region);
    kn_strlcpy(api->account_id, opts->account_id ? opts->account_id : "000000000000", sizeof api->account_id);
    api->shard_limit = opts->shard_limit ? opts->shard_limit : DEFAULT_SHARD_LIMIT;
    api->max_body_bytes = opts->max_body_bytes;
    api->clock_ms = opts->clock_ms ? opts->clock_ms : system_clock_ms;
    api->clock_ctx = opts->clock_ctx;
    api->next_status_change_ms = INT64_MIN; /* streams recovered mid-transition are looked at on the first request */
    api->records = calloc(KND_GET_RECORDS_MAX, sizeof *api->records);
    kn_buf_init(&api->scan_blobs, SIZE_MAX);
    api->scan_items = calloc((size_t)KND_SCAN_ITEMS * KND_SCAN_FIELDS, sizeof *api->scan_items);
    if (!api->records || !api->scan_items || !knd_token_key_init(&api->token_key) ||
        !kn_crypto_random(&api->request_seed, sizeof api->request_seed)) {
        knd_api_destroy(api);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "cannot allocate the API's buffers or draw its keys");
    }
    if (opts->loop) {
        api->timer = malloc(sizeof *api->timer);
        if (!api->timer || uv_timer_init(opts->loop, api->timer) != 0) {
            free(api->timer);
            api->timer = NULL;
            knd_api_destroy(api);
            return kn_error_set(err, KN_ERR_NO_MEMORY, "cannot start the API's housekeeping timer");
        }
        api->timer->data = api;
        uv_timer_start(api->timer, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
        uv_unref((uv_handle_t *)api->timer); /* housekeeping alone must not keep the server's loop running */
    }
    *out = api;
    return KN_OK;
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

void knd_api_destroy(knd_api *api)
{
    if (!api)
        return;
    if (api->timer) {
        uv_timer_stop(api->timer);
        uv_close((uv_handle_t *)api->timer, free_timer);
    }
    free(api->records);
    free(api->scan_items);
    kn_buf_cleanup(&api->scan_blobs);
    kn_buf_cleanup(&api->reply_buf);
    free(api);
}

size_t knd_api_pending(const knd_api *api)
{
    return api->pending;
}

kn_status knd_api_create_stream(knd_api *api, const char *name, uint32_t shards, kn_error *err)
{
    const char *why = kn_validate_stream_name(name, strlen(name));
    if (why)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "stream name '%s': %s", name, why);
    if (shards < 1)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "shard count %" PRIu32 ": must be at least 1", shards);
    if (knd_store_find(api->store, name, strlen(name)))
        return KN_OK;
    int64_t now = api->clock_ms(api->clock_ctx);
    knd_stream *s = NULL;
    kn_status st = knd_store_create_stream(api->store, name, shards, KND_MODE_PROVISIONED, now, now, &s, err);
    if (st == KN_OK && s->status != KND_STREAM_ACTIVE) {
        s->status = KND_STREAM_ACTIVE;
        st = knd_store_save_stream(api->store, s, err);
    }
    return st;
}

/* ---- dispatch ---- */

static const char *header(const knd_request *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const kn_sigv4_header *h = &req->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    *len = 0;
    return NULL;
}

/* application/x-amz-json-1.1, or application/json which AWS's older clients send, ignoring parameters. */
static bool is_json_content_type(const knd_request *req)
{
    size_t len;
    const char *v = header(req, "content-type", &len);
    if (!v)
        return false;
    const char *semi = memchr(v, ';', len);
    if (semi)
        len = (size_t)(semi - v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    return (len == 26 && strncasecmp(v, "application/x-amz-json-1.1", 26) == 0) ||
           (len == 16 && strncasecmp(v, "application/json", 16) == 0);
}

/* Splits X-Amz-Target "Service.Operation". False when it does not have both parts. */
static bool parse_target(const knd_request *req, const knd_op **op)
{
    size_t len;
    const char *v = header(req, "x-amz-target", &len);
    *op = NULL;
    const char *dot = v ? memchr(v, '.', len) : NULL;
    if (!dot || dot == v || dot + 1 == v + len)
        return false;
    size_t prefix = strlen(TARGET_PREFIX);
    if ((size_t)(dot + 1 - v) == prefix && memcmp(v, TARGET_PREFIX, prefix) == 0)
        *op = find_op(dot + 1, len - prefix);
    return true;
}

/* The fast path: the operation reads a knd_scan and knd_schema_scan takes the body, so no cJSON tree of it is built.
 * *in gets the body's top-level string members, for the helpers that read those. False when the general path must
 * run (then *in stays NULL). */
static bool admit_scan(knd_call *c, const knd_op *op, knd_scan *scan, cJSON **in)
{
    const knd_request *req = c->req;
    if (!op || !op->scan ||
        !knd_schema_scan(op->input, (const char *)req->body, req->body_len, c->api->scan_items, KND_SCAN_ITEMS,
                         &c->api->scan_blobs, scan))
        return false;
    cJSON *obj = cJSON_CreateObject();
    for (int i = 0; obj && op->input[i].name; i++) {
        const knd_view *v = &scan->fields[i];
        if (op->input[i].type != KND_T_STRING || !v->s)
            continue;
        char *text = strndup(v->s, v->len);
        if (!text || !cJSON_AddStringToObject(obj, op->input[i].name, text)) {
            cJSON_Delete(obj);
            obj = NULL;
        }
        free(text);
    }
    *in = obj;
    return obj != NULL;
}

/* Everything before the operation runs: routing, JSON syntax, authentication, types and constraints. Replies and
 * returns false when the request stops here; else *op and *in (owned by the caller) are set. */
static bool admit(knd_call *c, const knd_op **op, cJSON **in, knd_scan *scan)
{
    const knd_request *req = c->req;
    size_t len;
    if (req->body_too_large) {
        /* AWS answers 413 too; the body says why, in the JSON every client here can read. */
        if (c->api->max_body_bytes)
            knd_apierr_set(&c->err, 413, "SerializationException", "Request body exceeds the %zu-byte limit.",
                           c->api->max_body_bytes);
        else
            knd_apierr_set(&c->err, 413, "SerializationException", "Request body exceeds the size limit.");
        knd_api_fail(c);
        return false;
    }
    if (strcmp(req->method, "POST") != 0) {
        if (!header(req, "authorization", &len))
            reply_xml(c, 403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        else
            reply_xml(c, 403, "AccessDeniedException", "Unable to determine service/operation name to be authorized");
        return false;
    }
    bool has_target = parse_target(req, op);
    if (!is_json_content_type(req)) {
        if (!has_target)
            reply_xml(c, 403, "AccessDeniedException", "Unable to determine service/operation name to be authorized");
        else
            reply_xml(c, 404, "UnknownOperationException", NULL);
        return false;
    }
    if (req->body_len == 0) {
        reply_error(c, 400, *op ? "SerializationException" : "UnknownOperationException", NULL);
        return false;
    }
    bool scanned = admit_scan(c, *op, scan, in);
    if (!scanned && (kn_utf8_chars((const char *)req->body, req->body_len) == (size_t)-1 ||
                     !(*in = kn_json_parse(req->body, req->body_len)) || !cJSON_IsObject(*in))) {
        reply_error(c, 400, "SerializationException", NULL);
        return false;
    }
    if (!*op) {
        reply_error(c, 400, "UnknownOperationException", NULL);
        return false;
    }
    kn_error aerr = {0};
    if (knd_auth_check(c->api->auth, req, c->now_ms, &aerr) != KN_OK) {
        reply_error(c, aerr.http_status ? aerr.http_status : 400, aerr.type[0] ? aerr.type : "AccessDeniedException",
                    aerr.message);
        return false;
    }
    if (scanned) {
        c->scan = scan; /* knd_schema_scan took the body only if checks 1 and 2 pass */
        return true;
    }
    kn_buf msg;
    kn_buf_init(&msg, KND_APIERR_MESSAGE_CAP);
    bool ok = knd_schema_check_types((*op)->input, *in, &msg);
    if (!ok) {
        knd_apierr_set(&c->err, 400, "SerializationException", "%s", msg.data ? (const char *)msg.data : "");
        c->err.capital_key = true;
        knd_api_fail(c);
    } else if (knd_schema_validate((*op)->input, *in, &msg) > 0) {
        reply_error(c, 400, "ValidationException", (const char *)msg.data);
        ok = false;
    }
    kn_buf_cleanup(&msg);
    return ok;
}

void knd_api_dispatch(knd_api *api, const knd_request *req, knd_api_reply_fn reply, void *reply_ctx)
{
    knd_call c = {.api = api, .req = req, .reply = reply, .reply_ctx = reply_ctx};
    knd_apierr_init(&c.err);
    c.now_ms = api->clock_ms(api->clock_ctx);
    make_request_id(api, c.request_id);
    const knd_op *op = NULL;
    cJSON *in = NULL;
    knd_scan scan;
    if (admit(&c, &op, &in, &scan)) {
        if (c.now_ms >= api->next_status_change_ms)
            apply_status_changes(api, c.now_ms);
        c.in = in;
        op->run(&c);
    }
    cJSON_Delete(in);
    knd_apierr_cleanup(&c.err);
    /* The decoded blobs' buffer is kept for the next call unless a big body grew it. */
    if (api->scan_blobs.alloc > KEEP_SCAN_BLOBS) {
        kn_buf_cleanup(&api->scan_blobs);
        kn_buf_init(&api->scan_blobs, SIZE_MAX);
    }
    kn_buf_reset(&api->scan_blobs);
}

static void reply_exchange(void *ctx, int status, const kn_sigv4_header *headers, size_t header_count,
                           const void *body, size_t body_len)
{
    knd_exchange_respond(ctx, status, headers, header_count, body, body_len);
}

void knd_api_handle(void *ctx, knd_exchange *x, const knd_request *req)
{
    knd_api_dispatch(ctx, req, reply_exchange, x);
}
