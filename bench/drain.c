/* bench_drain: reads one shard from TRIM_HORIZON to its end with GetRecords (Limit 10000) on one kept-alive
 * connection, every request freshly SigV4-signed, and reports records/s. A GetRecords chain cannot be replayed from a
 * pre-signed pool (each call carries the previous answer's NextShardIterator), so this is the suite's load generator
 * for reads, the same program against every server.
 *
 *   bench_drain --endpoint http://H:P --stream NAME [--shard shardId-000000000000] [--repeat N]
 *               [--max-seconds S] [--region R]
 *
 * Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Each of the N drains starts from TRIM_HORIZON; one stops
 * at the first empty answer with MillisBehindLatest 0 (the shard's end) or after S seconds (reported as not
 * complete). Every answer must be HTTP 200 with a Records list and a NextShardIterator; a record is counted per
 * "SequenceNumber" member (data is base64 and keys are the suite's own, so the text cannot occur elsewhere); the
 * body is scanned rather than parsed into a tree so that the client's cost stays small beside the server's.
 *
 * Prints one line per drain: BENCH_RESULT {"records":N,"requests":R,"seconds":S,"bad":B,"complete":true|false,
 * "first_bad":"..."}. Exit 0 when every drain completed with no bad answer, 1 otherwise, 2 on bad usage. */
#include "sigv4.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"

#define BODY_CAP (64u * 1024u * 1024u)
#define ITERATOR_MAX 4096

typedef struct drain_ctx {
    const char *endpoint, *host, *stream, *shard, *region, *akid, *secret;
    CURL *curl;
    kn_sigv4_key_cache cache;
    kn_buf request_body, authz, response;
    long http_status;
    char first_bad[512];
} drain_ctx;

typedef struct drain_result {
    long records, requests, bad;
    double seconds;
    bool complete;
} drain_result;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    return kn_buf_append(ud, data, size * n) == KN_OK ? size * n : 0;
}

/* Sends one signed POST with the current request_body; the answer lands in ctx->response. */
static bool post(drain_ctx *c, const char *operation)
{
    kn_sigv4_scope scope = {0};
    kn_sigv4_format_time((int64_t)time(NULL), &scope);
    snprintf(scope.region, sizeof scope.region, "%s", c->region);
    snprintf(scope.service, sizeof scope.service, "kinesis");
    char target[64];
    snprintf(target, sizeof target, "Kinesis_20131202.%s", operation);
    const char *ctype = "application/x-amz-json-1.1";
    kn_sigv4_header h[] = {
        {"Host", 4, c->host, strlen(c->host)},
        {"Content-Type", 12, ctype, strlen(ctype)},
        {"X-Amz-Target", 12, target, strlen(target)},
        {"X-Amz-Date", 10, scope.amz_date, strlen(scope.amz_date)},
    };
    kn_sigv4_request req = {.method = "POST", .path = "/", .path_len = 1, .headers = h, .header_count = 4,
                            .body = c->request_body.data, .body_len = c->request_body.len};
    kn_buf_reset(&c->authz);
    if (kn_sigv4_sign(&req, c->akid, c->secret, &scope, &c->cache, &c->authz) != KN_OK)
        return false;
    char lines[4][4200];
    snprintf(lines[0], sizeof lines[0], "Content-Type: %s", ctype);
    snprintf(lines[1], sizeof lines[1], "X-Amz-Target: %s", target);
    snprintf(lines[2], sizeof lines[2], "X-Amz-Date: %s", scope.amz_date);
    snprintf(lines[3], sizeof lines[3], "Authorization: %s", (const char *)c->authz.data);
    struct curl_slist *list = curl_slist_append(NULL, "Accept:");
    list = curl_slist_append(list, "Expect:");
    for (int i = 0; i < 4; i++)
        list = curl_slist_append(list, lines[i]);
    kn_buf_reset(&c->response);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (const char *)c->request_body.data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)c->request_body.len);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_slist_free_all(list);
    c->http_status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->http_status);
    else
        snprintf(c->first_bad, sizeof c->first_bad, "%s: %s", operation, curl_easy_strerror(rc));
    return rc == CURLE_OK;
}

/* Finds key in body, looking at the last TAIL_BYTES first: servers put the iterator and MillisBehindLatest after
 * the records, and scanning megabytes of records for them would make the client's cost rival the server's. */
#define TAIL_BYTES 65536
static const char *find_member(const kn_buf *body, const char *key, size_t klen)
{
    size_t tail = body->len > TAIL_BYTES ? body->len - TAIL_BYTES : 0;
    const char *p = memmem(body->data + tail, body->len - tail, key, klen);
    return p || tail == 0 ? p : memmem(body->data, tail + klen, key, klen);
}

/* Copies the string value of "name":"..." in the response into out; false when absent or too long. */
static bool find_string(const kn_buf *body, const char *name, char *out, size_t out_size)
{
    char key[64];
    int klen = snprintf(key, sizeof key, "\"%s\":\"", name);
    const char *p = find_member(body, key, (size_t)klen);
    if (!p)
        return false;
    p += klen;
    const char *end = memchr(p, '"', body->len - (size_t)(p - (const char *)body->data));
    if (!end || (size_t)(end - p) >= out_size)
        return false;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return true;
}

