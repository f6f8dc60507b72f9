/* Fuzz target: kinesisd's request path below HTTP, from a request's headers and raw body to a validated operation
 * and its answer (server/api.h knd_api_dispatch: routing, JSON parsing, SigV4 check, schema types and constraints,
 * the operations themselves) against a fresh in-memory store per input, with an injected clock.
 *
 * Input: up to MAX_REQUESTS requests separated by API_SEPARATOR. Each is one flags byte, the operation (the part of
 * X-Amz-Target after "Kinesis_20131202.") up to a LF, then the JSON body. In the body, "$ITER" is replaced by the last
 * shard iterator and "$SEQ" by the last sequence number an earlier answer held, so sequences such as
 * GetShardIterator → GetRecords get past the tamper-evident iterators.
 *   flags bit 0: unsigned; bit 1: Content-Type application/json; bit 2: the line is the whole X-Amz-Target;
 *   bit 3: signed with a wrong secret; bit 4: method GET; bit 5: body over the HTTP layer's limit;
 *   bits 6-7: the clock moves on by 1 s, 61 s, 301 s (iterators expire) or 25 h (retention) first.
 * Streams "Testing" (3 shards) and "s" (1 shard) exist at the start.
 * Properties: every request is answered exactly once, with a request id; never with a 5xx; an error answer is AWS's
 * JSON {"__type": ...} (or its XML for unroutable requests) and never holds the secret (unless the request did); a
 * 200 answer is empty or a JSON object, and every record GetRecords returns has base64 Data and a decimal sequence
 * number; nothing stays pending, and the store closes cleanly (no leaks). */
#include "fuzz_util.h"

#include "api.h"
#include "base64.h"

#include <cjson/cJSON.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define API_SEPARATOR "\n--next--\n"
#define MAX_REQUESTS 16
#define AKID "AKIDFUZZ"
#define SECRET "fuzz-secret-0123456789"
#define T0 1764100000000LL /* 2025-11-25T19:46:40Z */
#define MAX_BODY 4096      /* the API is told this is the HTTP layer's limit */

typedef struct harness {
    uv_loop_t loop;
    knd_store *store;
    knd_api *api;
    int64_t now_ms;
    char iter[1024];
    char seq[160];
} harness;

typedef struct answer {
    bool echo_ok; /* the request itself holds the secret, so an answer quoting it is no leak */
    int calls;
    int status;
    bool request_id, json;
    cJSON *body;  /* parsed JSON answer, or NULL */
    char *raw;    /* the answer's bytes, NUL-terminated */
    size_t raw_len;
} answer;

static void answer_free(answer *a)
{
    cJSON_Delete(a->body);
    free(a->raw);
}

static int64_t fake_clock(void *ctx)
{
    return ((harness *)ctx)->now_ms;
}

/* The keys kinesisd knows: one, from an in-memory credentials file. Made once; the auth object has no state that one
 * request leaves for the next but its derived-key cache. */
static knd_auth *shared_auth(void)
{
    static knd_auth *auth;
    if (auth)
        return auth;
    static const char file[] = "[fuzz]\naws_access_key_id = " AKID "\naws_secret_access_key = " SECRET "\n";
    int fd = memfd_create("credentials", MFD_CLOEXEC);
    char path[64];
    if (fd < 0 || write(fd, file, sizeof file - 1) != (ssize_t)(sizeof file - 1))
        abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    kn_error err = {0};
    if (knd_auth_new(path, &auth, &err) != KN_OK) {
        fprintf(stderr, "fuzz_knd_api: %s\n", err.message);
        abort();
    }
    close(fd);
    return auth;
}

