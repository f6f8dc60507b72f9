#include "cli.h"

#include "../lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_common_help[] =
    "Connection and output options (every command):\n"
    "  --region R               AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region)\n"
    "  --profile P              profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE, then default)\n"
    "  --endpoint-url URL       service URL (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, then\n"
    "                           https://kinesis.REGION.amazonaws.com)\n"
    "  --ca-bundle PATH         PEM file of CAs to trust for https (default: AWS_CA_BUNDLE, then the system's);\n"
    "                           certificate verification is always on\n"
    "  --output text|json       text (default) prints the essentials, json the whole result\n"
    "  --max-attempts N         attempts per request, the first included (default 3; 1 disables retries)\n"
    "  --connect-timeout-ms MS  connect timeout (default 5000)\n"
    "  --request-timeout-ms MS  timeout of each attempt (default 30000)\n"
    "  --max-record-size BYTES  data + partition key limit checked before sending (default 1048576; streams may\n"
    "                           allow up to 10485760)\n"
    "  --debug                  print each request and response to stderr (signature, secret and session token\n"
    "                           redacted)\n";

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kinesis: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_command_start(cli_command *cmd, const char *help_text, const cli_option *opts, size_t count, int argc,
                      char **argv)
{
    if (!cli_parse(argc, argv, opts, count))
        return CLI_EXIT_USAGE;
    if (cmd->help) {
        fputs(help_text, stdout);
        fputs(cli_common_help, stdout);
        return CLI_EXIT_OK;
    }
    if (!cli_common_finish(&cmd->common))
        return CLI_EXIT_USAGE;
    if (!cmd->stream_name == !cmd->stream_arn)
        return cli_usage_error("exactly one of --stream-name and --stream-arn is required");
    return -1;
}

static const cli_option *find_option(const cli_option *opts, size_t count, const char *name, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

bool cli_parse(int argc, char **argv, const cli_option *opts, size_t count)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const cli_option *o = find_option(opts, count, arg, name_len);
        if (!o) {
            cli_usage_error("unknown option '%.*s' (see --help)", (int)name_len, arg);
            return false;
        }
        if (*o->value) {
            cli_usage_error("%s given more than once", o->name);
            return false;
        }
        if (!o->takes_value) {
            if (eq) {
                cli_usage_error("%s takes no value", o->name);
                return false;
            }
            *o->value = "";
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            cli_usage_error("%s needs a value", o->name);
            return false;
        }
    }
    return true;
}

/* A decimal in [min, max]. */
static bool parse_number(const char *name, const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        cli_usage_error("%s: '%s' is not a number from %lld to %lld", name, s, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_common_finish(cli_common *c)
{
    long long v = 0;
    if (c->output && strcmp(c->output, "text") != 0 && strcmp(c->output, "json") != 0) {
        cli_usage_error("--output: '%s' is not one of text, json", c->output);
        return false;
    }
    c->output_json = c->output && strcmp(c->output, "json") == 0;
    if (c->max_attempts_arg) {
        if (!parse_number("--max-attempts", c->max_attempts_arg, 1, 100, &v))
            return false;
        c->max_attempts = (int)v;
    }
    if (c->connect_timeout_arg) {
        if (!parse_number("--connect-timeout-ms", c->connect_timeout_arg, 1, 3600000, &v))
            return false;
        c->connect_timeout_ms = (long)v;
    }
    if (c->request_timeout_arg) {
        if (!parse_number("--request-timeout-ms", c->request_timeout_arg, 1, 3600000, &v))
            return false;
        c->request_timeout_ms = (long)v;
    }
    if (c->max_record_size_arg) {
        if (!parse_number("--max-record-size", c->max_record_size_arg, 1, 64ll * 1024 * 1024, &v))
            return false;
        c->max_record_size = (size_t)v;
    }
    return true;
}

static void debug_to_stderr(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    fwrite(text, 1, len, stderr);
}

int cli_client_new(const cli_common *c, kn_client **out)
{
    kn_error err;
    kn_client_options o = {
        .region = c->region,
        .profile = c->profile,
        .endpoint_url = c->endpoint_url,
        .ca_bundle = c->ca_bundle,
        .connect_timeout_ms = c->connect_timeout_ms,
        .request_timeout_ms = c->request_timeout_ms,
        .max_attempts = c->max_attempts,
        .max_record_size = c->max_record_size,
        .debug = c->debug ? debug_to_stderr : NULL,
    };
    if (kn_client_new(&o, out, &err) != KN_OK)
        return cli_report(&err);
    if (c->debug)
        fprintf(stderr, "* region %s, endpoint %s\n", kn_client_region(*out), kn_client_endpoint(*out));
    return CLI_EXIT_OK;
}

int cli_read_file(const char *what, const char *path, size_t max, unsigned char **data, size_t *len)
{
    int rc = CLI_EXIT_OK;
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    kn_buf b;
    kn_buf_init(&b, max);
    if (fd < 0) {
        rc = cli_usage_error("%s: cannot open %s: %s", what, path, strerror(errno));
        goto cleanup;
    }
    for (;;) {
        unsigned char chunk[65536];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cli_usage_error("%s: cannot read %s: %s", what, is_stdin ? "standard input" : path, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        if ((size_t)n > b.cap - b.len) {
            rc = cli_usage_error("%s: %s holds more than %zu bytes, the maximum record size", what,
                                 is_stdin ? "standard input" : path, max);
            goto cleanup;
        }
        if (kn_buf_append(&b, chunk, (size_t)n) != KN_OK) {
            fprintf(stderr, "kinesis: %s: out of memory\n", what);
            rc = CLI_EXIT_INTERNAL;
            goto cleanup;
        }
    }
    *data = b.data;
    *len = b.len;
    b.data = NULL;
cleanup:
    if (fd >= 0 && !is_stdin)
        close(fd);
    kn_buf_cleanup(&b);
    return rc;
}

int cli_exit_code(kn_status st)
{
    switch (st) {
    case KN_OK:
        return CLI_EXIT_OK;
    case KN_ERR_INVALID_ARGUMENT:
    case KN_ERR_IO:
        return CLI_EXIT_USAGE;
    case KN_ERR_SERVICE:
        return CLI_EXIT_SERVICE;
    case KN_ERR_NETWORK:
    case KN_ERR_TIMEOUT:
    case KN_ERR_TLS:
    case KN_ERR_PROTOCOL:
        return CLI_EXIT_NETWORK;
    case KN_ERR_NO_CREDENTIALS:
    case KN_ERR_NO_REGION:
    case KN_ERR_CONFIG:
        return CLI_EXIT_CONFIG;
    default:
        return CLI_EXIT_INTERNAL;
    }
}

int cli_report(const kn_error *err)
{
    const char *type = err->type[0] ? err->type : kn_status_str(err->status);
    fprintf(stderr, "kinesis: %s", type);
    if (err->message[0])
        fprintf(stderr, ": %s", err->message);
    const char *sep = " (";
    if (err->http_status) {
        fprintf(stderr, "%sHTTP %d", sep, err->http_status);
        sep = ", ";
    }
    if (err->request_id[0]) {
        fprintf(stderr, "%srequest id %s", sep, err->request_id);
        sep = ", ";
    }
    if (err->attempts > 1) {
        fprintf(stderr, "%s%d attempts", sep, err->attempts);
        sep = ", ";
    }
    fputs(sep[0] == ',' ? ")\n" : "\n", stderr);
    return cli_exit_code(err->status);
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}
