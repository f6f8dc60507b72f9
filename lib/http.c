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

#if LIBCURL_VERSION_NUM < 0x075000
#error "libcurl 7.80 or later is needed (CURLOPT_PREREQFUNCTION guards against silent resends)"
#endif

/* What one call needs from libcurl's callbacks. Lives in its handle, so a call allocates nothing for it. */
typedef struct curl_call {
    kn_http_response *resp;
    int sends;         /* how many times libcurl was about to send the request */
    bool too_large;    /* the body callback refused the answer */
    bool resend_refused;
} curl_call;

typedef struct curl_handle {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    curl_call call;
    /* The request's header list, rebuilt each call in memory the handle keeps: the "Name: value" lines, NUL-separated,
     * and a curl_slist node per line pointing into them (libcurl only reads the list, it never frees it). */
    kn_buf header_text;
    struct curl_slist *header_nodes;
    size_t header_nodes_cap;
    struct curl_handle *next;
} curl_handle;

typedef struct curl_pool {
    pthread_mutex_t lock;
    curl_handle *idle; /* a stack: the most recently used handle has the warmest connection */
    size_t idle_count;
    size_t max_idle;
    char *ca_bundle; /* owned; NULL for the system's CA store */
} curl_pool;

/* The header lines of one request: every header the client signed, plus "Expect:" (below). Far above what a signed
 * Kinesis request carries (a session token is a few KiB). */
#define CURL_HEADER_TEXT_MAX (64u * 1024u)
/* What a usual answer's header block and body take (AWS's PutRecord answer: about 500 and 110 bytes). */
#define CURL_USUAL_HEADER_BYTES 1000u
#define CURL_USUAL_BODY_BYTES 240u

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
    curl_call *call = userdata;
    kn_http_response_add_header(call->resp, data, size * n);
    return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    curl_call *call = userdata;
    if (kn_buf_append(&call->resp->body, data, size * n) != KN_OK) {
        call->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* libcurl calls this right before it sends the request. A second call within one transfer is libcurl's own silent
 * resend: a request on a reused keep-alive connection that died before any answer byte is sent again on a new
 * connection. That resend is invisible to the retry policy (not counted, no backoff, even with max_attempts = 1) and
 * may store a record twice, since the dead connection may have delivered the request. So it is refused here, before
 * anything is resent; the transfer fails with CURLE_ABORTED_BY_CALLBACK and the client's own retry loop decides.
 * (This is what lets the body go out through CURLOPT_POSTFIELDS, in the same write as the headers.) */
static int on_prereq(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    curl_call *call = userdata;
    if (++call->sends == 1)
        return CURL_PREREQFUNC_OK;
    call->resend_refused = true;
    return CURL_PREREQFUNC_ABORT;
}

static void handle_destroy(curl_handle *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    kn_buf_cleanup(&h->header_text);
    free(h->header_nodes);
    free(h);
}

/* Options that never change for a handle. */
static curl_handle *handle_new(const char *ca_bundle)
{
    curl_handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    kn_buf_init(&h->header_text, CURL_HEADER_TEXT_MAX);
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
              curl_easy_setopt(c, CURLOPT_HEADERDATA, &h->call) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, &h->call) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PREREQDATA, &h->call) == CURLE_OK &&
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

static kn_status map_curl_error(CURLcode rc, const curl_handle *h, kn_error *err)
{
    const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    if (h->call.too_large)
        return kn_error_set(err, KN_ERR_PROTOCOL, "response body larger than %u bytes", KN_HTTP_RESPONSE_MAX);
    if (h->call.resend_refused) /* see on_prereq */
        return kn_error_set(err, KN_ERR_NETWORK, "the kept-alive connection closed before any answer arrived");
    switch (rc) {
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

/* Builds the list libcurl sends in the handle's own memory: the request's "Name: value" lines, plus "Expect:", which
 * stops libcurl from adding "Expect: 100-continue" to large bodies (a round trip AWS does not need). */
static kn_status build_header_list(curl_handle *h, const kn_http_request *req, kn_error *err)
{
    static char no_expect[] = "Expect:";
    size_t count = req->header_count + 1, total = 0;
    for (size_t i = 0; i < req->header_count && total <= CURL_HEADER_TEXT_MAX; i++) {
        const kn_sigv4_header *hd = &req->headers[i];
        total += hd->name_len > CURL_HEADER_TEXT_MAX || hd->value_len > CURL_HEADER_TEXT_MAX
                     ? CURL_HEADER_TEXT_MAX + 1
                     : hd->name_len + 2 + hd->value_len + 1;
    }
    kn_buf_reset(&h->header_text);
    char *text = (char *)kn_buf_reserve(&h->header_text, total);
    if (!text)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "request headers larger than %u bytes or out of memory",
                            CURL_HEADER_TEXT_MAX);
    if (count > h->header_nodes_cap) {
        struct curl_slist *nodes = realloc(h->header_nodes, count * sizeof *nodes);
        if (!nodes)
            return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory building request headers");
        h->header_nodes = nodes;
        h->header_nodes_cap = count;
    }
    for (size_t i = 0; i < req->header_count; i++) {
        const kn_sigv4_header *hd = &req->headers[i];
        h->header_nodes[i] = (struct curl_slist){.data = text, .next = &h->header_nodes[i + 1]};
        memcpy(text, hd->name, hd->name_len);
        text += hd->name_len;
        *text++ = ':';
        *text++ = ' ';
        memcpy(text, hd->value, hd->value_len);
        text += hd->value_len;
        *text++ = '\0';
    }
    *text = '\0'; /* kn_buf's terminator, past the last line's own */
    h->header_text.len = total;
    h->header_nodes[count - 1] = (struct curl_slist){.data = no_expect, .next = NULL};
    return KN_OK;
}

static kn_status curl_send(void *ctx, const kn_http_request *req, kn_http_response *resp, kn_error *err)
{
    curl_pool *pool = ctx;
    kn_status st = KN_OK;
    kn_http_response_reset(resp);
    curl_handle *h = pool_take(pool);
    if (!h)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "cannot create a libcurl handle");
    h->call = (curl_call){.resp = resp};
    h->errbuf[0] = '\0';
    /* Room for a usual answer up front (one allocation each rather than a run of doublings); on failure the appends
     * simply try again. */
    (void)kn_buf_reserve(&resp->headers, CURL_USUAL_HEADER_BYTES);
    (void)kn_buf_reserve(&resp->body, CURL_USUAL_BODY_BYTES);
    if ((st = build_header_list(h, req, err)) != KN_OK)
        goto cleanup;
    CURL *c = h->curl;
    /* POSTFIELDS is not copied, and a small body goes out in the same write as the headers (one TCP segment, one
     * wake-up of the server). A NULL pointer would make libcurl read the body from a callback instead. */
    bool ok = curl_easy_setopt(c, CURLOPT_URL, req->url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->header_nodes) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->request_timeout_ms) == CURLE_OK;
    if (!ok) {
        st = kn_error_set(err, KN_ERR_CONFIG, "libcurl refused the request options");
        goto cleanup;
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    resp->status = (int)status;
    if (rc != CURLE_OK)
        st = map_curl_error(rc, h, err);
cleanup:
    /* The handle must not keep pointers to this call's body and response. */
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
    h->call.resp = NULL;
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