static void on_reply(void *ctx, int status, const kn_sigv4_header *headers, size_t header_count, const void *body,
                     size_t body_len)
{
    answer *a = ctx;
    a->calls++;
    a->status = status;
    for (size_t i = 0; i < header_count; i++) {
        const kn_sigv4_header *h = &headers[i];
        if (h->name_len == 16 && strncasecmp(h->name, "x-amzn-RequestId", 16) == 0 && h->value_len > 0)
            a->request_id = true;
        if (h->name_len == 12 && strncasecmp(h->name, "Content-Type", 12) == 0)
            a->json = true;
    }
    a->raw = kn_fuzz_strndup(body, body_len);
    a->raw_len = body_len;
    KN_FUZZ_CHECK(a->echo_ok || !kn_fuzz_contains(body, body_len, SECRET, strlen(SECRET)));
    if (body_len > 0 && a->json) {
        a->body = cJSON_ParseWithLength(body, body_len);
        KN_FUZZ_CHECK(cJSON_IsObject(a->body));
    } else if (status != 200) {
        KN_FUZZ_CHECK(body_len > 0 && ((const char *)body)[0] == '<'); /* AWS's XML answer */
    } else {
        KN_FUZZ_CHECK(body_len == 0);
    }
}

/* Remembers the iterator and sequence number an answer holds, and checks GetRecords' records. */
static void learn(harness *h, const cJSON *body)
{
    static const char *const iter_fields[] = {"ShardIterator", "NextShardIterator"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, iter_fields[i]);
        if (cJSON_IsString(v))
            snprintf(h->iter, sizeof h->iter, "%s", v->valuestring);
    }
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(body, "SequenceNumber");
    if (cJSON_IsString(seq))
        snprintf(h->seq, sizeof h->seq, "%s", seq->valuestring);
    const cJSON *rec;
    cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(body, "Records"))
    {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(rec, "Data");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(rec, "SequenceNumber");
        if (cJSON_IsString(s))
            snprintf(h->seq, sizeof h->seq, "%s", s->valuestring);
        if (!cJSON_IsString(data)) /* PutRecords' result entries have no Data */
            continue;
        kn_buf bytes;
        kn_buf_init(&bytes, strlen(data->valuestring));
        KN_FUZZ_CHECK(kn_base64_decode(data->valuestring, strlen(data->valuestring), &bytes) == KN_OK);
        kn_buf_cleanup(&bytes);
        KN_FUZZ_CHECK(cJSON_IsString(s) && s->valuestring[0] && strspn(s->valuestring, "0123456789") ==
                                                                     strlen(s->valuestring));
        KN_FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(rec, "PartitionKey")));
    }
}

/* The body with $ITER and $SEQ substituted. */
static void expand_body(const harness *h, kn_fuzz_span body, kn_buf *out)
{
    for (size_t i = 0; i < body.n;) {
        if (body.n - i >= 5 && memcmp(body.p + i, "$ITER", 5) == 0) {
            kn_buf_append_str(out, h->iter);
            i += 5;
        } else if (body.n - i >= 4 && memcmp(body.p + i, "$SEQ", 4) == 0) {
            kn_buf_append_str(out, h->seq);
            i += 4;
        } else {
            kn_buf_append(out, body.p + i, 1);
            i++;
        }
    }
}

/* Sends one request (flags as in the header comment) and runs the loop until it is answered; checks the properties
 * every answer has. The caller releases *a with answer_free. */
