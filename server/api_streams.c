/* knd_api: stream and shard metadata operations (CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary,
 * ListStreams, ListShards, the retention operations, DescribeLimits). Error texts are AWS's as kinesalite's tests
 * recorded them against the real service, and AWS's documentation where those tests are silent. */
#include "api_int.h"

#include "../lib/hashkey.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DESCRIBE_STREAM_MAX 100  /* shards per DescribeStream call, and the default */
#define LIST_STREAMS_MAX 100     /* streams per ListStreams call, and the default */
#define LIST_SHARDS_MAX 1000     /* shards per ListShards call, and the default */
#define RETENTION_MIN_HOURS 24
#define RETENTION_MAX_HOURS 8760
#define ARN_MAX 256

typedef struct shard_count {
    uint32_t open;
    uint32_t on_demand;
} shard_count;

static bool count_open(void *ctx, knd_stream *s)
{
    shard_count *n = ctx;
    if (s->status == KND_STREAM_DELETING)
        return true;
    for (uint32_t i = 0; i < s->shard_count; i++)
        n->open += !s->shards[i].closed;
    n->on_demand += s->mode == KND_MODE_ON_DEMAND;
    return true;
}

uint32_t knd_api_streams_open_shards(knd_api *api, uint32_t *on_demand_streams)
{
    shard_count n = {0};
    knd_store_each(api->store, count_open, &n);
    if (on_demand_streams)
        *on_demand_streams = n.on_demand;
    return n.open;
}

static void write_hash_key(knd_jsonw *w, const char *key, kn_u128 v)
{
    char text[KN_U128_DEC_MAX];
    size_t n = kn_hashkey_format(v, text);
    knd_jsonw_string(w, key, text, n);
}

static void write_seq(knd_jsonw *w, const char *key, const knd_seq *seq)
{
    char text[KND_SEQ_DEC_MAX];
    size_t n = knd_seq_format(seq, text);
    knd_jsonw_string(w, key, text, n);
}

static void write_shard(knd_jsonw *w, const knd_shard *sh)
{
    char id[KND_SHARD_ID_MAX];
    knd_jsonw_object_begin(w, NULL);
    knd_api_shard_id(sh->index, id);
    knd_jsonw_cstring(w, "ShardId", id);
    if (sh->parent >= 0) {
        knd_api_shard_id((uint32_t)sh->parent, id);
        knd_jsonw_cstring(w, "ParentShardId", id);
    }
    if (sh->adjacent_parent >= 0) {
        knd_api_shard_id((uint32_t)sh->adjacent_parent, id);
        knd_jsonw_cstring(w, "AdjacentParentShardId", id);
    }
    knd_jsonw_object_begin(w, "HashKeyRange");
    write_hash_key(w, "StartingHashKey", sh->start_hash);
    write_hash_key(w, "EndingHashKey", sh->end_hash);
    knd_jsonw_object_end(w);
    knd_jsonw_object_begin(w, "SequenceNumberRange");
    write_seq(w, "StartingSequenceNumber", &sh->starting_seq);
    if (sh->closed)
        write_seq(w, "EndingSequenceNumber", &sh->ending_seq);
    knd_jsonw_object_end(w);
    knd_jsonw_object_end(w);
}

/* The members DescribeStream and DescribeStreamSummary share, in AWS's order. */
static void write_stream_head(knd_call *c, knd_jsonw *w, const knd_stream *s)
{
    char arn[ARN_MAX];
    knd_api_stream_arn(c->api, s->name, arn, sizeof arn);
    knd_jsonw_cstring(w, "StreamName", s->name);
    knd_jsonw_cstring(w, "StreamARN", arn);
    knd_jsonw_cstring(w, "StreamStatus", knd_api_status_name(s->status));
    knd_jsonw_object_begin(w, "StreamModeDetails");
    knd_jsonw_cstring(w, "StreamMode", s->mode == KND_MODE_ON_DEMAND ? "ON_DEMAND" : "PROVISIONED");
    knd_jsonw_object_end(w);
}

