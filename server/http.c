/* knd_http: see http.h.
 *
 * Shape. One knd_http_server owns a listening uv_tcp_t and a list of connections. A connection starts by sniffing
 * its first bytes: the HTTP/2 client preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", prior knowledge, h2c) makes it an
 * nghttp2 server session, anything else an http-parser HTTP/1.1 connection. Each request becomes a knd_exchange that
 * holds copies of everything the request points to; the handler answers it with knd_exchange_respond, now or later.
 *
 * TLS. With a certificate configured, every connection is TLS through knd_tls (memory BIOs, so libuv keeps the
 * socket and nothing blocks): ciphertext read is fed in and decrypted by conn_tls_pump, whose plaintext then takes
 * the same path as a plain connection's bytes; everything written goes through conn_write, which encrypts, and
 * conn_send, which puts the ciphertext on the wire. After the handshake the ALPN choice decides the protocol (h2:
 * an nghttp2 session at once; http/1.1: http-parser); without ALPN the first plaintext bytes are sniffed as above.
 * The handshake counts against the header timeout from accept. A paused HTTP/1.1 parser stops the pump: the rest
 * of the input waits inside OpenSSL (with socket reads stopped) until the parser resumes.
 *
 * Ordering. HTTP/1.1 answers must leave in request order even when the handler answers out of order (group commit
 * acknowledges in batches), so a connection keeps its exchanges in arrival order and writes an answer only when every
 * earlier one has been written. HTTP/2 streams are independent: each answer is submitted when it is ready.
 *
 * Bounds. Nothing a client sends is buffered without a cap: headers (max_header_bytes), bodies (max_body_bytes; a
 * larger body is never stored, the handler sees body_too_large), pipelined requests (H1_PIPELINE_MAX outstanding
 * per connection, then we stop reading), unread responses (WRITE_HIGH_WATER, then we stop reading), HTTP/2 streams
 * (H2_MAX_STREAMS, and body bytes per connection through HTTP/2 flow control, see h2_on_data_chunk). Time is bounded by a single timer per connection whose
 * deadline follows the connection's state (header, body, idle timeouts). Connections are capped at max_connections;
 * at the cap a new client takes the place of the longest-idle connection, and is turned away only when every
 * connection has a request in flight.
 *
 * Lifetimes. Connection memory is freed only in the uv_close callbacks, so a connection pointer stays valid for the
 * rest of any callback that closes it. An exchange the handler holds outlives its connection (it is detached and
 * freed when answered), and the server itself is freed only when all its handles are closed and no handler still
 * holds an exchange. */
#include "http.h"
#include "log.h"
#include "tls.h"
#include "../lib/error.h"

#include <http_parser.h>
#include <nghttp2/nghttp2.h>

#include <limits.h>
#include <stddef.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define READ_BUF_BYTES (64 * 1024)
#define H1_PIPELINE_MAX 16                 /* outstanding requests per HTTP/1.1 connection before we stop reading */
#define WRITE_HIGH_WATER (4 * 1024 * 1024) /* unsent response bytes per connection before we stop reading */
#define H2_MAX_STREAMS 128
#define H2_STREAM_WINDOW (1 << 20)
#define H2_SEND_BATCH (256 * 1024)
#define H2_DISCARD_MAX (16 << 20) /* body bytes we read and drop after refusing a request before resetting it */
#define LINGER_MS 2000 /* after our last response on a closing connection, wait this long for the client's FIN */
#define REJECT_LOG_INTERVAL_MS 10000
/* A finished exchange is kept for the connection's next request (saving its allocations) when its buffers are no
 * larger than these; bigger ones are released so that idle connections hold little memory. */
#define SPARE_TEXT_MAX (8 * 1024)
#define SPARE_BODY_MAX (16 * 1024)

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof h2_preface - 1)

/* Headers the HTTP layer writes itself; the handler's copies are dropped. */
static const struct {
    const char *name;
    size_t len;
} owned_headers[] = {{"content-length", 14}, {"date", 4}, {"connection", 10}, {"transfer-encoding", 17},
                     {"keep-alive", 10}};

typedef enum { PROTO_SNIFF, PROTO_H1, PROTO_H2 } conn_proto;

typedef enum {
    X_RECEIVING, /* the request is still arriving */
    X_HANDLER,   /* handed to the handler, not answered yet */
    X_DONE,      /* answered: waiting to be written (h1) or for its stream to close (h2) */
} x_state;

typedef struct conn conn;

typedef struct field {
    size_t name_off, name_len, value_off, value_len;
} field;

#define INLINE_HEADERS 24

struct knd_exchange {
    knd_http_server *server;
    conn *conn;                /* NULL once the connection has gone */
    knd_exchange *prev, *next; /* the connection's exchanges, in arrival order */
    x_state state;
    int32_t stream_id;         /* HTTP/2 */
    uint64_t started_ms;       /* loop time of the request's first byte (h1) or stream open (h2) */
    uint64_t headers_at_ms;
    bool headers_done;
    bool headers_too_large;
    bool request_complete;     /* the whole request has arrived (h2: END_STREAM seen) */
    bool close_after;          /* h1: the connection closes once this answer is written */
    bool http10;               /* h1: HTTP/1.0 request that asked for keep-alive */
    bool has_authority;        /* h2: ":authority" seen, so a "host" header is a duplicate */
    size_t held_window;        /* h2: body bytes kept, whose connection flow-control window is not yet given back */
    size_t discarded;          /* h2: body bytes that arrived after the request was refused as too large */
    knd_request req;
    char method[24];
    size_t target_off, target_len;
    field *fields;
    size_t nfields, fields_alloc;
    kn_sigv4_header *headers;
    uint8_t *out;              /* h1: the serialized answer; h2: the answer's body */
    size_t out_len, out_off;
    /* Kept when the exchange is recycled (see exchange_recycle); everything above is zeroed for each request. */
    kn_buf text;               /* request-target, header names and values, each NUL-terminated */
    kn_buf body;
    field inline_fields[INLINE_HEADERS];
    kn_sigv4_header inline_headers[INLINE_HEADERS];
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    knd_http_server *server;
    conn *prev, *next;
    conn_proto proto;
    int open_handles;
    bool closing;
    bool reading;
    bool in_feed;          /* inside a parser: do not re-enter it, and defer closing (close_requested) */
    bool close_requested;
    bool discard_input;    /* h1: no more requests here; swallow what the client still sends */
    bool eof;              /* the client closed its sending side */
    bool shutting_down;    /* our FIN is queued or sent */
    bool lingering;
    bool fresh;            /* not a single byte received yet */
    uint8_t sniff[H2_PREFACE_LEN];
    size_t sniff_len;
    uint64_t accepted_ms, last_activity_ms, linger_until_ms, armed_ms;
    knd_exchange *xs_head, *xs_tail;
    knd_exchange *spare;   /* a finished exchange kept for the next request, or NULL */
    size_t handler_count;  /* exchanges the handler holds */
    /* HTTP/1.1 */
    http_parser parser;
    knd_exchange *cur;     /* request being received */
    size_t header_bytes;
    bool last_was_value;
    bool paused;           /* parser paused; unparsed input waits in backlog */
    int h1_error_status;   /* answer to send for a parse error we caused (431), else 400 */
    uint8_t *backlog;
    size_t backlog_len;
    /* HTTP/2 */
    nghttp2_session *h2;
    bool goaway_sent;
    /* TLS (NULL on a plain server) */
    knd_tls *tls;
    bool tls_proto_chosen; /* the handshake is done and its ALPN choice applied */
    bool tls_stalled;      /* the pump stopped for a paused parser: decrypted input may wait inside OpenSSL */
};

struct knd_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t wakeup;     /* closed last, so on_closed always runs from the loop */
    knd_http_options opts;
    int port;
    conn *conns;
    size_t conn_count;
    size_t inflight;
    size_t live_handles;
    size_t rejected;
    uint64_t last_reject_log_ms;
    bool listening, stopping, close_called, on_closed_ran;
    int busy;
    void (*on_closed)(void *ctx);
    void *on_closed_ctx;
    time_t date_sec;
    char date[40];
    nghttp2_session_callbacks *h2_callbacks;
    nghttp2_option *h2_option;
    knd_tls_ctx *tls_ctx; /* NULL: plain connections */
    char readbuf[READ_BUF_BYTES];
    uint8_t tls_plain[16384]; /* one TLS record's plaintext at most */
    uint8_t answer[16384];    /* an HTTP/1.1 answer written at once (see h1_answer), so it needs no copy */
};

