/* knd_http: the server runs in-process on port 0 with its loop on a thread of its own; the tests are its clients over
 * plain blocking sockets (HTTP/1.1) and an nghttp2 client session (h2c with prior knowledge).
 *
 * The test handler answers each request with a line describing what it received, after the delay the request asks
 * for in its "x-delay-ms" header (0: at once, inside the handler call). Limits and timeouts are small so the slow
 * client tests take well under a second each. */
#include "../../server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#define MAX_BODY 1024
#define MAX_HEADER 1024
#define HEADER_TIMEOUT_MS 300
#define BODY_TIMEOUT_MS 400
#define IDLE_TIMEOUT_MS 500
#define MAX_CONNECTIONS 4

/* ---------------------------------------------------------------- the server side */

typedef enum { CMD_NONE, CMD_STOP_ACCEPTING, CMD_INFLIGHT, CMD_CLOSE } command;

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    knd_http_server *server;
    int port;
    command cmd;
    size_t cmd_result;
    sem_t done;
    atomic_int handled;
    atomic_int answered;
    atomic_int too_large_seen;
} fixture;

typedef struct pending {
    uv_timer_t timer;
    fixture *f;
    knd_exchange *x;
    int status;
    char body[512];
    char *big;       /* when the request asked for a large answer (x-size) */
    size_t big_len;
} pending;

static const kn_sigv4_header *req_header(const knd_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++) {
        if (strlen(name) == req->headers[i].name_len && memcmp(req->headers[i].name, name, strlen(name)) == 0)
            return &req->headers[i];
    }
    return NULL;
}

static void answer(pending *p)
{
    static const kn_sigv4_header type = {"Content-Type", 12, "text/plain", 10};
    if (p->big)
        knd_exchange_respond(p->x, p->status, &type, 1, p->big, p->big_len);
    else
        knd_exchange_respond(p->x, p->status, &type, 1, p->body, strlen(p->body));
    free(p->big);
    atomic_fetch_add(&p->f->answered, 1);
}

static void on_pending_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    pending *p = t->data;
    answer(p);
    uv_close((uv_handle_t *)&p->timer, on_pending_closed);
}

static void test_handler(void *ctx, knd_exchange *x, const knd_request *req)
{
    fixture *f = ctx;
    atomic_fetch_add(&f->handled, 1);
    if (req->body_too_large)
        atomic_fetch_add(&f->too_large_seen, 1);
    pending *p = calloc(1, sizeof *p);
    if (!p)
        abort(); /* cmocka's asserts cannot jump out of the loop thread */
    p->f = f;
    p->x = x;
    p->status = req->body_too_large ? 413 : 200;
    const kn_sigv4_header *id = req_header(req, "x-id");
    const kn_sigv4_header *host = req_header(req, "host");
    const kn_sigv4_header *authority = req_header(req, ":authority");
    const kn_sigv4_header *delay = req_header(req, "x-delay-ms");
    snprintf(p->body, sizeof p->body,
             "id=%.*s method=%s path=%.*s query=%.*s len=%zu too_large=%d h2=%d host=%.*s authority=%.*s",
             id ? (int)id->value_len : 0, id ? id->value : "", req->method, (int)req->path_len, req->path,
             (int)req->query_len, req->query, req->body_len, req->body_too_large, req->http2,
             host ? (int)host->value_len : 0, host ? host->value : "", authority ? (int)authority->value_len : 0,
             authority ? authority->value : "");
    const kn_sigv4_header *size = req_header(req, "x-size");
    if (size) {
        p->big_len = (size_t)atol(size->value);
        p->big = malloc(p->big_len);
        if (!p->big)
            abort();
        memset(p->big, 'r', p->big_len);
        memcpy(p->big, p->body, strlen(p->body) < p->big_len ? strlen(p->body) : p->big_len);
    }
    int ms = delay ? atoi(delay->value) : 0;
    if (ms <= 0) {
        answer(p);
        free(p);
        return;
    }
    uv_timer_init(&f->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_delay, (uint64_t)ms, 0);
}

