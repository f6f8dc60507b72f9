/* kn_client: PutRecord and PutRecords over AWS JSON 1.1, signed with SigV4, retried per AWS's standard mode.
 *
 * One attempt = sign (with the current time) → send through the transport → map the answer. The body is built once
 * per call (PutRecord) or once per attempt (PutRecords, which resends only the entries that failed retryably). */
#include "client.h"
#include "base64.h"
#include "endpoint.h"
#include "error.h"
#include "json.h"
#include "retry.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define KN_SERVICE "kinesis"
#define KN_CONTENT_TYPE "application/x-amz-json-1.1"
#define KN_TARGET_PUT_RECORD "Kinesis_20131202.PutRecord"
#define KN_TARGET_PUT_RECORDS "Kinesis_20131202.PutRecords"
#define KN_ENDPOINT_URL_MAX 1024
#define KN_REGION_MAX 64
/* A PutRecords request may carry 5 MiB (data + partition keys) when records are limited to 1 MiB, and as much as one
 * record when streams allow larger ones (10 MiB records, 10 MiB requests). */
#define KN_PUT_RECORDS_REQUEST_MIN (5u * 1024u * 1024u)
/* How much of each body the debug trace shows: a 1 MiB record would drown the terminal. */
#define KN_TRACE_BODY_MAX 4096
#define KN_TRACE_MAX (64u * 1024u)
#define KN_IDLE_CONNECTIONS 8
/* What the Authorization header usually takes (about 200 bytes; longer with a long key id or region). */
#define KN_AUTHORIZATION_USUAL 320

struct kn_client {
    char region[KN_REGION_MAX];
    char endpoint[KN_ENDPOINT_URL_MAX];
    char url[KN_ENDPOINT_URL_MAX + 1]; /* endpoint, with "/" added when it has no path */
    char host[KN_ENDPOINT_URL_MAX];    /* what the Host header carries, as signed */
    const char *path;                  /* view into url */
    size_t path_len;
    kn_creds creds;
    long connect_timeout_ms;
    long request_timeout_ms;
    kn_retry_policy retry;
    size_t max_record_size;
    kn_debug_fn debug;
    void *debug_ctx;
    kn_sigv4_key_cache keys;
    kn_http_transport transport;
    int64_t (*now)(void *ctx);
    void *clock_ctx;
};

/* ---- construction ---- */

static int64_t real_now(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

static kn_status check_options(const kn_client_options *o, kn_error *err)
{
    if (o->connect_timeout_ms < 0 || o->request_timeout_ms < 0)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "timeouts must not be negative");
    if (o->max_attempts < 0)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "max_attempts must not be negative");
    return KN_OK;
}

static void apply_options(kn_client *c, const kn_client_options *o, const kn_client_deps *d)
{
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
    c->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : 30000;
    c->max_record_size = o->max_record_size ? o->max_record_size : KN_DEFAULT_MAX_RECORD_SIZE;
    c->debug = o->debug;
    c->debug_ctx = o->debug_ctx;
    c->retry = (kn_retry_policy){
        .max_attempts = o->max_attempts ? o->max_attempts : 3,
        .base_delay_ms = o->retry_base_delay_ms ? o->retry_base_delay_ms : 100,
        .max_backoff_ms = o->retry_max_backoff_ms ? o->retry_max_backoff_ms : 20000,
        .random = d->random,
        .sleep_ms = d->sleep_ms,
        .ctx = d->ctx,
    };
    c->now = d->now ? d->now : real_now;
    c->clock_ctx = d->ctx;
}

/* Splits the endpoint into the Host header value and the request path that is signed. */
static kn_status split_endpoint(kn_client *c, kn_error *err)
{
    const char *host = NULL;
    size_t host_len = kn_endpoint_host(c->endpoint, &host);
    if (host_len == 0 || host_len >= sizeof c->host)
        return kn_error_set(err, KN_ERR_CONFIG, "endpoint URL %s has no usable host", c->endpoint);
    memcpy(c->host, host, host_len);
    c->host[host_len] = '\0';
    /* kn_endpoint_resolve refused queries and fragments: what follows the host is the path, maybe empty. */
    const char *path = host + host_len;
    snprintf(c->url, sizeof c->url, "%s%s", c->endpoint, *path ? "" : "/");
    c->path = c->url + (path - c->endpoint);
    c->path_len = strlen(c->path);
    return KN_OK;
}