static void write_stream_tail(knd_jsonw *w, const knd_stream *s)
{
    knd_jsonw_int(w, "RetentionPeriodHours", s->retention_hours);
    knd_jsonw_epoch_ms(w, "StreamCreationTimestamp", s->created_ms);
    knd_jsonw_array_begin(w, "EnhancedMonitoring");
    knd_jsonw_object_begin(w, NULL);
    knd_jsonw_array_begin(w, "ShardLevelMetrics");
    knd_jsonw_array_end(w);
    knd_jsonw_object_end(w);
    knd_jsonw_array_end(w);
    knd_jsonw_cstring(w, "EncryptionType", "NONE");
}

/* ---- CreateStream ---- */

static bool stream_mode(knd_call *c, knd_stream_mode *mode, int64_t *shards)
{
    const cJSON *details = knd_schema_get(c->in, "StreamModeDetails");
    const cJSON *m = details ? knd_schema_get(details, "StreamMode") : NULL;
    bool has_count = knd_api_int(c, "ShardCount", shards);
    /* With neither a mode nor a shard count AWS now creates an on-demand stream. */
    *mode = (m && strcmp(m->valuestring, "ON_DEMAND") == 0) || (!m && !has_count) ? KND_MODE_ON_DEMAND
                                                                                  : KND_MODE_PROVISIONED;
    if (*mode == KND_MODE_ON_DEMAND) {
        *shards = KND_ON_DEMAND_SHARDS;
        return true;
    }
    if (!has_count) {
        knd_apierr_invalid_argument(&c->err, "ShardCount must be specified for a PROVISIONED stream.");
        return false;
    }
    return true;
}

/* Answers a call that changed a stream: an empty 200 once the store has recorded the change (st), else
 * InternalFailure, since the client cannot have caused a store failure (disk full, I/O error). */
static void reply_stored(knd_call *c, kn_status st)
{
    if (st != KN_OK) {
        knd_apierr_internal(&c->err);
        knd_api_fail(c);
        return;
    }
    knd_api_reply_empty(c);
}

/* Puts a new stream in the status its creation delay asks for (the store may have chosen otherwise). */
static kn_status settle_new_stream(knd_api *api, knd_stream *s, int64_t now, int64_t kib, kn_error *err)
{
    bool dirty = false;
    knd_stream_status want = api->create_delay_ms ? KND_STREAM_CREATING : KND_STREAM_ACTIVE;
    if (s->status != want) {
        s->status = want;
        s->status_until_ms = now + api->create_delay_ms;
        dirty = true;
    }
    if (kib && s->max_record_size != (uint32_t)kib * 1024) {
        s->max_record_size = (uint32_t)kib * 1024;
        dirty = true;
    }
    if (want == KND_STREAM_CREATING)
        knd_api_status_change_at(api, s->status_until_ms);
    return dirty ? knd_store_save_stream(api->store, s, err) : KN_OK;
}

void knd_api_streams_create(knd_call *c)
{
    knd_api *api = c->api;
    const char *name = knd_api_str(c, "StreamName");
    knd_stream_mode mode;
    int64_t shards = 0, kib = 0;
    knd_api_int(c, "MaxRecordSizeInKiB", &kib);
    if (!stream_mode(c, &mode, &shards))
        goto fail;
    if (knd_store_find(api->store, name, strlen(name))) {
        knd_apierr_in_use(&c->err, "Stream %s under account %s already exists.", name, api->account_id);
        goto fail;
    }
    uint32_t open = knd_api_streams_open_shards(api, NULL);
    if ((int64_t)open + shards > (int64_t)api->shard_limit) {
        knd_apierr_set(&c->err, 400, "LimitExceededException",
                       "This request would exceed the shard limit for the account %s in %s. Current shard count for "
                       "the account: %" PRIu32 ". Limit: %" PRIu32 ". Number of additional shards that would have "
                       "resulted from this request: %" PRId64 ". Refer to the AWS Service Limits page "
                       "(http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits "
                       "and how to request higher limits.",
                       api->account_id, api->region, open, api->shard_limit, shards);
        goto fail;
    }
    knd_stream *s = NULL;
    kn_error err = {0};
    kn_status st = knd_store_create_stream(api->store, name, (uint32_t)shards, mode, c->now_ms,
                                           c->now_ms + api->create_delay_ms, &s, &err);
    if (st == KN_OK)
        st = settle_new_stream(api, s, c->now_ms, kib, &err);
    reply_stored(c, st);
    return;
fail:
    knd_api_fail(c);
}

