/* knd_api: the data plane (PutRecord, PutRecords, GetShardIterator, GetRecords).
 *
 * Puts answer from the store's commit callback (group commit): the response is sent only once the records are on
 * stable storage, and a failed commit answers 500 InternalFailure with nothing acknowledged. Each waiting put is
 * counted in api->pending so shutdown can wait for it. */
#include "api_int.h"

#include "../lib/base64.h"
#include "../lib/hashkey.h"
#include "log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a commit callback needs once the request's knd_call is gone. */
typedef struct put_wait {
    knd_api *api;
    knd_api_reply_fn reply;
    void *reply_ctx;
    char request_id[KND_REQUEST_ID_LEN + 1];
    bool batch;        /* PutRecords: answer with per-entry results */
    size_t n;
    uint32_t *shards;  /* n shard indexes, then n sequence numbers, in the same allocation */
    knd_seq *seqs;
} put_wait;

/* One record of a put, once its input has been read. */
typedef struct put_entry {
    const char *partition_key;
    size_t partition_key_len;
    const char *data_b64;  /* NULL when data is already decoded */
    size_t data_b64_len;
    const uint8_t *data;   /* the decoded data when knd_schema_scan read the entry */
    size_t data_len;
    const char *explicit_hash_key; /* NULL when absent */
    size_t explicit_hash_key_len;
} put_entry;

static put_wait *put_wait_new(knd_call *c, size_t n, bool batch)
{
    put_wait *p = malloc(sizeof *p + n * sizeof(uint32_t) + n * sizeof(knd_seq));
    if (!p)
        return NULL;
    *p = (put_wait){.api = c->api, .reply = c->reply, .reply_ctx = c->reply_ctx, .batch = batch, .n = n};
    memcpy(p->request_id, c->request_id, sizeof p->request_id);
    p->shards = (uint32_t *)(p + 1);
    p->seqs = (knd_seq *)(p->shards + n);
    return p;
}

static void write_seq(knd_jsonw *w, const char *key, const knd_seq *seq)
{
    char text[KND_SEQ_DEC_MAX];
    size_t n = knd_seq_format(seq, text);
    knd_jsonw_string(w, key, text, n);
}

/* A PutRecords result entry's usual size: {"SequenceNumber":"<56 digits>","ShardId":"shardId-<12 digits>"}, */
#define PUT_RESULT_BYTES 112

#define SHARD_ID_LEN 20 /* knd_api_shard_id's "shardId-" and 12 digits, whatever the index */

static void write_put_result(knd_jsonw *w, const put_wait *p, size_t i)
{
    char id[KND_SHARD_ID_MAX];
    knd_api_shard_id(p->shards[i], id);
    write_seq(w, "SequenceNumber", &p->seqs[i]);
    knd_jsonw_string(w, "ShardId", id, SHARD_ID_LEN);
}

static void on_committed(void *arg, kn_status status)
{
    put_wait *p = arg;
    p->api->pending--;
    if (status != KN_OK) {
        knd_log_error("%s: put not acknowledged, answered InternalFailure: %s", p->request_id,
                      knd_store_last_error(p->api->store));
        knd_apierr e;
        knd_apierr_init(&e);
        knd_apierr_internal(&e);
        knd_api_send_error(p->reply, p->reply_ctx, p->request_id, &e);
        knd_apierr_cleanup(&e);
        free(p);
        return;
    }
    knd_jsonw w;
    knd_jsonw_init(&w, 256 + p->n * 160);
    knd_jsonw_reserve(&w, 64 + p->n * PUT_RESULT_BYTES);
    knd_jsonw_object_begin(&w, NULL);
    if (p->batch) {
        knd_jsonw_int(&w, "FailedRecordCount", 0);
        knd_jsonw_array_begin(&w, "Records");
        for (size_t i = 0; i < p->n; i++) {
            knd_jsonw_object_begin(&w, NULL);
            write_put_result(&w, p, i);
            knd_jsonw_object_end(&w);
        }
        knd_jsonw_array_end(&w);
    } else {
        write_put_result(&w, p, 0);
    }
    knd_jsonw_cstring(&w, "EncryptionType", "NONE");
    knd_jsonw_object_end(&w);
    if (knd_jsonw_finish(&w) == KN_OK) {
        knd_api_send(p->reply, p->reply_ctx, p->request_id, 200, w.buf.data, w.buf.len);
    } else {
        knd_apierr e;
        knd_apierr_init(&e);
        knd_apierr_internal(&e);
        knd_api_send_error(p->reply, p->reply_ctx, p->request_id, &e);
        knd_apierr_cleanup(&e);
    }
    knd_jsonw_cleanup(&w);
    free(p);
}

