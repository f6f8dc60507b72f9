/*
 * libkinesis — a small client for Amazon Kinesis Data Streams.
 *
 * Ownership rules used throughout this header:
 *  - Strings and buffers passed in are borrowed for the duration of the call only.
 *  - Results are written into caller-owned structs (fixed-size fields), so nothing a call returns needs freeing
 *    except objects made by a `_new` function, which the caller releases with the matching `_destroy`.
 *  - A failed call fills the caller's `kn_error` (which may be NULL) and returns its status; it never prints and
 *    never exits.
 *
 * Threads: a kn_client may be shared by any number of threads; calls on it run concurrently, each on its own pooled
 * connection (kept alive between calls). Create and destroy it while no other thread uses it.
 */
#ifndef KINESIS_KINESIS_H
#define KINESIS_KINESIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KN_VERSION "0.1.0"

/* Every status the library returns. kn_status_str() gives its English name. */
typedef enum kn_status {
    KN_OK = 0,
    KN_ERR_INVALID_ARGUMENT, /* input failed validation before anything was sent */
    KN_ERR_NO_MEMORY,
    KN_ERR_NO_CREDENTIALS,   /* no credentials anywhere in the chain */
    KN_ERR_NO_REGION,        /* no region anywhere in the chain */
    KN_ERR_CONFIG,           /* a config or credentials file, or an endpoint URL, is malformed */
    KN_ERR_NETWORK,          /* could not connect, connection reset, DNS failure */
    KN_ERR_TIMEOUT,          /* connect or request timeout */
    KN_ERR_TLS,              /* TLS handshake or certificate verification failed */
    KN_ERR_SERVICE,          /* the service answered with an error: see kn_error.type and .message */
    KN_ERR_PROTOCOL,         /* the service's answer could not be understood */
    KN_ERR_IO,               /* a local file could not be read */
} kn_status;

/* Why a failure may or may not be worth retrying. */
typedef enum kn_retry_class {
    KN_RETRY_NEVER = 0,  /* validation, authentication, missing resources */
    KN_RETRY_THROTTLING, /* ProvisionedThroughputExceededException, ThrottlingException, ... */
    KN_RETRY_TRANSIENT,  /* 5xx, InternalFailure, ServiceUnavailable, connection failures, timeouts */
} kn_retry_class;

#define KN_ERROR_TYPE_MAX 128
#define KN_ERROR_MESSAGE_MAX 1024
#define KN_REQUEST_ID_MAX 128

/* A failure, as a value. All fields are empty strings / zero when not known. */
typedef struct kn_error {
    kn_status status;
    int http_status;                       /* 0 when no HTTP response was received */
    char type[KN_ERROR_TYPE_MAX];          /* AWS error type without any "namespace#" prefix */
    char message[KN_ERROR_MESSAGE_MAX];    /* AWS's message, or ours for local failures */
    char request_id[KN_REQUEST_ID_MAX];    /* x-amzn-RequestId of the last response */
    kn_retry_class retry_class;
    int attempts;                          /* requests sent, including the first; 0 when the call failed before
                                              sending anything (e.g. validation); > 1 means it was retried */
} kn_error;

/* Static English name of a status, e.g. "invalid argument". Never NULL. */
const char *kn_status_str(kn_status status);

/* Resets an error to "no error". */
void kn_error_clear(kn_error *err);

/* Called by the client with a human-readable trace of each request and response, with the signature, secret key and
 * session token already redacted (bodies are cut after 4 KiB). `text` is valid only during the call and is not
 * NUL-terminated. A client shared between threads may call it from several threads at once. */
typedef void (*kn_debug_fn)(void *ctx, const char *text, size_t len);

/* Options for kn_client_new. Zero-initialise, then set what you need; zero/NULL means "default". */
typedef struct kn_client_options {
    const char *region;            /* default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region */
    const char *profile;           /* default: AWS_PROFILE, then "default" */
    const char *endpoint_url;      /* default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, then by region */
    const char *ca_bundle;         /* PEM file of CAs to trust for https; default AWS_CA_BUNDLE, then the system's */
    const char *access_key_id;     /* explicit credentials win over the chain when both key fields are set */
    const char *secret_access_key;
    const char *session_token;
    long connect_timeout_ms;       /* default 5000 */
    long request_timeout_ms;       /* per attempt; default 30000 */
    int max_attempts;              /* default 3 (first attempt included); 1 disables retries */
    uint32_t retry_base_delay_ms;  /* default 100 (AWS standard mode's base) */
    uint32_t retry_max_backoff_ms; /* default 20000 */
    size_t max_record_size;        /* data + partition key limit; default 1 MiB (AWS allows up to 10 MiB per stream) */
    kn_debug_fn debug;             /* optional request/response trace */
    void *debug_ctx;
} kn_client_options;

