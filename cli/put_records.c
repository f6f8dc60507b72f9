/* kinesis put-records: many records from JSON lines, sent through kn_put_records in batches of up to 500. */
#include "cli.h"

#include "../lib/base64.h"
#include "../lib/json.h"
#include "../lib/validate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: kinesis put-records (--stream-name NAME | --stream-arn ARN) --records-file PATH|- [OPTIONS]\n"
    "\n"
    "Reads one record per line, as JSON: {\"Data\": \"<base64>\", \"PartitionKey\": \"...\"} with an optional\n"
    "\"ExplicitHashKey\"; blank lines are skipped. Records are sent in batches of up to 500 (and 5 MiB) as they are\n"
    "read; entries that fail with a retryable error are resent alone. A malformed line stops the command before its\n"
    "batch is sent (earlier batches were written).\n"
    "\n"
    "Prints one line per record, in input order: \"SHARD_ID SEQUENCE_NUMBER\", or \"FAILED ErrorCode: message\"\n"
    "(--output text), or {\"Records\": [...], \"FailedRecordCount\": N} (--output json). Exits 6 when some records\n"
    "were not written.\n"
    "\n"
    "Record options:\n"
    "  --stream-name NAME        the stream's name\n"
    "  --stream-arn ARN          or its ARN (exactly one of the two)\n"
    "  --records-file PATH       the JSON lines; - reads standard input\n"
    "  --help                    this text\n"
    "\n";

typedef struct put_records_args {
    const char *records_file;
    cli_command cmd;
} put_records_args;

/* One batch being filled: entries point at data and keys this batch owns. */
typedef struct batch {
    kn_put_records_entry entries[KN_PUT_RECORDS_MAX];
    kn_put_records_result results[KN_PUT_RECORDS_MAX];
    size_t count;
    size_t bytes;
} batch;

typedef struct run {
    const put_records_args *args;
    kn_client *client;
    size_t byte_limit;
    size_t written, failed;
    bool first_output;
} run;

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        free((void *)b->entries[i].data);
        free((void *)b->entries[i].partition_key);
        free((void *)b->entries[i].explicit_hash_key);
    }
    b->count = 0;
    b->bytes = 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Parses one line into e (owning copies). */
static int parse_line(const char *line, size_t len, size_t line_no, kn_put_records_entry *e)
{
    int rc = CLI_EXIT_OK;
    kn_buf data;
    cJSON *root = kn_json_parse(line, len);
    const char *b64 = kn_json_string(root, "Data"), *key = kn_json_string(root, "PartitionKey");
    kn_buf_init(&data, b64 ? kn_base64_decoded_len(b64, strlen(b64)) : 0);
    memset(e, 0, sizeof *e);
    if (!root || !b64 || !key) {
        rc = cli_usage_error("--records-file: line %zu: not a JSON object with string members Data and PartitionKey",
                             line_no);
        goto cleanup;
    }
    if (kn_base64_decode(b64, strlen(b64), &data) != KN_OK) {
        rc = cli_usage_error("--records-file: line %zu: Data is not valid base64", line_no);
        goto cleanup;
    }
    const char *hash = kn_json_string(root, "ExplicitHashKey");
    e->data = data.data;
    e->data_len = data.len;
    e->partition_key = strdup(key);
    e->explicit_hash_key = dup_or_null(hash);
    data.data = NULL;
    if (!e->partition_key || (hash && !e->explicit_hash_key)) {
        fprintf(stderr, "kinesis: out of memory\n");
        rc = CLI_EXIT_INTERNAL;
    }
cleanup:
    kn_buf_cleanup(&data);
    cJSON_Delete(root);
    return rc;
}

static void print_results(run *r, const batch *b)
{
    bool json = r->args->cmd.common.output_json;
    for (size_t i = 0; i < b->count; i++) {
        const kn_put_records_result *res = &b->results[i];
        r->written += res->ok;
        r->failed += !res->ok;
        if (!json) {
            if (res->ok)
                printf("%s %s\n", res->shard_id, res->sequence_number);
            else
                printf("FAILED %s: %s\n", res->error_code, res->error_message);
            continue;
        }
        fputs(r->first_output ? "\n        {" : ",\n        {", stdout);
        r->first_output = false;
        fputs(res->ok ? "\"SequenceNumber\": " : "\"ErrorCode\": ", stdout);
        cli_json_string(stdout, res->ok ? res->sequence_number : res->error_code);
        fputs(res->ok ? ", \"ShardId\": " : ", \"ErrorMessage\": ", stdout);
        cli_json_string(stdout, res->ok ? res->shard_id : res->error_message);
        fputs("}", stdout);
    }
}