static kn_status resolve_config(kn_client *c, const kn_client_options *o, const kn_env *env, kn_error *err)
{
    kn_status st = kn_creds_resolve_region(env, o->profile, o->region, c->region, sizeof c->region, err);
    if (st != KN_OK)
        return st;
    bool explicit_keys = o->access_key_id && o->secret_access_key;
    st = kn_creds_resolve(env, o->profile, explicit_keys ? o->access_key_id : NULL,
                          explicit_keys ? o->secret_access_key : NULL, explicit_keys ? o->session_token : NULL,
                          &c->creds, err);
    if (st != KN_OK)
        return st;
    st = kn_endpoint_resolve(env, o->endpoint_url, c->region, c->endpoint, sizeof c->endpoint, err);
    if (st != KN_OK)
        return st;
    return split_endpoint(c, err);
}

static const char *ca_bundle(const kn_client_options *o, const kn_env *env)
{
    const char *path = o->ca_bundle ? o->ca_bundle : env->get(env->ctx, "AWS_CA_BUNDLE");
    return path && *path ? path : NULL;
}

kn_status kn_client_new_with(const kn_client_options *options, const kn_client_deps *deps, kn_client **out,
                             kn_error *err)
{
    static const kn_client_options no_options;
    static const kn_client_deps no_deps;
    const kn_client_options *o = options ? options : &no_options;
    const kn_client_deps *d = deps ? deps : &no_deps;
    kn_status st = KN_OK;
    kn_error_clear(err);
    if (!out)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "out must not be NULL");
    *out = NULL;
    if ((st = check_options(o, err)) != KN_OK)
        return st;
    kn_client *c = calloc(1, sizeof *c);
    if (!c)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    kn_sigv4_key_cache_init(&c->keys);
    apply_options(c, o, d);
    const kn_env *env = d->env ? d->env : kn_env_process();
    if ((st = resolve_config(c, o, env, err)) != KN_OK)
        goto cleanup;
    if (d->transport)
        c->transport = *d->transport;
    else if ((st = kn_http_curl_new(KN_IDLE_CONNECTIONS, ca_bundle(o, env), &c->transport, err)) != KN_OK)
        goto cleanup;
    *out = c;
    c = NULL;
cleanup:
    kn_client_destroy(c);
    return st;
}

kn_status kn_client_new(const kn_client_options *options, kn_client **out, kn_error *err)
{
    return kn_client_new_with(options, NULL, out, err);
}

void kn_client_destroy(kn_client *client)
{
    if (!client)
        return;
    if (client->transport.destroy)
        client->transport.destroy(client->transport.ctx);
    kn_sigv4_key_cache_cleanup(&client->keys);
    kn_creds_cleanup(&client->creds);
    free(client);
}

const char *kn_client_region(const kn_client *client)
{
    return client->region;
}

const char *kn_client_endpoint(const kn_client *client)
{
    return client->endpoint;
}

/* ---- validation, before anything is sent ---- */

static kn_status invalid(kn_error *err, const char *field, const char *why)
{
    return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "%s: %s", field, why);
}

static kn_status validate_stream(const char *name, const char *arn, kn_error *err)
{
    if (!name == !arn)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "exactly one of StreamName and StreamARN must be given");
    const char *why = name ? kn_validate_stream_name(name, strlen(name)) : kn_validate_stream_arn(arn, strlen(arn));
    return why ? invalid(err, name ? "StreamName" : "StreamARN", why) : KN_OK;
}

/* The checks PutRecord and each PutRecords entry share. `field` prefixes the member names ("" or "Records[3]."). */
static kn_status validate_entry(const kn_client *c, const char *field, const void *data, size_t data_len,
                                const char *partition_key, const char *explicit_hash_key, kn_error *err)
{
    char name[64];
    const char *why = NULL;
    if (!data && data_len) {
        snprintf(name, sizeof name, "%sData", field);
        return invalid(err, name, "data is NULL but data_len is not 0");
    }
    snprintf(name, sizeof name, "%sPartitionKey", field);
    if (!partition_key)
        return invalid(err, name, "is required");
    size_t key_len = strlen(partition_key);
    if ((why = kn_validate_partition_key(partition_key, key_len)))
        return invalid(err, name, why);
    if (data_len > c->max_record_size || key_len > c->max_record_size - data_len) {
        snprintf(name, sizeof name, "%sData", field);
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT,
                            "%s: data (%zu bytes) plus partition key (%zu bytes) exceed the maximum record size "
                            "of %zu bytes",
                            name, data_len, key_len, c->max_record_size);
    }
    snprintf(name, sizeof name, "%sExplicitHashKey", field);
    if (explicit_hash_key && (why = kn_validate_explicit_hash_key(explicit_hash_key, strlen(explicit_hash_key))))
        return invalid(err, name, why);
    return KN_OK;
}

