/* Internals of knd_api shared by its files: api.c (routing, the operation table, replies, stream lookup, status
 * changes), api_streams.c (stream and shard metadata operations) and api_records.c (puts, iterators, reads). Not for
 * other modules. */
#ifndef KND_API_INT_H
#define KND_API_INT_H

#include "api.h"
#include "apierr.h"
#include "jsonw.h"
#include "schema.h"
#include "token.h"

#include <cjson/cJSON.h>

#define KND_REQUEST_ID_LEN 36
#define KND_GET_RECORDS_MAX 10000          /* GetRecords' Limit maximum and default */
#define KND_GET_RECORDS_MAX_BYTES (10u << 20) /* data returned by one GetRecords call */
#define KND_PUT_RECORDS_MAX_BYTES (5u << 20)  /* data + partition keys in one PutRecords request */
#define KND_RESPONSE_CAP (64u << 20)       /* a GetRecords body: 10 MiB as base64 plus 10000 records' keys */
#define KND_ON_DEMAND_SHARDS 4             /* what AWS gives a new on-demand stream */
#define KND_ON_DEMAND_STREAM_LIMIT 50

struct knd_api {
    knd_store *store;
    knd_auth *auth;
    uint32_t create_delay_ms, delete_delay_ms;
    char region[64];
    char account_id[16];
    uint32_t shard_limit;
    size_t max_body_bytes;
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    knd_token_key token_key;
    size_t pending;
    uint64_t request_seed, request_counter;
    int64_t next_status_change_ms;  /* earliest status_until_ms among streams in transition; INT64_MAX when none */
    int64_t next_expire_ms;         /* when retention is next enforced */
    uv_timer_t *timer;              /* NULL without a loop */
    knd_record_out *records;        /* GetRecords' scratch: KND_GET_RECORDS_MAX entries */
    kn_buf reply_buf;               /* GetRecords' answer buffer, kept between calls (api_records.c) */
    knd_view *scan_items;           /* knd_schema_scan's entries: KND_SCAN_ITEMS * KND_SCAN_FIELDS views */
    kn_buf scan_blobs;              /* knd_schema_scan's decoded blobs, kept between calls (api.c) */
};

/* Entries of the longest list a knd_schema_scan reads (PutRecords' Records holds at most 500). */
#define KND_SCAN_ITEMS 500

/* One request while its operation runs. */
typedef struct knd_call {
    knd_api *api;
    const knd_request *req;
    knd_api_reply_fn reply;
    void *reply_ctx;
    char request_id[KND_REQUEST_ID_LEN + 1];
    int64_t now_ms;
    const cJSON *in;   /* the validated input object; with `scan`, only its top-level string members */
    const knd_scan *scan; /* the body as knd_schema_scan read it, when the operation takes that and it did; else NULL */
    knd_apierr err;    /* what knd_api_fail answers with */
} knd_call;

/* An operation: replies exactly once through the helpers below (or hands the reply to a commit callback). */
typedef void (*knd_op_fn)(knd_call *c);

typedef struct knd_op {
    const char *name;          /* the part of X-Amz-Target after "Kinesis_20131202." */
    knd_op_fn run;
    const knd_field *input;    /* the input shape */
    bool scan;                 /* run reads c->scan when set: the body is tried on knd_schema_scan first */
} knd_op;

/* The operations, for the table in api.c: knd_api_streams_* in api_streams.c, knd_api_records_* in api_records.c. */
void knd_api_streams_create(knd_call *c);
void knd_api_streams_delete(knd_call *c);
void knd_api_streams_describe(knd_call *c);
void knd_api_streams_describe_summary(knd_call *c);
void knd_api_streams_list(knd_call *c);
void knd_api_streams_list_shards(knd_call *c);
void knd_api_streams_increase_retention(knd_call *c);
void knd_api_streams_decrease_retention(knd_call *c);
void knd_api_streams_describe_limits(knd_call *c);
void knd_api_records_put(knd_call *c);
void knd_api_records_put_batch(knd_call *c);
void knd_api_records_get_iterator(knd_call *c);
void knd_api_records_get(knd_call *c);

/* Replies. Each ends the call's exchange. */
void knd_api_reply_json(knd_call *c, knd_jsonw *w); /* 200 with w's body; 500 if w failed */
void knd_api_reply_empty(knd_call *c);               /* 200 with an empty body, as AWS answers CreateStream */
void knd_api_fail(knd_call *c);                      /* c->err */

/* Sends a response for a request whose knd_call is gone (commit callbacks): JSON content type and request id. */
void knd_api_send(knd_api_reply_fn reply, void *reply_ctx, const char *request_id, int status, const void *body,
                  size_t body_len);
/* Sends err's JSON body the same way. */
void knd_api_send_error(knd_api_reply_fn reply, void *reply_ctx, const char *request_id, const knd_apierr *err);

/* The stream a request names by StreamName and/or StreamARN, whatever its status; NULL with c->err set to AWS's
 * ResourceNotFoundException (or InvalidArgumentException when neither member or two different streams are named).
 * *name gets the name either way (for messages), a view into the input. */
knd_stream *knd_api_find_stream(knd_call *c, const char **name);
/* The stream's ARN into out[cap]. */
void knd_api_stream_arn(const knd_api *api, const char *name, char *out, size_t cap);
const char *knd_api_status_name(knd_stream_status s);
/* Records that a stream's status changes at `when`, so the change is applied on time. */
void knd_api_status_change_at(knd_api *api, int64_t when);
/* Open shards in streams that are not being deleted, for the account's shard limit. */
uint32_t knd_api_streams_open_shards(knd_api *api, uint32_t *on_demand_streams);

/* Shard id text "shardId-%012u". */
#define KND_SHARD_ID_MAX 24
void knd_api_shard_id(uint32_t index, char out[KND_SHARD_ID_MAX]);

/* String input helpers (after validation the types are right). NULL / 0 when absent. */
const char *knd_api_str(const knd_call *c, const char *name);
bool knd_api_int(const knd_call *c, const char *name, int64_t *out);

#endif