/* The stream a put names, if it accepts records: AWS reports streams being created or deleted as not found. */
static knd_stream *writable_stream(knd_call *c)
{
    const char *name;
    knd_stream *s = knd_api_find_stream(c, &name);
    if (s && s->status != KND_STREAM_ACTIVE && s->status != KND_STREAM_UPDATING) {
        knd_apierr_not_found(&c->err, "Stream %s under account %s not found.", s->name, c->api->account_id);
        return NULL;
    }
    return s;
}

static void read_entry(const cJSON *obj, put_entry *e)
{
    const cJSON *pk = knd_schema_get(obj, "PartitionKey"), *data = knd_schema_get(obj, "Data");
    const cJSON *ehk = knd_schema_get(obj, "ExplicitHashKey");
    size_t b64_len = strlen(data->valuestring);
    *e = (put_entry){.partition_key = pk->valuestring,
                     .partition_key_len = strlen(pk->valuestring),
                     .data_b64 = data->valuestring,
                     .data_b64_len = b64_len,
                     .data_len = knd_schema_blob_len(data->valuestring, b64_len),
                     .explicit_hash_key = ehk ? ehk->valuestring : NULL,
                     .explicit_hash_key_len = ehk ? strlen(ehk->valuestring) : 0}; /* .data NULL: not decoded yet */
}

/* read_entry for n records as knd_schema_scan found them: record i's members at views[i * KND_SCAN_FIELDS], by
 * position in `shape`. */
static void read_scanned_entries(const knd_field *shape, const knd_view *views, size_t n, put_entry *e)
{
    int pk = knd_schema_index(shape, "PartitionKey"), data = knd_schema_index(shape, "Data");
    int ehk = knd_schema_index(shape, "ExplicitHashKey");
    for (size_t i = 0; i < n; i++) {
        const knd_view *v = views + i * KND_SCAN_FIELDS;
        e[i] = (put_entry){.partition_key = v[pk].s,
                           .partition_key_len = v[pk].len,
                           .data = (const uint8_t *)v[data].s,
                           .data_len = v[data].len,
                           .explicit_hash_key = v[ehk].s,
                           .explicit_hash_key_len = v[ehk].len};
    }
}

/* Checks one record against its stream and picks its shard: the open shard whose hash key range holds the MD5 of
 * the partition key, or the ExplicitHashKey. `entry` is the record's 1-based position in PutRecords (0 for
 * PutRecord), for the way AWS names the record's data in messages. */
static bool route(knd_call *c, const knd_stream *s, const put_entry *e, size_t entry, uint32_t *shard)
{
    if (e->data_len > s->max_record_size) {
        char member[64];
        if (entry)
            snprintf(member, sizeof member, "records.%zu.member.data", entry);
        else
            snprintf(member, sizeof member, "data");
        knd_apierr_set(&c->err, 400, "ValidationException",
                       "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have "
                       "length less than or equal to %" PRIu32,
                       member, s->max_record_size);
        return false;
    }
    if (e->data_len + e->partition_key_len > s->max_record_size) {
        knd_apierr_invalid_argument(&c->err,
                                    "Record size of %zu bytes (data and partition key) exceeds the maximum record size "
                                    "of %" PRIu32 " bytes of stream %s under account %s.",
                                    e->data_len + e->partition_key_len, s->max_record_size, s->name,
                                    c->api->account_id);
        return false;
    }
    kn_u128 h;
    if (e->explicit_hash_key) {
        if (!kn_hashkey_parse(e->explicit_hash_key, e->explicit_hash_key_len, &h)) {
            knd_apierr_invalid_argument(&c->err,
                                        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                                        "Specified value was %.*s",
                                        (int)e->explicit_hash_key_len, e->explicit_hash_key);
            return false;
        }
    } else {
        h = kn_hashkey_of_partition_key(e->partition_key, e->partition_key_len);
    }
    for (uint32_t i = 0; i < s->shard_count; i++) {
        const knd_shard *sh = &s->shards[i];
        if (!sh->closed && h >= sh->start_hash && h <= sh->end_hash) {
            *shard = i;
            return true;
        }
    }
    knd_apierr_internal(&c->err); /* the open shards of a stream always cover the whole hash key space */
    return false;
}