typedef struct write_req {
    uv_write_t req;
    conn *c;
    uint8_t *data;
    uv_buf_t buf;
} write_req;

static void conn_close(conn *c);
static void conn_after_event(conn *c);
static void h1_flush(conn *c);
static void h2_send(conn *c);
static void server_maybe_finish(knd_http_server *s);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ms(const knd_http_server *s)
{
    return uv_now(s->loop);
}

static const char *http_date(knd_http_server *s)
{
    time_t t = time(NULL);
    if (t != s->date_sec) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = t;
    }
    return s->date;
}

static bool is_owned_header(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof owned_headers / sizeof owned_headers[0]; i++) {
        if (owned_headers[i].len == len && strncasecmp(owned_headers[i].name, name, len) == 0)
            return true;
    }
    return false;
}

/* A header the handler gave that we must not emit: owned by us, or able to split the response. */
static bool skip_response_header(const kn_sigv4_header *h)
{
    if (h->name_len == 0 || is_owned_header(h->name, h->name_len))
        return true;
    return memchr(h->name, '\r', h->name_len) || memchr(h->name, '\n', h->name_len) ||
           memchr(h->value, '\r', h->value_len) || memchr(h->value, '\n', h->value_len);
}

static bool conn_dead(const conn *c)
{
    return c->closing || c->close_requested;
}

static size_t write_queue(const conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

/* ---------------------------------------------------------------- exchanges */

/* The header budget counts names and values; the NULs between them (at most two per field, and a field has a name of
 * at least one byte) fit in twice that again. */
static size_t text_cap(const knd_http_server *s)
{
    return 3 * s->opts.max_header_bytes + 64;
}

/* An exchange for c's next request: the connection's spare one (its buffers emptied) when there is one. */
static knd_exchange *exchange_new(conn *c)
{
    knd_http_server *s = c->server;
    knd_exchange *x = c->spare;
    if (x) {
        c->spare = NULL;
        memset(x, 0, offsetof(knd_exchange, text));
        kn_buf_reset(&x->text);
        kn_buf_reset(&x->body);
    } else {
        x = malloc(sizeof *x);
        if (!x)
            return NULL;
        memset(x, 0, offsetof(knd_exchange, text));
        kn_buf_init(&x->text, text_cap(s));
        kn_buf_init(&x->body, s->opts.max_body_bytes);
    }
    x->server = s;
    x->conn = c;
    x->state = X_RECEIVING;
    x->started_ms = now_ms(s);
    x->fields = x->inline_fields;
    x->fields_alloc = INLINE_HEADERS;
    x->prev = c->xs_tail;
    if (c->xs_tail)
        c->xs_tail->next = x;
    else
        c->xs_head = x;
    c->xs_tail = x;
    return x;
}

/* Gives an HTTP/2 request body's bytes back to the connection's flow-control window (the body itself stays). */
static void h2_give_back_window(knd_exchange *x)
{
    conn *c = x->conn;
    if (x->held_window && c && c->h2)
        nghttp2_session_consume_connection(c->h2, x->held_window);
    x->held_window = 0;
}

/* Drops an HTTP/2 request body that is no longer needed, and its hold on the connection's window. */
static void h2_release_body(knd_exchange *x)
{
    h2_give_back_window(x);
    kn_buf_cleanup(&x->body);
    kn_buf_init(&x->body, 0);
}

static void exchange_unlink(knd_exchange *x)
{
    conn *c = x->conn;
    if (!c)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xs_head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        c->xs_tail = x->prev;
    x->prev = x->next = NULL;
    h2_give_back_window(x); /* a handler may still hold the body */
    if (c->cur == x)
        c->cur = NULL;
}

/* Keeps x as its connection's spare when the connection lives on, has none yet, and x's buffers are small and
 * unchanged in their caps (h2_release_body leaves a body with none); false when x must be freed. */
static bool exchange_recycle(knd_exchange *x)
{
    conn *c = x->conn;
    if (!c || c->closing || c->spare || x->text.cap != text_cap(x->server) || x->text.alloc > SPARE_TEXT_MAX ||
        x->body.cap != x->server->opts.max_body_bytes || x->body.alloc > SPARE_BODY_MAX)
        return false;
    c->spare = x;
    return true;
}

static void exchange_free(knd_exchange *x)
{
    if (!x)
        return;
    exchange_unlink(x);
    if (x->fields != x->inline_fields)
        free(x->fields);
    if (x->headers != x->inline_headers)
        free(x->headers);
    free(x->out);
    x->out = NULL;
    if (exchange_recycle(x))
        return;
    kn_buf_cleanup(&x->text);
    kn_buf_cleanup(&x->body);
    free(x);
}

/* Frees c's spare exchange, if any (the connection is going). */
static void conn_drop_spare(conn *c)
{
    knd_exchange *x = c->spare;
    c->spare = NULL;
    if (x) {
        kn_buf_cleanup(&x->text);
        kn_buf_cleanup(&x->body);
        free(x);
    }
}

/* Starts a new header field of nothing yet; returns false when out of memory. */
static bool exchange_add_field(knd_exchange *x)
{
    if (x->nfields == x->fields_alloc) {
        size_t n = x->fields_alloc * 2;
        field *f = x->fields == x->inline_fields ? malloc(n * sizeof *f) : realloc(x->fields, n * sizeof *f);
        if (!f)
            return false;
        if (x->fields == x->inline_fields)
            memcpy(f, x->inline_fields, sizeof x->inline_fields);
        x->fields = f;
        x->fields_alloc = n;
    }
    x->fields[x->nfields++] = (field){.name_off = x->text.len};
    return true;
}

/* Fills x->req from the stored text: from here on x->text must not grow (pointers point into it). */
static bool exchange_finish_request(knd_exchange *x)
{
    if (x->nfields > INLINE_HEADERS) {
        x->headers = malloc(x->nfields * sizeof *x->headers);
        if (!x->headers)
            return false;
    } else {
        x->headers = x->inline_headers;
    }
    const char *text = (const char *)x->text.data;
    for (size_t i = 0; i < x->nfields; i++) {
        const field *f = &x->fields[i];
        x->headers[i] = (kn_sigv4_header){text + f->name_off, f->name_len, text + f->value_off, f->value_len};
    }
    /* Origin-form "/p?q"; absolute-form "http://host/p?q" is reduced to its path; "*" stays as sent. */
    const char *target = text ? text + x->target_off : "";
    size_t len = x->target_len;
    const char *scheme_end = len && target[0] != '/' ? strstr(target, "://") : NULL;
    if (scheme_end && (size_t)(scheme_end - target) < len) {
        const char *p = strchr(scheme_end + 3, '/');
        size_t skip = p && (size_t)(p - target) < len ? (size_t)(p - target) : len;
        target += skip;
        len -= skip;
    }
    const char *q = memchr(target, '?', len);
    x->req.method = x->method;
    x->req.path = len ? target : "/";
    x->req.path_len = q ? (size_t)(q - target) : (len ? len : 1);
    x->req.query = q ? q + 1 : "";
    x->req.query_len = q ? len - (size_t)(q - target) - 1 : 0;
    x->req.headers = x->headers;
    x->req.header_count = x->nfields;
    x->req.body = x->req.body_too_large ? NULL : (x->body.data ? x->body.data : (const uint8_t *)"");
    x->req.body_len = x->req.body_too_large ? 0 : x->body.len;
    return true;
}

static void dispatch(conn *c, knd_exchange *x)
{
    knd_http_server *s = c->server;
    if (!exchange_finish_request(x)) {
        conn_close(c);
        return;
    }
    x->state = X_HANDLER;
    s->inflight++;
    c->handler_count++;
    s->opts.handler(s->opts.handler_ctx, x, &x->req);
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    conn *c = w->c;
    free(w->data);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        knd_log_debug("http: write failed: %s", uv_strerror(status));
        conn_close(c);
        return;
    }
    c->last_activity_ms = now_ms(c->server);
    conn_after_event(c);
}

