/* kn_http: the libcurl transport against tiny loopback servers run by the test (keep-alive reuse, what is sent, the
 * failure classes), and the response-header bookkeeping every transport shares. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "http.h"

/* ---- a loopback server on its own thread ---- */

typedef enum mode {
    MODE_ANSWER,   /* answer every request on the connection with 200 and a small JSON body */
    MODE_GARBAGE,  /* answer whatever arrives with a plain-text HTTP line and close (not TLS) */
    MODE_HUGE,     /* answer with a body over the client's cap */
    MODE_DROP_SECOND, /* answer the first request, read the second and close without a word */
} mode;

typedef struct server {
    int fd;
    int port;
    mode mode;
    pthread_t thread;
    int accepted;
    int requests;
    char request[4096]; /* the last request's head */
    uint8_t body[256];  /* and its body */
    size_t body_len;
} server;

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot listen on loopback");
    *port = ntohs(a.sin_port);
    return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away: fine for the tests that make it */
        p += n;
        len -= (size_t)n;
    }
}

/* Reads one request (head + Content-Length body) into s; false at end of connection. */
static bool read_request(server *s, int fd)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
    }
    size_t head = (size_t)(end + 4 - buf);
    snprintf(s->request, sizeof s->request, "%.*s", (int)head, buf);
    const char *cl = strcasestr(s->request, "\r\nContent-Length:");
    size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
    if (want > sizeof s->body)
        return false;
    s->body_len = 0;
    size_t have = len - head;
    memcpy(s->body, buf + head, have < sizeof s->body ? have : sizeof s->body);
    while (have < want) {
        ssize_t n = recv(fd, s->body + have, want - have, 0);
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    s->body_len = want;
    return true;
}

static void serve_connection(server *s, int fd)
{
    if (s->mode == MODE_GARBAGE) {
        char junk[1024];
        (void)recv(fd, junk, sizeof junk, 0);
        send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 47);
        return;
    }
    while (read_request(s, fd)) {
        s->requests++;
        if (s->mode == MODE_DROP_SECOND && s->requests == 2)
            return;
        if (s->mode == MODE_HUGE) {
            size_t n = 3u * 1024u * 1024u;
            char head[128];
            int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
            send_all(fd, head, (size_t)hl);
            char *body = calloc(1, n);
            send_all(fd, body, n);
            free(body);
            return;
        }
        char resp[256];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 200 OK\r\nx-amzn-RequestId: rid-%d\r\nContent-Type: application/x-amz-json-1.1\r\n"
                         "Content-Length: 11\r\n\r\n{\"ok\":true}",
                         s->requests);
        send_all(fd, resp, (size_t)n);
    }
}

/* Serves one connection, then exits: the tests that need more connections would see them refused or stalled. */
static void *serve(void *arg)
{
    server *s = arg;
    int fd = accept(s->fd, NULL, NULL);
    if (fd >= 0) {
        s->accepted++;
        serve_connection(s, fd);
        close(fd);
    }
    return NULL;
}