/* How an append refused up front is answered: a full write queue or memory limit is back-pressure the client should
 * retry (503); a minimum sequence number no record of the shard can exceed is the client's mistake. */
static void append_refused(knd_call *c, const knd_stream *s, kn_status st, bool ordered)
{
    if (st == KN_ERR_NO_MEMORY) {
        knd_apierr_set(&c->err, 503, "ServiceUnavailable", "%s", KND_MSG_UNAVAILABLE);
    } else if (st == KN_ERR_INVALID_ARGUMENT && ordered) {
        knd_apierr_invalid_argument(&c->err,
                                    "ExclusiveMinimumSequenceNumber %s used in PutRecord on stream %s under account "
                                    "%s is invalid.",
                                    knd_api_str(c, "SequenceNumberForOrdering"), s->name, c->api->account_id);
    } else {
        knd_apierr_internal(&c->err);
    }
    knd_api_fail(c);
}

/* Decodes the entries' data not yet decoded into one buffer and hands the records to the store. Replies on failure
 * up front; otherwise the commit callback replies. */
static void append(knd_call *c, knd_stream *s, const put_entry *e, put_wait *p, const knd_seq *const *min_seq)
{
    size_t total = 0;
    for (size_t i = 0; i < p->n; i++)
        total += e[i].data_b64 ? e[i].data_len : 0;
    kn_buf data;
    kn_buf_init(&data, total);
    knd_record_in *recs = calloc(p->n ? p->n : 1, sizeof *recs);
    kn_status st = recs ? KN_OK : KN_ERR_NO_MEMORY;
    for (size_t i = 0; i < p->n && st == KN_OK; i++)
        if (e[i].data_b64)
            st = kn_base64_decode(e[i].data_b64, e[i].data_b64_len, &data);
    if (st == KN_OK) {
        size_t off = 0;
        for (size_t i = 0; i < p->n; i++) {
            const uint8_t *bytes = e[i].data;
            if (!bytes) {
                bytes = data.data ? data.data + off : (const uint8_t *)"";
                off += e[i].data_len;
            }
            recs[i] = (knd_record_in){.data = bytes,
                                      .data_len = e[i].data_len,
                                      .partition_key = e[i].partition_key,
                                      .partition_key_len = e[i].partition_key_len};
        }
        kn_error err = {0};
        c->api->pending++;
        st = knd_store_append(c->api->store, s, recs, p->shards, min_seq, p->n, c->now_ms, p->seqs, on_committed, p,
                              &err);
        if (st != KN_OK)
            c->api->pending--;
    }
    free(recs);
    kn_buf_cleanup(&data);
    if (st != KN_OK) {
        free(p);
        append_refused(c, s, st, min_seq != NULL);
    }
}

/* ---- PutRecord ---- */

/* SequenceNumberForOrdering must be a sequence number this service could have issued, not from the future. */
static bool ordering_seq(knd_call *c, const knd_stream *s, knd_seq *out)
{
    const char *text = knd_api_str(c, "SequenceNumberForOrdering");
    knd_seq_parts parts;
    if (knd_seq_parse(text, strlen(text), out) && knd_seq_parts_of(out, &parts) && (int64_t)parts.time_ms <= c->now_ms)
        return true;
    knd_apierr_invalid_argument(&c->err,
                                "ExclusiveMinimumSequenceNumber %s used in PutRecord on stream %s under account %s is "
                                "invalid.",
                                text, s->name, c->api->account_id);
    return false;
}

void knd_api_records_put(knd_call *c)
{
    put_entry e;
    knd_seq min;
    const knd_seq *min_list[1] = {NULL};
    put_wait *p = NULL;
    knd_stream *s = writable_stream(c);
    if (!s)
        goto fail;
    if (c->scan)
        read_scanned_entries(c->scan->shape, c->scan->fields, 1, &e);
    else
        read_entry(c->in, &e);
    if (knd_api_str(c, "SequenceNumberForOrdering")) {
        if (!ordering_seq(c, s, &min))
            goto fail;
        min_list[0] = &min;
    }
    p = put_wait_new(c, 1, false);
    if (!p) {
        knd_apierr_internal(&c->err);
        goto fail;
    }
    if (!route(c, s, &e, 0, &p->shards[0]))
        goto fail;
    append(c, s, &e, p, min_list[0] ? min_list : NULL);
    return;
fail:
    free(p);
    knd_api_fail(c);
}

