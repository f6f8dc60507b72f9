#include "http.h"
#include "error.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- responses ---- */

void kn_http_response_init(kn_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    kn_buf_init(&resp->headers, KN_HTTP_HEADERS_MAX);
    kn_buf_init(&resp->body, KN_HTTP_RESPONSE_MAX);
}

void kn_http_response_reset(kn_http_response *resp)
{
    resp->status = 0;
    resp->request_id[0] = '\0';
    resp->error_type[0] = '\0';
    kn_buf_reset(&resp->headers);
    kn_buf_reset(&resp->body);
}

void kn_http_response_cleanup(kn_http_response *resp)
{
    kn_buf_cleanup(&resp->headers);
    kn_buf_cleanup(&resp->body);
}

/* Copies a header's value (whitespace-trimmed) into out[cap] when the line's name is `name`. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return true;
}

void kn_http_response_add_header(kn_http_response *resp, const char *line, size_t len)
{
    /* A new status line starts a new header block (after an interim 1xx response): forget the previous one. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        resp->request_id[0] = '\0';
        resp->error_type[0] = '\0';
        kn_buf_reset(&resp->headers);
    }
    /* The trace is best effort: a header block over the cap is simply cut short there. */
    (void)kn_buf_append(&resp->headers, line, len);
    if (header_value(line, len, "x-amzn-RequestId", resp->request_id, sizeof resp->request_id) ||
        header_value(line, len, "x-amz-request-id", resp->request_id, sizeof resp->request_id))
        return;
    header_value(line, len, "x-amzn-ErrorType", resp->error_type, sizeof resp->error_type);
}

/* ---- the libcurl transport ---- */

typedef struct curl_handle {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    struct curl_handle *next;
} curl_handle;

typedef struct curl_pool {
    pthread_mutex_t lock;
    curl_handle *idle; /* a stack: the most recently used handle has the warmest connection */
    size_t idle_count;
    size_t max_idle;
    char *ca_bundle; /* owned; NULL for the system's CA store */
} curl_pool;

/* What the write callback needs to know to enforce the body cap. */
typedef struct curl_sink {
    kn_http_response *resp;
    bool too_large;
} curl_sink;

/* The request body, handed to libcurl through a read callback rather than CURLOPT_POSTFIELDS: libcurl silently
 * resends a request whose reused keep-alive connection died before any answer byte, rewinding POSTFIELDS on its own.
 * That resend is invisible to the retry policy (not counted, no backoff, even with max_attempts = 1) and may store a
 * record twice. Without a seek callback libcurl cannot rewind, so it fails with CURLE_SEND_FAIL_REWIND instead, and
 * the client's own retry loop decides. */
typedef struct curl_source {
    const uint8_t *data;
    size_t len;
    size_t pos;
} curl_source;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl; run it once per process. Never undone: other code in the
 * process may use libcurl too, and curl_global_cleanup would pull it from under them. */
static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
    curl_sink *sink = userdata;
    kn_http_response_add_header(sink->resp, data, size * n);
    return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    curl_sink *sink = userdata;
    if (kn_buf_append(&sink->resp->body, data, size * n) != KN_OK) {
        sink->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t on_read(char *out, size_t size, size_t n, void *userdata)
{
    curl_source *src = userdata;
    size_t left = src->len - src->pos, want = size * n;
    size_t take = left < want ? left : want;
    memcpy(out, src->data + src->pos, take);
    src->pos += take;
    return take;
}

static void handle_destroy(curl_handle *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

/* Options that never change for a handle. */
static curl_handle *handle_new(const char *ca_bundle)
{
    curl_handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return NULL;
    }
    CURL *c = h->curl;
    bool ok = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read) == CURLE_OK &&
              (!ca_bundle || curl_easy_setopt(c, CURLOPT_CAINFO, ca_bundle) == CURLE_OK);
    if (!ok) {
        handle_destroy(h);
        return NULL;
    }
    return h;
}

static curl_handle *pool_take(curl_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    curl_handle *h = pool->idle;
    if (h) {
        pool->idle = h->next;
        pool->idle_count--;
    }
    pthread_mutex_unlock(&pool->lock);
    return h ? h : handle_new(pool->ca_bundle);
}

static void pool_give(curl_pool *pool, curl_handle *h)
{
    pthread_mutex_lock(&pool->lock);
    bool keep = pool->idle_count < pool->max_idle;
    if (keep) {
        h->next = pool->idle;
        pool->idle = h;
        pool->idle_count++;
    }
    pthread_mutex_unlock(&pool->lock);
    if (!keep)
        handle_destroy(h);
}

