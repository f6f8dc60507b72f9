/* bench_presign: writes a pool of complete, SigV4-signed HTTP/1.1 requests for wrk to replay (bench/pool.lua).
 *
 * wrk's Lua cannot compute HMAC-SHA256 at load-test rates, and SigV4 allows a signed request to be replayed for as
 * long as its X-Amz-Date is within the 5-minute skew window, so the suite signs a pool just before each load run and
 * cycles through it. Every request has its own partition key (spreading records over the stream's shards) and its own
 * 100-byte pseudo-random data, so the server does the full work of a fresh request: body hash, signature check, JSON
 * parse, MD5 of the key, append.
 *
 *   bench_presign --host H:P --stream NAME --op put-record|put-records --count N [--batch B] [--record-size S]
 *                 [--region R] [--key-prefix P] --out FILE
 *
 * Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment. The signing time is now.
 * Output format (what pool.lua reads): for each request, its length in bytes as decimal digits and "\n", then the
 * request bytes. Exit 0 on success, 1 on a signing or I/O failure, 2 on bad usage. */
#include "base64.h"
#include "sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQUEST_CAP (8u * 1024u * 1024u)
#define MAX_BATCH 500
#define MAX_RECORD_SIZE 4096

typedef struct presign_opts {
    const char *host, *stream, *op, *region, *key_prefix, *out;
    long count, batch, record_size;
} presign_opts;

typedef struct presign_ctx {
    const presign_opts *o;
    const char *akid, *secret;
    kn_sigv4_scope scope;
    kn_sigv4_key_cache cache;
    uint64_t rng;
    kn_buf body, authz, request;
} presign_ctx;

static int usage(void)
{
    fprintf(stderr, "usage: bench_presign --host H:P --stream NAME --op put-record|put-records --count N "
                    "[--batch B] [--record-size S] [--region R] [--key-prefix P] --out FILE\n");
    return 2;
}

/* xorshift64*: only needs to make record contents differ from one another, not to be unpredictable. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

/* Appends one {"Data":...,"PartitionKey":...} member list (without braces) for record number n. */
static kn_status append_record(presign_ctx *c, long n)
{
    uint8_t data[MAX_RECORD_SIZE];
    for (long i = 0; i < c->o->record_size; i++)
        data[i] = (uint8_t)next_random(&c->rng);
    kn_status st = kn_buf_append_str(&c->body, "\"Data\":\"");
    if (st == KN_OK)
        st = kn_base64_encode(data, (size_t)c->o->record_size, &c->body);
    if (st == KN_OK)
        st = kn_buf_printf(&c->body, "\",\"PartitionKey\":\"%s-%ld\"", c->o->key_prefix, n);
    return st;
}

static kn_status build_body(presign_ctx *c, long index)
{
    kn_buf_reset(&c->body);
    kn_status st = kn_buf_printf(&c->body, "{\"StreamName\":\"%s\",", c->o->stream);
    if (st != KN_OK)
        return st;
    if (strcmp(c->o->op, "put-record") == 0) {
        st = append_record(c, index);
    } else {
        st = kn_buf_append_str(&c->body, "\"Records\":[");
        for (long i = 0; i < c->o->batch && st == KN_OK; i++) {
            st = kn_buf_append_str(&c->body, i ? ",{" : "{");
            if (st == KN_OK)
                st = append_record(c, index * c->o->batch + i);
            if (st == KN_OK)
                st = kn_buf_append_str(&c->body, "}");
        }
        if (st == KN_OK)
            st = kn_buf_append_str(&c->body, "]");
    }
    return st == KN_OK ? kn_buf_append_str(&c->body, "}") : st;
}