static void on_server_closed(void *ctx)
{
    fixture *f = ctx;
    uv_close((uv_handle_t *)&f->wake, NULL);
}

static void on_wake(uv_async_t *a)
{
    fixture *f = a->data;
    switch (f->cmd) {
    case CMD_STOP_ACCEPTING:
        knd_http_server_stop_accepting(f->server);
        break;
    case CMD_INFLIGHT:
        f->cmd_result = knd_http_server_inflight(f->server);
        break;
    case CMD_CLOSE:
        knd_http_server_close(f->server, on_server_closed, f);
        break;
    case CMD_NONE:
        break;
    }
    f->cmd = CMD_NONE;
    sem_post(&f->done);
}

static void *loop_thread(void *arg)
{
    fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static size_t run_on_loop(fixture *f, command cmd)
{
    f->cmd = cmd;
    uv_async_send(&f->wake);
    sem_wait(&f->done);
    return f->cmd_result;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    sem_init(&f->done, 0, 0);
    uv_async_init(&f->loop, &f->wake, on_wake);
    f->wake.data = f;
    knd_http_options o = {
        .loop = &f->loop,
        .host = "127.0.0.1",
        .port = 0,
        .max_connections = MAX_CONNECTIONS,
        .max_header_bytes = MAX_HEADER,
        .max_body_bytes = MAX_BODY,
        .header_timeout_ms = HEADER_TIMEOUT_MS,
        .body_timeout_ms = BODY_TIMEOUT_MS,
        .idle_timeout_ms = IDLE_TIMEOUT_MS,
        .handler = test_handler,
        .handler_ctx = f,
    };
    kn_error err = {0};
    assert_int_equal(knd_http_server_new(&o, &f->server, &err), KN_OK);
    f->port = knd_http_server_port(f->server);
    assert_true(f->port > 0);
    assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    /* Let delayed answers go out first: a handler must answer every exchange. */
    for (int i = 0; i < 300 && atomic_load(&f->answered) < atomic_load(&f->handled); i++)
        usleep(10000);
    assert_int_equal(atomic_load(&f->answered), atomic_load(&f->handled));
    run_on_loop(f, CMD_CLOSE);
    pthread_join(f->thread, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle was closed */
    sem_destroy(&f->done);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- HTTP/1.1 client helpers */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

typedef struct client {
    int fd;
    char buf[256 * 1024];
    size_t len;
} client;

typedef struct response {
    int status;
    char head[2048];
    char body[2048];
    size_t body_len;
} response;

/* Reads one whole response (head and Content-Length body) off c; false on EOF or timeout first. */
static bool read_response(client *c, response *r)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t head_len = (size_t)(end - c->buf) + 4;
            const char *cl = memmem(c->buf, head_len, "Content-Length: ", 16);
            size_t body_len = cl ? strtoul(cl + 16, NULL, 10) : 0;
            if (c->len >= head_len + body_len) {
                assert_true(head_len < sizeof r->head);
                memcpy(r->head, c->buf, head_len);
                /* Large bodies are checked by length; their start is kept. */
                memcpy(r->body, c->buf + head_len, body_len < sizeof r->body ? body_len : sizeof r->body - 1);
                r->body_len = body_len;
                r->status = atoi(c->buf + 9);
                memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
                c->len -= head_len + body_len;
                return true;
            }
        }
        assert_true(c->len < sizeof c->buf);
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n <= 0)
            return false;
        c->len += (size_t)n;
    }
}