static void exchange(harness *h, uint8_t flags, kn_fuzz_span op, kn_fuzz_span raw_body, answer *a)
{
    static const int64_t advance_ms[] = {1000, 61000, 301000, 25 * 3600000LL};
    h->now_ms += advance_ms[flags >> 6];
    kn_buf body, target, authz;
    kn_buf_init(&body, 1u << 20);
    kn_buf_init(&target, 4096);
    kn_buf_init(&authz, 4096);
    expand_body(h, raw_body, &body);
    if (!(flags & 4))
        kn_buf_append_str(&target, "Kinesis_20131202.");
    kn_buf_append(&target, op.p, op.n);

    kn_sigv4_scope scope = {.region = "us-east-1", .service = "kinesis"};
    kn_sigv4_format_time(h->now_ms / 1000, &scope);
    const char *ct = flags & 2 ? "application/json" : "application/x-amz-json-1.1";
    const char *method = flags & 16 ? "GET" : "POST";
    const char *text = body.data ? (const char *)body.data : "";
    const char *tg = target.data ? (const char *)target.data : "";
    kn_sigv4_header hd[5] = {
        {"host", 4, "127.0.0.1:4567", 14},
        {"x-amz-date", 10, scope.amz_date, strlen(scope.amz_date)},
        {"content-type", 12, ct, strlen(ct)},
        {"x-amz-target", 12, tg, target.len},
    };
    size_t n = 4;
    kn_sigv4_request sr = {.method = method, .path = "/", .path_len = 1, .query = "", .headers = hd,
                           .header_count = n, .body = text, .body_len = body.len};
    if (!(flags & 1)) {
        KN_FUZZ_CHECK(kn_sigv4_sign(&sr, AKID, flags & 8 ? "wrong" : SECRET, &scope, NULL, &authz) == KN_OK);
        hd[n++] = (kn_sigv4_header){"authorization", 13, (const char *)authz.data, authz.len};
    }
    bool too_large = flags & 32;
    knd_request req = {.method = method, .path = "/", .path_len = 1, .query = "", .headers = hd, .header_count = n,
                       .body = too_large ? NULL : (const uint8_t *)text, .body_len = too_large ? 0 : body.len,
                       .body_too_large = too_large};
    *a = (answer){.echo_ok = kn_fuzz_contains(body.data, body.len, SECRET, strlen(SECRET)) ||
                             kn_fuzz_contains(target.data, target.len, SECRET, strlen(SECRET))};
    knd_api_dispatch(h->api, &req, on_reply, a);
    while (a->calls == 0 && uv_run(&h->loop, UV_RUN_ONCE))
        ;
    KN_FUZZ_CHECK(a->calls == 1);
    KN_FUZZ_CHECK(a->request_id);
    KN_FUZZ_CHECK(a->status >= 200 && a->status < 500);
    if (a->status != 200 && a->body) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(a->body, "__type");
        KN_FUZZ_CHECK(cJSON_IsString(type) && type->valuestring[0]);
    }
    kn_buf_cleanup(&body);
    kn_buf_cleanup(&target);
    kn_buf_cleanup(&authz);
}

/* One request of the input: flags byte, operation line, body. */
static void send_one(harness *h, kn_fuzz_span chunk)
{
    if (chunk.n == 0)
        return;
    kn_fuzz_span rest = {chunk.p + 1, chunk.n - 1};
    kn_fuzz_span op = kn_fuzz_split(&rest, "\n");
    answer a;
    exchange(h, (uint8_t)chunk.p[0], op, rest, &a);
    if (a.status == 200 && a.body)
        learn(h, a.body);
    answer_free(&a);
}

static void harness_open(harness *h)
{
    memset(h, 0, sizeof *h);
    h->now_ms = T0;
    kn_error err = {0};
    if (uv_loop_init(&h->loop) != 0)
        abort();
    knd_store_options so = {.data_dir = NULL, .loop = &h->loop, .memory_limit_bytes = 64u << 20};
    KN_FUZZ_CHECK(knd_store_open(&so, &h->store, &err) == KN_OK);
    knd_api_options ao = {.store = h->store, .auth = shared_auth(), .max_body_bytes = MAX_BODY,
                          .clock_ms = fake_clock, .clock_ctx = h};
    KN_FUZZ_CHECK(knd_api_new(&ao, &h->api, &err) == KN_OK);
    KN_FUZZ_CHECK(knd_api_create_stream(h->api, "Testing", 3, &err) == KN_OK);
    KN_FUZZ_CHECK(knd_api_create_stream(h->api, "s", 1, &err) == KN_OK);
}

static void harness_close(harness *h)
{
    while (knd_api_pending(h->api) > 0 && uv_run(&h->loop, UV_RUN_ONCE))
        ;
    KN_FUZZ_CHECK(knd_api_pending(h->api) == 0);
    knd_api_destroy(h->api);
    knd_store_close(h->store);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    KN_FUZZ_CHECK(uv_loop_close(&h->loop) == 0);
}

static void fuzz_knd_api(const uint8_t *data, size_t size)
{
    harness h;
    harness_open(&h);
    kn_fuzz_span rest = {(const char *)data, size};
    for (int i = 0; i < MAX_REQUESTS && rest.n > 0; i++)
        send_one(&h, kn_fuzz_split(&rest, API_SEPARATOR));
    harness_close(&h);
}

KN_FUZZ_ENTRY(fuzz_knd_api)