/* ---- PutRecords ---- */

void knd_api_records_put_batch(knd_call *c)
{
    put_wait *p = NULL;
    put_entry *e = NULL;
    knd_stream *s = writable_stream(c);
    if (!s)
        goto fail;
    const cJSON *records = c->scan ? NULL : knd_schema_get(c->in, "Records");
    size_t n = c->scan ? c->scan->count : (size_t)cJSON_GetArraySize(records), i = 0, bytes = 0;
    e = calloc(n, sizeof *e);
    p = put_wait_new(c, n, true);
    if (!e || !p) {
        knd_apierr_internal(&c->err);
        goto fail;
    }
    if (c->scan) {
        read_scanned_entries(c->scan->item_fields, c->scan->items, n, e);
    } else {
        const cJSON *r;
        cJSON_ArrayForEach(r, records)
            read_entry(r, &e[i++]);
    }
    for (i = 0; i < n; i++)
        bytes += e[i].data_len + e[i].partition_key_len;
    if (bytes > KND_PUT_RECORDS_MAX_BYTES) {
        knd_apierr_invalid_argument(&c->err, "Records size exceeds 5 MB limit");
        goto fail;
    }
    for (i = 0; i < n; i++)
        if (!route(c, s, &e[i], i + 1, &p->shards[i]))
            goto fail;
    append(c, s, e, p, NULL);
    free(e);
    return;
fail:
    free(e);
    free(p);
    knd_api_fail(c);
}

/* ---- GetShardIterator ---- */

/* AWS reads a shard id as the digits after its first '-' (or the whole id when it has none): "shardId-000000000002",
 * "shardId-2" and "2" all name shard 2. */
static bool shard_index_of(const char *id, uint32_t *out)
{
    const char *dash = strchr(id, '-');
    const char *digits = dash && dash[1] && dash[1] != '-' ? dash + 1 : id;
    uint64_t v = 0;
    const char *p = digits;
    for (; *p && *p != '-'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > INT32_MAX)
            return false;
    }
    if (p == digits)
        return false;
    *out = (uint32_t)v;
    return true;
}

static void shard_missing(knd_call *c, const char *shard_id, const char *stream)
{
    knd_apierr_not_found(&c->err, "Shard %s in stream %s under account %s does not exist", shard_id, stream,
                         c->api->account_id);
}

/* Checks StartingSequenceNumber against the shard it is used on. */
static bool starting_seq(knd_call *c, const knd_stream *s, uint32_t index, const char *shard_id, knd_seq *seq)
{
    const char *text = knd_api_str(c, "StartingSequenceNumber");
    knd_seq_parts parts;
    if (!knd_seq_parse(text, strlen(text), seq) || !knd_seq_parts_of(seq, &parts)) {
        knd_apierr_invalid_argument(&c->err,
                                    "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under "
                                    "account %s is invalid.",
                                    text, shard_id, s->name, c->api->account_id);
        return false;
    }
    if (parts.shard_index != index) {
        char other[KND_SHARD_ID_MAX];
        knd_api_shard_id(parts.shard_index, other);
        knd_apierr_invalid_argument(&c->err,
                                    "Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a "
                                    "shard with %s",
                                    other, shard_id);
        return false;
    }
    if (parts.shard_create_ms / 1000 != (uint64_t)s->shards[index].created_ms / 1000) {
        knd_apierr_invalid_argument(&c->err,
                                    "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under "
                                    "account %s is invalid because it did not come from this stream.",
                                    text, shard_id, s->name, c->api->account_id);
        return false;
    }
    return true;
}

static const char k_type_rule[] = "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
                                   "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
                                   "StartingSequenceNumber. Request specified %s and %s StartingSequenceNumber.";

