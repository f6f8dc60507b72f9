/* bench_knd_noop: kinesisd's HTTP stack (knd_http: libuv + http-parser + nghttp2) with a handler that answers every
 * request at once with 200 "{}". It measures the ceiling: what kinesisd could reach if its operations cost nothing.
 *
 *   bench_knd_noop [--host H] [--port P] [--max-connections N]
 *
 * Prints "listening on H:P" on stdout once ready; stops on SIGINT/SIGTERM. See docs/server-http.md for the wrk run. */
#include "../server/http.h" /* not lib/http.h, the client's */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void noop_handler(void *ctx, knd_exchange *x, const knd_request *req)
{
    (void)ctx;
    (void)req;
    static const kn_sigv4_header headers[] = {
        {"Content-Type", 12, "application/x-amz-json-1.1", 26},
        {"x-amzn-RequestId", 16, "00000000-0000-0000-0000-000000000000", 36},
    };
    knd_exchange_respond(x, 200, headers, 2, "{}", 2);
}

static void on_closed(void *ctx)
{
    (void)ctx;
}

typedef struct app {
    knd_http_server *server;
    uv_signal_t sigint, sigterm;
} app;

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    app *a = sig->data;
    knd_http_server_close(a->server, on_closed, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_knd_noop [--host H] [--port P] [--max-connections N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    knd_http_options opts = {.host = "127.0.0.1", .port = 4568, .handler = noop_handler};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--host") == 0)
            opts.host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            opts.port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-connections") == 0)
            opts.max_connections = (size_t)strtoul(argv[++i], NULL, 10);
        else
            return usage();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    opts.loop = &loop;
    app a = {0};
    kn_error err = {0};
    if (knd_http_server_new(&opts, &a.server, &err) != KN_OK) {
        fprintf(stderr, "bench_knd_noop: %s\n", err.message);
        uv_run(&loop, UV_RUN_DEFAULT); /* lets the half-made server release its handles */
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &a.sigint);
    uv_signal_init(&loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    printf("listening on %s:%d\n", opts.host, knd_http_server_port(a.server));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