/* Queues data[done, len) behind what is already queued, taking ownership of data (freed once written). */
static void conn_queue(conn *c, uint8_t *data, size_t done, size_t len)
{
    write_req *w = malloc(sizeof *w);
    if (!w) {
        free(data);
        conn_close(c);
        return;
    }
    w->c = c;
    w->data = data;
    w->buf = uv_buf_init((char *)data + done, (unsigned)(len - done));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write);
    if (rc < 0) {
        free(data);
        free(w);
        conn_close(c);
    }
}

/* Tries to put bytes straight into the socket (most answers fit in its buffer, which saves queueing them); returns
 * how many went (none while earlier bytes wait in the queue), or -1 after closing c on an error. */
static ssize_t conn_try_send(conn *c, const uint8_t *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return -1;
    }
    return n > 0 ? n : 0;
}

/* Puts bytes on the wire as they are, taking ownership of data (freed once written). */
static void conn_send(conn *c, uint8_t *data, size_t len)
{
    ssize_t done = conn_dead(c) || c->shutting_down ? -1 : conn_try_send(c, data, len);
    if (done < 0 || (size_t)done == len)
        free(data);
    else
        conn_queue(c, data, (size_t)done, len);
}

/* conn_send for bytes the caller keeps: only what the socket does not take at once is copied. */
static void conn_send_copy(conn *c, const uint8_t *data, size_t len)
{
    ssize_t done = conn_dead(c) || c->shutting_down ? -1 : conn_try_send(c, data, len);
    if (done < 0 || (size_t)done == len)
        return;
    uint8_t *rest = malloc(len - (size_t)done);
    if (!rest) {
        conn_close(c);
        return;
    }
    memcpy(rest, data + done, len - (size_t)done);
    conn_queue(c, rest, 0, len - (size_t)done);
}

/* Sends whatever TLS has produced (handshake messages, records, alerts). */
static void conn_tls_flush(conn *c)
{
    size_t len = 0;
    uint8_t *out = knd_tls_take_output(c->tls, &len);
    if (out)
        conn_send(c, out, len);
}

/* Sends an answer's bytes, which the caller keeps: encrypted first on a TLS connection. */
static void conn_write_copy(conn *c, const uint8_t *data, size_t len)
{
    if (!c->tls) {
        conn_send_copy(c, data, len);
        return;
    }
    bool ok = conn_dead(c) || c->shutting_down || knd_tls_write(c->tls, data, len);
    if (!ok) {
        knd_log_debug("http: TLS write failed: %s", knd_tls_error(c->tls));
        conn_close(c);
        return;
    }
    conn_tls_flush(c);
}

/* conn_write_copy taking ownership of data. */
static void conn_write(conn *c, uint8_t *data, size_t len)
{
    if (!c->tls) {
        conn_send(c, data, len);
        return;
    }
    conn_write_copy(c, data, len);
    free(data);
}

/* ---------------------------------------------------------------- connection lifecycle */

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    knd_http_server *s = c->server;
    free(c->backlog);
    conn_drop_spare(c);
    knd_tls_destroy(c->tls);
    free(c);
    s->live_handles--;
    server_maybe_finish(s);
}

/* Before an abrupt close of a TLS connection (idle, timeout): close_notify if it fits into the socket at once, so
 * the client sees a clean end rather than a truncation. Nothing is queued for later: the handle is about to close. */
static void conn_tls_goodbye(conn *c)
{
    if (!c->tls || c->shutting_down)
        return;
    knd_tls_close_notify(c->tls);
    size_t len = 0;
    uint8_t *out = knd_tls_take_output(c->tls, &len);
    if (!out)
        return;
    uv_buf_t buf = uv_buf_init((char *)out, (unsigned)len);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    free(out);
}

/* Closes c now, or, inside a parser (whose state the close would free), as soon as the parser returns. */
static void conn_close(conn *c)
{
    if (c->closing)
        return;
    if (c->in_feed) {
        c->close_requested = true;
        if (c->proto == PROTO_H1)
            http_parser_pause(&c->parser, 1);
        return;
    }
    knd_http_server *s = c->server;
    conn_tls_goodbye(c);
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->conn_count--;
    /* nghttp2_session_del calls no callbacks, so the exchanges it knows of can be released right after. */
    if (c->h2) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    while (c->xs_head) {
        knd_exchange *x = c->xs_head;
        if (x->state == X_HANDLER) {
            exchange_unlink(x);
            x->conn = NULL; /* the handler still holds it: knd_exchange_respond frees it */
        } else {
            exchange_free(x);
        }
    }
    c->handler_count = 0;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->eof) {
        conn_close(c);
        return;
    }
    /* Our answer and FIN are out; closing now could turn unread client bytes into a RST that destroys the answer
     * in flight, so wait (briefly) for the client to close its side. */
    c->lingering = true;
    c->linger_until_ms = now_ms(c->server) + LINGER_MS;
    conn_after_event(c);
}

/* No more answers on this connection: send FIN after what is queued, then linger. */
static void conn_finish(conn *c)
{
    if (c->closing || c->shutting_down)
        return;
    if (c->tls) {
        knd_tls_close_notify(c->tls); /* nothing after a TLS failure: the alert already said it */
        conn_tls_flush(c);
        if (c->closing)
            return;
    }
    c->shutting_down = true;
    c->discard_input = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

/* ---------------------------------------------------------------- timers */

/* Open time of the oldest HTTP/2 stream whose request is still arriving (refused requests too: their bodies are
 * read and dropped); 0 when none. */
static uint64_t h2_oldest_receiving(const conn *c)
{
    uint64_t oldest = 0;
    for (const knd_exchange *x = c->xs_head; x; x = x->next) {
        if (!x->request_complete && (!oldest || x->started_ms < oldest))
            oldest = x->started_ms;
    }
    return oldest;
}

static uint64_t conn_deadline(conn *c)
{
    const knd_http_options *o = &c->server->opts;
    if (c->lingering)
        return c->linger_until_ms;
    if (c->shutting_down)
        return c->last_activity_ms + o->idle_timeout_ms; /* our FIN waits behind answers the client does not read */
    if (c->proto == PROTO_H2) {
        uint64_t oldest = h2_oldest_receiving(c);
        if (oldest)
            return oldest + o->body_timeout_ms;
        /* Idle, or stalled on answers the client does not read. */
        return c->handler_count == 0 ? c->last_activity_ms + o->idle_timeout_ms : 0;
    }
    if (c->cur)
        return c->cur->headers_done ? c->cur->headers_at_ms + o->body_timeout_ms
                                    : c->cur->started_ms + o->header_timeout_ms;
    if (c->fresh || c->proto == PROTO_SNIFF)
        return c->accepted_ms + o->header_timeout_ms;
    if (c->handler_count == 0)
        return c->last_activity_ms + o->idle_timeout_ms; /* idle, or a client that does not read our answers */
    return 0;
}

static void on_conn_timer(uv_timer_t *t);

static void conn_arm_timer(conn *c)
{
    if (c->closing)
        return;
    uint64_t d = conn_deadline(c);
    if (!d)
        return; /* an armed timer will find nothing due and stay quiet */
    uint64_t now = now_ms(c->server);
    /* Never further ahead than the header timeout: a keep-alive request that starts later has its header deadline
     * after the timer, so it needs no re-arming (a timer-heap operation per request otherwise, the idle deadline
     * being later). A timer that fires before the deadline re-arms for it. */
    uint64_t horizon = now + c->server->opts.header_timeout_ms;
    if (d > horizon)
        d = horizon;
    if (c->armed_ms && c->armed_ms <= d)
        return; /* it fires earlier and re-arms for d then */
    uv_timer_start(&c->timer, on_conn_timer, d > now ? d - now : 0, 0);
    c->armed_ms = d;
}

/* Resets the streams whose requests are overdue; false when none is (the deadline was the idle one). */
static bool h2_expire_streams(conn *c, uint64_t now)
{
    uint32_t limit = c->server->opts.body_timeout_ms;
    bool any = false;
    for (knd_exchange *x = c->xs_head; x; x = x->next) {
        if (!x->request_complete && x->started_ms + limit <= now) {
            knd_log_debug("http: cancelling HTTP/2 stream %d: request not received within %u ms", x->stream_id,
                          limit);
            x->started_ms = now; /* reported once; the stream's close releases it */
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id, NGHTTP2_CANCEL);
            any = true;
        }
    }
    if (any)
        h2_send(c);
    return any;
}

