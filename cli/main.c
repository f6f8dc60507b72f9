/* kinesis: the command-line tool. Dispatches to one command per file (cli/<command>.c). */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "Usage: kinesis COMMAND [OPTIONS]\n"
    "       kinesis --help | --version\n"
    "\n"
    "Commands:\n"
    "  put-record    write one record to a Kinesis data stream (kinesis put-record --help)\n"
    "  put-records   write records read as JSON lines, in batches of up to 500 (kinesis put-records --help)\n"
    "\n"
    "Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then the shared\n"
    "credentials and config files (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_PROFILE or --profile).\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  internal error (out of memory)\n"
    "  2  usage error or invalid input, found before anything was sent (bad option, invalid base64, a value the\n"
    "     service would reject, unreadable data file)\n"
    "  3  the service answered with an error (the message names its type, HTTP status and request id)\n"
    "  4  no usable answer: could not connect, timeout, TLS failure, or a malformed response\n"
    "  5  configuration: no credentials, no region, a malformed config file or endpoint URL\n"
    "  6  put-records: some records were not written (each record's result is printed)\n"
    "\n"
    "Errors are one line on stderr: kinesis: ErrorType: message (HTTP status, request id ..., N attempts)\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("kinesis %s\n", KN_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "put-record") == 0)
        return cli_put_record_main(argc - 2, argv + 2);
    if (strcmp(cmd, "put-records") == 0)
        return cli_put_records_main(argc - 2, argv + 2);
    return cli_usage_error("unknown command '%s' (see kinesis --help)", cmd);
}
