/* kn_put: drives libkinesis for the integration tests (tests/integration/test_library.py).
 *
 * Reads one JSON request from stdin:
 *   {"op": "put_record" | "put_records", "stream_name": S | "stream_arn": A,
 *    "records": [{"data": BASE64, "partition_key": K, "explicit_hash_key": N?, "sequence_number_for_ordering": N?}],
 *    "threads": T?, "repeat": R?, "max_attempts": M?, "max_record_size": B?}
 * put_record puts each record in turn; with threads T > 1 each of T threads does so R times on one shared client.
 * Writes one JSON answer to stdout:
 *   {"results": [{"ok": true, "shard_id", "sequence_number", "encryption_type"} |
 *                {"ok": false, "status", "type", "message", "http_status", "request_id", "attempts"}],
 *    "failed_count": n (put_records)}
 * Configuration (endpoint, region, credentials) comes from the environment, as for any program using the library.
 * Exit 0 when the answer was written, 2 on a malformed request. */
#include <kinesis/kinesis.h>

#include "base64.h"
#include "json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (64u * 1024u * 1024u)
#define MAX_THREADS 16

typedef struct record {
    kn_buf data;
    const char *partition_key, *explicit_hash_key, *sequence_number;
} record;

typedef struct job {
    kn_client *client;
    const char *stream_name, *stream_arn;
    record *records;
    size_t count;
    int repeat;
    cJSON *results; /* this thread's results, appended in order */
} job;

static cJSON *error_json(kn_status st, const kn_error *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", false);
    cJSON_AddStringToObject(o, "status", kn_status_str(st));
    cJSON_AddStringToObject(o, "type", e->type);
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddNumberToObject(o, "http_status", e->http_status);
    cJSON_AddStringToObject(o, "request_id", e->request_id);
    cJSON_AddNumberToObject(o, "attempts", e->attempts);
    return o;
}

static void *put_record_job(void *arg)
{
    job *j = arg;
    for (int r = 0; r < j->repeat; r++) {
        for (size_t i = 0; i < j->count; i++) {
            const record *rec = &j->records[i];
            kn_put_record_input in = {.stream_name = j->stream_name, .stream_arn = j->stream_arn,
                                      .data = rec->data.data, .data_len = rec->data.len,
                                      .partition_key = rec->partition_key,
                                      .explicit_hash_key = rec->explicit_hash_key,
                                      .sequence_number_for_ordering = rec->sequence_number};
            kn_put_record_output out;
            kn_error e;
            kn_status st = kn_put_record(j->client, &in, &out, &e);
            cJSON *o = st == KN_OK ? cJSON_CreateObject() : error_json(st, &e);
            if (st == KN_OK) {
                cJSON_AddBoolToObject(o, "ok", true);
                cJSON_AddStringToObject(o, "shard_id", out.shard_id);
                cJSON_AddStringToObject(o, "sequence_number", out.sequence_number);
                cJSON_AddStringToObject(o, "encryption_type", out.encryption_type);
                cJSON_AddNumberToObject(o, "attempts", e.attempts);
            }
            cJSON_AddItemToArray(j->results, o);
        }
    }
    return NULL;
}

static void put_records(job *j, cJSON *answer)
{
    kn_put_records_entry *entries = calloc(j->count ? j->count : 1, sizeof *entries);
    kn_put_records_result *results = calloc(j->count ? j->count : 1, sizeof *results);
    for (size_t i = 0; i < j->count; i++)
        entries[i] = (kn_put_records_entry){.data = j->records[i].data.data, .data_len = j->records[i].data.len,
                                            .partition_key = j->records[i].partition_key,
                                            .explicit_hash_key = j->records[i].explicit_hash_key};
    size_t failed = 0;
    kn_error e;
    kn_status st = kn_put_records(j->client, j->stream_name, j->stream_arn, entries, j->count, results, &failed, &e);
    if (st != KN_OK)
        cJSON_AddItemToObject(answer, "error", error_json(st, &e));
    cJSON_AddNumberToObject(answer, "failed_count", (double)failed);
    cJSON_AddNumberToObject(answer, "attempts", e.attempts);
    for (size_t i = 0; i < j->count; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", results[i].ok);
        cJSON_AddStringToObject(o, "shard_id", results[i].shard_id);
        cJSON_AddStringToObject(o, "sequence_number", results[i].sequence_number);
        cJSON_AddStringToObject(o, "error_code", results[i].error_code);
        cJSON_AddStringToObject(o, "error_message", results[i].error_message);
        cJSON_AddItemToArray(j->results, o);
    }
    free(entries);
    free(results);
}