static void on_conn_timer(uv_timer_t *t)
{
    conn *c = t->data;
    c->armed_ms = 0;
    if (c->closing)
        return;
    uint64_t d = conn_deadline(c), now = now_ms(c->server);
    if (!d)
        return;
    if (d > now) {
        conn_arm_timer(c);
        return;
    }
    if (c->proto == PROTO_H2 && h2_expire_streams(c, now)) {
        conn_arm_timer(c);
        return;
    }
    const char *why = c->lingering                                 ? "linger over"
                      : c->tls && !knd_tls_handshake_done(c->tls) ? "TLS handshake too slow"
                      : c->cur || c->fresh                        ? "request too slow"
                                                                  : "idle";
    knd_log_debug("http: closing %s connection (%s)", c->proto == PROTO_H2 ? "HTTP/2" : "HTTP/1.1", why);
    conn_close(c);
}

/* ---------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    /* One buffer for the whole loop: every read is consumed (or copied) before the next one. */
    *buf = uv_buf_init(c->server->readbuf, sizeof c->server->readbuf);
}

static void conn_update_reading(conn *c)
{
    if (c->closing)
        return;
    bool want = !c->eof && (c->discard_input || (!c->paused && write_queue(c) < WRITE_HIGH_WATER));
    if (want == c->reading)
        return;
    if (want && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    if (!want)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = want;
}

/* ---------------------------------------------------------------- HTTP/1.1 */

static void h1_local_answer(conn *c, knd_exchange *x, int status);

static bool h1_count_header_bytes(conn *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes <= c->server->opts.max_header_bytes)
        return true;
    c->h1_error_status = 431;
    return false;
}

static int h1_on_message_begin(http_parser *p)
{
    conn *c = p->data;
    if (conn_dead(c))
        return -1;
    c->cur = exchange_new(c);
    c->header_bytes = 0;
    c->last_was_value = false;
    return c->cur ? 0 : -1;
}

static int h1_on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    knd_exchange *x = c->cur;
    if (!h1_count_header_bytes(c, len))
        return -1;
    if (x->text.alloc == 0)
        kn_buf_reserve(&x->text, 1024); /* typical SDK headers fit: saves growing step by step */
    if (kn_buf_append(&x->text, at, len) != KN_OK)
        return -1;
    x->target_len += len;
    return 0;
}

/* Makes room in x->text for a piece of a header name or value, preceded by the NUL that ends the text before it when
 * the piece starts a new name or value (sep); returns where the piece goes, or NULL at the cap. */
static uint8_t *text_piece(knd_exchange *x, bool sep, size_t len)
{
    uint8_t *dst = kn_buf_reserve(&x->text, len + sep);
    if (dst && sep) {
        *dst++ = '\0';
        x->text.len++;
    }
    return dst;
}

/* Ends a piece written at the end of x->text: the buffer stays NUL-terminated past its length. */
static void text_piece_done(knd_exchange *x, size_t len)
{
    x->text.len += len;
    x->text.data[x->text.len] = '\0';
}

static int h1_on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    knd_exchange *x = c->cur;
    if (x->headers_done)
        return 0; /* trailers of a chunked body: not kept (x->text must not move any more) */
    if (!h1_count_header_bytes(c, len))
        return -1;
    bool starts = x->nfields == 0 || c->last_was_value; /* after the target or after the previous value */
    if (starts && !exchange_add_field(x))
        return -1;
    uint8_t *dst = text_piece(x, starts, len);
    if (!dst)
        return -1;
    field *f = &x->fields[x->nfields - 1];
    if (starts) {
        f->name_off = x->text.len;
        c->last_was_value = false;
    }
    for (size_t i = 0; i < len; i++)
        dst[i] = (uint8_t)((at[i] >= 'A' && at[i] <= 'Z') ? at[i] + 32 : at[i]);
    text_piece_done(x, len);
    f->name_len += len;
    return 0;
}

static int h1_on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    knd_exchange *x = c->cur;
    if (x->headers_done)
        return 0;
    if (!h1_count_header_bytes(c, len))
        return -1;
    bool starts = !c->last_was_value;
    uint8_t *dst = text_piece(x, starts, len);
    if (!dst)
        return -1;
    field *f = &x->fields[x->nfields - 1];
    if (starts) {
        f->value_off = x->text.len;
        c->last_was_value = true;
    }
    memcpy(dst, at, len);
    text_piece_done(x, len);
    f->value_len += len;
    return 0;
}

/* Whether x has a header `name` (lowercase) whose value is `value`, ignoring case. */
static bool has_header_value(const knd_exchange *x, const char *name, const char *value)
{
    size_t len = strlen(name), vlen = strlen(value);
    const char *text = (const char *)x->text.data;
    for (size_t i = 0; i < x->nfields; i++) {
        const field *f = &x->fields[i];
        if (f->name_len == len && memcmp(text + f->name_off, name, len) == 0 && f->value_len == vlen &&
            strncasecmp(text + f->value_off, value, vlen) == 0)
            return true;
    }
    return false;
}

/* The request declared (or grew) a body over the limit: it is answered without its body and the connection closes,
 * since the rest of the body would otherwise have to be read as the next request. */
static void h1_body_too_large(conn *c, knd_exchange *x)
{
    x->req.body_too_large = true;
    kn_buf_cleanup(&x->body);
    kn_buf_init(&x->body, 0);
    x->close_after = true;
    c->discard_input = true;
    c->cur = NULL;
    http_parser_pause(&c->parser, 1);
    dispatch(c, x);
}

static int h1_on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    knd_exchange *x = c->cur;
    const knd_http_options *o = &c->server->opts;
    if (kn_buf_append(&x->text, "", 1) != KN_OK) /* NUL after the last value */
        return -1;
    x->headers_done = true;
    x->headers_at_ms = now_ms(c->server);
    const char *method = http_method_str((enum http_method)p->method);
    size_t method_len = strnlen(method, sizeof x->method - 1);
    memcpy(x->method, method, method_len);
    x->method[method_len] = '\0';
    x->http10 = p->http_major == 1 && p->http_minor == 0;
    if (p->method == HTTP_CONNECT) {
        c->h1_error_status = 405;
        return -1;
    }
    bool has_length = p->content_length != ULLONG_MAX && p->content_length > 0;
    if (has_length && p->content_length > o->max_body_bytes) {
        h1_body_too_large(c, x);
        return 0;
    }
    if (has_length && !kn_buf_reserve(&x->body, (size_t)p->content_length))
        return -1;
    bool has_body = has_length || (p->flags & F_CHUNKED);
    if (has_body && c->xs_head == x && has_header_value(x, "expect", "100-continue")) {
        /* Clients (curl) wait up to a second for this before sending a large body. Only when nothing is ahead
         * of this request: an interim answer must not overtake earlier answers. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uint8_t *copy = malloc(sizeof cont - 1);
        if (!copy)
            return -1;
        memcpy(copy, cont, sizeof cont - 1);
        conn_write(c, copy, sizeof cont - 1);
    }
    return 0;
}

static int h1_on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    knd_exchange *x = c->cur;
    if (!x)
        return 0;
    if (len > c->server->opts.max_body_bytes - x->body.len) {
        h1_body_too_large(c, x);
        return 0;
    }
    return kn_buf_append(&x->body, at, len) == KN_OK ? 0 : -1;
}

static int h1_on_message_complete(http_parser *p)
{
    conn *c = p->data;
    knd_exchange *x = c->cur;
    if (!x)
        return 0; /* the body was too large: already answered */
    c->cur = NULL;
    x->request_complete = true;
    if (!http_should_keep_alive(p) || c->server->stopping) {
        x->close_after = true;
        c->discard_input = true;
    }
    size_t outstanding = 0;
    for (knd_exchange *e = c->xs_head; e; e = e->next)
        outstanding++;
    if (c->discard_input || outstanding >= H1_PIPELINE_MAX)
        http_parser_pause(p, 1);
    dispatch(c, x); /* may answer at once, and free x */
    if (write_queue(c) >= WRITE_HIGH_WATER)
        http_parser_pause(p, 1); /* the client is not reading its answers: take no more requests for now */
    return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = h1_on_message_begin,
    .on_url = h1_on_url,
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_headers_complete = h1_on_headers_complete,
    .on_body = h1_on_body,
    .on_message_complete = h1_on_message_complete,
};

