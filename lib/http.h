/* kn_http: how the client sends one HTTP request and gets one response. The client only ever talks to a
 * kn_http_transport (a small table of functions), so unit tests hand it a fake that answers from a script, while the
 * real one (kn_http_curl_new) is libcurl with a pool of keep-alive connections. */
#ifndef KN_HTTP_H
#define KN_HTTP_H

#include "buf.h"
#include "sigv4.h"

/* The largest response the client accepts. A PutRecords answer for 500 entries is about 100 KiB; anything much
 * larger is not a Kinesis answer (a proxy's page, a runaway stream) and is refused rather than buffered. */
#define KN_HTTP_RESPONSE_MAX (2u * 1024u * 1024u)
/* Raw response headers kept for the debug trace. */
#define KN_HTTP_HEADERS_MAX (16u * 1024u)

/* One POST. Everything is borrowed for the duration of the call. Headers are sent exactly as given (the Host header
 * included, so what is signed is what is sent). */
typedef struct kn_http_request {
    const char *url;
    const kn_sigv4_header *headers;
    size_t header_count;
    const void *body;
    size_t body_len;
    long connect_timeout_ms;
    long request_timeout_ms; /* the whole exchange, connect included */
} kn_http_request;

/* One response. Caller-allocated: kn_http_response_init before the first use, kn_http_response_cleanup after the
 * last; a transport's send resets it first, so one response may be reused across calls. */
typedef struct kn_http_response {
    int status;                                 /* HTTP status, 0 until a status line arrived */
    char request_id[KN_REQUEST_ID_MAX];         /* x-amzn-RequestId (or x-amz-request-id), "" when absent */
    char error_type[KN_ERROR_TYPE_MAX];         /* x-amzn-ErrorType, "" when absent */
    kn_buf headers;                             /* raw header lines as received (for the debug trace) */
    kn_buf body;                                /* capped at KN_HTTP_RESPONSE_MAX */
} kn_http_response;

void kn_http_response_init(kn_http_response *resp);
void kn_http_response_reset(kn_http_response *resp);
void kn_http_response_cleanup(kn_http_response *resp);

/* Records one response header line ("Name: value\r\n", any case) into resp: keeps it in resp->headers and picks out
 * the request id and error type. Transports call it for every header line they receive. */
void kn_http_response_add_header(kn_http_response *resp, const char *line, size_t len);

/* The transport: send performs one request and fills resp with whatever HTTP response arrived (any status). It
 * returns KN_OK when a complete response was received, else KN_ERR_NETWORK, KN_ERR_TIMEOUT, KN_ERR_TLS,
 * KN_ERR_CONFIG (unusable URL) or KN_ERR_PROTOCOL (response too large or malformed), with err's message naming the
 * cause. send may be called from several threads at once. destroy releases ctx (called once, by the client that
 * owns the transport). */
typedef struct kn_http_transport {
    kn_status (*send)(void *ctx, const kn_http_request *req, kn_http_response *resp, kn_error *err);
    void (*destroy)(void *ctx);
    void *ctx;
} kn_http_transport;

/* The libcurl transport: keeps up to max_idle easy handles (each with its kept-alive connection) in a pool guarded by
 * a mutex; a call takes a handle from the pool or makes a new one, and returns it afterwards. TLS peer and host
 * verification are always on; ca_bundle (borrowed, may be NULL for the system's store) names a PEM file of CAs to
 * trust instead. On success *out is filled and the caller owns it: release with out->destroy(out->ctx). */
kn_status kn_http_curl_new(size_t max_idle, const char *ca_bundle, kn_http_transport *out, kn_error *err);

#endif