/* True when the server closes fd (EOF or reset) within ms. */
static bool closed_within(int fd, int ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)ms;
    char buf[4096];
    for (;;) {
        int left = (int)(deadline > mono_ms() ? deadline - mono_ms() : 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            return false;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
}

/* Reads the next answer on c, which must be a whole response with the given status; it stays in *r for more checks. */
static void expect_answer(client *c, response *r, int status)
{
    assert_true(read_response(c, r));
    assert_int_equal(r->status, status);
}

/* Whether a server timeout of timeout_ms that started at t0 has fired on time: not early (but for slack_ms of timer
 * granularity) and within a second of its due time. Call it as soon as the timeout is seen. */
static bool fired_on_time(uint64_t t0, uint64_t timeout_ms, uint64_t slack_ms)
{
    uint64_t took = mono_ms() - t0;
    return took >= timeout_ms - slack_ms && took < timeout_ms + 1000;
}

static client *client_new(fixture *f)
{
    client *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = connect_to(f->port);
    assert_true(c->fd >= 0);
    return c;
}

static void client_free(client *c)
{
    close(c->fd);
    free(c);
}

static char *post(char *buf, size_t cap, const char *id, int delay_ms, const char *body)
{
    snprintf(buf, cap,
             "POST /?a=1 HTTP/1.1\r\nHost: anything.example:99\r\nX-Id: %s\r\nX-Delay-Ms: %d\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             id, delay_ms, strlen(body), body);
    return buf;
}

/* ---------------------------------------------------------------- HTTP/1.1 tests */

static void test_answers_with_length_date_and_keeps_alive(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char req[512];
    response r;
    for (int i = 0; i < 3; i++) {
        send_str(c->fd, post(req, sizeof req, "k", 0, "{\"x\":1}"));
        expect_answer(c, &r, 200);
        assert_non_null(strstr(r.head, "Content-Length: "));
        assert_non_null(strstr(r.head, "\r\nDate: "));
        assert_null(strstr(r.head, "Connection: close"));
        assert_non_null(strstr(r.body, "method=POST path=/ query=a=1 len=7 too_large=0 h2=0 host=anything.example:99"));
    }
    assert_int_equal(atomic_load(&f->handled), 3);
    client_free(c);
}

static void test_pipelined_requests_are_answered_in_order(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    /* The first request is answered last by the handler; the wire order must still be 1, 2, 3. */
    char a[256], b[256], d[256], all[1024];
    snprintf(all, sizeof all, "%s%s%s", post(a, sizeof a, "1", 300, "one"), post(b, sizeof b, "2", 0, "two"),
             post(d, sizeof d, "3", 100, "three"));
    send_str(c->fd, all);
    response r;
    const char *ids[] = {"id=1 ", "id=2 ", "id=3 "};
    for (int i = 0; i < 3; i++) {
        expect_answer(c, &r, 200);
        assert_true(strncmp(r.body, ids[i], 5) == 0);
    }
    client_free(c);
}

static void test_deep_pipeline_pauses_and_resumes_in_order(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    /* Far more than the server keeps outstanding per connection: it stops reading, then resumes from where the
     * parser paused, in the middle of what it had already read. */
    enum { N = 60 };
    static char all[N * 200];
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        char id[16], req[200];
        snprintf(id, sizeof id, "%d", i);
        post(req, sizeof req, id, (i % 3) * 15, "p");
        memcpy(all + len, req, strlen(req));
        len += strlen(req);
    }
    send_all(c->fd, all, len);
    response r;
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "id=%d ", i);
        expect_answer(c, &r, 200);
        assert_true(strncmp(r.body, want, strlen(want)) == 0);
    }
    client_free(c);
}

/* A client that pipelines requests for large answers and does not read them: the server stops reading once its
 * unsent answers pass its high-water mark, and everything arrives complete and in order once the client reads. */
static void test_client_not_reading_answers_is_paced(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    enum { N = 100, SIZE = 100 * 1024 };
    char req[256];
    static char all[N * 256];
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        int n = snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: h\r\nX-Id: %d\r\nX-Size: %d\r\n\r\n", i, SIZE);
        memcpy(all + len, req, (size_t)n);
        len += (size_t)n;
    }
    send_all(c->fd, all, len);
    usleep(300000);
    int handled = atomic_load(&f->handled);
    assert_true(handled < N); /* 10 MB of answers were not all produced into an unread socket */
    response r;
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "id=%d ", i);
        expect_answer(c, &r, 200);
        assert_int_equal(r.body_len, SIZE);
        assert_true(strncmp(r.body, want, strlen(want)) == 0);
    }
    client_free(c);
}