static void server_start(server *s, mode m)
{
    memset(s, 0, sizeof *s);
    s->mode = m;
    s->fd = listen_loopback(&s->port);
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- helpers ---- */

static kn_sigv4_header hdr(const char *name, const char *value)
{
    return (kn_sigv4_header){name, strlen(name), value, strlen(value)};
}

static kn_status post(kn_http_transport *t, const char *url, const char *host, const void *body, size_t len,
                      long timeout_ms, kn_http_response *resp, kn_error *err)
{
    kn_sigv4_header h[] = {hdr("Host", host), hdr("Content-Type", "application/x-amz-json-1.1"),
                           hdr("X-Amz-Target", "Kinesis_20131202.PutRecord")};
    kn_http_request req = {.url = url, .headers = h, .header_count = 3, .body = body, .body_len = len,
                           .connect_timeout_ms = 2000, .request_timeout_ms = timeout_ms};
    return t->send(t->ctx, &req, resp, err);
}

/* What one request through a fresh transport came to; the response itself is gone by then. */
typedef struct outcome {
    kn_status status;
    kn_error err;
    int http_status;
    size_t body_len;
} outcome;

/* Posts "{}" to url through a new one-connection transport, then closes the transport. */
static outcome post_once(const char *url, long timeout_ms)
{
    kn_http_transport t;
    assert_int_equal(kn_http_curl_new(1, NULL, &t, NULL), KN_OK);
    kn_http_response resp;
    kn_http_response_init(&resp);
    outcome o = {0};
    o.status = post(&t, url, "127.0.0.1", "{}", 2, timeout_ms, &resp, &o.err);
    o.http_status = resp.status;
    o.body_len = resp.body.len;
    kn_http_response_cleanup(&resp);
    t.destroy(t.ctx);
    return o;
}

static void loopback_url(char url[64], const char *scheme, int port)
{
    snprintf(url, 64, "%s://127.0.0.1:%d/", scheme, port);
}

static outcome post_to_port(const char *scheme, int port, long timeout_ms)
{
    char url[64];
    loopback_url(url, scheme, port);
    return post_once(url, timeout_ms);
}

/* post_to_port a loopback server started in mode m for this one request. */
static outcome post_to_server(mode m, const char *scheme, long timeout_ms)
{
    server s;
    server_start(&s, m);
    outcome o = post_to_port(scheme, s.port, timeout_ms);
    server_stop(&s);
    return o;
}

/* ---- tests ---- */

static void sends_request_as_given_and_reuses_the_connection(void **state)
{
    (void)state;
    server s;
    server_start(&s, MODE_ANSWER);
    kn_http_transport t;
    assert_int_equal(kn_http_curl_new(2, NULL, &t, NULL), KN_OK);
    char url[64], host[32];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
    snprintf(host, sizeof host, "signed-host.test:%d", s.port);
    static const uint8_t body[] = {'{', 0x00, 0xff, '}'};
    kn_http_response resp;
    kn_http_response_init(&resp);
    kn_error err;
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(post(&t, url, host, body, sizeof body, 2000, &resp, &err), KN_OK);
        assert_int_equal(resp.status, 200);
        char rid[16];
        snprintf(rid, sizeof rid, "rid-%d", i);
        assert_string_equal(resp.request_id, rid);
        assert_int_equal(resp.body.len, 11);
        assert_memory_equal(resp.body.data, "{\"ok\":true}", 11);
        assert_non_null(strstr((const char *)resp.headers.data, "Content-Type: application/x-amz-json-1.1"));
    }
    kn_http_response_cleanup(&resp);
    t.destroy(t.ctx); /* closes the kept-alive connection, which ends the server's loop */
    server_stop(&s);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.requests, 2);
    assert_memory_equal(s.request, "POST / HTTP/1.1\r\n", 17);
    char want_host[48];
    snprintf(want_host, sizeof want_host, "\r\nHost: %s\r\n", host);
    assert_non_null(strstr(s.request, want_host));
    assert_non_null(strstr(s.request, "\r\nX-Amz-Target: Kinesis_20131202.PutRecord\r\n"));
    assert_non_null(strstr(s.request, "\r\nContent-Type: application/x-amz-json-1.1\r\n"));
    assert_null(strcasestr(s.request, "Expect:"));
    assert_int_equal(s.body_len, sizeof body);
    assert_memory_equal(s.body, body, sizeof body);
}

/* The second request goes out on the kept-alive connection, which the server reads and closes unanswered. libcurl
 * would quietly send it again on a new connection (and the record might be stored twice); the transport must report
 * a network error instead and leave the decision to the client's retry policy. The server takes one connection only,
 * so a resend would end in a timeout, not this error. */
