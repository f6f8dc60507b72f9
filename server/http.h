/* knd_http: kinesisd's HTTP front end on libuv: HTTP/1.1 (http-parser) with keep-alive and HTTP/2 (nghttp2) with
 * prior knowledge (h2c) on the same port, optionally inside TLS (knd_tls) with ALPN choosing h2 or http/1.1. It knows
 * nothing of Kinesis: it hands each complete request to one handler and writes back whatever the handler answers,
 * whenever it answers (group commit answers later). */
#ifndef KND_HTTP_H
#define KND_HTTP_H

#include "../lib/sigv4.h"
#include <uv.h>

typedef struct knd_request {
    const char *method;            /* NUL-terminated */
    const char *path;              /* as sent, without the query */
    size_t path_len;
    const char *query;             /* without '?'; "" when none */
    size_t query_len;
    const kn_sigv4_header *headers; /* names lowercase; HTTP/2 pseudo-headers are not included, but
                                      ":authority" is given as "host" and also as itself (the JS SDK v3 signs it
                                      under that name) */
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    bool body_too_large;           /* the body exceeded max_body_bytes: body is NULL and the connection will close
                                      after the response */
    bool http2;
} knd_request;

/* One request awaiting its response. */
typedef struct knd_exchange knd_exchange;

/* Called on the loop thread for each complete request. req (and everything it points to) stays valid until the
 * handler answers with knd_exchange_respond, which it must do exactly once, now or later. */
typedef void (*knd_handler_fn)(void *ctx, knd_exchange *x, const knd_request *req);

/* Sends the response (the HTTP layer adds Content-Length, Date and connection headers) and ends the exchange: x and
 * its request are gone afterwards. headers/body are copied. If the client went away meanwhile, the response is
 * dropped silently. */
void knd_exchange_respond(knd_exchange *x, int status, const kn_sigv4_header *headers, size_t header_count,
                          const void *body, size_t body_len);

typedef struct knd_http_options {
    uv_loop_t *loop;
    const char *host;              /* default "127.0.0.1" */
    int port;                      /* 0 picks a free port (see knd_http_server_port); kinesisd's 4567 is main's */
    size_t max_connections;        /* default 1024; at the cap a new connection replaces the longest-idle one, or
                                      is accepted and closed at once when every connection has a request in flight */
    size_t max_header_bytes;       /* default 16 KiB; larger: 431 and close (HTTP/2: 431 on that stream) */
    size_t max_body_bytes;         /* default 12 MiB (AWS's 10 MiB PutRecords request plus JSON/base64 overhead);
                                      larger bodies are not read: see knd_request.body_too_large */
    uint32_t header_timeout_ms;    /* time allowed to receive a request's headers (from its first byte, or from
                                      accept for a new connection, TLS handshake included); default 10000 */
    uint32_t body_timeout_ms;      /* time allowed to receive a body after its headers (HTTP/2: a whole request
                                      from its stream's opening; the stream is reset); default 30000 */
    uint32_t idle_timeout_ms;      /* keep-alive idle close (also: a client not reading our answers); default
                                      60000 */
    const char *tls_cert_file;     /* both or neither: PEM certificate chain and unencrypted PEM key. When given,
                                      every connection on the port is TLS (1.2 or later; ALPN offers h2, then
                                      http/1.1); the files are read once, in knd_http_server_new */
    const char *tls_key_file;
    knd_handler_fn handler;
    void *handler_ctx;
} knd_http_options;

typedef struct knd_http_server knd_http_server;

/* Binds and listens. *out is released with knd_http_server_close. On failure *out is NULL and err says why; handles
 * made before the failure are already closing, so run the loop once more before uv_loop_close. */
kn_status knd_http_server_new(const knd_http_options *opts, knd_http_server **out, kn_error *err);
int knd_http_server_port(const knd_http_server *s);
/* Stops accepting new connections and new requests; requests in flight still get their responses. */
void knd_http_server_stop_accepting(knd_http_server *s);
/* Requests handed to the handler and not yet answered. */
size_t knd_http_server_inflight(const knd_http_server *s);
/* Closes every connection and the listener; on_closed (may be NULL) runs (on the loop) when all handles are closed.
 * s must not be used after this call: it is freed after on_closed returns, or, if the handler still holds exchanges
 * then, when the last of them is answered (answers to closed connections are dropped). */
void knd_http_server_close(knd_http_server *s, void (*on_closed)(void *ctx), void *ctx);

#endif