/* Turns the request's iterator type into a position in shard `index`. */
static bool position(knd_call *c, knd_stream *s, uint32_t index, const char *shard_id, knd_iterator *it)
{
    const char *type = knd_api_str(c, "ShardIteratorType");
    bool has_seq = knd_api_str(c, "StartingSequenceNumber") != NULL;
    bool at = strcmp(type, "AT_SEQUENCE_NUMBER") == 0, after = strcmp(type, "AFTER_SEQUENCE_NUMBER") == 0;
    if ((at || after) && !has_seq) {
        knd_apierr_invalid_argument(&c->err, k_type_rule, type, "no");
        return false;
    }
    if ((strcmp(type, "TRIM_HORIZON") == 0 || strcmp(type, "LATEST") == 0) && has_seq) {
        knd_apierr_invalid_argument(&c->err, k_type_rule, type, "also a");
        return false;
    }
    it->after = after;
    if (at || after)
        return starting_seq(c, s, index, shard_id, &it->seq);
    if (strcmp(type, "LATEST") == 0) {
        it->seq = knd_store_latest(c->api->store, s, index);
    } else if (strcmp(type, "AT_TIMESTAMP") == 0) {
        const cJSON *ts = knd_schema_get(c->in, "Timestamp");
        if (!ts) {
            knd_apierr_invalid_argument(&c->err, "Must specify timestampInMillis parameter for iterator of type "
                                                 "AT_TIMESTAMP. Current request has no timestamp parameter.");
            return false;
        }
        double msd = ts->valuedouble * 1000.0;
        int64_t ms = msd <= 0 ? 0 : msd >= 9.2e18 ? INT64_MAX : (int64_t)msd;
        if (ms > c->now_ms) {
            knd_apierr_invalid_argument(&c->err,
                                        "The timestampInMillis parameter cannot be greater than the "
                                        "currentTimestampInMillis. timestampInMillis: %" PRId64
                                        ", currentTimestampInMillis: %" PRId64,
                                        ms, c->now_ms);
            return false;
        }
        it->seq = knd_store_at_timestamp(c->api->store, s, index, ms);
    } else {
        memset(&it->seq, 0, sizeof it->seq); /* TRIM_HORIZON: before every record */
    }
    return true;
}

static void reply_iterator(knd_call *c, const knd_iterator *it, knd_jsonw *w, const char *key)
{
    kn_buf text;
    kn_buf_init(&text, 1024);
    if (knd_token_encode_iterator(&c->api->token_key, it, &text) == KN_OK)
        knd_jsonw_string(w, key, (const char *)text.data, text.len);
    else if (w->status == KN_OK)
        w->status = KN_ERR_NO_MEMORY;
    kn_buf_cleanup(&text);
}

void knd_api_records_get_iterator(knd_call *c)
{
    const char *name, *shard_text = knd_api_str(c, "ShardId");
    char shard_id[KND_SHARD_ID_MAX];
    uint32_t index;
    bool parsed = shard_index_of(shard_text, &index);
    knd_stream *s = knd_api_find_stream(c, &name);
    if (!parsed) {
        knd_apierr_not_found(&c->err, "Could not find shard %s in stream %s under account %s.", shard_text, name,
                             c->api->account_id);
        goto fail;
    }
    knd_api_shard_id(index, shard_id);
    if (!s || s->status == KND_STREAM_CREATING || index >= s->shard_count) {
        if (!s && c->err.type && strcmp(c->err.type, "ResourceNotFoundException") != 0)
            goto fail; /* the request named no stream, or two */
        shard_missing(c, shard_id, name);
        goto fail;
    }
    knd_iterator it = {.shard_index = index, .created_ms = c->now_ms};
    snprintf(it.stream, sizeof it.stream, "%s", s->name);
    if (!position(c, s, index, shard_id, &it))
        goto fail;
    knd_jsonw w;
    knd_jsonw_init(&w, 4096);
    knd_jsonw_object_begin(&w, NULL);
    reply_iterator(c, &it, &w, "ShardIterator");
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_cleanup(&w);
    return;
fail:
    knd_api_fail(c);
}

/* ---- GetRecords ---- */

/* Java's Date.toString() in UTC, which AWS's ExpiredIteratorException message uses: "Thu Jan 22 01:22:02 UTC 2015". */
static void java_date(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a %b %d %H:%M:%S UTC %Y", &tm);
}