/* ---- DeleteStream ---- */

void knd_api_streams_delete(knd_call *c)
{
    knd_api *api = c->api;
    const char *name;
    knd_stream *s = knd_api_find_stream(c, &name);
    if (!s)
        goto fail;
    if (s->status == KND_STREAM_CREATING || s->status == KND_STREAM_UPDATING) {
        knd_apierr_in_use(&c->err, "Stream %s under account %s not ACTIVE, instead in state %s", s->name,
                          api->account_id, knd_api_status_name(s->status));
        goto fail;
    }
    kn_error err = {0};
    kn_status st = KN_OK;
    if (s->status == KND_STREAM_DELETING) {
        /* Already on its way out: asking again changes nothing. */
    } else if (api->delete_delay_ms == 0) {
        st = knd_store_delete_stream(api->store, s, &err);
    } else {
        knd_stream_status was = s->status;
        int64_t was_until_ms = s->status_until_ms;
        s->status = KND_STREAM_DELETING;
        s->status_until_ms = c->now_ms + api->delete_delay_ms;
        st = knd_store_save_stream(api->store, s, &err);
        if (st == KN_OK) {
            knd_api_status_change_at(api, s->status_until_ms);
        } else {
            /* Not recorded (disk full): the client is told it failed, so it must not happen later either. */
            s->status = was;
            s->status_until_ms = was_until_ms;
        }
    }
    reply_stored(c, st);
    return;
fail:
    knd_api_fail(c);
}

/* ---- DescribeStream, DescribeStreamSummary ---- */

/* Shards are listed in id order, so "after ExclusiveStartShardId" compares ids as AWS does, as text. */
static uint32_t first_after(const knd_stream *s, const char *exclusive_start)
{
    uint32_t i = 0;
    if (!exclusive_start)
        return 0;
    for (char id[KND_SHARD_ID_MAX]; i < s->shard_count; i++) {
        knd_api_shard_id(s->shards[i].index, id);
        if (strcmp(id, exclusive_start) > 0)
            break;
    }
    return i;
}

static uint32_t page_size(knd_call *c, const char *member, uint32_t max)
{
    int64_t n = 0;
    return knd_api_int(c, member, &n) && n < max ? (uint32_t)n : max;
}

void knd_api_streams_describe(knd_call *c)
{
    const char *name;
    knd_stream *s = knd_api_find_stream(c, &name);
    if (!s) {
        knd_api_fail(c);
        return;
    }
    uint32_t limit = page_size(c, "Limit", DESCRIBE_STREAM_MAX);
    /* A stream being created has no shards to show yet. */
    uint32_t total = s->status == KND_STREAM_CREATING ? 0 : s->shard_count;
    uint32_t i = first_after(s, knd_api_str(c, "ExclusiveStartShardId"));
    knd_jsonw w;
    knd_jsonw_init(&w, KND_RESPONSE_CAP);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_object_begin(&w, "StreamDescription");
    write_stream_head(c, &w, s);
    knd_jsonw_array_begin(&w, "Shards");
    uint32_t shown = 0;
    for (; i < total && shown < limit; i++, shown++)
        write_shard(&w, &s->shards[i]);
    knd_jsonw_array_end(&w);
    knd_jsonw_bool(&w, "HasMoreShards", i < total);
    write_stream_tail(&w, s);
    knd_jsonw_object_end(&w);
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_cleanup(&w);
}

