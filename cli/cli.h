/* The `kinesis` tool's shared pieces: exit codes, option parsing, the options every command takes, input files,
 * and the one-line error report. Commands live in cli/<command>.c as cli_<command>_main. */
#ifndef KN_CLI_H
#define KN_CLI_H

#include <kinesis/kinesis.h>
#include <stdio.h>

/* Exit codes; documented in `kinesis --help` and docs/client.md. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_INTERNAL = 1, /* out of memory or an unexpected failure */
    CLI_EXIT_USAGE = 2,    /* bad options or invalid input (validation, base64, unreadable data file) */
    CLI_EXIT_SERVICE = 3,  /* the service answered with an error */
    CLI_EXIT_NETWORK = 4,  /* no usable answer: connect failure, timeout, TLS failure, malformed response */
    CLI_EXIT_CONFIG = 5,   /* no credentials, no region, bad config file or endpoint URL */
    CLI_EXIT_PARTIAL = 6,  /* put-records: some records were not written (each record's result is printed) */
};

/* Options every command takes: the raw strings as given (NULL when absent), then their parsed values. */
typedef struct cli_common {
    const char *region, *profile, *endpoint_url, *ca_bundle, *output, *debug, *max_attempts_arg,
        *connect_timeout_arg, *request_timeout_arg, *max_record_size_arg;
    bool output_json;
    int max_attempts;
    long connect_timeout_ms;
    long request_timeout_ms;
    size_t max_record_size; /* 0 = the library's default */
} cli_common;

/* One command-line option. `value` receives a pointer into argv (NULL until given); flags store "" when given. */
typedef struct cli_option {
    const char *name; /* "--stream-name" */
    bool takes_value;
    const char **value;
} cli_option;

/* The option table entries for a cli_common *c, to put in a command's table. */
#define CLI_COMMON_OPTION_TABLE(c)                                                                                  \
    {"--region", true, &(c)->region}, {"--profile", true, &(c)->profile},                                          \
        {"--endpoint-url", true, &(c)->endpoint_url}, {"--ca-bundle", true, &(c)->ca_bundle},                       \
        {"--output", true, &(c)->output}, {"--debug", false, &(c)->debug},                                           \
        {"--max-attempts", true, &(c)->max_attempts_arg},                                                          \
        {"--connect-timeout-ms", true, &(c)->connect_timeout_arg},                                                 \
        {"--request-timeout-ms", true, &(c)->request_timeout_arg},                                                \
        {"--max-record-size", true, &(c)->max_record_size_arg}

/* The help text for the common options. */
extern const char cli_common_help[];

/* Parses argv (after the command name) against opts; accepts "--name value" and "--name=value", each option at most
 * once. On failure prints one line to stderr and returns false. */
bool cli_parse(int argc, char **argv, const cli_option *opts, size_t count);

/* Checks the raw common options and fills the parsed fields; prints one line and returns false on a bad value. */
bool cli_common_finish(cli_common *c);

/* What every command takes besides its own options: which stream (exactly one of the two), --help, and the
 * connection and output options. The strings point into argv (NULL when absent). */
typedef struct cli_command {
    const char *stream_name, *stream_arn, *help;
    cli_common common;
} cli_command;

/* The option table entries for a cli_command *cmd, to put in a command's table after its own options. */
#define CLI_COMMAND_OPTION_TABLE(cmd)                                                                               \
    {"--stream-name", true, &(cmd)->stream_name}, {"--stream-arn", true, &(cmd)->stream_arn},                      \
        {"--help", false, &(cmd)->help}, CLI_COMMON_OPTION_TABLE(&(cmd)->common)

/* What every command does after building its option table opts (count entries, which include
 * CLI_COMMAND_OPTION_TABLE(cmd)): parse argv into it; on --help print help_text and the common options' help; check
 * the common options and that exactly one of --stream-name / --stream-arn was given. Returns -1 when the command
 * should go on, else the exit code to return. */
int cli_command_start(cli_command *cmd, const char *help_text, const cli_option *opts, size_t count, int argc,
                      char **argv);

/* Makes a client from the common options; on failure reports the error and returns its exit code (else 0). */
int cli_client_new(const cli_common *c, kn_client **out);

/* Reads a whole file ("-" = stdin) of at most max bytes into a new malloc'ed buffer the caller frees. Returns 0, or
 * prints one line naming `what` and returns an exit code. An empty file gives *data == NULL, *len == 0. */
int cli_read_file(const char *what, const char *path, size_t max, unsigned char **data, size_t *len);

/* Prints "kinesis: Type: message (HTTP 400, request id ..., N attempts)" to stderr and returns the exit code the
 * error maps to. */
int cli_report(const kn_error *err);
/* Prints "kinesis: <formatted>" to stderr and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit code for a library status. */
int cli_exit_code(kn_status st);

/* Writes s as a JSON string (quoted and escaped) to f. */
void cli_json_string(FILE *f, const char *s);

int cli_put_record_main(int argc, char **argv);
int cli_put_records_main(int argc, char **argv);

#endif