static int send_batch(run *r, batch *b)
{
    if (b->count == 0)
        return CLI_EXIT_OK;
    kn_error err;
    kn_status st = kn_put_records(r->client, r->args->cmd.stream_name, r->args->cmd.stream_arn, b->entries, b->count,
                                  b->results, NULL, &err);
    /* A validation failure sent nothing and knows no per-record result: only the error is worth showing. */
    if (st != KN_OK && err.attempts == 0)
        return cli_report(&err);
    print_results(r, b);
    batch_clear(b);
    return st == KN_OK ? CLI_EXIT_OK : cli_report(&err);
}

static int read_and_send(run *r, FILE *in, batch *b)
{
    int rc = CLI_EXIT_OK;
    char *line = NULL;
    size_t cap = 0, line_no = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        line_no++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        if (len == 0)
            continue;
        kn_put_records_entry e;
        if ((rc = parse_line(line, len, line_no, &e)) != CLI_EXIT_OK) {
            free((void *)e.data);
            free((void *)e.partition_key);
            free((void *)e.explicit_hash_key);
            goto cleanup;
        }
        size_t size = e.data_len + strlen(e.partition_key);
        if (b->count == KN_PUT_RECORDS_MAX || (b->count && b->bytes + size > r->byte_limit))
            if ((rc = send_batch(r, b)) != CLI_EXIT_OK)
                goto cleanup;
        b->entries[b->count++] = e;
        b->bytes += size;
    }
    if (ferror(in)) {
        rc = cli_usage_error("--records-file: read error: %s", strerror(errno));
        goto cleanup;
    }
    rc = send_batch(r, b);
cleanup:
    free(line);
    return rc;
}

static int run_put_records(const put_records_args *a)
{
    int rc = CLI_EXIT_OK;
    bool is_stdin = strcmp(a->records_file, "-") == 0;
    FILE *in = is_stdin ? stdin : fopen(a->records_file, "r");
    batch *b = calloc(1, sizeof *b);
    run r = {.args = a, .first_output = true};
    size_t max = a->cmd.common.max_record_size ? a->cmd.common.max_record_size : KN_DEFAULT_MAX_RECORD_SIZE;
    r.byte_limit = max > 5u * 1024u * 1024u ? max : 5u * 1024u * 1024u;
    if (!in) {
        rc = cli_usage_error("--records-file: cannot open %s: %s", a->records_file, strerror(errno));
        goto cleanup;
    }
    if (!b) {
        rc = CLI_EXIT_INTERNAL;
        goto cleanup;
    }
    if ((rc = cli_client_new(&a->cmd.common, &r.client)) != CLI_EXIT_OK)
        goto cleanup;
    if (a->cmd.common.output_json)
        fputs("{\n    \"Records\": [", stdout);
    rc = read_and_send(&r, in, b);
    if (a->cmd.common.output_json)
        printf("%s],\n    \"FailedRecordCount\": %zu\n}\n", r.first_output ? "" : "\n    ", r.failed);
    if (rc == CLI_EXIT_OK && r.failed)
        rc = CLI_EXIT_PARTIAL;
cleanup:
    if (b)
        batch_clear(b);
    free(b);
    kn_client_destroy(r.client);
    if (in && !is_stdin)
        fclose(in);
    return rc;
}

int cli_put_records_main(int argc, char **argv)
{
    put_records_args a;
    memset(&a, 0, sizeof a);
    const cli_option opts[] = {
        {"--records-file", true, &a.records_file},
        CLI_COMMAND_OPTION_TABLE(&a.cmd),
    };
    int rc = cli_command_start(&a.cmd, help, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (!a.records_file)
        return cli_usage_error("--records-file is required");
    return run_put_records(&a);
}
