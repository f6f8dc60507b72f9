/* kn_producer: a FIFO of copied records, guarded by one mutex, drained by one thread.
 *
 * Accounting: every record has a ticket (put order). `buffered` counts the bytes of records not yet finished (queued
 * or in the batch being sent), so max_buffered_bytes bounds all memory the producer holds for records. The thread
 * takes batches from the head, sends them without the lock, runs the callbacks, then frees the records and advances
 * `done` to the last ticket of the batch; since batches leave in ticket order, flush waits for `done` to reach the
 * last ticket handed out before it was called. */
#include <kinesis/producer.h>

#include "error.h"
#include "validate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct record {
    struct record *next;
    uint64_t ticket;
    kn_producer_callback callback;
    void *ctx;
    size_t cost;               /* data + partition key bytes, as PutRecords counts them */
    size_t data_len;
    const char *partition_key; /* NUL-terminated, inside bytes[] */
    const char *explicit_hash_key;
    unsigned char bytes[];     /* data, then the key, then the hash key */
} record;

struct kn_producer {
    kn_client *client;
    char *stream_name;
    char *stream_arn;
    size_t max_batch_records, max_batch_bytes, max_buffered_bytes, max_record_size;
    uint32_t linger_ms;

    pthread_mutex_t lock;
    pthread_cond_t work;    /* thread: records arrived, a flush started, or closing */
    pthread_cond_t settled; /* flushers and destroy: a batch finished */
    pthread_t thread;
    record *head, *tail;
    size_t queued_count, queued_cost; /* records waiting, not yet in a batch */
    size_t buffered;                  /* queued + in flight */
    uint64_t issued;                  /* last ticket handed out */
    uint64_t done;                    /* every ticket <= done is finished */
    int flushers;                     /* threads waiting in flush: do not linger */
    bool closing;

    /* Used only by the thread. */
    kn_put_records_entry *entries;
    kn_put_records_result *results;
    record **batch;
};

/* ---- the sending thread ---- */

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool batch_full(const kn_producer *p)
{
    return p->queued_count >= p->max_batch_records || p->queued_cost >= p->max_batch_bytes;
}

/* With the lock held: waits for records, then lingers for more unless a batch is full or someone is waiting.
 * Returns false when closing and nothing is left. */
static bool wait_for_batch(kn_producer *p)
{
    while (!p->head && !p->closing)
        pthread_cond_wait(&p->work, &p->lock);
    if (!p->head)
        return false;
    if (p->linger_ms == 0)
        return true;
    struct timespec until;
    deadline_after(&until, p->linger_ms);
    while (!batch_full(p) && !p->flushers && !p->closing) {
        if (pthread_cond_timedwait(&p->work, &p->lock, &until) == ETIMEDOUT)
            break;
    }
    return true;
}

/* With the lock held: moves up to a batch's worth of records from the queue into p->batch. */
static size_t take_batch(kn_producer *p)
{
    size_t n = 0, cost = 0;
    while (p->head && n < p->max_batch_records && cost + p->head->cost <= p->max_batch_bytes) {
        record *r = p->head;
        p->head = r->next;
        cost += r->cost;
        p->batch[n++] = r;
    }
    if (!p->head)
        p->tail = NULL;
    p->queued_count -= n;
    p->queued_cost -= cost;
    return n;
}

/* Without the lock: one PutRecords call for the batch, then each record's callback. */
static void send_batch(kn_producer *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const record *r = p->batch[i];
        p->entries[i] = (kn_put_records_entry){.data = r->bytes, .data_len = r->data_len,
                                               .partition_key = r->partition_key,
                                               .explicit_hash_key = r->explicit_hash_key};
    }
    kn_error err;
    kn_error_clear(&err);
    kn_status st = kn_put_records(p->client, p->stream_name, p->stream_arn, p->entries, n, p->results, NULL, &err);
    for (size_t i = 0; i < n; i++) {
        kn_put_records_result *res = &p->results[i];
        /* A batch refused before sending leaves its results blank: every record then carries that refusal. */
        if (st != KN_OK && !res->ok && !res->error_code[0]) {
            kn_strlcpy(res->error_code, err.type[0] ? err.type : kn_status_str(st), sizeof res->error_code);
            kn_strlcpy(res->error_message, err.message, sizeof res->error_message);
        }
        if (p->batch[i]->callback)
            p->batch[i]->callback(p->batch[i]->ctx, res);
    }
}