typedef struct kn_client kn_client;

/* Makes a client: resolves credentials, region and endpoint now, so configuration errors surface here.
 * On success *out is a new client the caller releases with kn_client_destroy. */
kn_status kn_client_new(const kn_client_options *options, kn_client **out, kn_error *err);

/* Releases the client and its connections. NULL is allowed. */
void kn_client_destroy(kn_client *client);

/* The region and endpoint the client resolved; valid as long as the client. */
const char *kn_client_region(const kn_client *client);
const char *kn_client_endpoint(const kn_client *client);

#define KN_SHARD_ID_MAX 129         /* 128 characters + NUL */
#define KN_SEQUENCE_NUMBER_MAX 130  /* 129 digits + NUL */
#define KN_ENCRYPTION_TYPE_MAX 16

/* The Put Record step's input. Exactly one of stream_name / stream_arn. data may hold any bytes, NUL included. */
typedef struct kn_put_record_input {
    const char *stream_name;
    const char *stream_arn;
    const void *data;
    size_t data_len;
    const char *partition_key;                /* UTF-8, 1-256 characters */
    const char *explicit_hash_key;            /* optional: decimal, < 2^128 */
    const char *sequence_number_for_ordering; /* optional: decimal */
} kn_put_record_input;

typedef struct kn_put_record_output {
    char shard_id[KN_SHARD_ID_MAX];
    char sequence_number[KN_SEQUENCE_NUMBER_MAX];
    char encryption_type[KN_ENCRYPTION_TYPE_MAX]; /* "NONE" or "KMS"; "" when the server did not say */
} kn_put_record_output;

/* Puts one record, retrying throttling and transient failures per the client's policy. Invalid input is refused
 * before anything is sent (KN_ERR_INVALID_ARGUMENT, message naming the member, e.g. "PartitionKey: ..."). On success
 * *output holds the result; on failure it is zeroed and err holds the last attempt's error. */
kn_status kn_put_record(kn_client *client, const kn_put_record_input *input, kn_put_record_output *output,
                        kn_error *err);

#define KN_PUT_RECORDS_MAX 500

typedef struct kn_put_records_entry {
    const void *data;
    size_t data_len;
    const char *partition_key;
    const char *explicit_hash_key; /* optional */
} kn_put_records_entry;

/* One entry's final result: ok, or the service's error code and message for that entry. */
typedef struct kn_put_records_result {
    bool ok;
    char shard_id[KN_SHARD_ID_MAX];
    char sequence_number[KN_SEQUENCE_NUMBER_MAX];
    char error_code[KN_ERROR_TYPE_MAX];
    char error_message[KN_ERROR_MESSAGE_MAX];
} kn_put_records_result;

/* Puts 1 to 500 entries (data + partition keys at most 5 MiB in all, or max_record_size if larger). results must hold
 * `count` elements and receives each entry's final result, in order. Entries that fail with a retryable error code
 * (ProvisionedThroughputExceededException, InternalFailure, ...) are resent alone (never the whole batch), within the
 * client's attempt budget; successes are kept. Returns KN_OK when the requests themselves succeeded, even if some
 * entries failed: *failed_count (may be NULL) says how many. When a request fails as a whole and is not retried
 * further, the status is returned and results still say what is known: entries written by an earlier attempt are ok,
 * the others carry that failure (error_code is the AWS type, or kn_status_str() for local failures). When the input
 * is refused before sending, all results are zeroed and *failed_count is count. */
kn_status kn_put_records(kn_client *client, const char *stream_name, const char *stream_arn,
                         const kn_put_records_entry *entries, size_t count, kn_put_records_result *results,
                         size_t *failed_count, kn_error *err);

#ifdef __cplusplus
}
#endif
#endif
