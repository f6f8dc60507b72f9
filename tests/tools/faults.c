/* kn_faults: drives libkinesis through the fault proxy for tests/integration/test_client_faults.py and
 * test_secrets.py.
 *
 * Reads one JSON request from stdin:
 *   {"op": "put_record" | "put_records", "stream_name": S,
 *    "records": [{"data": BASE64, "partition_key": K, "explicit_hash_key": N?}],
 *    "repeat": R?,   (default 1: put_record puts each record in turn, put_records sends them all as one call; R times,
 *                     on one client, so later calls show whether its pooled connections recovered)
 *    "options": {"max_attempts", "connect_timeout_ms", "request_timeout_ms", "retry_base_delay_ms",
 *                "retry_max_backoff_ms"}?,   (absent or 0 = the library's defaults)
 *    "debug": bool?} (write the library's request/response trace to stderr)
 * Endpoint, region and credentials come from the environment, as for any program using the library.
 * Writes one JSON answer to stdout:
 *   {"calls": [call...], "traced_attempts": n (requests the trace announced; with "debug")}
 *   call = {"status": kn_status_str, "elapsed_ms": wall time of the call, "attempts",
 *           "error": {"type", "message", "http_status", "request_id", "retry_class", "attempts"}?  (on failure)
 *           put_record:  "shard_id", "sequence_number" (on success)
 *           put_records: "failed_count", "results": [{"ok", "shard_id", "sequence_number", "error_code",
 *                                                     "error_message"}]}
 * Exit 0 when the answer was written (whatever the calls' outcome), 2 on a malformed request or a client that could
 * not be made (its error is printed on stderr). */
#include <kinesis/kinesis.h>

#include "base64.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INPUT (64u * 1024u * 1024u)

typedef struct driver {
    kn_client *client;
    const char *stream_name;
    kn_put_records_entry *entries; /* data points into bufs */
    kn_buf *bufs;
    size_t count;
    int repeat;
    bool debug;
    int traced_attempts;
} driver;