static void *run(void *arg)
{
    kn_producer *p = arg;
    pthread_mutex_lock(&p->lock);
    while (wait_for_batch(p)) {
        size_t n = take_batch(p);
        pthread_mutex_unlock(&p->lock);
        send_batch(p, n);
        size_t cost = 0;
        uint64_t last = p->batch[n - 1]->ticket;
        for (size_t i = 0; i < n; i++) {
            cost += p->batch[i]->cost;
            free(p->batch[i]);
        }
        pthread_mutex_lock(&p->lock);
        p->buffered -= cost;
        p->done = last;
        pthread_cond_broadcast(&p->settled);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- construction ---- */

static kn_status apply_options(kn_producer *p, const kn_producer_options *o, kn_error *err)
{
    const char *name = o->stream_name, *arn = o->stream_arn;
    if (!name == !arn)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "exactly one of stream_name and stream_arn must be given");
    const char *why = name ? kn_validate_stream_name(name, strlen(name)) : kn_validate_stream_arn(arn, strlen(arn));
    if (why)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "%s: %s", name ? "StreamName" : "StreamARN", why);
    p->max_batch_records = o->max_batch_records ? o->max_batch_records : KN_PUT_RECORDS_MAX;
    p->max_batch_bytes = o->max_batch_bytes ? o->max_batch_bytes : KN_PRODUCER_BATCH_BYTES_MAX;
    p->max_buffered_bytes = o->max_buffered_bytes ? o->max_buffered_bytes : KN_PRODUCER_DEFAULT_BUFFERED_BYTES;
    p->max_record_size = o->max_record_size ? o->max_record_size : KN_DEFAULT_MAX_RECORD_SIZE;
    p->linger_ms = o->linger_ms;
    if (p->max_batch_records > KN_PUT_RECORDS_MAX)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "max_batch_records %zu is above PutRecords' limit of %d",
                            p->max_batch_records, KN_PUT_RECORDS_MAX);
    if (p->max_batch_bytes > KN_PRODUCER_BATCH_BYTES_MAX)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "max_batch_bytes %zu is above PutRecords' limit of %u",
                            p->max_batch_bytes, KN_PRODUCER_BATCH_BYTES_MAX);
    if ((name && !(p->stream_name = strdup(name))) || (arn && !(p->stream_arn = strdup(arn))))
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    p->entries = calloc(p->max_batch_records, sizeof *p->entries);
    p->results = calloc(p->max_batch_records, sizeof *p->results);
    p->batch = calloc(p->max_batch_records, sizeof *p->batch);
    if (!p->entries || !p->results || !p->batch)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    return KN_OK;
}

static void free_producer(kn_producer *p)
{
    free(p->stream_name);
    free(p->stream_arn);
    free(p->entries);
    free(p->results);
    free(p->batch);
    free(p);
}

/* The thread's condition variables time out on the monotonic clock, so a wall-clock jump cannot stall a linger. */
static bool init_sync(kn_producer *p)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return false;
    bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_mutex_init(&p->lock, NULL) == 0;
    if (ok && pthread_cond_init(&p->work, &attr) != 0) {
        pthread_mutex_destroy(&p->lock);
        ok = false;
    }
    if (ok && pthread_cond_init(&p->settled, &attr) != 0) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        ok = false;
    }
    pthread_condattr_destroy(&attr);
    return ok;
}

static void destroy_sync(kn_producer *p)
{
    pthread_cond_destroy(&p->settled);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
}

kn_status kn_producer_new(kn_client *client, const kn_producer_options *options, kn_producer **out, kn_error *err)
{
    static const kn_producer_options no_options;
    kn_status st = KN_OK;
    *out = NULL;
    if (!client)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "a client is required");
    kn_producer *p = calloc(1, sizeof *p);
    if (!p)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    p->client = client;
    if ((st = apply_options(p, options ? options : &no_options, err)) != KN_OK)
        goto fail;
    if (!init_sync(p)) {
        st = kn_error_set(err, KN_ERR_NO_MEMORY, "could not create the producer's locks");
        goto fail;
    }
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        destroy_sync(p);
        st = kn_error_set(err, KN_ERR_NO_MEMORY, "could not start the producer's thread");
        goto fail;
    }
    *out = p;
    return KN_OK;