static void test_delayed_answer_arrives_later(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char req[256];
    uint64_t t0 = mono_ms();
    send_str(c->fd, post(req, sizeof req, "slow", 200, ""));
    while (atomic_load(&f->handled) == 0)
        usleep(1000);
    assert_int_equal(run_on_loop(f, CMD_INFLIGHT), 1);
    response r;
    assert_true(read_response(c, &r));
    assert_true(mono_ms() - t0 >= 190);
    assert_int_equal(r.status, 200);
    assert_int_equal(run_on_loop(f, CMD_INFLIGHT), 0);
    client_free(c);
}

static void test_oversized_body_is_refused_without_buffering(void **state)
{
    fixture *f = *state;
    client *big = client_new(f);
    client *other = client_new(f);
    char head[256];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", 100 * MAX_BODY);
    send_str(big->fd, head);
    response r;
    expect_answer(big, &r, 413);
    assert_non_null(strstr(r.body, "len=0 too_large=1"));
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(closed_within(big->fd, 3000));
    /* Others are served as usual. */
    char req[256];
    send_str(other->fd, post(req, sizeof req, "o", 0, "fine"));
    expect_answer(other, &r, 200);
    assert_int_equal(atomic_load(&f->too_large_seen), 1);
    client_free(big);
    client_free(other);
}