static kn_status validate_put_record(const kn_client *c, const kn_put_record_input *in, kn_error *err)
{
    kn_status st = validate_stream(in->stream_name, in->stream_arn, err);
    if (st != KN_OK)
        return st;
    if ((st = validate_entry(c, "", in->data, in->data_len, in->partition_key, in->explicit_hash_key, err)) != KN_OK)
        return st;
    const char *seq = in->sequence_number_for_ordering, *why = NULL;
    if (seq && (why = kn_validate_sequence_number(seq, strlen(seq))))
        return invalid(err, "SequenceNumberForOrdering", why);
    return KN_OK;
}

static kn_status validate_put_records(const kn_client *c, const char *stream_name, const char *stream_arn,
                                      const kn_put_records_entry *entries, size_t count, kn_error *err)
{
    kn_status st = validate_stream(stream_name, stream_arn, err);
    if (st != KN_OK)
        return st;
    if (count < 1 || count > KN_PUT_RECORDS_MAX)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "Records: %zu entries given; a request holds 1 to %d",
                            count, KN_PUT_RECORDS_MAX);
    size_t limit = c->max_record_size > KN_PUT_RECORDS_REQUEST_MIN ? c->max_record_size : KN_PUT_RECORDS_REQUEST_MIN;
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const kn_put_records_entry *e = &entries[i];
        char field[32];
        snprintf(field, sizeof field, "Records[%zu].", i);
        if ((st = validate_entry(c, field, e->data, e->data_len, e->partition_key, e->explicit_hash_key, err)))
            return st;
        total += e->data_len + strlen(e->partition_key); /* each term <= max_record_size, so no overflow */
    }
    if (total > limit)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT,
                            "Records: %zu bytes of data and partition keys exceed the request limit of %zu bytes",
                            total, limit);
    return KN_OK;
}

/* ---- the debug trace (signature, secret and session token never appear in it) ---- */