/* Signs the current body and appends the whole HTTP request, prefixed by its length, to c->request. */
static kn_status build_request(presign_ctx *c)
{
    const char *target = strcmp(c->o->op, "put-record") == 0 ? "Kinesis_20131202.PutRecord"
                                                              : "Kinesis_20131202.PutRecords";
    const char *ctype = "application/x-amz-json-1.1";
    kn_sigv4_header h[] = {
        {"Host", 4, c->o->host, strlen(c->o->host)},
        {"Content-Type", 12, ctype, strlen(ctype)},
        {"X-Amz-Target", 12, target, strlen(target)},
        {"X-Amz-Date", 10, c->scope.amz_date, strlen(c->scope.amz_date)},
    };
    kn_sigv4_request req = {.method = "POST", .path = "/", .path_len = 1, .headers = h, .header_count = 4,
                            .body = c->body.data, .body_len = c->body.len};
    kn_buf_reset(&c->authz);
    kn_status st = kn_sigv4_sign(&req, c->akid, c->secret, &c->scope, &c->cache, &c->authz);
    if (st != KN_OK)
        return st;
    kn_buf_reset(&c->request);
    st = kn_buf_printf(&c->request,
                       "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nX-Amz-Target: %s\r\nX-Amz-Date: %s\r\n"
                       "Authorization: %s\r\nContent-Length: %zu\r\n\r\n",
                       c->o->host, ctype, target, c->scope.amz_date, (const char *)c->authz.data, c->body.len);
    return st == KN_OK ? kn_buf_append(&c->request, c->body.data, c->body.len) : st;
}

static int parse_args(int argc, char **argv, presign_opts *o)
{
    *o = (presign_opts){.region = "us-east-1", .key_prefix = "pk", .batch = 500, .record_size = 100};
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--host") == 0)
            o->host = v;
        else if (strcmp(k, "--stream") == 0)
            o->stream = v;
        else if (strcmp(k, "--op") == 0)
            o->op = v;
        else if (strcmp(k, "--region") == 0)
            o->region = v;
        else if (strcmp(k, "--key-prefix") == 0)
            o->key_prefix = v;
        else if (strcmp(k, "--out") == 0)
            o->out = v;
        else if (strcmp(k, "--count") == 0)
            o->count = strtol(v, NULL, 10);
        else if (strcmp(k, "--batch") == 0)
            o->batch = strtol(v, NULL, 10);
        else if (strcmp(k, "--record-size") == 0)
            o->record_size = strtol(v, NULL, 10);
        else
            return usage();
    }
    bool op_ok = o->op && (strcmp(o->op, "put-record") == 0 || strcmp(o->op, "put-records") == 0);
    if (!o->host || !o->stream || !op_ok || !o->out || o->count <= 0 || o->batch <= 0 || o->batch > MAX_BATCH ||
        o->record_size <= 0 || o->record_size > MAX_RECORD_SIZE)
        return usage();
    return 0;
}

int main(int argc, char **argv)
{
    presign_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    presign_ctx c = {.o = &o, .akid = getenv("AWS_ACCESS_KEY_ID"), .secret = getenv("AWS_SECRET_ACCESS_KEY"),
                     .rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL)};
    if (!c.akid || !c.secret) {
        fprintf(stderr, "bench_presign: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set\n");
        return 2;
    }
    if (strlen(o.region) >= sizeof c.scope.region)
        return usage();
    kn_sigv4_format_time((int64_t)time(NULL), &c.scope);
    snprintf(c.scope.region, sizeof c.scope.region, "%s", o.region);
    snprintf(c.scope.service, sizeof c.scope.service, "kinesis");
    kn_sigv4_key_cache_init(&c.cache);
    kn_buf_init(&c.body, REQUEST_CAP);
    kn_buf_init(&c.authz, 4096);
    kn_buf_init(&c.request, REQUEST_CAP);
    rc = 1;
    FILE *f = fopen(o.out, "wb");
    if (!f) {
        perror(o.out);
        goto cleanup;
    }
    for (long i = 0; i < o.count; i++) {
        if (build_body(&c, i) != KN_OK || build_request(&c) != KN_OK) {
            fprintf(stderr, "bench_presign: request %ld: out of memory while signing\n", i);
            goto cleanup;
        }
        if (fprintf(f, "%zu\n", c.request.len) < 0 || fwrite(c.request.data, 1, c.request.len, f) != c.request.len) {
            perror(o.out);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (f && fclose(f) != 0 && rc == 0) {
        perror(o.out);
        rc = 1;
    }
    kn_buf_cleanup(&c.body);
    kn_buf_cleanup(&c.authz);
    kn_buf_cleanup(&c.request);
    kn_sigv4_key_cache_cleanup(&c.cache);
    return rc;
}
