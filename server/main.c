/* kinesisd: a durable, Kinesis-compatible server. This file only wires the modules together:
 *   options → knd_store_open → knd_auth_new → knd_api_new → knd_http_server_new(knd_api_handle) → uv_run,
 * and shuts down in the reverse order on SIGTERM/SIGINT: stop accepting, let in-flight requests and pending commits
 * finish (at most SHUTDOWN_GRACE_MS; a second signal stops waiting for clients), close the HTTP server, release the
 * API, flush and close the store, exit 0. Logs go to stderr, one line per event (server/log.h). */
#include "api.h"
#include "auth.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 4567
#define DEFAULT_DATA_DIR "./kinesisd-data"
#define DEFAULT_STATUS_DELAY_MS 50
#define DEFAULT_MAX_BODY_BYTES (12u * 1024 * 1024) /* AWS's 10 MiB PutRecords request plus JSON/base64 overhead */
#define SHUTDOWN_GRACE_MS 30000
#define SHUTDOWN_POLL_MS 10
#define MAX_CREATE_STREAMS 64

typedef struct create_stream {
    const char *name;
    uint32_t shards;
} create_stream;

typedef struct config {
    const char *host;
    int port;
    const char *data_dir;
    bool in_memory;
    uint64_t memory_limit_mb; /* --in-memory: 0 = the store's default */
    const char *credentials;
    bool allow_anonymous;
    const char *region;
    create_stream streams[MAX_CREATE_STREAMS];
    size_t stream_count;
    uint32_t create_delay_ms, delete_delay_ms, update_delay_ms;
    knd_log_level log_level;
    size_t max_connections;
    size_t max_body_bytes;
    uint32_t header_timeout_ms, body_timeout_ms, idle_timeout_ms;
    const char *tls_cert, *tls_key;
} config;

typedef enum { RUNNING, DRAINING, CLOSING_HTTP, WAITING_COMMITS, DONE } phase;

typedef struct kinesisd {
    config cfg;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
    knd_store *store;
    knd_auth *auth;
    knd_api *api;
    knd_http_server *http;
    phase phase;
    uint64_t drain_deadline;
} kinesisd;

/* ---------------------------------------------------------------- options */