/* Appends text with control characters other than newline and tab shown as '.', each line prefixed. */
static void trace_text(kn_buf *t, const char *prefix, const void *text, size_t len)
{
    const uint8_t *p = text;
    size_t shown = len > KN_TRACE_BODY_MAX ? KN_TRACE_BODY_MAX : len;
    bool line_start = true;
    for (size_t i = 0; i < shown; i++) {
        if (p[i] == '\r')
            continue;
        if (line_start)
            (void)kn_buf_append_str(t, prefix);
        uint8_t ch = (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f ? '.' : p[i];
        (void)kn_buf_append(t, &ch, 1);
        line_start = ch == '\n';
    }
    if (!line_start)
        (void)kn_buf_append_str(t, "\n");
    if (shown < len)
        (void)kn_buf_printf(t, "%s... (%zu bytes in all)\n", prefix, len);
}

static void trace_header(kn_buf *t, const kn_sigv4_header *h)
{
    const char *v = h->value;
    size_t vlen = h->value_len;
    if (h->name_len == 20 && strncasecmp(h->name, "X-Amz-Security-Token", 20) == 0) {
        v = "<redacted>";
        vlen = strlen(v);
    } else if (h->name_len == 13 && strncasecmp(h->name, "Authorization", 13) == 0) {
        const char *sig = memmem(v, vlen, "Signature=", 10);
        if (sig) {
            (void)kn_buf_printf(t, "> %.*s: %.*s<redacted>\n", (int)h->name_len, h->name, (int)(sig + 10 - v), v);
            return;
        }
        v = "<redacted>";
        vlen = strlen(v);
    }
    (void)kn_buf_printf(t, "> %.*s: %.*s\n", (int)h->name_len, h->name, (int)vlen, v);
}

static void trace_request(const kn_client *c, const kn_http_request *req, int attempt)
{
    if (!c->debug)
        return;
    kn_buf t;
    kn_buf_init(&t, KN_TRACE_MAX);
    (void)kn_buf_printf(&t, "> POST %s (attempt %d)\n", req->url, attempt);
    for (size_t i = 0; i < req->header_count; i++)
        trace_header(&t, &req->headers[i]);
    (void)kn_buf_append_str(&t, ">\n");
    trace_text(&t, "> ", req->body, req->body_len);
    if (t.data)
        c->debug(c->debug_ctx, (const char *)t.data, t.len);
    kn_buf_cleanup(&t);
}

static void trace_response(const kn_client *c, const kn_http_response *resp, kn_status st, const kn_error *err)
{
    if (!c->debug)
        return;
    kn_buf t;
    kn_buf_init(&t, KN_TRACE_MAX);
    if (resp->headers.len)
        trace_text(&t, "< ", resp->headers.data, resp->headers.len);
    else if (resp->status)
        (void)kn_buf_printf(&t, "< HTTP %d\n<\n", resp->status);
    if (st != KN_OK)
        (void)kn_buf_printf(&t, "< (no complete response: %s: %s)\n", kn_status_str(st), err->message);
    else
        trace_text(&t, "< ", resp->body.data, resp->body.len);
    if (t.data)
        c->debug(c->debug_ctx, (const char *)t.data, t.len);
    kn_buf_cleanup(&t);
}

/* ---- one signed exchange ---- */

static kn_sigv4_header header(const char *name, const char *value)
{
    return (kn_sigv4_header){.name = name, .name_len = strlen(name), .value = value, .value_len = strlen(value)};
}

/* Fills err from a non-2xx response: the JSON body's __type and message, else the x-amzn-ErrorType header. */
static kn_status service_error(const kn_http_response *resp, kn_error *err)
{
    cJSON *root = kn_json_parse(resp->body.data, resp->body.len);
    const char *type = NULL, *message = NULL;
    kn_json_error_fields(root, &type, &message);
    if ((!type || !*type) && resp->error_type[0])
        type = resp->error_type;
    char fallback[96];
    if (!message) {
        snprintf(fallback, sizeof fallback, "HTTP %d with %s", resp->status,
                 type ? "no message" : "no AWS error in the body");
        message = fallback;
    }
    kn_error_set_service(err, resp->status, type, message, resp->request_id);
    cJSON_Delete(root);
    return KN_ERR_SERVICE;
}

/* A 2xx answer that could not be understood: keep the HTTP status and request id so the user can report it. */
static kn_status protocol_error(const kn_http_response *resp, kn_error *err, const char *what)
{
    kn_error_set(err, KN_ERR_PROTOCOL, "%s", what);
    err->http_status = resp->status;
    kn_strlcpy(err->request_id, resp->request_id, sizeof err->request_id);
    return KN_ERR_PROTOCOL;
}

/* Signs and sends one request. KN_OK only for a 2xx response, whose body the caller parses. */
static kn_status exchange(kn_client *c, const char *target, const char *body, size_t body_len, int attempt,
                          kn_http_response *resp, kn_error *err)
{
    kn_status st = KN_OK;
    kn_buf auth;
    kn_buf_init(&auth, 8192);
    (void)kn_buf_reserve(&auth, KN_AUTHORIZATION_USUAL); /* one allocation instead of a run of doublings */
    kn_sigv4_scope scope;
    memset(&scope, 0, sizeof scope);
    kn_sigv4_format_time(c->now(c->clock_ctx), &scope);
    kn_strlcpy(scope.region, c->region, sizeof scope.region);
    kn_strlcpy(scope.service, KN_SERVICE, sizeof scope.service);

    kn_sigv4_header h[6];
    size_t n = 0;
    h[n++] = header("Content-Type", KN_CONTENT_TYPE);
    h[n++] = header("Host", c->host);
    h[n++] = header("X-Amz-Date", scope.amz_date);
    h[n++] = header("X-Amz-Target", target);
    if (c->creds.session_token)
        h[n++] = header("X-Amz-Security-Token", c->creds.session_token);
    kn_sigv4_request sreq = {.method = "POST", .path = c->path, .path_len = c->path_len, .query = "",
                             .headers = h, .header_count = n, .body = body, .body_len = body_len};
    if ((st = kn_sigv4_sign(&sreq, c->creds.access_key_id, c->creds.secret_access_key, &scope, &c->keys, &auth))) {
        st = kn_error_set(err, st, "cannot sign the request: %s", kn_status_str(st));
        goto cleanup;
    }
    h[n++] = (kn_sigv4_header){.name = "Authorization", .name_len = 13, .value = (const char *)auth.data,
                               .value_len = auth.len};
    kn_http_request req = {.url = c->url, .headers = h, .header_count = n, .body = body, .body_len = body_len,
                           .connect_timeout_ms = c->connect_timeout_ms, .request_timeout_ms = c->request_timeout_ms};
    trace_request(c, &req, attempt);
    st = c->transport.send(c->transport.ctx, &req, resp, err);
    trace_response(c, resp, st, err);
    if (st == KN_OK && (resp->status < 200 || resp->status > 299))
        st = service_error(resp, err);
cleanup:
    kn_buf_cleanup(&auth);
    return st;
}

static void backoff(const kn_client *c, int attempt)
{
    kn_retry_sleep(&c->retry, kn_retry_delay_ms(&c->retry, attempt));
}

/* The caller's error gets the outcome; on success only the attempt count survives. */
static kn_status finish(kn_status st, kn_error *local, kn_error *err)
{
    if (st == KN_OK) {
        int attempts = local->attempts;
        kn_error_clear(local);
        local->attempts = attempts;
    }
    if (err)
        *err = *local;
    return st;
}

/* ---- request bodies ----
 *
 * Written straight into one buffer, sized up front, instead of built as a cJSON tree and printed (a malloc per member
 * and several while printing). Members come in the order cJSON_PrintUnformatted gave them, and strings are escaped by
 * kn_json_escape, shared with kinesisd: the same JSON as cJSON's, except that control characters are spelled \u00XX
 * (cJSON writes \n, \t, ...) and the bytes of text that is not valid UTF-8 become \ufffd (cJSON copied them as they
 * were). */

/* The bytes a string takes in a body, quotes included: kn_json_escape writes at most per_byte = 6 bytes for each; 1
 * gives the size when nothing needs escaping. 0 for an absent string. */
static size_t json_string_size(const char *s, size_t per_byte)
{
    return s ? per_byte * strlen(s) + 2 : 0;
}

/* Appends s as a JSON string, quotes included. */
static kn_status json_put_string(kn_buf *b, const char *s)
{
    kn_status st = kn_buf_append(b, "\"", 1);
    if (st == KN_OK)
        st = kn_json_escape(b, s, strlen(s));
    return st == KN_OK ? kn_buf_append(b, "\"", 1) : st;
}

/* Appends sep, then "name":value with value as a JSON string; nothing at all when value is NULL (an optional member
 * left out). name is one of ours and needs no escaping. */
static kn_status json_put_member(kn_buf *b, char sep, const char *name, const char *value)
{
    if (!value)
        return KN_OK;
    kn_status st = kn_buf_append(b, &sep, 1);
    if (st == KN_OK)
        st = kn_buf_append(b, "\"", 1);
    if (st == KN_OK)
        st = kn_buf_append_str(b, name);
    if (st == KN_OK)
        st = kn_buf_append(b, "\":", 2);
    return st == KN_OK ? json_put_string(b, value) : st;
}

static kn_status json_put_stream(kn_buf *b, char sep, const char *stream_name, const char *stream_arn)
{
    return stream_name ? json_put_member(b, sep, "StreamName", stream_name)
                       : json_put_member(b, sep, "StreamARN", stream_arn);
}

/* Room for the member names, quotes and separators of a body, and of one PutRecords entry. */
#define KN_BODY_SYNTAX_MAX 96
#define KN_ENTRY_SYNTAX_MAX 64

/* ---- PutRecord ---- */

static kn_status put_record_body(const kn_put_record_input *in, kn_buf *body, kn_error *err)
{
    const char *strings[] = {in->stream_name, in->stream_arn, in->partition_key, in->explicit_hash_key,
                             in->sequence_number_for_ordering};
    size_t max = kn_base64_encoded_len(in->data_len) + KN_BODY_SYNTAX_MAX, likely = max;
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        max += json_string_size(strings[i], 6);
        likely += json_string_size(strings[i], 1);
    }
    kn_buf_init(body, max);
    /* One allocation when nothing needs escaping, as is usual. */
    kn_status st = kn_buf_reserve(body, likely) ? KN_OK : KN_ERR_NO_MEMORY;
    if (st == KN_OK)
        st = json_put_stream(body, '{', in->stream_name, in->stream_arn);
    if (st == KN_OK)
        st = kn_buf_append_str(body, ",\"Data\":\"");
    if (st == KN_OK)
        st = kn_base64_encode(in->data, in->data_len, body);
    if (st == KN_OK)
        st = kn_buf_append(body, "\"", 1);
    if (st == KN_OK)
        st = json_put_member(body, ',', "PartitionKey", in->partition_key);
    if (st == KN_OK)
        st = json_put_member(body, ',', "ExplicitHashKey", in->explicit_hash_key);
    if (st == KN_OK)
        st = json_put_member(body, ',', "SequenceNumberForOrdering", in->sequence_number_for_ordering);
    if (st == KN_OK)
        st = kn_buf_append(body, "}", 1);
    return st == KN_OK ? KN_OK : kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory building the request body");
}