static const char *retry_class_name(kn_retry_class c)
{
    switch (c) {
    case KN_RETRY_THROTTLING:
        return "throttling";
    case KN_RETRY_TRANSIENT:
        return "transient";
    default:
        return "never";
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The trace goes to stderr; each request's trace is one call that starts with "> POST". */
static void on_debug(void *ctx, const char *text, size_t len)
{
    driver *d = ctx;
    if (len >= 6 && memcmp(text, "> POST", 6) == 0)
        d->traced_attempts++;
    fwrite(text, 1, len, stderr);
}

/* Starts a call's JSON object with what every call reports. */
static cJSON *call_json(kn_status st, const kn_error *e, double elapsed_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", kn_status_str(st));
    cJSON_AddNumberToObject(o, "elapsed_ms", elapsed_ms);
    cJSON_AddNumberToObject(o, "attempts", e->attempts);
    if (st != KN_OK) {
        cJSON *err = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(err, "type", e->type);
        cJSON_AddStringToObject(err, "message", e->message);
        cJSON_AddNumberToObject(err, "http_status", e->http_status);
        cJSON_AddStringToObject(err, "request_id", e->request_id);
        cJSON_AddStringToObject(err, "retry_class", retry_class_name(e->retry_class));
        cJSON_AddNumberToObject(err, "attempts", e->attempts);
    }
    return o;
}

static void put_record_calls(driver *d, cJSON *calls)
{
    for (size_t i = 0; i < d->count; i++) {
        const kn_put_records_entry *r = &d->entries[i];
        kn_put_record_input in = {.stream_name = d->stream_name, .data = r->data, .data_len = r->data_len,
                                  .partition_key = r->partition_key, .explicit_hash_key = r->explicit_hash_key};
        kn_put_record_output out;
        kn_error e;
        double start = now_ms();
        kn_status st = kn_put_record(d->client, &in, &out, &e);
        cJSON *o = call_json(st, &e, now_ms() - start);
        if (st == KN_OK) {
            cJSON_AddStringToObject(o, "shard_id", out.shard_id);
            cJSON_AddStringToObject(o, "sequence_number", out.sequence_number);
        }
        cJSON_AddItemToArray(calls, o);
    }
}

static void put_records_call(driver *d, cJSON *calls)
{
    kn_put_records_result *results = calloc(d->count ? d->count : 1, sizeof *results);
    if (!results)
        return;
    size_t failed = 0;
    kn_error e;
    double start = now_ms();
    kn_status st = kn_put_records(d->client, d->stream_name, NULL, d->entries, d->count, results, &failed, &e);
    cJSON *o = call_json(st, &e, now_ms() - start);
    cJSON_AddNumberToObject(o, "failed_count", (double)failed);
    cJSON *arr = cJSON_AddArrayToObject(o, "results");
    for (size_t i = 0; i < d->count; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddBoolToObject(r, "ok", results[i].ok);
        cJSON_AddStringToObject(r, "shard_id", results[i].shard_id);
        cJSON_AddStringToObject(r, "sequence_number", results[i].sequence_number);
        cJSON_AddStringToObject(r, "error_code", results[i].error_code);
        cJSON_AddStringToObject(r, "error_message", results[i].error_message);
        cJSON_AddItemToArray(arr, r);
    }
    cJSON_AddItemToArray(calls, o);
    free(results);
}

static bool load_records(const cJSON *req, driver *d)
{
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(req, "records");
    if (!cJSON_IsArray(recs))
        return false;
    d->count = (size_t)cJSON_GetArraySize(recs);
    d->entries = calloc(d->count ? d->count : 1, sizeof *d->entries);
    d->bufs = calloc(d->count ? d->count : 1, sizeof *d->bufs);
    if (!d->entries || !d->bufs)
        return false;
    size_t i = 0;
    const cJSON *r = NULL;
    cJSON_ArrayForEach(r, recs) {
        kn_buf *b = &d->bufs[i];
        const char *b64 = kn_json_string(r, "data");
        kn_buf_init(b, b64 ? kn_base64_decoded_len(b64, strlen(b64)) : 0);
        if (!b64 || kn_base64_decode(b64, strlen(b64), b) != KN_OK)
            return false;
        d->entries[i++] = (kn_put_records_entry){.data = b->data, .data_len = b->len,
                                                 .partition_key = kn_json_string(r, "partition_key"),
                                                 .explicit_hash_key = kn_json_string(r, "explicit_hash_key")};
    }
    return true;
}

static long option(const cJSON *opts, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(opts, name);
    return cJSON_IsNumber(n) ? (long)n->valuedouble : 0;
}

static int run(const cJSON *req)
{
    int rc = 2;
    driver d = {.stream_name = kn_json_string(req, "stream_name"),
                .debug = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "debug"))};
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(req, "repeat");
    d.repeat = cJSON_IsNumber(rep) ? rep->valueint : 1;
    const char *op = kn_json_string(req, "op");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(req, "options");
    cJSON *answer = cJSON_CreateObject(), *calls = cJSON_AddArrayToObject(answer, "calls");
    kn_client_options o = {.max_attempts = (int)option(opts, "max_attempts"),
                           .connect_timeout_ms = option(opts, "connect_timeout_ms"),
                           .request_timeout_ms = option(opts, "request_timeout_ms"),
                           .retry_base_delay_ms = (uint32_t)option(opts, "retry_base_delay_ms"),
                           .retry_max_backoff_ms = (uint32_t)option(opts, "retry_max_backoff_ms"),
                           .debug = d.debug ? on_debug : NULL,
                           .debug_ctx = &d};
    kn_error e;
    if (!op || (strcmp(op, "put_record") != 0 && strcmp(op, "put_records") != 0) || d.repeat < 1 ||
        !load_records(req, &d)) {
        fprintf(stderr, "kn_faults: malformed request\n");
        goto cleanup;
    }
    if (kn_client_new(&o, &d.client, &e) != KN_OK) {
        fprintf(stderr, "kn_faults: %s: %s\n", kn_status_str(e.status), e.message);
        goto cleanup;
    }
    for (int r = 0; r < d.repeat; r++) {
        if (strcmp(op, "put_records") == 0)
            put_records_call(&d, calls);
        else
            put_record_calls(&d, calls);
    }
    cJSON_AddNumberToObject(answer, "traced_attempts", d.traced_attempts);
    char *text = cJSON_PrintUnformatted(answer);
    if (text)
        puts(text);
    cJSON_free(text);
    rc = text ? 0 : 2;
cleanup:
    kn_client_destroy(d.client);
    for (size_t i = 0; d.bufs && i < d.count; i++)
        kn_buf_cleanup(&d.bufs[i]);
    free(d.bufs);
    free(d.entries);
    cJSON_Delete(answer);
    return rc;
}

int main(void)
{
    kn_buf in;
    kn_buf_init(&in, MAX_INPUT);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (kn_buf_append(&in, chunk, n) != KN_OK) {
            fprintf(stderr, "kn_faults: input too large\n");
            kn_buf_cleanup(&in);
            return 2;
        }
    }
    cJSON *req = kn_json_parse(in.data, in.len);
    kn_buf_cleanup(&in);
    if (!req) {
        fprintf(stderr, "kn_faults: input is not JSON\n");
        return 2;
    }
    int rc = run(req);
    cJSON_Delete(req);
    return rc;
}