static void h1_parse_error(conn *c)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    int status = c->h1_error_status ? c->h1_error_status : 400;
    knd_log_debug("http: bad HTTP/1.1 request (%s): answering %d and closing", http_errno_name(e), status);
    knd_exchange *x = c->cur ? c->cur : exchange_new(c);
    c->cur = NULL;
    c->discard_input = true;
    if (!x) {
        conn_close(c);
        return;
    }
    h1_local_answer(c, x, status);
}

static bool h1_save_backlog(conn *c, const char *data, size_t len)
{
    free(c->backlog);
    c->backlog = NULL;
    c->backlog_len = 0;
    if (!len)
        return true;
    c->backlog = malloc(len);
    if (!c->backlog)
        return false;
    memcpy(c->backlog, data, len);
    c->backlog_len = len;
    return true;
}

static void h1_feed(conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !conn_dead(c) && !c->discard_input) {
        size_t n = http_parser_execute(&c->parser, &h1_settings, data + off, len - off);
        off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            if (c->discard_input || conn_dead(c))
                return;
            c->paused = true;
            if (!h1_save_backlog(c, data + off, len - off))
                conn_close(c);
            return;
        }
        if (e != HPE_OK) {
            h1_parse_error(c);
            return;
        }
        if (c->parser.upgrade) {
            /* "Upgrade: h2c" and friends are ignored: the answer comes over HTTP/1.1, as RFC 9110 allows. */
            c->parser.upgrade = 0;
        } else if (n == 0) {
            break;
        }
    }
}

/* Resumes a paused parser once the reason (too many outstanding requests) is gone. */
static void h1_maybe_resume(conn *c)
{
    if (!c->paused || c->discard_input || c->closing || write_queue(c) >= WRITE_HIGH_WATER)
        return;
    size_t outstanding = 0;
    for (knd_exchange *e = c->xs_head; e; e = e->next)
        outstanding++;
    if (outstanding >= H1_PIPELINE_MAX)
        return;
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    uint8_t *data = c->backlog;
    size_t len = c->backlog_len;
    c->backlog = NULL;
    c->backlog_len = 0;
    c->in_feed = true;
    h1_feed(c, (const char *)data, len);
    c->in_feed = false;
    free(data);
}

static const char *reason_phrase(int status)
{
    const char *reason = http_status_str((enum http_status)status);
    return reason && strcmp(reason, "<unknown>") != 0 ? reason : "Unknown";
}

/* The head of an answer is assembled by hand: snprintf cost more than the rest of the serializer together. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_uint(char *p, size_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = digits[--n];
    return p;
}

/* "HTTP/1.1 200 OK\r\n" into line[64]; returns its length. */
static size_t status_line(char *line, int status)
{
    const char *reason = reason_phrase(status);
    size_t reason_len = strnlen(reason, 40);
    char *p = put(line, "HTTP/1.1 ", 9);
    *p++ = (char)('0' + status / 100 % 10);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = put(p, "\r\n", 2);
    return (size_t)(p - line);
}

/* An HTTP/1.1 answer being serialized: its parts, and its size once measured. */
typedef struct h1_head {
    char line[64];   /* "HTTP/1.1 200 OK\r\n" */
    size_t line_len;
    char tail[160];  /* Content-Length, Date, Connection and the blank line */
    size_t tail_len;
    size_t body_len; /* 0 for HEAD: Content-Length says what a GET would carry; no body follows */
    size_t total;
} h1_head;

static void h1_measure(conn *c, const knd_exchange *x, int status, const kn_sigv4_header *headers, size_t n,
                       size_t body_len, h1_head *h)
{
    h->line_len = status_line(h->line, status);
    const char *connection = x->close_after ? "Connection: close\r\n"
                             : x->http10    ? "Connection: keep-alive\r\n"
                                            : "";
    const char *date = http_date(c->server);
    char *t = put(h->tail, "Content-Length: ", 16);
    t = put_uint(t, body_len);
    t = put(t, "\r\nDate: ", 8);
    t = put(t, date, strlen(date));
    t = put(t, "\r\n", 2);
    t = put(t, connection, strlen(connection));
    t = put(t, "\r\n", 2);
    h->tail_len = (size_t)(t - h->tail);
    h->body_len = strcmp(x->method, "HEAD") == 0 ? 0 : body_len;
    h->total = h->line_len + h->tail_len + h->body_len;
    for (size_t i = 0; i < n; i++) {
        if (!skip_response_header(&headers[i]))
            h->total += headers[i].name_len + 2 + headers[i].value_len + 2;
    }
}

/* Writes the measured answer into out[h->total]. */
static void h1_serialize(const h1_head *h, const kn_sigv4_header *headers, size_t n, const void *body, uint8_t *out)
{
    uint8_t *p = out;
    memcpy(p, h->line, h->line_len);
    p += h->line_len;
    for (size_t i = 0; i < n; i++) {
        const kn_sigv4_header *hd = &headers[i];
        if (skip_response_header(hd))
            continue;
        memcpy(p, hd->name, hd->name_len);
        p += hd->name_len;
        memcpy(p, ": ", 2);
        p += 2;
        memcpy(p, hd->value, hd->value_len);
        p += hd->value_len;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    memcpy(p, h->tail, h->tail_len);
    p += h->tail_len;
    if (h->body_len)
        memcpy(p, body, h->body_len);
}

/* Writes the answer of x, the connection's first exchange (data, len: a heap block to take when owned, else bytes
 * copied only as needed), and releases x. False when that was the connection's last answer. */
static bool h1_write_first(conn *c, knd_exchange *x, uint8_t *data, size_t len, bool owned)
{
    bool close_after = x->close_after;
    exchange_free(x);
    if (owned)
        conn_write(c, data, len);
    else
        conn_write_copy(c, data, len);
    if (close_after) {
        /* Later exchanges (none should exist: parsing stopped at this one) are dropped with the connection. */
        while (c->xs_head && c->xs_head->state != X_HANDLER)
            exchange_free(c->xs_head);
        conn_finish(c);
        return false;
    }
    return true;
}

static void h1_answer(conn *c, knd_exchange *x, int status, const kn_sigv4_header *headers, size_t n,
                      const void *body, size_t body_len)
{
    knd_http_server *s = c->server;
    if (s->stopping && !x->next)
        x->close_after = true; /* the last answer this connection gets */
    x->state = X_DONE;
    h1_head h;
    h1_measure(c, x, status, headers, n, body_len, &h);
    if (x == c->xs_head && !conn_dead(c) && h.total <= sizeof s->answer) {
        /* Nothing ahead of it: written at once from the server's buffer, copied only if the socket is full. */
        h1_serialize(&h, headers, n, body, s->answer);
        if (h1_write_first(c, x, s->answer, h.total, false))
            h1_flush(c);
        return;
    }
    uint8_t *out = malloc(h.total ? h.total : 1);
    if (!out) {
        conn_close(c);
        return;
    }
    h1_serialize(&h, headers, n, body, out);
    free(x->out);
    x->out = out;
    x->out_len = h.total;
    h1_flush(c);
}

static void h1_local_answer(conn *c, knd_exchange *x, int status)
{
    static const kn_sigv4_header type = {"Content-Type", 12, "text/plain", 10};
    char body[128];
    int len = snprintf(body, sizeof body, "%d %s\n", status, reason_phrase(status));
    x->close_after = true;
    h1_answer(c, x, status, &type, 1, body, (size_t)len);
}

/* Writes every answer that is ready and has no unanswered request ahead of it. */
static void h1_flush(conn *c)
{
    while (c->xs_head && c->xs_head->state == X_DONE && !conn_dead(c)) {
        knd_exchange *x = c->xs_head;
        uint8_t *out = x->out;
        x->out = NULL;
        if (!h1_write_first(c, x, out, x->out_len, true))
            return;
    }
}

/* ---------------------------------------------------------------- HTTP/2 */

static knd_exchange *h2_exchange(conn *c, int32_t stream_id)
{
    return c->h2 ? nghttp2_session_get_stream_user_data(c->h2, stream_id) : NULL;
}

static int h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->server->stopping) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    knd_exchange *x = exchange_new(c);
    if (!x)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    x->stream_id = frame->hd.stream_id;
    x->req.http2 = true;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, x);
    return 0;
}