static kn_status parse_put_record(const kn_http_response *resp, kn_put_record_output *out, kn_error *err)
{
    kn_status st = KN_OK;
    cJSON *root = kn_json_parse(resp->body.data, resp->body.len);
    if (!root) {
        st = protocol_error(resp, err, "the PutRecord response is not a JSON object");
        goto cleanup;
    }
    if (!kn_json_copy_string(root, "ShardId", out->shard_id, sizeof out->shard_id) ||
        !kn_json_copy_string(root, "SequenceNumber", out->sequence_number, sizeof out->sequence_number)) {
        st = protocol_error(resp, err, "the PutRecord response lacks a valid ShardId or SequenceNumber");
        goto cleanup;
    }
    /* Absent from some emulators' answers: leave it empty rather than invent one. */
    kn_json_copy_string(root, "EncryptionType", out->encryption_type, sizeof out->encryption_type);
cleanup:
    cJSON_Delete(root);
    return st;
}

kn_status kn_put_record(kn_client *client, const kn_put_record_input *input, kn_put_record_output *output,
                        kn_error *err)
{
    kn_error e;
    kn_error_clear(&e);
    kn_status st = KN_OK;
    kn_buf body;
    kn_buf_init(&body, 0);
    kn_put_record_output result;
    memset(&result, 0, sizeof result);
    kn_http_response resp;
    kn_http_response_init(&resp);
    if (!client || !input || !output) {
        st = kn_error_set(&e, KN_ERR_INVALID_ARGUMENT, "client, input and output are required");
        goto cleanup;
    }
    memset(output, 0, sizeof *output);
    if ((st = validate_put_record(client, input, &e)) != KN_OK || (st = put_record_body(input, &body, &e)))
        goto cleanup;
    for (int attempt = 1;; attempt++) {
        e.attempts = attempt;
        st = exchange(client, KN_TARGET_PUT_RECORD, (const char *)body.data, body.len, attempt, &resp, &e);
        if (st == KN_OK)
            st = parse_put_record(&resp, &result, &e);
        if (st == KN_OK || !kn_retry_should(&client->retry, attempt, e.retry_class))
            break;
        backoff(client, attempt);
    }
    if (st == KN_OK)
        *output = result;
cleanup:
    kn_buf_cleanup(&body);
    kn_http_response_cleanup(&resp);
    return finish(st, &e, err);
}