static const char usage_text[] =
    "usage: kinesisd [options]\n"
    "\n"
    "A local, durable Amazon Kinesis Data Streams server for the aws CLI, boto3, the AWS SDKs and the kinesis tool.\n"
    "\n"
    "  --host ADDR              listen address (default " DEFAULT_HOST ")\n"
    "  --port PORT              listen port (default 4567; 0 picks a free one)\n"
    "  --data-dir DIR           where streams and records are kept (default " DEFAULT_DATA_DIR ")\n"
    "  --in-memory              keep nothing on disk (throwaway runs)\n"
    "  --memory-limit-mb MB     --in-memory only: record data kept at most (default 1024); puts beyond it are\n"
    "                           refused with ServiceUnavailable until retention frees room\n"
    "  --credentials FILE       accept only the keys in FILE (AWS shared-credentials format; each profile is a key:\n"
    "                           aws_access_key_id, aws_secret_access_key, optional aws_session_token and\n"
    "                           expiration = 2026-11-25T20:00:00Z). Without it, AWS_ACCESS_KEY_ID and\n"
    "                           AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the environment are the one key;\n"
    "                           with neither, any well-formed signature is accepted\n"
    "  --allow-anonymous        allow listening on a non-loopback address with no credentials configured\n"
    "  --region REGION          only accept requests signed for REGION, and use it in ARNs (default: any region is\n"
    "                           accepted, ARNs say us-east-1)\n"
    "  --create-stream NAME[:SHARDS]\n"
    "                           create a stream (default 1 shard) at start-up unless it exists; repeatable\n"
    "  --create-delay-ms MS     time a new stream stays CREATING (default 50; AWS takes ~10000)\n"
    "  --delete-delay-ms MS     time a deleted stream stays DELETING (default 50)\n"
    "  --update-delay-ms MS     time an updated stream stays UPDATING (default 50)\n"
    "  --max-connections N      connections served at once; more are closed (default 1024)\n"
    "  --max-body-bytes N       largest request body (default 12582912); larger ones are refused unread\n"
    "  --header-timeout-ms MS   time a client has to send a request's headers (default 10000)\n"
    "  --body-timeout-ms MS     time a client has to send a request's body (default 30000)\n"
    "  --idle-timeout-ms MS     idle keep-alive connections are closed after this (default 60000)\n"
    "  --tls-cert FILE          serve https: PEM certificate chain (server certificate first); needs --tls-key.\n"
    "                           ALPN offers h2 and http/1.1 (default: plain http, HTTP/1.1 and h2c)\n"
    "  --tls-key FILE           the certificate's PEM private key (unencrypted)\n"
    "  --log-level LEVEL        debug, info, warn or error (default info)\n"
    "  --help                   this text\n"
    "  --version                the version\n";

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_DATA_DIR,
    OPT_IN_MEMORY,
    OPT_MEMORY_LIMIT,
    OPT_CREDENTIALS,
    OPT_ALLOW_ANONYMOUS,
    OPT_REGION,
    OPT_CREATE_STREAM,
    OPT_CREATE_DELAY,
    OPT_DELETE_DELAY,
    OPT_UPDATE_DELAY,
    OPT_MAX_CONNECTIONS,
    OPT_MAX_BODY,
    OPT_HEADER_TIMEOUT,
    OPT_BODY_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_LOG_LEVEL,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"in-memory", no_argument, NULL, OPT_IN_MEMORY},
    {"memory-limit-mb", required_argument, NULL, OPT_MEMORY_LIMIT},
    {"credentials", required_argument, NULL, OPT_CREDENTIALS},
    {"allow-anonymous", no_argument, NULL, OPT_ALLOW_ANONYMOUS},
    {"region", required_argument, NULL, OPT_REGION},
    {"create-stream", required_argument, NULL, OPT_CREATE_STREAM},
    {"create-delay-ms", required_argument, NULL, OPT_CREATE_DELAY},
    {"delete-delay-ms", required_argument, NULL, OPT_DELETE_DELAY},
    {"update-delay-ms", required_argument, NULL, OPT_UPDATE_DELAY},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"header-timeout-ms", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"body-timeout-ms", required_argument, NULL, OPT_BODY_TIMEOUT},
    {"idle-timeout-ms", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Parses a decimal in [min, max]; false for anything else. */
static bool parse_number(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool bad_value(const char *option, const char *value, const char *want)
{
    fprintf(stderr, "kinesisd: --%s '%s': %s\n", option, value, want);
    return false;
}

static bool parse_stream_spec(config *cfg, char *spec)
{
    if (cfg->stream_count == MAX_CREATE_STREAMS)
        return bad_value("create-stream", spec, "too many streams at start-up (at most 64)");
    char *colon = strrchr(spec, ':');
    unsigned long long shards = 1;
    if (colon) {
        if (!parse_number(colon + 1, 1, 10000, &shards))
            return bad_value("create-stream", spec, "expected NAME or NAME:SHARDS with SHARDS 1-10000");
        *colon = '\0';
    }
    cfg->streams[cfg->stream_count++] = (create_stream){spec, (uint32_t)shards};
    return true;
}

static bool parse_ms(const char *option, const char *value, unsigned long long min, uint32_t *out)
{
    unsigned long long v;
    if (!parse_number(value, min, 24ULL * 3600 * 1000, &v)) {
        char want[64];
        snprintf(want, sizeof want, "expected milliseconds, %llu to 86400000", min);
        return bad_value(option, value, want);
    }
    *out = (uint32_t)v;
    return true;
}

/* Returns 0 to run, or the exit status (after printing help, the version or an error). */
static int parse_options(int argc, char **argv, config *cfg)
{
    *cfg = (config){
        .host = DEFAULT_HOST,
        .port = DEFAULT_PORT,
        .data_dir = DEFAULT_DATA_DIR,
        .create_delay_ms = DEFAULT_STATUS_DELAY_MS,
        .delete_delay_ms = DEFAULT_STATUS_DELAY_MS,
        .update_delay_ms = DEFAULT_STATUS_DELAY_MS,
        .max_body_bytes = DEFAULT_MAX_BODY_BYTES,
        .log_level = KND_LOG_INFO,
    };
    bool data_dir_given = false;
    unsigned long long n;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case OPT_HOST:
            cfg->host = optarg;
            break;
        case OPT_PORT:
            ok = parse_number(optarg, 0, 65535, &n) ? (cfg->port = (int)n, true)
                                                    : bad_value("port", optarg, "expected 0-65535");
            break;
        case OPT_DATA_DIR:
            cfg->data_dir = optarg;
            data_dir_given = true;
            break;
        case OPT_IN_MEMORY:
            cfg->in_memory = true;
            break;
        case OPT_MEMORY_LIMIT:
            ok = parse_number(optarg, 1, 1ULL << 30, &n) ? (cfg->memory_limit_mb = n, true)
                                                         : bad_value("memory-limit-mb", optarg, "expected 1-1073741824");
            break;
        case OPT_CREDENTIALS:
            cfg->credentials = optarg;
            break;
        case OPT_ALLOW_ANONYMOUS:
            cfg->allow_anonymous = true;
            break;
        case OPT_REGION:
            cfg->region = optarg;
            break;
        case OPT_CREATE_STREAM:
            ok = parse_stream_spec(cfg, optarg);
            break;
        case OPT_CREATE_DELAY:
            ok = parse_ms("create-delay-ms", optarg, 0, &cfg->create_delay_ms);
            break;
        case OPT_DELETE_DELAY:
            ok = parse_ms("delete-delay-ms", optarg, 0, &cfg->delete_delay_ms);
            break;
        case OPT_UPDATE_DELAY:
            ok = parse_ms("update-delay-ms", optarg, 0, &cfg->update_delay_ms);
            break;
        case OPT_HEADER_TIMEOUT:
            ok = parse_ms("header-timeout-ms", optarg, 1, &cfg->header_timeout_ms);
            break;
        case OPT_BODY_TIMEOUT:
            ok = parse_ms("body-timeout-ms", optarg, 1, &cfg->body_timeout_ms);
            break;
        case OPT_IDLE_TIMEOUT:
            ok = parse_ms("idle-timeout-ms", optarg, 1, &cfg->idle_timeout_ms);
            break;
        case OPT_MAX_CONNECTIONS:
            ok = parse_number(optarg, 1, 1000000, &n) ? (cfg->max_connections = (size_t)n, true)
                                                       : bad_value("max-connections", optarg, "expected 1-1000000");
            break;
        case OPT_MAX_BODY:
            ok = parse_number(optarg, 1024, 1ULL << 30, &n)
                     ? (cfg->max_body_bytes = (size_t)n, true)
                     : bad_value("max-body-bytes", optarg, "expected 1024 to 1073741824");
            break;
        case OPT_TLS_CERT:
            cfg->tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            cfg->tls_key = optarg;
            break;
        case OPT_LOG_LEVEL:
            ok = knd_log_parse_level(optarg, &cfg->log_level) ||
                 bad_value("log-level", optarg, "expected debug, info, warn or error");
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return -1;
        case OPT_VERSION:
            printf("kinesisd %s\n", KN_VERSION);
            return -1;
        default:
            fprintf(stderr, "kinesisd: unknown or incomplete option '%s' (see kinesisd --help)\n", argv[optind - 1]);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "kinesisd: unexpected argument '%s' (see kinesisd --help)\n", argv[optind]);
        return 2;
    }
    if (cfg->in_memory && data_dir_given) {
        fprintf(stderr, "kinesisd: --in-memory and --data-dir exclude each other\n");
        return 2;
    }
    if (cfg->memory_limit_mb && !cfg->in_memory) {
        fprintf(stderr, "kinesisd: --memory-limit-mb applies to --in-memory only\n");
        return 2;
    }
    if (!cfg->tls_cert != !cfg->tls_key) {
        fprintf(stderr, "kinesisd: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

/* Whether host names only this machine: 127.0.0.0/8, ::1 or "localhost". */
static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return strcasecmp(host, "localhost") == 0;
}

/* ---------------------------------------------------------------- shutdown */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void finish(kinesisd *d)
{
    d->phase = DONE;
    knd_api_destroy(d->api);
    d->api = NULL;
    uv_timer_stop(&d->drain_timer);
    uv_close((uv_handle_t *)&d->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
}

static void on_http_closed(void *ctx)
{
    kinesisd *d = ctx;
    d->http = NULL;
    /* Answers still waiting on a commit were detached from their connections; the commit still has to finish
     * before the API (whose callbacks it will call) can go. */
    if (knd_api_pending(d->api) == 0)
        finish(d);
    else
        d->phase = WAITING_COMMITS;
}

static void close_http(kinesisd *d)
{
    d->phase = CLOSING_HTTP;
    knd_http_server_close(d->http, on_http_closed, d);
}

static void on_drain_tick(uv_timer_t *t)
{
    kinesisd *d = t->data;
    if (d->phase == WAITING_COMMITS) {
        if (knd_api_pending(d->api) == 0)
            finish(d);
        return;
    }
    if (d->phase != DRAINING)
        return;
    size_t inflight = knd_http_server_inflight(d->http), pending = knd_api_pending(d->api);
    if (inflight == 0 && pending == 0) {
        close_http(d);
    } else if (uv_now(&d->loop) >= d->drain_deadline) {
        knd_log_warn("shutdown: %zu request(s) still unanswered after %d ms; closing their connections", inflight,
                     SHUTDOWN_GRACE_MS);
        close_http(d);
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    kinesisd *d = sig->data;
    if (d->phase == RUNNING) {
        knd_log_info("%s: stopping: no new connections or requests; finishing %zu in flight",
                     signum == SIGTERM ? "SIGTERM" : "SIGINT", knd_http_server_inflight(d->http));
        d->phase = DRAINING;
        d->drain_deadline = uv_now(&d->loop) + SHUTDOWN_GRACE_MS;
        knd_http_server_stop_accepting(d->http);
        uv_timer_start(&d->drain_timer, on_drain_tick, 0, SHUTDOWN_POLL_MS);
    } else if (d->phase == DRAINING) {
        knd_log_warn("%s again: not waiting for clients any longer", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        close_http(d);
    }
}

/* ---------------------------------------------------------------- start-up */

static kn_status open_store(kinesisd *d, kn_error *err)
{
    knd_store_options so = {.data_dir = d->cfg.in_memory ? NULL : d->cfg.data_dir,
                            .loop = &d->loop,
                            .memory_limit_bytes = d->cfg.memory_limit_mb << 20};
    return knd_store_open(&so, &d->store, err);
}

static kn_status open_auth(kinesisd *d, kn_error *err)
{
    kn_status st = knd_auth_new(d->cfg.credentials, &d->auth, err);
    if (st == KN_OK && d->cfg.region)
        st = knd_auth_set_region(d->auth, d->cfg.region, err);
    return st;
}

static kn_status open_api(kinesisd *d, kn_error *err)
{
    knd_api_options ao = {
        .store = d->store,
        .auth = d->auth,
        .loop = &d->loop,
        .create_delay_ms = d->cfg.create_delay_ms,
        .delete_delay_ms = d->cfg.delete_delay_ms,
        .update_delay_ms = d->cfg.update_delay_ms,
        .region = d->cfg.region,
        .max_body_bytes = d->cfg.max_body_bytes,
    };
    kn_status st = knd_api_new(&ao, &d->api, err);
    for (size_t i = 0; st == KN_OK && i < d->cfg.stream_count; i++) {
        const create_stream *cs = &d->cfg.streams[i];
        const knd_stream *existing = knd_store_find(d->store, cs->name, strlen(cs->name));
        if (existing) {
            knd_log_info("stream %s exists (%" PRIu32 " shards): --create-stream leaves it as it is", cs->name,
                         existing->shard_count);
            continue;
        }
        st = knd_api_create_stream(d->api, cs->name, cs->shards, err);
        if (st == KN_OK)
            knd_log_info("stream %s created with %" PRIu32 " shard(s)", cs->name, cs->shards);
    }
    return st;
}

static kn_status open_http(kinesisd *d, kn_error *err)
{
    knd_http_options ho = {
        .loop = &d->loop,
        .host = d->cfg.host,
        .port = d->cfg.port,
        .max_connections = d->cfg.max_connections,
        .max_body_bytes = d->cfg.max_body_bytes,
        .header_timeout_ms = d->cfg.header_timeout_ms,
        .body_timeout_ms = d->cfg.body_timeout_ms,
        .idle_timeout_ms = d->cfg.idle_timeout_ms,
        .tls_cert_file = d->cfg.tls_cert,
        .tls_key_file = d->cfg.tls_key,
        .handler = knd_api_handle,
        .handler_ctx = d->api,
    };
    return knd_http_server_new(&ho, &d->http, err);
}

static void describe_auth(const kinesisd *d, char *out, size_t cap)
{
    if (knd_auth_anonymous(d->auth))
        snprintf(out, cap, "accepting any well-formed signature (no credentials configured)");
    else if (d->cfg.credentials)
        snprintf(out, cap, "%zu key(s) from %s", knd_auth_key_count(d->auth), d->cfg.credentials);
    else
        snprintf(out, cap, "1 key from the environment (AWS_ACCESS_KEY_ID)");
}

static void log_started(const kinesisd *d)
{
    char auth[512];
    describe_auth(d, auth, sizeof auth);
    const char *fmt = strchr(d->cfg.host, ':') ? "kinesisd %s listening on %s://[%s]:%d, %s%s, auth: %s%s%s"
                                                : "kinesisd %s listening on %s://%s:%d, %s%s, auth: %s%s%s";
    knd_log_info(fmt, KN_VERSION, d->cfg.tls_cert ? "https" : "http", d->cfg.host, knd_http_server_port(d->http),
                 d->cfg.in_memory ? "in memory" : "data in ", d->cfg.in_memory ? "" : d->cfg.data_dir, auth,
                 d->cfg.region ? ", region " : "", d->cfg.region ? d->cfg.region : "");
}

/* Releases whatever start-up opened, in reverse order; the loop is not running. */
static void release(kinesisd *d)
{
    if (d->http) {
        knd_http_server_close(d->http, NULL, NULL);
        d->http = NULL;
    }
    knd_api_destroy(d->api);
    d->api = NULL;
    uv_run(&d->loop, UV_RUN_DEFAULT); /* close callbacks of the server and the API's timer */
    knd_store_close(d->store);
    d->store = NULL;
    knd_auth_destroy(d->auth);
    d->auth = NULL;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) != 0)
        knd_log_warn("shutdown: some event-loop handles were still open");
}

static int run(kinesisd *d)
{
    kn_error err = {0};
    const char *stage = "credentials";
    kn_status st = open_auth(d, &err);
    if (st == KN_OK && !is_loopback(d->cfg.host) && knd_auth_anonymous(d->auth) && !d->cfg.allow_anonymous) {
        knd_log_error("refusing to listen on %s without credentials: anyone who can reach it could read and write "
                      "every stream. Give --credentials FILE (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
                      "or --allow-anonymous to accept any signature from the network",
                      d->cfg.host);
        release(d);
        return 1;
    }
    if (st == KN_OK) {
        stage = d->cfg.in_memory ? "store" : "data directory";
        st = open_store(d, &err);
    }
    if (st == KN_OK) {
        stage = "start-up streams";
        st = open_api(d, &err);
    }
    if (st == KN_OK) {
        stage = "listen";
        st = open_http(d, &err);
    }
    if (st != KN_OK) {
        knd_log_error("%s: %s", stage, err.message);
        release(d);
        return 1;
    }
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_timer_init(&d->loop, &d->drain_timer);
    d->sigterm.data = d->sigint.data = d->drain_timer.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    log_started(d);
    if (!is_loopback(d->cfg.host) && knd_auth_anonymous(d->auth))
        knd_log_warn("--allow-anonymous: anyone who can reach %s may read and write every stream", d->cfg.host);

    uv_run(&d->loop, UV_RUN_DEFAULT);

    release(d);
    knd_log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    static kinesisd d; /* large (option storage); static keeps it off the stack */
    int rc = parse_options(argc, argv, &d.cfg);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    knd_log_set_level(d.cfg.log_level);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error value, not a death */
    uv_loop_init(&d.loop);
    return run(&d);
}