void knd_api_streams_describe_summary(knd_call *c)
{
    const char *name;
    knd_stream *s = knd_api_find_stream(c, &name);
    if (!s) {
        knd_api_fail(c);
        return;
    }
    uint32_t open = 0;
    for (uint32_t i = 0; s->status != KND_STREAM_CREATING && i < s->shard_count; i++)
        open += !s->shards[i].closed;
    knd_jsonw w;
    knd_jsonw_init(&w, 64 * 1024);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_object_begin(&w, "StreamDescriptionSummary");
    write_stream_head(c, &w, s);
    write_stream_tail(&w, s);
    knd_jsonw_int(&w, "OpenShardCount", open);
    knd_jsonw_int(&w, "ConsumerCount", 0);
    knd_jsonw_int(&w, "MaxRecordSizeInKiB", s->max_record_size / 1024);
    knd_jsonw_object_end(&w);
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_cleanup(&w);
}

/* ---- ListStreams ---- */

typedef struct stream_page {
    const char *after;   /* list names greater than this; NULL from the start */
    uint32_t limit;
    knd_stream **v;      /* limit + 1 slots: one more than asked tells whether more exist */
    uint32_t n;
} stream_page;

static bool page_streams(void *ctx, knd_stream *s)
{
    stream_page *p = ctx;
    if (p->after && strcmp(s->name, p->after) <= 0)
        return true;
    p->v[p->n++] = s;
    return p->n <= p->limit;
}

/* Decodes a NextToken into t, setting c->err on failure. */
static bool open_list_token(knd_call *c, knd_token_kind kind, const char *text, knd_list_token *t)
{
    knd_token_result r = knd_token_decode_list(&c->api->token_key, kind, text, strlen(text), c->now_ms, t);
    if (r == KND_TOKEN_EXPIRED)
        knd_apierr_set(&c->err, 400, "ExpiredNextTokenException",
                       "The timestamp on the NextToken has expired. NextTokens are valid for 300 seconds.");
    else if (r != KND_TOKEN_OK)
        knd_apierr_invalid_argument(&c->err, "Invalid NextToken.");
    return r == KND_TOKEN_OK;
}

static void write_next_token(knd_call *c, knd_jsonw *w, knd_token_kind kind, const char *name, uint32_t next)
{
    knd_list_token t = {.next_index = next, .created_ms = c->now_ms};
    kn_buf text;
    kn_buf_init(&text, 1024);
    snprintf(t.name, sizeof t.name, "%s", name);
    if (knd_token_encode_list(&c->api->token_key, kind, &t, &text) == KN_OK)
        knd_jsonw_string(w, "NextToken", (const char *)text.data, text.len);
    else if (w->status == KN_OK)
        w->status = KN_ERR_NO_MEMORY;
    kn_buf_cleanup(&text);
}