/* ---- PutRecords ---- */

/* A PutRecords call in progress: each entry's base64 encoding (made once, reused by every attempt) and the entries
 * still to send. */
typedef struct records_call {
    kn_buf b64;      /* all encodings, back to back: base64 never needs JSON escaping */
    size_t *offset;  /* entry i's encoding is b64.data[offset[i], offset[i + 1]); count + 1 of them */
    size_t *pending; /* indices of the entries the next attempt sends, in entry order */
    size_t *retry;   /* scratch for the next pending list */
    size_t pending_count;
} records_call;

static kn_status records_call_init(records_call *rc, const kn_put_records_entry *entries, size_t count,
                                   kn_error *err)
{
    size_t cap = 0;
    for (size_t i = 0; i < count; i++)
        cap += kn_base64_encoded_len(entries[i].data_len);
    kn_buf_init(&rc->b64, cap);
    rc->offset = calloc(count + 1, sizeof *rc->offset);
    rc->pending = calloc(count, sizeof *rc->pending);
    rc->retry = calloc(count, sizeof *rc->retry);
    if (!rc->offset || !rc->pending || !rc->retry)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < count; i++) {
        rc->offset[i] = rc->b64.len;
        rc->pending[i] = i;
        if (kn_base64_encode(entries[i].data, entries[i].data_len, &rc->b64) != KN_OK)
            return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory encoding records");
    }
    rc->offset[count] = rc->b64.len;
    rc->pending_count = count;
    return KN_OK;
}