fail:
    free_producer(p);
    return st;
}

/* ---- the caller's side ---- */

static kn_status check_record(const kn_producer *p, const void *data, size_t data_len, const char *key,
                              const char *hash_key, kn_error *err)
{
    const char *why = NULL;
    if (!data && data_len)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "Data: data is NULL but data_len is not 0");
    if (!key)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "PartitionKey: is required");
    size_t key_len = strlen(key);
    if ((why = kn_validate_partition_key(key, key_len)))
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "PartitionKey: %s", why);
    if (hash_key && (why = kn_validate_explicit_hash_key(hash_key, strlen(hash_key))))
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "ExplicitHashKey: %s", why);
    size_t limit = p->max_record_size < p->max_batch_bytes ? p->max_record_size : p->max_batch_bytes;
    if (data_len > limit || key_len > limit - data_len)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT,
                            "Data: data (%zu bytes) plus partition key (%zu bytes) exceed the limit of %zu bytes",
                            data_len, key_len, limit);
    return KN_OK;
}

static record *copy_record(const void *data, size_t data_len, const char *key, const char *hash_key)
{
    size_t key_len = strlen(key), hash_len = hash_key ? strlen(hash_key) : 0;
    record *r = malloc(sizeof *r + data_len + key_len + 1 + (hash_key ? hash_len + 1 : 0));
    if (!r)
        return NULL;
    unsigned char *at = r->bytes;
    if (data_len)
        memcpy(at, data, data_len);
    at += data_len;
    memcpy(at, key, key_len + 1);
    r->partition_key = (const char *)at;
    at += key_len + 1;
    r->explicit_hash_key = NULL;
    if (hash_key) {
        memcpy(at, hash_key, hash_len + 1);
        r->explicit_hash_key = (const char *)at;
    }
    r->next = NULL;
    r->data_len = data_len;
    r->cost = data_len + key_len;
    return r;
}

kn_status kn_producer_put(kn_producer *p, const void *data, size_t data_len, const char *partition_key,
                          const char *explicit_hash_key, kn_producer_callback callback, void *ctx, kn_error *err)
{
    if (!p)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "a producer is required");
    kn_status st = check_record(p, data, data_len, partition_key, explicit_hash_key, err);
    if (st != KN_OK)
        return st;
    record *r = copy_record(data, data_len, partition_key, explicit_hash_key);
    if (!r)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    r->callback = callback;
    r->ctx = ctx;
    pthread_mutex_lock(&p->lock);
    if (r->cost > p->max_buffered_bytes - p->buffered) {
        size_t buffered = p->buffered;
        pthread_mutex_unlock(&p->lock);
        free(r);
        return kn_error_set(err, KN_ERR_NO_MEMORY,
                            "producer buffer full: %zu of %zu bytes held; wait for deliveries and put again",
                            buffered, p->max_buffered_bytes);
    }
    r->ticket = ++p->issued;
    if (p->tail)
        p->tail->next = r;
    else
        p->head = r;
    p->tail = r;
    p->queued_count++;
    p->queued_cost += r->cost;
    p->buffered += r->cost;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return KN_OK;
}

kn_status kn_producer_flush(kn_producer *p, kn_error *err)
{
    if (!p)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "a producer is required");
    if (pthread_equal(pthread_self(), p->thread))
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "kn_producer_flush cannot be called from a callback");
    pthread_mutex_lock(&p->lock);
    uint64_t target = p->issued;
    p->flushers++;
    pthread_cond_signal(&p->work);
    while (p->done < target)
        pthread_cond_wait(&p->settled, &p->lock);
    p->flushers--;
    pthread_mutex_unlock(&p->lock);
    return KN_OK;
}

void kn_producer_destroy(kn_producer *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = true;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    /* The thread drains the queue before it returns, so joining it is the flush. */
    pthread_join(p->thread, NULL);
    destroy_sync(p);
    free_producer(p);
}