void knd_api_streams_list(knd_call *c)
{
    knd_list_token t;
    stream_page p = {.after = knd_api_str(c, "ExclusiveStartStreamName"),
                     .limit = page_size(c, "Limit", LIST_STREAMS_MAX)};
    const char *token = knd_api_str(c, "NextToken");
    if (token) {
        if (!open_list_token(c, KND_TOKEN_LIST_STREAMS, token, &t)) {
            knd_api_fail(c);
            return;
        }
        p.after = t.name;
    }
    knd_stream *slots[LIST_STREAMS_MAX + 1];
    p.v = slots;
    knd_store_each(c->api->store, page_streams, &p);
    bool more = p.n > p.limit;
    uint32_t n = more ? p.limit : p.n;
    knd_jsonw w;
    knd_jsonw_init(&w, 1024 * 1024);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_array_begin(&w, "StreamNames");
    for (uint32_t i = 0; i < n; i++)
        knd_jsonw_cstring(&w, NULL, slots[i]->name);
    knd_jsonw_array_end(&w);
    knd_jsonw_bool(&w, "HasMoreStreams", more);
    if (more)
        write_next_token(c, &w, KND_TOKEN_LIST_STREAMS, slots[n - 1]->name, 0);
    knd_jsonw_array_begin(&w, "StreamSummaries");
    for (uint32_t i = 0; i < n; i++) {
        knd_jsonw_object_begin(&w, NULL);
        write_stream_head(c, &w, slots[i]);
        knd_jsonw_epoch_ms(&w, "StreamCreationTimestamp", slots[i]->created_ms);
        knd_jsonw_object_end(&w);
    }
    knd_jsonw_array_end(&w);
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_cleanup(&w);
}

/* ---- ListShards ---- */

/* Whether shard sh passes ShardFilter f. kinesisd does not split or merge shards, so every shard is open from its
 * stream's creation on and the trim-horizon and timestamp filters keep them all. */
static bool filter_keeps(const cJSON *f, const knd_shard *sh)
{
    if (!f)
        return true;
    const char *type = knd_schema_get(f, "Type")->valuestring;
    if (strcmp(type, "AT_LATEST") == 0)
        return !sh->closed;
    if (strcmp(type, "AFTER_SHARD_ID") == 0) {
        char id[KND_SHARD_ID_MAX];
        knd_api_shard_id(sh->index, id);
        return strcmp(id, knd_schema_get(f, "ShardId")->valuestring) > 0;
    }
    return true;
}

static bool check_filter(knd_call *c, const cJSON *f)
{
    if (!f)
        return true;
    const char *type = knd_schema_get(f, "Type")->valuestring;
    if (strcmp(type, "AFTER_SHARD_ID") == 0 && !knd_schema_get(f, "ShardId")) {
        knd_apierr_invalid_argument(&c->err, "ShardId must be specified when ShardFilter Type is AFTER_SHARD_ID.");
        return false;
    }
    if ((strcmp(type, "AT_TIMESTAMP") == 0 || strcmp(type, "FROM_TIMESTAMP") == 0) &&
        !knd_schema_get(f, "Timestamp")) {
        knd_apierr_invalid_argument(&c->err, "Timestamp must be specified when ShardFilter Type is %s.", type);
        return false;
    }
    return true;
}

/* The stream and first shard index a ListShards call starts from: its NextToken's, or its stream's. */
static knd_stream *list_shards_start(knd_call *c, uint32_t *start)
{
    const char *token = knd_api_str(c, "NextToken");
    bool named = knd_api_str(c, "StreamName") || knd_api_str(c, "StreamARN");
    const char *name;
    *start = 0;
    if (token && named) {
        knd_apierr_invalid_argument(&c->err, "NextToken and StreamName cannot be provided together.");
        return NULL;
    }
    if (!token && !named) {
        knd_apierr_invalid_argument(&c->err, "Either NextToken or StreamName should be provided.");
        return NULL;
    }
    if (!token) {
        knd_stream *s = knd_api_find_stream(c, &name);
        if (s)
            *start = first_after(s, knd_api_str(c, "ExclusiveStartShardId"));
        return s;
    }
    knd_list_token t;
    if (!open_list_token(c, KND_TOKEN_LIST_SHARDS, token, &t))
        return NULL;
    knd_stream *s = knd_store_find(c->api->store, t.name, strlen(t.name));
    if (!s)
        knd_apierr_not_found(&c->err, "Stream %s under account %s not found.", t.name, c->api->account_id);
    *start = t.next_index;
    return s;
}