static bool load_records(const cJSON *req, job *j)
{
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(req, "records");
    j->count = (size_t)cJSON_GetArraySize(recs);
    j->records = calloc(j->count ? j->count : 1, sizeof *j->records);
    size_t i = 0;
    const cJSON *r = NULL;
    cJSON_ArrayForEach(r, recs) {
        record *rec = &j->records[i++];
        const char *b64 = kn_json_string(r, "data");
        kn_buf_init(&rec->data, b64 ? kn_base64_decoded_len(b64, strlen(b64)) : 0);
        if (!b64 || kn_base64_decode(b64, strlen(b64), &rec->data) != KN_OK)
            return false;
        rec->partition_key = kn_json_string(r, "partition_key");
        rec->explicit_hash_key = kn_json_string(r, "explicit_hash_key");
        rec->sequence_number = kn_json_string(r, "sequence_number_for_ordering");
    }
    return true;
}

static int number_or(const cJSON *req, const char *name, int dflt)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(req, name);
    return cJSON_IsNumber(n) ? n->valueint : dflt;
}

static int run(const cJSON *req)
{
    int rc = 2;
    const char *op = kn_json_string(req, "op");
    job base = {.stream_name = kn_json_string(req, "stream_name"), .stream_arn = kn_json_string(req, "stream_arn"),
                .repeat = number_or(req, "repeat", 1)};
    int threads = number_or(req, "threads", 1);
    cJSON *answer = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(answer, "results");
    kn_client_options o = {.max_attempts = number_or(req, "max_attempts", 0),
                           .max_record_size = (size_t)number_or(req, "max_record_size", 0)};
    kn_error e;
    if (!op || threads < 1 || threads > MAX_THREADS || !load_records(req, &base)) {
        fprintf(stderr, "kn_put: malformed request\n");
        goto cleanup;
    }
    kn_status st = kn_client_new(&o, &base.client, &e);
    if (st != KN_OK) {
        cJSON_AddItemToObject(answer, "error", error_json(st, &e));
    } else if (strcmp(op, "put_records") == 0) {
        base.results = results;
        put_records(&base, answer);
    } else {
        job jobs[MAX_THREADS];
        pthread_t th[MAX_THREADS];
        for (int t = 0; t < threads; t++) {
            jobs[t] = base;
            jobs[t].results = cJSON_CreateArray();
            pthread_create(&th[t], NULL, put_record_job, &jobs[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            cJSON *item = NULL;
            while ((item = cJSON_DetachItemFromArray(jobs[t].results, 0)))
                cJSON_AddItemToArray(results, item);
            cJSON_Delete(jobs[t].results);
        }
    }
    char *text = cJSON_PrintUnformatted(answer);
    puts(text);
    cJSON_free(text);
    rc = 0;
cleanup:
    kn_client_destroy(base.client);
    for (size_t i = 0; i < base.count; i++)
        kn_buf_cleanup(&base.records[i].data);
    free(base.records);
    cJSON_Delete(answer);
    return rc;
}

int main(void)
{
    kn_buf in;
    kn_buf_init(&in, MAX_INPUT);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (kn_buf_append(&in, chunk, n) != KN_OK) {
            fprintf(stderr, "kn_put: input too large\n");
            return 2;
        }
    cJSON *req = kn_json_parse(in.data, in.len);
    kn_buf_cleanup(&in);
    if (!req) {
        fprintf(stderr, "kn_put: input is not JSON\n");
        return 2;
    }
    int rc = run(req);
    cJSON_Delete(req);
    return rc;
}