static long count_records(const kn_buf *body)
{
    static const char key[] = "\"SequenceNumber\"";
    long n = 0;
    const char *p = (const char *)body->data, *end = p + body->len;
    while ((p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
        n++;
        p += sizeof key - 1;
    }
    return n;
}

static void note_bad(drain_ctx *c, drain_result *r, const char *what)
{
    r->bad++;
    if (!c->first_bad[0])
        snprintf(c->first_bad, sizeof c->first_bad, "%s: HTTP %ld %.300s", what, c->http_status,
                 c->response.data ? (const char *)c->response.data : "");
}

static bool shard_iterator(drain_ctx *c, drain_result *r, char *iterator)
{
    kn_buf_reset(&c->request_body);
    kn_buf_printf(&c->request_body, "{\"StreamName\":\"%s\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                  c->stream, c->shard);
    r->requests++;
    if (!post(c, "GetShardIterator") || c->http_status != 200 ||
        !find_string(&c->response, "ShardIterator", iterator, ITERATOR_MAX)) {
        note_bad(c, r, "GetShardIterator");
        return false;
    }
    return true;
}

static drain_result drain_once(drain_ctx *c, double max_seconds)
{
    drain_result r = {0};
    char iterator[ITERATOR_MAX];
    double t0 = bench_now_s();
    if (!shard_iterator(c, &r, iterator))
        return r;
    while (bench_now_s() - t0 < max_seconds) {
        kn_buf_reset(&c->request_body);
        kn_buf_printf(&c->request_body, "{\"ShardIterator\":\"%s\",\"Limit\":10000}", iterator);
        r.requests++;
        if (!post(c, "GetRecords") || c->http_status != 200 ||
            !memmem(c->response.data, c->response.len, "\"Records\":[", 11) ||
            !find_string(&c->response, "NextShardIterator", iterator, ITERATOR_MAX)) {
            note_bad(c, &r, "GetRecords");
            break;
        }
        long n = count_records(&c->response);
        r.records += n;
        if (n == 0 && find_member(&c->response, "\"MillisBehindLatest\":0", 22)) {
            r.complete = true;
            break;
        }
    }
    r.seconds = bench_now_s() - t0;
    return r;
}


static int usage(void)
{
    fprintf(stderr, "usage: bench_drain --endpoint http://H:P --stream NAME [--shard ID] [--repeat N] "
                    "[--max-seconds S] [--region R]\n");
    return 2;
}

int main(int argc, char **argv)
{
    drain_ctx c = {.shard = "shardId-000000000000", .region = "us-east-1", .akid = getenv("AWS_ACCESS_KEY_ID"),
                   .secret = getenv("AWS_SECRET_ACCESS_KEY")};
    long repeat = 1;
    double max_seconds = 120;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--endpoint") == 0)
            c.endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--stream") == 0)
            c.stream = argv[i + 1];
        else if (strcmp(argv[i], "--shard") == 0)
            c.shard = argv[i + 1];
        else if (strcmp(argv[i], "--region") == 0)
            c.region = argv[i + 1];
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--max-seconds") == 0)
            max_seconds = strtod(argv[i + 1], NULL);
        else
            return usage();
    }
    if (!c.endpoint || strncmp(c.endpoint, "http://", 7) != 0 || !c.stream || repeat < 1 || max_seconds <= 0)
        return usage();
    if (!c.akid || !c.secret) {
        fprintf(stderr, "bench_drain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set\n");
        return 2;
    }
    c.host = c.endpoint + 7;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.curl = curl_easy_init();
    kn_sigv4_key_cache_init(&c.cache);
    kn_buf_init(&c.request_body, 2 * ITERATOR_MAX);
    kn_buf_init(&c.authz, 4096);
    kn_buf_init(&c.response, BODY_CAP);
    curl_easy_setopt(c.curl, CURLOPT_URL, c.endpoint);
    curl_easy_setopt(c.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c.curl, CURLOPT_WRITEDATA, &c.response);
    curl_easy_setopt(c.curl, CURLOPT_TIMEOUT_MS, 60000L);
    int status = 0;
    for (long i = 0; i < repeat; i++) {
        drain_result r = drain_once(&c, max_seconds);
        printf("BENCH_RESULT {\"records\":%ld,\"requests\":%ld,\"seconds\":%.6f,\"bad\":%ld,\"complete\":%s,"
               "\"first_bad\":",
               r.records, r.requests, r.seconds, r.bad, r.complete ? "true" : "false");
        bench_print_json_string(c.first_bad);
        printf("}\n");
        if (r.bad || !r.complete)
            status = 1;
    }
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    kn_buf_cleanup(&c.request_body);
    kn_buf_cleanup(&c.authz);
    kn_buf_cleanup(&c.response);
    kn_sigv4_key_cache_cleanup(&c.cache);
    return status;
}