static void test_oversized_chunked_body_is_refused(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    send_str(c->fd, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[700];
    memset(chunk, 'a', sizeof chunk);
    char size_line[16];
    snprintf(size_line, sizeof size_line, "%zx\r\n", sizeof chunk);
    for (int i = 0; i < 2; i++) {
        send_str(c->fd, size_line);
        send_all(c->fd, chunk, sizeof chunk);
        send_str(c->fd, "\r\n");
    }
    response r;
    expect_answer(c, &r, 413);
    assert_true(closed_within(c->fd, 3000));
    client_free(c);
}

static void test_body_within_limit_is_delivered_whole(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char body[MAX_BODY + 1];
    memset(body, 'b', MAX_BODY);
    body[MAX_BODY] = '\0';
    char head[256];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", MAX_BODY);
    send_str(c->fd, head);
    send_all(c->fd, body, MAX_BODY);
    response r;
    expect_answer(c, &r, 200);
    assert_non_null(strstr(r.body, "len=1024 too_large=0"));
    client_free(c);
}

static void test_oversized_headers_get_431_and_close(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char big[MAX_HEADER + 200];
    memset(big, 'h', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char req[sizeof big + 128];
    snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", big);
    send_str(c->fd, req);
    response r;
    expect_answer(c, &r, 431);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(closed_within(c->fd, 3000));
    assert_int_equal(atomic_load(&f->handled), 0);
    client_free(c);
}

static void test_malformed_request_gets_400_and_close(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    send_str(c->fd, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: zz\r\n\r\n");
    response r;
    expect_answer(c, &r, 400);
    assert_true(closed_within(c->fd, 3000));
    assert_int_equal(atomic_load(&f->handled), 0);
    client_free(c);
}

static void test_slow_headers_are_cut_off(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    uint64_t t0 = mono_ms();
    send_str(c->fd, "POST / HTTP/1.1\r\nHost: h\r\n"); /* and never the rest */
    usleep(100000);
    send_str(c->fd, "X-Trickle: 1\r\n");
    assert_true(closed_within(c->fd, 3000));
    assert_true(fired_on_time(t0, HEADER_TIMEOUT_MS, 20));
    assert_int_equal(atomic_load(&f->handled), 0);
    client_free(c);
}

static void test_silent_connection_is_cut_off(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    assert_true(closed_within(c->fd, 3000)); /* never sends a byte: the header timeout runs from accept */
    client_free(c);
}

static void test_slow_body_is_cut_off(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    uint64_t t0 = mono_ms();
    send_str(c->fd, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly a part");
    assert_true(closed_within(c->fd, 3000));
    assert_true(fired_on_time(t0, BODY_TIMEOUT_MS, 20));
    assert_int_equal(atomic_load(&f->handled), 0);
    client_free(c);
}

static void test_idle_keep_alive_connection_is_closed(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char req[256];
    response r;
    send_str(c->fd, post(req, sizeof req, "i", 0, ""));
    assert_true(read_response(c, &r));
    uint64_t t0 = mono_ms();
    assert_true(closed_within(c->fd, 3000));
    assert_true(fired_on_time(t0, IDLE_TIMEOUT_MS, 50));
    client_free(c);
}

static void test_connections_over_the_limit_are_closed_when_all_are_busy(void **state)
{
    fixture *f = *state;
    client *held[MAX_CONNECTIONS];
    char req[256];
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        held[i] = client_new(f);
        send_str(held[i]->fd, post(req, sizeof req, "busy", 400, "")); /* in flight for 400 ms */
    }
    while (atomic_load(&f->handled) < MAX_CONNECTIONS)
        usleep(1000);
    client *extra = client_new(f);
    assert_true(closed_within(extra->fd, 300));
    client_free(extra);
    /* The busy ones are unharmed. */
    response r;
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        expect_answer(held[i], &r, 200);
        client_free(held[i]);
    }
}

static void test_idle_connections_make_room_for_new_clients(void **state)
{
    fixture *f = *state;
    client *idle[MAX_CONNECTIONS];
    char req[256];
    response r;
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        idle[i] = client_new(f);
        send_str(idle[i]->fd, post(req, sizeof req, "i", 0, "")); /* served, then left open and idle */
        assert_true(read_response(idle[i], &r));
        usleep(5000);
    }
    /* At the cap, a newcomer is served: the longest-idle connection (the first) is closed for it. */
    client *next = client_new(f);
    send_str(next->fd, post(req, sizeof req, "n", 0, ""));
    expect_answer(next, &r, 200);
    assert_true(closed_within(idle[0]->fd, 1000));
    send_str(idle[1]->fd, post(req, sizeof req, "still", 0, ""));
    expect_answer(idle[1], &r, 200);
    client_free(next);
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        client_free(idle[i]);
}

static void test_expect_100_continue(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    send_str(c->fd, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    char buf[64] = {0};
    ssize_t n = recv(c->fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_str(c->fd, "hello");
    response r;
    expect_answer(c, &r, 200);
    assert_non_null(strstr(r.body, "len=5 "));
    client_free(c);
}

static void test_http10_without_keep_alive_is_closed_after_answer(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    send_str(c->fd, "GET /x HTTP/1.0\r\n\r\n");
    response r;
    expect_answer(c, &r, 200);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(closed_within(c->fd, 3000));
    client_free(c);
}

static void test_absolute_form_target_is_reduced_to_path(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    send_str(c->fd, "POST http://acct.data-kinesis.us-east-1.example/p/q?z=9 HTTP/1.1\r\nHost: whatever\r\n"
                    "Content-Length: 0\r\n\r\n");
    response r;
    assert_true(read_response(c, &r));
    assert_non_null(strstr(r.body, "path=/p/q query=z=9 "));
    client_free(c);
}

static void test_client_gone_before_answer(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char req[256];
    send_str(c->fd, post(req, sizeof req, "gone", 150, ""));
    usleep(50000);
    client_free(c); /* the handler answers 100 ms later, into the void: no crash, no leak (ASan) */
    for (int i = 0; i < 100 && atomic_load(&f->answered) == 0; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&f->answered), 1);
    assert_int_equal(run_on_loop(f, CMD_INFLIGHT), 0);
}

static void test_client_half_close_still_gets_its_answer(void **state)
{
    fixture *f = *state;
    client *c = client_new(f);
    char req[256];
    send_str(c->fd, post(req, sizeof req, "half", 100, ""));
    shutdown(c->fd, SHUT_WR);
    response r;
    expect_answer(c, &r, 200);
    assert_true(closed_within(c->fd, 3000));
    client_free(c);
}

static void test_stop_accepting_finishes_in_flight_requests(void **state)
{
    fixture *f = *state;
    client *busy = client_new(f);
    client *idle = client_new(f);
    char req[256];
    send_str(busy->fd, post(req, sizeof req, "inflight", 200, ""));
    usleep(50000);
    run_on_loop(f, CMD_STOP_ACCEPTING);
    assert_true(connect_to(f->port) < 0); /* the listener is gone */
    assert_true(closed_within(idle->fd, 1000));
    response r;
    expect_answer(busy, &r, 200);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(closed_within(busy->fd, 3000));
    client_free(busy);
    client_free(idle);
}

/* ---------------------------------------------------------------- HTTP/2 (h2c, prior knowledge) */

#define H2_MAX_TEST_STREAMS 100

typedef struct h2_stream {
    int32_t id;
    int status;
    char body[1024];
    size_t body_len;
    bool closed;
    uint32_t error_code;
    const char *send_body;
    size_t send_len, send_off;
    bool hold_open; /* after the body, keep the stream open (no END_STREAM) */
} h2_stream;

typedef struct h2_client {
    int fd;
    nghttp2_session *session;
    h2_stream streams[H2_MAX_TEST_STREAMS];
    int count;
    int32_t close_order[H2_MAX_TEST_STREAMS];
    int closed;
} h2_client;

static h2_stream *h2_find(h2_client *h, int32_t id)
{
    for (int i = 0; i < h->count; i++) {
        if (h->streams[i].id == id)
            return &h->streams[i];
    }
    return NULL;
}

static ssize_t h2c_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    h2_client *h = ud;
    send_all(h->fd, (const char *)data, len);
    return (ssize_t)len;
}

static int h2c_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    (void)valuelen;
    h2_stream *st = h2_find(ud, frame->hd.stream_id);
    if (st && namelen == 7 && memcmp(name, ":status", 7) == 0)
        st->status = atoi((const char *)value);
    return 0;
}