static bool h2_add_header(knd_exchange *x, const char *name, size_t name_len, const uint8_t *value,
                          size_t value_len)
{
    if (kn_buf_append(&x->text, "", 1) != KN_OK || !exchange_add_field(x))
        return false;
    field *f = &x->fields[x->nfields - 1];
    f->name_off = x->text.len;
    f->name_len = name_len;
    if (kn_buf_append(&x->text, name, name_len) != KN_OK || kn_buf_append(&x->text, "", 1) != KN_OK)
        return false;
    f->value_off = x->text.len;
    f->value_len = value_len;
    return kn_buf_append(&x->text, value, value_len) == KN_OK;
}

static int h2_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t name_len,
                        const uint8_t *value, size_t value_len, uint8_t flags, void *user_data)
{
    (void)session;
    (void)flags;
    conn *c = user_data;
    knd_exchange *x = h2_exchange(c, frame->hd.stream_id);
    if (!x || x->headers_done || x->headers_too_large)
        return 0;
    /* The HPACK-decoded size, counted as RFC 9113's SETTINGS_MAX_HEADER_LIST_SIZE does (+32 per field). */
    size_t budget = c->server->opts.max_header_bytes;
    size_t used = x->text.len + 32 * x->nfields;
    if (used + name_len + value_len + 32 > budget) {
        x->headers_too_large = true;
        return 0;
    }
    const char *n = (const char *)name;
    bool ok = true;
    if (name_len && n[0] == ':') {
        if (name_len == 7 && memcmp(n, ":method", 7) == 0) {
            if (value_len >= sizeof x->method)
                x->headers_too_large = true;
            else
                memcpy(x->method, value, value_len);
        } else if (name_len == 5 && memcmp(n, ":path", 5) == 0) {
            if (x->target_len == 0) {
                ok = kn_buf_append(&x->text, "", 1) == KN_OK;
                x->target_off = x->text.len;
                ok = ok && kn_buf_append(&x->text, value, value_len) == KN_OK;
                x->target_len = value_len;
            }
        } else if (name_len == 10 && memcmp(n, ":authority", 10) == 0) {
            /* As "host" for everyone, and under its own name too: the JS SDK v3 signs it as ":authority". */
            x->has_authority = true;
            ok = h2_add_header(x, "host", 4, value, value_len) && h2_add_header(x, n, name_len, value, value_len);
        }
    } else if (!(name_len == 4 && memcmp(n, "host", 4) == 0 && x->has_authority)) {
        ok = h2_add_header(x, n, name_len, value, value_len);
    }
    return ok ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static void h2_answer(conn *c, knd_exchange *x, int status, const kn_sigv4_header *headers, size_t n,
                      const void *body, size_t body_len);

static void h2_local_answer(conn *c, knd_exchange *x, int status)
{
    static const kn_sigv4_header type = {"content-type", 12, "text/plain", 10};
    char body[128];
    int len = snprintf(body, sizeof body, "%d %s\n", status, reason_phrase(status));
    h2_answer(c, x, status, &type, 1, body, (size_t)len);
}

static void h2_request_ready(conn *c, knd_exchange *x)
{
    if (x->headers_too_large) {
        x->state = X_DONE;
        h2_local_answer(c, x, 431);
        return;
    }
    if (!x->method[0] || x->target_len == 0) {
        x->state = X_DONE;
        h2_local_answer(c, x, 400);
        return;
    }
    if (kn_buf_append(&x->text, "", 1) != KN_OK) { /* NUL after the last value */
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    dispatch(c, x);
}

static int h2_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                            size_t len, void *user_data)
{
    (void)flags;
    conn *c = user_data;
    knd_exchange *x = h2_exchange(c, stream_id);
    /* Flow control, done by hand: the stream's window is given back at once (a body is only useful whole, so a
     * stream must be able to send up to max_body_bytes), the connection's only when a kept body is released after
     * its answer. So the connection window bounds what one client makes us hold across its streams, and a client
     * with more in flight than that waits instead of being refused. */
    nghttp2_session_consume_stream(session, stream_id, len);
    if (!x || x->state != X_RECEIVING || x->headers_too_large)
        nghttp2_session_consume_connection(session, len);
    if (!x)
        return 0;
    if (x->state != X_RECEIVING || x->headers_too_large) {
        /* Refused already: the rest of the body is dropped as it comes. The stream is not reset at once (curl,
         * among others, reports a reset as an error even after a complete answer); a client that keeps sending
         * long after is reset. */
        x->discarded += len;
        if (x->discarded > H2_DISCARD_MAX && x->discarded - len <= H2_DISCARD_MAX)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        return 0;
    }
    const knd_http_options *o = &c->server->opts;
    /* Per stream, and across the connection's streams: a client cannot park max_body_bytes on each of its
     * H2_MAX_STREAMS streams. */
    if (len > o->max_body_bytes - x->body.len) {
        nghttp2_session_consume_connection(session, len);
        h2_release_body(x);
        x->req.body_too_large = true;
        h2_request_ready(c, x);
        return 0;
    }
    if (kn_buf_append(&x->body, data, len) != KN_OK)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    x->held_window += len;
    return 0;
}

static int h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    knd_exchange *x = h2_exchange(c, frame->hd.stream_id);
    if (!x)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !x->headers_done) {
        x->headers_done = true;
        x->headers_at_ms = now_ms(c->server);
        if (x->headers_too_large && x->state == X_RECEIVING) {
            h2_request_ready(c, x); /* answered 431 without waiting for a body */
            return 0;
        }
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        x->request_complete = true;
        if (x->state == X_RECEIVING)
            h2_request_ready(c, x);
    }
    return 0;
}

static int h2_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    (void)session;
    (void)error_code;
    conn *c = user_data;
    knd_exchange *x = h2_exchange(c, stream_id);
    if (!x)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (x->state == X_HANDLER) {
        exchange_unlink(x);
        x->conn = NULL; /* the handler still holds it; its answer will be dropped */
        c->handler_count--;
        return 0;
    }
    exchange_free(x);
    return 0;
}

static ssize_t h2_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    knd_exchange *x = source->ptr;
    size_t n = x->out_len - x->out_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(buf, x->out + x->out_off, n);
    x->out_off += n;
    if (x->out_off == x->out_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void h2_answer(conn *c, knd_exchange *x, int status, const kn_sigv4_header *headers, size_t n,
                      const void *body, size_t body_len)
{
    x->state = X_DONE;
    h2_release_body(x); /* the request is answered: its body has served */
    free(x->out);
    x->out = NULL;
    x->out_len = x->out_off = 0;
    if (body_len) {
        x->out = malloc(body_len);
        if (!x->out) {
            nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id, NGHTTP2_INTERNAL_ERROR);
            return;
        }
        memcpy(x->out, body, body_len);
        x->out_len = body_len;
    }
    nghttp2_nv stack_nva[32];
    nghttp2_nv *nva = n + 3 <= 32 ? stack_nva : malloc((n + 3) * sizeof *nva);
    if (!nva) {
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    char status_text[8], length_text[24];
    snprintf(status_text, sizeof status_text, "%03d", status);
    snprintf(length_text, sizeof length_text, "%zu", body_len);
    const char *date = http_date(c->server);
    size_t k = 0;
#define NV(N, NL, V, VL) (nghttp2_nv){(uint8_t *)(N), (uint8_t *)(V), (NL), (VL), NGHTTP2_NV_FLAG_NONE}
    nva[k++] = NV(":status", 7, status_text, strlen(status_text));
    for (size_t i = 0; i < n; i++) {
        if (!skip_response_header(&headers[i]))
            nva[k++] = NV(headers[i].name, headers[i].name_len, headers[i].value, headers[i].value_len);
    }
    nva[k++] = NV("content-length", 14, length_text, strlen(length_text));
    nva[k++] = NV("date", 4, date, strlen(date));
#undef NV
    nghttp2_data_provider prd = {.source.ptr = x, .read_callback = h2_read_body};
    int rc = nghttp2_submit_response(c->h2, x->stream_id, nva, k, body_len ? &prd : NULL);
    if (nva != stack_nva)
        free(nva);
    if (rc != 0) {
        knd_log_debug("http: HTTP/2 answer on stream %d failed: %s", x->stream_id, nghttp2_strerror(rc));
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, x->stream_id, NGHTTP2_INTERNAL_ERROR);
    }
}