static kn_status map_curl_error(CURLcode rc, const curl_handle *h, const curl_sink *sink, kn_error *err)
{
    const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    if (sink->too_large)
        return kn_error_set(err, KN_ERR_PROTOCOL, "response body larger than %u bytes", KN_HTTP_RESPONSE_MAX);
    switch (rc) {
    case CURLE_SEND_FAIL_REWIND: /* see curl_source */
        return kn_error_set(err, KN_ERR_NETWORK, "the kept-alive connection closed before any answer arrived");
    case CURLE_OPERATION_TIMEDOUT:
        return kn_error_set(err, KN_ERR_TIMEOUT, "%s", why);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return kn_error_set(err, KN_ERR_TLS, "%s", why);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return kn_error_set(err, KN_ERR_CONFIG, "%s", why);
    case CURLE_OUT_OF_MEMORY:
        return kn_error_set(err, KN_ERR_NO_MEMORY, "%s", why);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return kn_error_set(err, KN_ERR_PROTOCOL, "%s", why);
    default:
        return kn_error_set(err, KN_ERR_NETWORK, "%s", why);
    }
}

/* Builds the "Name: value" list libcurl sends, plus the two headers it would otherwise add on its own. */
static kn_status build_header_list(const kn_http_request *req, struct curl_slist **out, kn_error *err)
{
    kn_status st = KN_OK;
    struct curl_slist *list = NULL, *next = NULL;
    kn_buf line;
    kn_buf_init(&line, 64 * 1024);
    for (size_t i = 0; i < req->header_count; i++) {
        const kn_sigv4_header *hd = &req->headers[i];
        kn_buf_reset(&line);
        if (kn_buf_printf(&line, "%.*s: %.*s", (int)hd->name_len, hd->name, (int)hd->value_len, hd->value) !=
            KN_OK) {
            st = kn_error_set(err, KN_ERR_NO_MEMORY, "request header %.*s too large", (int)hd->name_len, hd->name);
            goto cleanup;
        }
        if (!(next = curl_slist_append(list, (const char *)line.data)))
            goto nomem;
        list = next;
    }
    /* "Expect: 100-continue" would cost a round trip on large bodies; AWS does not need it. */
    if (!(next = curl_slist_append(list, "Expect:")))
        goto nomem;
    list = next;
    *out = list;
    list = NULL;
    goto cleanup;
nomem:
    st = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory building request headers");
cleanup:
    curl_slist_free_all(list);
    kn_buf_cleanup(&line);
    return st;
}

static kn_status curl_send(void *ctx, const kn_http_request *req, kn_http_response *resp, kn_error *err)
{
    curl_pool *pool = ctx;
    kn_status st = KN_OK;
    struct curl_slist *headers = NULL;
    curl_sink sink = {.resp = resp};
    curl_source source = {.data = req->body, .len = req->body_len};
    kn_http_response_reset(resp);
    curl_handle *h = pool_take(pool);
    if (!h)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "cannot create a libcurl handle");
    if ((st = build_header_list(req, &headers, err)) != KN_OK)
        goto cleanup;
    CURL *c = h->curl;
    h->errbuf[0] = '\0';
    bool ok = curl_easy_setopt(c, CURLOPT_URL, req->url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_READDATA, &source) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->request_timeout_ms) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink) == CURLE_OK;
    if (!ok) {
        st = kn_error_set(err, KN_ERR_CONFIG, "libcurl refused the request options");
        goto cleanup;
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    resp->status = (int)status;
    if (rc != CURLE_OK)
        st = map_curl_error(rc, h, &sink, err);
cleanup:
    /* The handle must not keep pointers to this call's header list and sink. */
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_READDATA, NULL);
    curl_slist_free_all(headers);
    pool_give(pool, h);
    return st;
}

static void curl_destroy(void *ctx)
{
    curl_pool *pool = ctx;
    if (!pool)
        return;
    while (pool->idle) {
        curl_handle *h = pool->idle;
        pool->idle = h->next;
        handle_destroy(h);
    }
    pthread_mutex_destroy(&pool->lock);
    free(pool->ca_bundle);
    free(pool);
}

kn_status kn_http_curl_new(size_t max_idle, const char *ca_bundle, kn_http_transport *out, kn_error *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return kn_error_set(err, KN_ERR_NETWORK, "libcurl failed to initialise: %s",
                            curl_easy_strerror(curl_init_result));
    curl_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    if (ca_bundle && !(pool->ca_bundle = strdup(ca_bundle))) {
        free(pool);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    }
    pthread_mutex_init(&pool->lock, NULL);
    pool->max_idle = max_idle ? max_idle : 1;
    *out = (kn_http_transport){.send = curl_send, .destroy = curl_destroy, .ctx = pool};
    return KN_OK;
}
