/* kn_producer: drives a kn_producer for tests/integration/test_producer.py.
 *
 *   kn_producer --stream NAME [--count N] [--size BYTES] [--keys K] [--batch N] [--batch-bytes B] [--linger-ms MS]
 *               [--max-buffered BYTES]
 *
 * Puts N records; record i has partition key "clé-(i mod K)" and data of BYTES bytes: i as 4 big-endian bytes, then
 * byte j = (i * 31 + j * 7) mod 256 (so NUL and 0xff occur). When the buffer is full it waits 1 ms and puts again.
 * Client settings (endpoint, region, credentials) come from the environment. Prints one line per record:
 *   "<i> ok <shard-id> <sequence-number>"  or  "<i> fail <error-code> <message>"
 * then "done <ok> <failed> <buffer-full-waits>". Exit status 0 when every record was delivered, 1 when some failed,
 * 2 on a usage or setup error. */
#include <kinesis/producer.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    bool called;
    bool ok;
    char shard_id[KN_SHARD_ID_MAX];
    char sequence_number[KN_SEQUENCE_NUMBER_MAX];
    char error_code[KN_ERROR_TYPE_MAX];
    char error_message[KN_ERROR_MESSAGE_MAX];
} slot;

typedef struct args {
    const char *stream;
    long count, size, keys;
    kn_producer_options options;
} args;

static void on_result(void *ctx, const kn_put_records_result *r)
{
    slot *s = ctx;
    s->called = true;
    s->ok = r->ok;
    snprintf(s->shard_id, sizeof s->shard_id, "%s", r->shard_id);
    snprintf(s->sequence_number, sizeof s->sequence_number, "%s", r->sequence_number);
    snprintf(s->error_code, sizeof s->error_code, "%s", r->error_code);
    snprintf(s->error_message, sizeof s->error_message, "%s", r->error_message);
}

static int usage(void)
{
    fprintf(stderr, "usage: kn_producer --stream NAME [--count N] [--size BYTES] [--keys K] [--batch N] "
                    "[--batch-bytes B] [--linger-ms MS] [--max-buffered BYTES]\n");
    return 2;
}

static bool parse_args(int argc, char **argv, args *a)
{
    *a = (args){.count = 100, .size = 16, .keys = 10};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i];
        long v = strtol(argv[i + 1], NULL, 10);
        if (strcmp(k, "--stream") == 0)
            a->stream = argv[i + 1];
        else if (strcmp(k, "--count") == 0)
            a->count = v;
        else if (strcmp(k, "--size") == 0)
            a->size = v;
        else if (strcmp(k, "--keys") == 0)
            a->keys = v;
        else if (strcmp(k, "--batch") == 0)
            a->options.max_batch_records = (size_t)v;
        else if (strcmp(k, "--batch-bytes") == 0)
            a->options.max_batch_bytes = (size_t)v;
        else if (strcmp(k, "--linger-ms") == 0)
            a->options.linger_ms = (uint32_t)v;
        else if (strcmp(k, "--max-buffered") == 0)
            a->options.max_buffered_bytes = (size_t)v;
        else
            return false;
    }
    a->options.stream_name = a->stream;
    return a->stream && a->count > 0 && a->size >= 4 && a->keys > 0 && argc % 2 == 1;
}

static void fill(unsigned char *data, long size, long i)
{
    data[0] = (unsigned char)(i >> 24);
    data[1] = (unsigned char)(i >> 16);
    data[2] = (unsigned char)(i >> 8);
    data[3] = (unsigned char)i;
    for (long j = 4; j < size; j++)
        data[j] = (unsigned char)((i * 31 + j * 7) & 0xff);
}

/* Puts every record, waiting whenever the buffer is full. Returns how many waits there were, or -1 on error. */
static long put_all(kn_producer *p, const args *a, slot *slots, unsigned char *data)
{
    long waits = 0;
    for (long i = 0; i < a->count; i++) {
        char key[32];
        snprintf(key, sizeof key, "cl\xc3\xa9-%ld", i % a->keys);
        fill(data, a->size, i);
        for (;;) {
            kn_error err = {0};
            kn_status st = kn_producer_put(p, data, (size_t)a->size, key, NULL, on_result, &slots[i], &err);
            if (st == KN_OK)
                break;
            if (st != KN_ERR_NO_MEMORY) {
                fprintf(stderr, "kn_producer: put %ld: %s\n", i, err.message);
                return -1;
            }
            waits++;
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
    }
    return waits;
}

int main(int argc, char **argv)
{
    int rc = 2;
    args a;
    kn_client *client = NULL;
    kn_producer *producer = NULL;
    slot *slots = NULL;
    unsigned char *data = NULL;
    kn_error err = {0};
    if (!parse_args(argc, argv, &a))
        return usage();
    slots = calloc((size_t)a.count, sizeof *slots);
    data = malloc((size_t)a.size);
    if (!slots || !data)
        goto cleanup;
    if (kn_client_new(&(kn_client_options){0}, &client, &err) != KN_OK ||
        kn_producer_new(client, &a.options, &producer, &err) != KN_OK) {
        fprintf(stderr, "kn_producer: %s\n", err.message);
        goto cleanup;
    }
    long waits = put_all(producer, &a, slots, data);
    if (waits < 0)
        goto cleanup;
    if (kn_producer_flush(producer, &err) != KN_OK) {
        fprintf(stderr, "kn_producer: flush: %s\n", err.message);
        goto cleanup;
    }
    long ok = 0, failed = 0;
    for (long i = 0; i < a.count; i++) {
        slot *s = &slots[i];
        if (!s->called)
            printf("%ld missing\n", i);
        else if (s->ok)
            printf("%ld ok %s %s\n", i, s->shard_id, s->sequence_number);
        else
            printf("%ld fail %s %s\n", i, s->error_code, s->error_message);
        ok += s->called && s->ok;
        failed += !(s->called && s->ok);
    }
    printf("done %ld %ld %ld\n", ok, failed, waits);
    rc = failed ? 1 : 0;
cleanup:
    kn_producer_destroy(producer);
    kn_client_destroy(client);
    free(slots);
    free(data);
    return rc;
}
