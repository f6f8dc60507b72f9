/*
 * kn_producer — a batching producer over kn_put_records.
 *
 * kn_producer_put copies a record into a bounded buffer and returns at once; one background thread per producer
 * gathers buffered records into PutRecords batches (up to max_batch_records records and max_batch_bytes of data and
 * partition keys) and sends them with kn_put_records, which resends only the entries that failed retryably, within
 * the client's retry policy. Each record's final result — shard id and sequence number, or the error — is then handed
 * to that record's callback.
 *
 * Ownership: the producer borrows the client, which must outlive it (destroy the producer first). Every argument of
 * kn_producer_put is copied before it returns; nothing the caller passed is referenced afterwards. The result handed
 * to a callback is valid only during the call.
 *
 * Threads: put and flush may be called from any number of threads at once. Callbacks run on the producer's background
 * thread, one at a time, in the order their batch was sent; a callback may call kn_producer_put but must not call
 * kn_producer_flush or kn_producer_destroy (flush refuses to, to avoid waiting on itself). A callback that blocks
 * holds up delivery of everything behind it.
 *
 * Delivery is at least once, as with any Kinesis client that retries: a request whose answer was lost may have
 * written its records, which are then sent again. Records sent in one batch may be stored in any order relative to
 * each other when some are retried; records in different batches are stored in batch order.
 */
#ifndef KINESIS_PRODUCER_H
#define KINESIS_PRODUCER_H

#include <kinesis/kinesis.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KN_PRODUCER_BATCH_BYTES_MAX (5u * 1024u * 1024u) /* PutRecords' request limit for data + partition keys */
#define KN_PRODUCER_DEFAULT_BUFFERED_BYTES (64u * 1024u * 1024u)

/* Options for kn_producer_new. Zero-initialise, then set what you need; zero/NULL means "default". */
typedef struct kn_producer_options {
    const char *stream_name;    /* exactly one of stream_name and stream_arn; copied */
    const char *stream_arn;
    size_t max_batch_records;   /* 1-500 records per PutRecords; default 500 */
    size_t max_batch_bytes;     /* data + partition keys per PutRecords, at most 5 MiB; default 5 MiB */
    uint32_t linger_ms;         /* how long a batch that is not full waits for more records; default 0: send as soon
                                   as the thread is free (records still batch up while a request is in flight) */
    size_t max_buffered_bytes;  /* hard cap on data + keys held, queued or in flight; default 64 MiB */
    size_t max_record_size;     /* data + partition key limit; default 1 MiB. Keep it equal to the client's. */
} kn_producer_options;

typedef struct kn_producer kn_producer;

/* Called once per accepted record with its final result: result->ok with shard_id and sequence_number, or
 * error_code (the AWS error type, or kn_status_str() of a local failure) and error_message. */
typedef void (*kn_producer_callback)(void *ctx, const kn_put_records_result *result);

/* Makes a producer and starts its thread. On success *out is a new producer the caller releases with
 * kn_producer_destroy. KN_ERR_INVALID_ARGUMENT for bad options (stream name/ARN, limits above the service's). */
kn_status kn_producer_new(kn_client *client, const kn_producer_options *options, kn_producer **out, kn_error *err);

/* Buffers one record: data (any bytes, data_len of them), partition_key (UTF-8, 1-256 characters), optional
 * explicit_hash_key; all copied. callback (may be NULL) is called later with the result, with ctx.
 * Fails up front, without calling the callback, with KN_ERR_INVALID_ARGUMENT for a record the service would refuse
 * (so one bad record never sinks a batch), or KN_ERR_NO_MEMORY when the record would take the buffer past
 * max_buffered_bytes — wait for callbacks (or flush) and put again. */
kn_status kn_producer_put(kn_producer *producer, const void *data, size_t data_len, const char *partition_key,
                          const char *explicit_hash_key, kn_producer_callback callback, void *ctx, kn_error *err);

/* Waits until every record put before the call has been delivered or has failed, and its callback has returned.
 * KN_ERR_INVALID_ARGUMENT when called from a callback. */
kn_status kn_producer_flush(kn_producer *producer, kn_error *err);

/* Flushes, stops the thread and releases the producer. NULL is allowed. Not from a callback, and no other thread may
 * use the producer during or after the call. */
void kn_producer_destroy(kn_producer *producer);

#ifdef __cplusplus
}
#endif
#endif