static void records_call_cleanup(records_call *rc)
{
    kn_buf_cleanup(&rc->b64);
    free(rc->offset);
    free(rc->pending);
    free(rc->retry);
}

/* Opens entry i's object with its "Data" member: the encoding as it is, since base64 never needs escaping. */
static kn_status put_records_data(kn_buf *body, const records_call *rc, size_t i)
{
    kn_status st = kn_buf_append_str(body, "{\"Data\":\"");
    if (st == KN_OK)
        st = kn_buf_append(body, rc->b64.data + rc->offset[i], rc->offset[i + 1] - rc->offset[i]);
    return st == KN_OK ? kn_buf_append(body, "\"", 1) : st;
}

/* The body of one attempt: the pending entries, in entry order. Each retry sends a subset of the entries before it,
 * so the first attempt's buffer (cap and memory) serves every later one. */
static kn_status put_records_body(const char *stream_name, const char *stream_arn,
                                  const kn_put_records_entry *entries, const records_call *rc, kn_buf *body,
                                  kn_error *err)
{
    size_t max = KN_BODY_SYNTAX_MAX + json_string_size(stream_name, 6) + json_string_size(stream_arn, 6);
    size_t likely = KN_BODY_SYNTAX_MAX + json_string_size(stream_name, 1) + json_string_size(stream_arn, 1);
    for (size_t k = 0; k < rc->pending_count; k++) {
        const kn_put_records_entry *e = &entries[rc->pending[k]];
        size_t data = rc->offset[rc->pending[k] + 1] - rc->offset[rc->pending[k]] + 2 + KN_ENTRY_SYNTAX_MAX;
        max += data + json_string_size(e->partition_key, 6) + json_string_size(e->explicit_hash_key, 6);
        likely += data + json_string_size(e->partition_key, 1) + json_string_size(e->explicit_hash_key, 1);
    }
    if (max > body->cap) {
        kn_buf_cleanup(body);
        kn_buf_init(body, max);
    } else {
        kn_buf_reset(body);
    }
    kn_status st = kn_buf_reserve(body, likely) ? KN_OK : KN_ERR_NO_MEMORY;
    if (st == KN_OK)
        st = json_put_stream(body, '{', stream_name, stream_arn);
    if (st == KN_OK)
        st = kn_buf_append_str(body, ",\"Records\":[");
    for (size_t k = 0; k < rc->pending_count && st == KN_OK; k++) {
        size_t i = rc->pending[k];
        st = k ? kn_buf_append(body, ",", 1) : KN_OK;
        if (st == KN_OK)
            st = put_records_data(body, rc, i);
        if (st == KN_OK)
            st = json_put_member(body, ',', "PartitionKey", entries[i].partition_key);
        if (st == KN_OK)
            st = json_put_member(body, ',', "ExplicitHashKey", entries[i].explicit_hash_key);
        if (st == KN_OK)
            st = kn_buf_append(body, "}", 1);
    }
    if (st == KN_OK)
        st = kn_buf_append(body, "]}", 2);
    return st == KN_OK ? KN_OK : kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory building the request body");
}

/* A result entry is either a success (ShardId + SequenceNumber) or a failure (ErrorCode, maybe ErrorMessage). */
static bool entry_well_formed(const cJSON *item)
{
    const char *shard = kn_json_string(item, "ShardId"), *seq = kn_json_string(item, "SequenceNumber");
    if (shard && seq)
        return strlen(shard) < KN_SHARD_ID_MAX && strlen(seq) < KN_SEQUENCE_NUMBER_MAX;
    return kn_json_string(item, "ErrorCode") != NULL;
}

/* Applies one attempt's per-entry results: successes are final, retryable failures go back to pending, others are
 * final. *cls gets the class to retry the remainder with (throttling wins over transient). The whole answer is
 * checked before anything is applied, so a malformed one changes nothing. */