static int h2c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    (void)flags;
    h2_stream *st = h2_find(ud, id);
    if (st && st->body_len + len < sizeof st->body) {
        memcpy(st->body + st->body_len, data, len);
        st->body_len += len;
    }
    return 0;
}

static int h2c_on_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    (void)s;
    h2_client *h = ud;
    h2_stream *st = h2_find(h, id);
    if (st) {
        st->closed = true;
        st->error_code = error_code;
        h->close_order[h->closed++] = id;
    }
    return 0;
}

static ssize_t h2c_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                             nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    h2_stream *st = src->ptr;
    size_t n = st->send_len - st->send_off;
    if (n == 0 && st->hold_open)
        return NGHTTP2_ERR_DEFERRED;
    if (n > length)
        n = length;
    memcpy(buf, st->send_body + st->send_off, n);
    st->send_off += n;
    if (st->send_off == st->send_len && !st->hold_open)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static h2_client *h2_connect(fixture *f)
{
    h2_client *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->fd = connect_to(f->port);
    assert_true(h->fd >= 0);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, h2c_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_on_close);
    assert_int_equal(nghttp2_session_client_new(&h->session, cb, h), 0);
    nghttp2_session_callbacks_del(cb);
    /* nghttp2's client session sends the preface itself: kinesisd recognises h2c from it (prior knowledge). */
    assert_int_equal(nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    return h;
}

/* Submits a POST whose content-length header says declared_len and whose DATA carries body; hold_open leaves the
 * stream open after it. */
static int32_t h2_request_ex(h2_client *h, const char *id, int delay_ms, const char *body, size_t body_len,
                             size_t declared_len, bool hold_open)
{
    char delay[16], length[24];
    snprintf(delay, sizeof delay, "%d", delay_ms);
    snprintf(length, sizeof length, "%zu", declared_len);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    /* :authority before :path, as Node.js sends them. */
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":authority", "123456789012.data-kinesis.example"),
                        NV(":scheme", "http"), NV(":path", "/h2?x=y"),
                        NV("x-id", id),        NV("x-delay-ms", delay),
                        NV("content-length", length)};