static void dead_reused_connection_is_not_resent(void **state)
{
    (void)state;
    server s;
    server_start(&s, MODE_DROP_SECOND);
    kn_http_transport t;
    assert_int_equal(kn_http_curl_new(1, NULL, &t, NULL), KN_OK);
    char url[64];
    loopback_url(url, "http", s.port);
    kn_http_response resp;
    kn_http_response_init(&resp);
    kn_error err;
    assert_int_equal(post(&t, url, "127.0.0.1", "{}", 2, 2000, &resp, &err), KN_OK);
    assert_int_equal(post(&t, url, "127.0.0.1", "{}", 2, 2000, &resp, &err), KN_ERR_NETWORK);
    assert_string_equal(err.message, "the kept-alive connection closed before any answer arrived");
    assert_int_equal(err.retry_class, KN_RETRY_TRANSIENT);
    kn_http_response_cleanup(&resp);
    t.destroy(t.ctx);
    server_stop(&s);
    assert_int_equal(s.accepted, 1);
    assert_int_equal(s.requests, 2);
}

static void refused_connection_is_network_error(void **state)
{
    (void)state;
    int port = 0;
    close(listen_loopback(&port)); /* a port nobody listens on */
    outcome o = post_to_port("http", port, 2000);
    assert_int_equal(o.status, KN_ERR_NETWORK);
    assert_int_equal(o.err.status, KN_ERR_NETWORK);
    assert_int_equal(o.err.retry_class, KN_RETRY_TRANSIENT);
    assert_true(o.err.message[0] != '\0');
    assert_int_equal(o.http_status, 0);
}

static void silent_server_times_out(void **state)
{
    (void)state;
    int port = 0;
    int fd = listen_loopback(&port); /* the kernel completes the handshake; nobody ever answers */
    outcome o = post_to_port("http", port, 300);
    assert_int_equal(o.status, KN_ERR_TIMEOUT);
    assert_non_null(strstr(o.err.message, "timed out"));
    close(fd);
}

static void https_to_a_plain_server_is_tls_error(void **state)
{
    (void)state;
    outcome o = post_to_server(MODE_GARBAGE, "https", 2000);
    assert_int_equal(o.status, KN_ERR_TLS);
    assert_int_equal(o.err.retry_class, KN_RETRY_NEVER);
}

static void oversized_response_is_refused(void **state)
{
    (void)state;
    outcome o = post_to_server(MODE_HUGE, "http", 5000);
    assert_int_equal(o.status, KN_ERR_PROTOCOL);
    assert_non_null(strstr(o.err.message, "larger than"));
    assert_true(o.body_len <= KN_HTTP_RESPONSE_MAX);
}

static void unsupported_scheme_is_config_error(void **state)
{
    (void)state;
    assert_int_equal(post_once("ftp://127.0.0.1/", 1000).status, KN_ERR_CONFIG);
}

static void add_line(kn_http_response *r, const char *line)
{
    kn_http_response_add_header(r, line, strlen(line));
}

static void response_headers_yield_request_id_and_error_type(void **state)
{
    (void)state;
    kn_http_response r;
    kn_http_response_init(&r);
    add_line(&r, "HTTP/1.1 100 Continue\r\n");
    add_line(&r, "x-amzn-RequestId: stale\r\n");
    add_line(&r, "HTTP/1.1 400 Bad Request\r\n");
    add_line(&r, "X-AMZN-REQUESTID:   abc-123  \r\n");
    add_line(&r, "x-amzn-ErrorType: UnrecognizedClientException:http://internal.amazon.com/coral/\r\n");
    add_line(&r, "x-amzn-RequestIdentity: not-it\r\n");
    assert_string_equal(r.request_id, "abc-123");
    assert_string_equal(r.error_type, "UnrecognizedClientException:http://internal.amazon.com/coral/");
    assert_null(strstr((const char *)r.headers.data, "stale"));
    kn_http_response_reset(&r);
    assert_string_equal(r.request_id, "");
    add_line(&r, "x-amz-request-id: s3-style\r\n");
    assert_string_equal(r.request_id, "s3-style");
    kn_http_response_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sends_request_as_given_and_reuses_the_connection),
        cmocka_unit_test(dead_reused_connection_is_not_resent),
        cmocka_unit_test(refused_connection_is_network_error),
        cmocka_unit_test(silent_server_times_out),
        cmocka_unit_test(https_to_a_plain_server_is_tls_error),
        cmocka_unit_test(oversized_response_is_refused),
        cmocka_unit_test(unsupported_scheme_is_config_error),
        cmocka_unit_test(response_headers_yield_request_id_and_error_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