static kn_status apply_records(const kn_http_response *resp, records_call *rc, kn_put_records_result *results,
                               kn_retry_class *cls, kn_error *err)
{
    kn_status st = KN_OK;
    cJSON *root = kn_json_parse(resp->body.data, resp->body.len);
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(root, "Records");
    if (!cJSON_IsArray(records) || (size_t)cJSON_GetArraySize(records) != rc->pending_count) {
        st = protocol_error(resp, err, "the PutRecords response does not hold one result per record sent");
        goto cleanup;
    }
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, records) {
        if (!entry_well_formed(item)) {
            st = protocol_error(resp, err, "a PutRecords result has neither ShardId+SequenceNumber nor ErrorCode");
            goto cleanup;
        }
    }
    size_t k = 0, next = 0;
    *cls = KN_RETRY_NEVER;
    cJSON_ArrayForEach(item, records) {
        size_t i = rc->pending[k++];
        kn_put_records_result *r = &results[i];
        memset(r, 0, sizeof *r);
        if (kn_json_copy_string(item, "ShardId", r->shard_id, sizeof r->shard_id) &&
            kn_json_copy_string(item, "SequenceNumber", r->sequence_number, sizeof r->sequence_number)) {
            r->ok = true;
            continue;
        }
        kn_strlcpy(r->error_code, kn_json_string(item, "ErrorCode"), sizeof r->error_code);
        kn_strlcpy(r->error_message, kn_json_string(item, "ErrorMessage"), sizeof r->error_message);
        kn_retry_class c = kn_retry_classify(KN_ERR_SERVICE, 0, r->error_code);
        if (c != KN_RETRY_NEVER) {
            rc->retry[next++] = i;
            if (*cls != KN_RETRY_THROTTLING)
                *cls = c;
        }
    }
    memcpy(rc->pending, rc->retry, next * sizeof *rc->pending);
    rc->pending_count = next;
cleanup:
    cJSON_Delete(root);
    return st;
}

/* After a request-level failure, the entries not yet known to be written carry that failure as their result. */
static void fail_pending(const records_call *rc, kn_put_records_result *results, kn_status st, const kn_error *e)
{
    for (size_t k = 0; k < rc->pending_count; k++) {
        kn_put_records_result *r = &results[rc->pending[k]];
        memset(r, 0, sizeof *r);
        kn_strlcpy(r->error_code, e->type[0] ? e->type : kn_status_str(st), sizeof r->error_code);
        kn_strlcpy(r->error_message, e->message, sizeof r->error_message);
    }
}

/* Sends the pending entries until none is left, the attempts run out, or a failure is not worth retrying. */
static kn_status put_records_loop(kn_client *c, const char *stream_name, const char *stream_arn,
                                  const kn_put_records_entry *entries, records_call *rc,
                                  kn_put_records_result *results, kn_error *e)
{
    kn_status st = KN_OK;
    kn_buf body;
    kn_buf_init(&body, 0);
    kn_http_response resp;
    kn_http_response_init(&resp);
    for (int attempt = 1;; attempt++) {
        kn_retry_class cls = KN_RETRY_NEVER;
        e->attempts = attempt;
        if ((st = put_records_body(stream_name, stream_arn, entries, rc, &body, e)) != KN_OK)
            break;
        st = exchange(c, KN_TARGET_PUT_RECORDS, (const char *)body.data, body.len, attempt, &resp, e);
        if (st == KN_OK)
            st = apply_records(&resp, rc, results, &cls, e);
        if (st != KN_OK)
            cls = e->retry_class;
        else if (rc->pending_count == 0)
            break;
        if (!kn_retry_should(&c->retry, attempt, cls))
            break;
        backoff(c, attempt);
    }
    if (st != KN_OK)
        fail_pending(rc, results, st, e);
    kn_buf_cleanup(&body);
    kn_http_response_cleanup(&resp);
    return st;
}

kn_status kn_put_records(kn_client *client, const char *stream_name, const char *stream_arn,
                         const kn_put_records_entry *entries, size_t count, kn_put_records_result *results,
                         size_t *failed_count, kn_error *err)
{
    kn_error e;
    kn_error_clear(&e);
    kn_status st = KN_OK;
    records_call rc;
    memset(&rc, 0, sizeof rc);
    if (failed_count)
        *failed_count = count;
    if (!client || !entries || !results) {
        st = kn_error_set(&e, KN_ERR_INVALID_ARGUMENT, "client, entries and results are required");
        goto cleanup;
    }
    memset(results, 0, count * sizeof *results);
    if ((st = validate_put_records(client, stream_name, stream_arn, entries, count, &e)) != KN_OK ||
        (st = records_call_init(&rc, entries, count, &e)) != KN_OK)
        goto cleanup;
    st = put_records_loop(client, stream_name, stream_arn, entries, &rc, results, &e);
    if (failed_count) {
        *failed_count = 0;
        for (size_t i = 0; i < count; i++)
            *failed_count += !results[i].ok;
    }
cleanup:
    records_call_cleanup(&rc);
    return finish(st, &e, err);
}