void knd_api_streams_list_shards(knd_call *c)
{
    uint32_t i;
    const cJSON *filter = knd_schema_get(c->in, "ShardFilter");
    knd_stream *s = check_filter(c, filter) ? list_shards_start(c, &i) : NULL;
    if (!s) {
        knd_api_fail(c);
        return;
    }
    uint32_t limit = page_size(c, "MaxResults", LIST_SHARDS_MAX), shown = 0;
    uint32_t total = s->status == KND_STREAM_CREATING ? 0 : s->shard_count;
    knd_jsonw w;
    knd_jsonw_init(&w, KND_RESPONSE_CAP);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_array_begin(&w, "Shards");
    for (; i < total && shown < limit; i++) {
        if (filter_keeps(filter, &s->shards[i])) {
            write_shard(&w, &s->shards[i]);
            shown++;
        }
    }
    knd_jsonw_array_end(&w);
    if (i < total)
        write_next_token(c, &w, KND_TOKEN_LIST_SHARDS, s->name, i);
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_cleanup(&w);
}

/* ---- retention ---- */

static void change_retention(knd_call *c, bool increase)
{
    const char *name;
    int64_t hours = 0;
    knd_api_int(c, "RetentionPeriodHours", &hours);
    knd_stream *s = knd_api_find_stream(c, &name);
    if (!s)
        goto fail;
    if (s->status != KND_STREAM_ACTIVE) {
        knd_apierr_in_use(&c->err, "Stream %s under account %s not ACTIVE, instead in state %s", s->name,
                          c->api->account_id, knd_api_status_name(s->status));
        goto fail;
    }
    if (hours < RETENTION_MIN_HOURS) {
        knd_apierr_invalid_argument(&c->err,
                                    "Minimum allowed retention period is %d hours. Requested retention period (%" PRId64
                                    " hours) is too short.",
                                    RETENTION_MIN_HOURS, hours);
        goto fail;
    }
    if (hours > RETENTION_MAX_HOURS) {
        knd_apierr_invalid_argument(&c->err,
                                    "Maximum allowed retention period is %d hours. Requested retention period (%" PRId64
                                    " hours) is too long.",
                                    RETENTION_MAX_HOURS, hours);
        goto fail;
    }
    if (increase ? hours < s->retention_hours : hours > s->retention_hours) {
        knd_apierr_invalid_argument(&c->err,
                                    "Requested retention period (%" PRId64 " hours) for stream %s can not be %s than "
                                    "existing retention period (%" PRIu32 " hours). Use %s API.",
                                    hours, s->name, increase ? "shorter" : "longer", s->retention_hours,
                                    increase ? "DecreaseRetentionPeriod" : "IncreaseRetentionPeriod");
        goto fail;
    }
    uint32_t was = s->retention_hours;
    s->retention_hours = (uint32_t)hours;
    kn_error err = {0};
    kn_status st = knd_store_save_stream(c->api->store, s, &err);
    if (st != KN_OK)
        s->retention_hours = was; /* not recorded (disk full): answered as failed, so not in effect either */
    reply_stored(c, st);
    return;
fail:
    knd_api_fail(c);
}

void knd_api_streams_increase_retention(knd_call *c)
{
    change_retention(c, true);
}

void knd_api_streams_decrease_retention(knd_call *c)
{
    change_retention(c, false);
}

/* ---- DescribeLimits ---- */

void knd_api_streams_describe_limits(knd_call *c)
{
    uint32_t on_demand = 0;
    uint32_t open = knd_api_streams_open_shards(c->api, &on_demand);
    knd_jsonw w;
    knd_jsonw_init(&w, 4096);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_int(&w, "ShardLimit", c->api->shard_limit);
    knd_jsonw_int(&w, "OpenShardCount", open);
    knd_jsonw_int(&w, "OnDemandStreamCount", on_demand);
    knd_jsonw_int(&w, "OnDemandStreamCountLimit", KND_ON_DEMAND_STREAM_LIMIT);
    knd_jsonw_object_end(&w);
    knd_api_reply_json(c, &w);
    knd_jsonw_cleanup(&w);
}