/* Moves what nghttp2 has to send into the socket, in batches, while the client keeps up. */
static void h2_send(conn *c)
{
    if (!c->h2 || c->closing)
        return;
    while (write_queue(c) < WRITE_HIGH_WATER) {
        kn_buf batch;
        kn_buf_init(&batch, H2_SEND_BATCH + 65536);
        for (;;) {
            const uint8_t *data = NULL;
            ssize_t n = nghttp2_session_mem_send(c->h2, &data);
            if (n < 0) {
                knd_log_debug("http: HTTP/2 send failed: %s", nghttp2_strerror((int)n));
                kn_buf_cleanup(&batch);
                conn_close(c);
                return;
            }
            if (n == 0)
                break;
            if (kn_buf_append(&batch, data, (size_t)n) != KN_OK) {
                kn_buf_cleanup(&batch);
                conn_close(c);
                return;
            }
            if (batch.len >= H2_SEND_BATCH)
                break;
        }
        if (batch.len == 0) {
            kn_buf_cleanup(&batch);
            break;
        }
        conn_write(c, batch.data, batch.len); /* takes the buffer */
        if (c->closing)
            return;
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) && write_queue(c) == 0)
        conn_close(c); /* GOAWAY exchanged and nothing left */
}

/* What one HTTP/2 connection may have us hold in request bodies at once: two of the largest, so one big request
 * never waits for another's answer (and never less than the protocol's initial window). */
static int32_t h2_connection_window(const knd_http_server *s)
{
    size_t w = 2 * s->opts.max_body_bytes;
    if (w < NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
        w = NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
    return w > NGHTTP2_MAX_WINDOW_SIZE ? NGHTTP2_MAX_WINDOW_SIZE : (int32_t)w;
}

static bool h2_start(conn *c)
{
    knd_http_server *s = c->server;
    if (nghttp2_session_server_new2(&c->h2, s->h2_callbacks, c, s->h2_option) != 0)
        return false;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->opts.max_header_bytes},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, h2_connection_window(s)) != 0)
        return false;
    c->proto = PROTO_H2;
    return true;
}

static void h2_feed(conn *c, const uint8_t *data, size_t len)
{
    ssize_t n = nghttp2_session_mem_recv(c->h2, data, len);
    if (n < 0) {
        knd_log_debug("http: bad HTTP/2 input: %s", nghttp2_strerror((int)n));
        conn_close(c);
    }
}

/* ---------------------------------------------------------------- input dispatch */

static void conn_feed_protocol(conn *c, const uint8_t *data, size_t len)
{
    if (c->proto == PROTO_H2)
        h2_feed(c, data, len);
    else
        h1_feed(c, (const char *)data, len);
}

static void h1_start(conn *c)
{
    c->proto = PROTO_H1;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
}

/* Decides the protocol from the first bytes: the HTTP/2 client preface, or HTTP/1.1. */
static void conn_sniff(conn *c, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len && c->sniff_len < H2_PREFACE_LEN && data[i] == (uint8_t)h2_preface[c->sniff_len])
        c->sniff[c->sniff_len++] = data[i++];
    if (c->sniff_len < H2_PREFACE_LEN && i == len)
        return; /* so far a prefix of the preface: wait for more */
    if (c->sniff_len == H2_PREFACE_LEN) {
        if (!h2_start(c)) {
            conn_close(c);
            return;
        }
    } else {
        h1_start(c);
    }
    /* Hand the protocol the sniffed bytes and the rest as one piece. */
    size_t total = c->sniff_len + (len - i);
    uint8_t *joined = malloc(total ? total : 1);
    if (!joined) {
        conn_close(c);
        return;
    }
    memcpy(joined, c->sniff, c->sniff_len);
    memcpy(joined + c->sniff_len, data + i, len - i);
    conn_feed_protocol(c, joined, total);
    free(joined);
}

/* Plaintext from the client (as read, or decrypted). */
static void conn_feed_plaintext(conn *c, const uint8_t *data, size_t len)
{
    c->fresh = false;
    if (c->proto == PROTO_SNIFF)
        conn_sniff(c, data, len);
    else
        conn_feed_protocol(c, data, len);
}

/* The client closed its sending side: answer what it already asked, then close. */
static void conn_on_eof(conn *c)
{
    c->eof = true;
    if (c->proto == PROTO_H2 || c->handler_count == 0) {
        conn_close(c);
        return;
    }
    if (c->cur)
        exchange_free(c->cur); /* an unfinished request will never finish */
    c->discard_input = true;
    knd_exchange *last = c->xs_tail;
    if (last)
        last->close_after = true;
    h1_flush(c);
}

/* Once the handshake is done: the protocol ALPN chose, if any (else the first plaintext bytes decide). */
static void conn_tls_choose_protocol(conn *c)
{
    c->tls_proto_chosen = true;
    switch (knd_tls_negotiated(c->tls)) {
    case KND_TLS_ALPN_H2:
        if (!h2_start(c))
            conn_close(c);
        break;
    case KND_TLS_ALPN_HTTP11:
        h1_start(c);
        break;
    case KND_TLS_ALPN_NONE:
        break;
    }
}

/* A plain HTTP request reached the TLS port (a client given http:// instead of https://): say so in its language
 * instead of with an alert it cannot read. */