static knd_stream *iterator_stream(knd_call *c, knd_iterator *it)
{
    const char *text = knd_api_str(c, "ShardIterator");
    knd_token_result r = knd_token_decode_iterator(&c->api->token_key, text, strlen(text), c->now_ms, it);
    if (r == KND_TOKEN_EXPIRED) {
        char made[40], now[40];
        java_date(it->created_ms, made);
        java_date(c->now_ms, now);
        knd_apierr_set(&c->err, 400, "ExpiredIteratorException",
                       "Iterator expired. The iterator was created at time %s while right now it is %s which is "
                       "further in the future than the tolerated delay of %d milliseconds.",
                       made, now, KND_TOKEN_TTL_MS);
        return NULL;
    }
    if (r != KND_TOKEN_OK) {
        knd_apierr_invalid_argument(&c->err, "Invalid ShardIterator.");
        return NULL;
    }
    knd_stream *s = knd_store_find(c->api->store, it->stream, strlen(it->stream));
    if (!s || it->shard_index >= s->shard_count) {
        char shard_id[KND_SHARD_ID_MAX];
        knd_api_shard_id(it->shard_index, shard_id);
        shard_missing(c, shard_id, it->stream);
        return NULL;
    }
    return s;
}

/* A GetRecords record's JSON beside its data and key: names, punctuation, a 56-digit number, a timestamp. */
#define RECORD_JSON_BYTES 160
/* The largest GetRecords answer buffer kept for the next call. The buffer grows by doubling, so a typical drain page
 * (10,000 records of 100 bytes, ~2.7 MB of JSON) sits in exactly 4 MiB and is kept; a larger answer's buffer (16 MiB
 * for a full 10 MiB one) is freed after it is sent rather than held for the process's life. */
#define KEEP_REPLY_BYTES (4u << 20)

static void write_record(knd_jsonw *w, const knd_record_out *r)
{
    knd_jsonw_object_begin(w, NULL);
    write_seq(w, "SequenceNumber", &r->seq);
    knd_jsonw_epoch_ms(w, "ApproximateArrivalTimestamp", r->arrival_ms);
    knd_jsonw_base64(w, "Data", r->data, r->data_len);
    knd_jsonw_string(w, "PartitionKey", r->partition_key, r->partition_key_len);
    knd_jsonw_cstring(w, "EncryptionType", "NONE");
    knd_jsonw_object_end(w);
}

void knd_api_records_get(knd_call *c)
{
    knd_iterator it;
    knd_stream *s = iterator_stream(c, &it);
    if (!s) {
        knd_api_fail(c);
        return;
    }
    int64_t limit = KND_GET_RECORDS_MAX;
    knd_api_int(c, "Limit", &limit);
    size_t count = 0;
    int64_t latest_ms = 0;
    kn_error err = {0};
    if (knd_store_read(c->api->store, s, it.shard_index, &it.seq, it.after, (size_t)limit, KND_GET_RECORDS_MAX_BYTES,
                       c->now_ms, c->api->records, &count, &latest_ms, &err) != KN_OK) {
        knd_apierr_internal(&c->err);
        knd_api_fail(c);
        return;
    }
    /* The answer's buffer is the API's, kept between calls (up to KEEP_REPLY_BYTES): a fresh multi-megabyte buffer
     * per call cost a page fault per 4 KiB written. */
    knd_jsonw w;
    knd_jsonw_init_reuse(&w, &c->api->reply_buf, KND_RESPONSE_CAP);
    size_t bytes = 256;
    for (size_t i = 0; i < count; i++)
        bytes += RECORD_JSON_BYTES + kn_base64_encoded_len(c->api->records[i].data_len) +
                 c->api->records[i].partition_key_len;
    knd_jsonw_reserve(&w, bytes);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_array_begin(&w, "Records");
    for (size_t i = 0; i < count; i++)
        write_record(&w, &c->api->records[i]);
    knd_jsonw_array_end(&w);
    /* The next call starts after the last record returned, or where this one started when none were. */
    if (count) {
        it.seq = c->api->records[count - 1].seq;
        it.after = true;
    }
    it.created_ms = c->now_ms;
    reply_iterator(c, &it, &w, "NextShardIterator");
    /* How far the last record returned is behind the shard's newest: 0 once the reader has caught up. */
    int64_t behind = count && latest_ms > c->api->records[count - 1].arrival_ms
                         ? latest_ms - c->api->records[count - 1].arrival_ms
                         : 0;
    knd_jsonw_int(&w, "MillisBehindLatest", behind);
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_keep(&w, &c->api->reply_buf, KEEP_REPLY_BYTES);
}