#undef NV
    assert_true(h->count < H2_MAX_TEST_STREAMS);
    h2_stream *st = &h->streams[h->count];
    st->send_body = body;
    st->send_len = body_len;
    st->hold_open = hold_open;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = h2c_read_body};
    int32_t sid = nghttp2_submit_request(h->session, NULL, nva, sizeof nva / sizeof nva[0],
                                         body_len || hold_open ? &prd : NULL, NULL);
    assert_true(sid > 0);
    st->id = sid;
    h->count++;
    return sid;
}

static int32_t h2_request(h2_client *h, const char *id, int delay_ms, const char *body, size_t body_len)
{
    return h2_request_ex(h, id, delay_ms, body, body_len, body_len, false);
}

/* Exchanges frames until `want` streams have closed; false on timeout or EOF. */
static bool h2_run(h2_client *h, int want)
{
    uint64_t deadline = mono_ms() + 5000;
    while (h->closed < want && mono_ms() < deadline) {
        assert_int_equal(nghttp2_session_send(h->session), 0);
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        uint8_t buf[16384];
        ssize_t n = recv(h->fd, buf, sizeof buf, 0);
        if (n <= 0)
            return false;
        assert_int_equal(nghttp2_session_mem_recv(h->session, buf, (size_t)n), n);
    }
    return h->closed >= want;
}

static void h2_free(h2_client *h)
{
    nghttp2_session_del(h->session);
    close(h->fd);
    free(h);
}

static void test_h2c_prior_knowledge_streams_complete_out_of_order(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    int32_t slow = h2_request(h, "slow", 300, "abc", 3);
    int32_t fast = h2_request(h, "fast", 0, NULL, 0);
    assert_true(h2_run(h, 2));
    assert_int_equal(h->close_order[0], fast); /* no head-of-line blocking between streams */
    assert_int_equal(h->close_order[1], slow);
    h2_stream *s = h2_find(h, slow), *q = h2_find(h, fast);
    assert_int_equal(s->status, 200);
    assert_int_equal(q->status, 200);
    s->body[s->body_len] = '\0';
    assert_non_null(strstr(s->body, "id=slow method=POST path=/h2 query=x=y len=3 too_large=0 h2=1 "
                                    "host=123456789012.data-kinesis.example "
                                    "authority=123456789012.data-kinesis.example"));
    h2_free(h);
}

static void test_h2_oversized_body_is_refused_and_connection_stays_usable(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    static char big[3 * MAX_BODY];
    memset(big, 'z', sizeof big);
    int32_t sid = h2_request(h, "big", 0, big, sizeof big);
    assert_true(h2_run(h, 1));
    h2_stream *st = h2_find(h, sid);
    assert_int_equal(st->status, 413);
    int32_t next = h2_request(h, "next", 0, "ok", 2);
    assert_true(h2_run(h, 2));
    assert_int_equal(h2_find(h, next)->status, 200);
    assert_int_equal(atomic_load(&f->too_large_seen), 1);
    h2_free(h);
}

static void test_h2_many_streams_on_one_connection(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    for (int i = 0; i < 8; i++)
        h2_request(h, "m", (8 - i) * 10, "x", 1);
    assert_true(h2_run(h, 8));
    for (int i = 0; i < 8; i++)
        assert_int_equal(h->streams[i].status, 200);
    assert_int_equal(atomic_load(&f->handled), 8);
    h2_free(h);
}

/* 100 bodies of 1000 bytes held by the handler exceed the connection's flow-control window (64 KiB here): the
 * client has to wait for answers to free window, and every request still succeeds, none is refused. */