static void conn_answer_plain_http(conn *c)
{
    static const char body[] = "This port speaks https; the request came in plain http.\n";
    size_t alert_len = 0;
    free(knd_tls_take_output(c->tls, &alert_len));
    char *answer = malloc(256);
    if (!answer)
        return;
    int len = snprintf(answer, 256,
                       "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       sizeof body - 1, body);
    conn_send(c, (uint8_t *)answer, (size_t)len);
}

/* Decrypts what the client sent and hands the plaintext on, until OpenSSL needs more ciphertext, the HTTP/1.1
 * parser pauses (see conn_after_event), or the connection ends. Handshake replies are sent as they appear. */
static void conn_tls_pump(conn *c)
{
    knd_http_server *s = c->server;
    bool was_in_feed = c->in_feed;
    knd_tls_result r = KND_TLS_WANT;
    c->in_feed = true;
    c->tls_stalled = false;
    while (!conn_dead(c) && !c->discard_input) {
        if (c->paused) {
            c->tls_stalled = true;
            break;
        }
        size_t n = 0;
        r = knd_tls_read(c->tls, s->tls_plain, sizeof s->tls_plain, &n);
        conn_tls_flush(c);
        if (!c->tls_proto_chosen && knd_tls_handshake_done(c->tls))
            conn_tls_choose_protocol(c);
        if (r != KND_TLS_DATA)
            break;
        conn_feed_plaintext(c, s->tls_plain, n);
    }
    c->in_feed = was_in_feed;
    if (r == KND_TLS_FAILED) {
        knd_log_debug("http: TLS %s failed: %s", c->tls_proto_chosen ? "connection" : "handshake",
                      knd_tls_error(c->tls));
        if (knd_tls_failed_on_plain_http(c->tls))
            conn_answer_plain_http(c);
        conn_finish(c); /* after the alert, if OpenSSL wrote one */
    } else if (r == KND_TLS_CLOSED && !c->eof) {
        conn_on_eof(c);
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = stream->data;
    if (c->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            knd_log_debug("http: read failed: %s", uv_strerror((int)nread));
        if (nread == UV_EOF && !c->lingering)
            conn_on_eof(c);
        else
            conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->last_activity_ms = now_ms(c->server);
    if (c->discard_input) {
        /* dropped (a TLS connection's too: nothing it says matters any more) */
    } else if (c->tls) {
        if (knd_tls_feed(c->tls, buf->base, (size_t)nread))
            conn_tls_pump(c);
        else
            conn_close(c);
    } else {
        c->in_feed = true;
        conn_feed_plaintext(c, (const uint8_t *)buf->base, (size_t)nread);
        c->in_feed = false;
    }
    conn_after_event(c);
}

/* After anything happened on c: write what is ready, resume or pause reading, re-arm the timer, and close when
 * the connection has nothing left to do. */
static void conn_after_event(conn *c)
{
    if (c->closing || c->in_feed)
        return;
    if (c->close_requested) {
        conn_close(c);
        return;
    }
    knd_http_server *s = c->server;
    if (c->proto == PROTO_H1) {
        h1_flush(c);
        h1_maybe_resume(c);
        if (c->tls_stalled && !c->paused)
            conn_tls_pump(c);
        if (c->close_requested) {
            conn_close(c);
            return;
        }
    } else if (c->proto == PROTO_H2) {
        h2_send(c);
        if (!c->closing && s->stopping && c->handler_count == 0 && write_queue(c) == 0 &&
            !nghttp2_session_want_write(c->h2))
            conn_close(c);
    }
    conn_update_reading(c);
    conn_arm_timer(c);
}

/* ---------------------------------------------------------------- the handler's side */

void knd_exchange_respond(knd_exchange *x, int status, const kn_sigv4_header *headers, size_t header_count,
                          const void *body, size_t body_len)
{
    knd_http_server *s = x->server;
    conn *c = x->conn;
    s->inflight--;
    if (!c) {
        x->state = X_DONE;
        exchange_free(x);
        server_maybe_finish(s);
        return;
    }
    c->handler_count--;
    if (c->proto == PROTO_H2)
        h2_answer(c, x, status, headers, header_count, body, body_len);
    else
        h1_answer(c, x, status, headers, header_count, body, body_len);
    conn_after_event(c);
}

/* ---------------------------------------------------------------- the server */

static void on_rejected_closed(uv_handle_t *h)
{
    knd_http_server *s = h->data;
    free(h);
    s->live_handles--;
    server_maybe_finish(s);
}

/* Over max_connections: accept (so the client is not left hanging in the backlog) and close at once. */
static void reject_connection(knd_http_server *s)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->live_handles++;
    uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_rejected_closed);
    s->rejected++;
    uint64_t now = now_ms(s);
    if (!s->last_reject_log_ms || now - s->last_reject_log_ms >= REJECT_LOG_INTERVAL_MS) {
        knd_log_warn("http: connection limit (%zu) reached: closed %zu new connection(s)", s->opts.max_connections,
                     s->rejected);
        s->rejected = 0;
        s->last_reject_log_ms = now;
    }
}

/* At the connection limit, a connection with nothing in flight makes room for a new one (the one quiet longest), so
 * that clients holding idle connections open cannot lock everyone else out. False when every connection is busy. */
static bool evict_idle_connection(knd_http_server *s)
{
    conn *victim = NULL;
    for (conn *c = s->conns; c; c = c->next) {
        bool idle = !conn_dead(c) && !c->xs_head && c->handler_count == 0 && write_queue(c) == 0;
        if (idle && (!victim || c->last_activity_ms < victim->last_activity_ms))
            victim = c;
    }
    if (!victim)
        return false;
    knd_log_debug("http: connection limit (%zu) reached: closing the longest idle connection for a new one",
                  s->opts.max_connections);
    conn_close(victim);
    return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    knd_http_server *s = listener->data;
    if (status < 0) {
        knd_log_warn("http: accept failed: %s", uv_strerror(status));
        return;
    }
    if (s->conn_count >= s->opts.max_connections && !evict_idle_connection(s)) {
        reject_connection(s);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        reject_connection(s);
        return;
    }
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    s->live_handles++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    c->accepted_ms = c->last_activity_ms = now_ms(s);
    c->fresh = true;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    if (s->tls_ctx && !(c->tls = knd_tls_new(s->tls_ctx))) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_update_reading(c);
    conn_arm_timer(c);
}

static void free_server(knd_http_server *s)
{
    nghttp2_session_callbacks_del(s->h2_callbacks);
    nghttp2_option_del(s->h2_option);
    knd_tls_ctx_destroy(s->tls_ctx);
    free(s);
}

static void server_maybe_finish(knd_http_server *s)
{
    if (!s->close_called || s->live_handles > 0 || s->busy)
        return;
    if (!s->on_closed_ran) {
        s->on_closed_ran = true;
        if (s->on_closed) {
            s->busy++;
            s->on_closed(s->on_closed_ctx);
            s->busy--;
        }
    }
    if (s->inflight == 0)
        free_server(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    knd_http_server *s = h->data;
    s->live_handles--;
    server_maybe_finish(s);
}

static void apply_defaults(knd_http_options *o)
{
    if (!o->host)
        o->host = "127.0.0.1";
    if (!o->max_connections)
        o->max_connections = 1024;
    if (!o->max_header_bytes)
        o->max_header_bytes = 16 * 1024;
    if (!o->max_body_bytes)
        o->max_body_bytes = 12 * 1024 * 1024;
    if (!o->header_timeout_ms)
        o->header_timeout_ms = 10000;
    if (!o->body_timeout_ms)
        o->body_timeout_ms = 30000;
    if (!o->idle_timeout_ms)
        o->idle_timeout_ms = 60000;
}

static bool h2_setup(knd_http_server *s)
{
    if (nghttp2_session_callbacks_new(&s->h2_callbacks) != 0 || nghttp2_option_new(&s->h2_option) != 0)
        return false;
    nghttp2_session_callbacks *cb = s->h2_callbacks;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_stream_close);
    /* Bound what a client can make us queue with control frames it never reads the answers to. */
    nghttp2_option_set_max_outbound_ack(s->h2_option, 1000);
    nghttp2_option_set_no_auto_window_update(s->h2_option, 1); /* see h2_on_data_chunk */
    return true;
}

static kn_status bind_listener(knd_http_server *s, kn_error *err)
{
    const knd_http_options *o = &s->opts;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &ai);
    if (rc != 0)
        return kn_error_set(err, KN_ERR_NETWORK, "cannot resolve listen address '%s': %s", o->host,
                            gai_strerror(rc));
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->live_handles++;
    s->listening = true;
    rc = uv_tcp_bind(&s->listener, ai->ai_addr, 0);
    freeaddrinfo(ai);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0)
        return kn_error_set(err, KN_ERR_NETWORK, "cannot listen on %s:%d: %s", o->host, o->port, uv_strerror(rc));
    struct sockaddr_storage addr;
    int len = sizeof addr;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len) == 0)
        s->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                   : ((struct sockaddr_in *)&addr)->sin_port);
    return KN_OK;
}

kn_status knd_http_server_new(const knd_http_options *opts, knd_http_server **out, kn_error *err)
{
    *out = NULL;
    if (!opts || !opts->loop || !opts->handler)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "knd_http_server_new needs a loop and a handler");
    if (opts->port < 0 || opts->port > 65535)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "port %d is out of range", opts->port);
    knd_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    s->opts = *opts;
    apply_defaults(&s->opts);
    s->loop = opts->loop;
    uv_timer_init(s->loop, &s->wakeup);
    s->wakeup.data = s;
    s->live_handles = 1;
    if (!h2_setup(s)) {
        knd_http_server_close(s, NULL, NULL);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    }
    kn_status st = KN_OK;
    if (opts->tls_cert_file || opts->tls_key_file) {
        st = opts->tls_cert_file && opts->tls_key_file
                 ? knd_tls_ctx_new(opts->tls_cert_file, opts->tls_key_file, &s->tls_ctx, err)
                 : kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "TLS needs both a certificate and a key");
    }
    if (st == KN_OK)
        st = bind_listener(s, err);
    if (st != KN_OK) {
        /* Closing handles needs the loop to run; the caller's next uv_run finishes the release. */
        knd_http_server_close(s, NULL, NULL);
        return st;
    }
    *out = s;
    return KN_OK;
}

int knd_http_server_port(const knd_http_server *s)
{
    return s->port;
}

size_t knd_http_server_inflight(const knd_http_server *s)
{
    return s->inflight;
}

void knd_http_server_stop_accepting(knd_http_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    if (s->listening) {
        s->listening = false;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    }
    conn *next;
    for (conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->proto == PROTO_H2) {
            if (!c->goaway_sent) {
                c->goaway_sent = true;
                nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                                      NGHTTP2_NO_ERROR, NULL, 0);
            }
        } else {
            /* A request still arriving is not in flight: it is dropped, and nothing further is read. */
            if (c->cur)
                exchange_free(c->cur);
            c->discard_input = true;
            if (c->xs_tail)
                c->xs_tail->close_after = true;
        }
        if (c->proto != PROTO_H2 && !c->xs_head)
            conn_close(c); /* nothing in flight */
        else
            conn_after_event(c);
    }
}

void knd_http_server_close(knd_http_server *s, void (*on_closed)(void *ctx), void *ctx)
{
    s->on_closed = on_closed;
    s->on_closed_ctx = ctx;
    s->stopping = true;
    s->close_called = true;
    if (s->listening) {
        s->listening = false;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    }
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->wakeup, on_server_handle_closed);
}