static void test_h2_bodies_beyond_the_connection_window_wait_not_fail(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    static char body[1000];
    memset(body, 'w', sizeof body);
    uint64_t t0 = mono_ms();
    for (int i = 0; i < H2_MAX_TEST_STREAMS; i++)
        h2_request(h, "w", 100, body, sizeof body);
    assert_true(h2_run(h, H2_MAX_TEST_STREAMS));
    assert_true(mono_ms() - t0 >= 190); /* two rounds of 100 ms: the later bodies waited for window */
    for (int i = 0; i < H2_MAX_TEST_STREAMS; i++) {
        assert_int_equal(h->streams[i].status, 200);
        assert_non_null(strstr(h->streams[i].body, "len=1000 too_large=0"));
    }
    assert_int_equal(atomic_load(&f->too_large_seen), 0);
    h2_free(h);
}

static void test_h2_slow_stream_is_reset_and_connection_lives_on(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    uint64_t t0 = mono_ms();
    int32_t slow = h2_request_ex(h, "trickle", 0, "abc", 3, 100, true); /* declares 100 bytes, sends 3 */
    assert_true(h2_run(h, 1));
    bool on_time = fired_on_time(t0, BODY_TIMEOUT_MS, 20);
    h2_stream *st = h2_find(h, slow);
    assert_int_equal(st->error_code, NGHTTP2_CANCEL);
    assert_int_equal(st->status, 0);
    assert_true(on_time);
    int32_t next = h2_request(h, "next", 0, "ok", 2);
    assert_true(h2_run(h, 2));
    assert_int_equal(h2_find(h, next)->status, 200);
    assert_int_equal(atomic_load(&f->handled), 1);
    h2_free(h);
}

static void test_h2_oversized_headers_get_431(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    static char big[MAX_HEADER + 100];
    memset(big, 'q', sizeof big - 1);
    int32_t sid = h2_request(h, big, 0, NULL, 0); /* the id header is too big */
    assert_true(h2_run(h, 1));
    assert_int_equal(h2_find(h, sid)->status, 431);
    assert_int_equal(atomic_load(&f->handled), 0);
    h2_free(h);
}

static void test_h2_client_gone_before_answer(void **state)
{
    fixture *f = *state;
    h2_client *h = h2_connect(f);
    h2_request(h, "gone", 150, NULL, 0);
    assert_int_equal(nghttp2_session_send(h->session), 0);
    usleep(50000);
    h2_free(h);
    for (int i = 0; i < 100 && atomic_load(&f->answered) == 0; i++)
        usleep(10000);
    assert_int_equal(run_on_loop(f, CMD_INFLIGHT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_answers_with_length_date_and_keeps_alive),
        T(test_pipelined_requests_are_answered_in_order),
        T(test_deep_pipeline_pauses_and_resumes_in_order),
        T(test_client_not_reading_answers_is_paced),
        T(test_delayed_answer_arrives_later),
        T(test_oversized_body_is_refused_without_buffering),
        T(test_oversized_chunked_body_is_refused),
        T(test_body_within_limit_is_delivered_whole),
        T(test_oversized_headers_get_431_and_close),
        T(test_malformed_request_gets_400_and_close),
        T(test_slow_headers_are_cut_off),
        T(test_silent_connection_is_cut_off),
        T(test_slow_body_is_cut_off),
        T(test_idle_keep_alive_connection_is_closed),
        T(test_connections_over_the_limit_are_closed_when_all_are_busy),
        T(test_idle_connections_make_room_for_new_clients),
        T(test_expect_100_continue),
        T(test_http10_without_keep_alive_is_closed_after_answer),
        T(test_absolute_form_target_is_reduced_to_path),
        T(test_client_gone_before_answer),
        T(test_client_half_close_still_gets_its_answer),
        T(test_stop_accepting_finishes_in_flight_requests),
        T(test_h2c_prior_knowledge_streams_complete_out_of_order),
        T(test_h2_oversized_body_is_refused_and_connection_stays_usable),
        T(test_h2_many_streams_on_one_connection),
        T(test_h2_bodies_beyond_the_connection_window_wait_not_fail),
        T(test_h2_slow_stream_is_reset_and_connection_lives_on),
        T(test_h2_oversized_headers_get_431),
        T(test_h2_client_gone_before_answer),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
