/* kinesis put-record: the Put Record step from the command line. */
#include "cli.h"

#include "../lib/base64.h"
#include "../lib/validate.h"

#include <stdlib.h>
#include <string.h>

static const char help[] =
    "Usage: kinesis put-record (--stream-name NAME | --stream-arn ARN) --partition-key KEY\n"
    "                          (--data TEXT | --data-base64 B64 | --data-file PATH|-) [OPTIONS]\n"
    "\n"
    "Writes one record to a stream and prints the id of the shard that took it (--output text, the default), or\n"
    "{\"ShardId\", \"SequenceNumber\", \"EncryptionType\"} (--output json).\n"
    "\n"
    "Record options:\n"
    "  --stream-name NAME        the stream's name\n"
    "  --stream-arn ARN          or its ARN (exactly one of the two)\n"
    "  --partition-key KEY       1 to 256 Unicode characters; its MD5 picks the shard\n"
    "  --data TEXT               the record is TEXT's bytes as given; fileb://PATH (or file://PATH) reads PATH\n"
    "  --data-base64 B64         the record is B64 decoded (padded or unpadded standard base64)\n"
    "  --data-file PATH          the record is PATH's bytes, any bytes at all; - reads standard input\n"
    "  --explicit-hash-key N     route by this decimal hash key (0 to 2^128-1) instead of the partition key's MD5\n"
    "  --sequence-number-for-ordering N\n"
    "                            the new record's sequence number will be greater than N\n"
    "  --help                    this text\n"
    "\n";

typedef struct put_record_args {
    const char *partition_key, *data, *data_base64, *data_file, *explicit_hash_key, *sequence_number;
    cli_command cmd;
} put_record_args;

static int decode_base64(const char *text, unsigned char **data, size_t *len)
{
    size_t text_len = strlen(text);
    kn_buf b;
    kn_buf_init(&b, kn_base64_decoded_len(text, text_len));
    kn_status st = kn_base64_decode(text, text_len, &b);
    if (st != KN_OK) {
        kn_buf_cleanup(&b);
        return st == KN_ERR_INVALID_ARGUMENT
                   ? cli_usage_error("--data-base64: not valid base64 (standard alphabet, padding optional)")
                   : cli_exit_code(st);
    }
    *data = b.data;
    *len = b.len;
    return CLI_EXIT_OK;
}

/* Fills data/len from the one data option given; *owned is what to free afterwards. */
static int load_data(const put_record_args *a, size_t max, const unsigned char **data, size_t *len,
                     unsigned char **owned)
{
    int given = !!a->data + !!a->data_base64 + !!a->data_file;
    if (given != 1)
        return cli_usage_error("exactly one of --data, --data-base64 and --data-file is required");
    if (a->data_base64) {
        int rc = decode_base64(a->data_base64, owned, len);
        *data = *owned;
        return rc;
    }
    const char *path = a->data_file;
    if (a->data && strncmp(a->data, "fileb://", 8) == 0)
        path = a->data + 8;
    else if (a->data && strncmp(a->data, "file://", 7) == 0)
        path = a->data + 7;
    if (path) {
        int rc = cli_read_file(a->data_file ? "--data-file" : "--data", path, max, owned, len);
        *data = *owned;
        return rc;
    }
    *data = (const unsigned char *)a->data;
    *len = strlen(a->data);
    return CLI_EXIT_OK;
}

static void print_result(const kn_put_record_output *out, bool json)
{
    if (!json) {
        printf("%s\n", out->shard_id);
        return;
    }
    fputs("{\n    \"ShardId\": ", stdout);
    cli_json_string(stdout, out->shard_id);
    fputs(",\n    \"SequenceNumber\": ", stdout);
    cli_json_string(stdout, out->sequence_number);
    if (out->encryption_type[0]) {
        fputs(",\n    \"EncryptionType\": ", stdout);
        cli_json_string(stdout, out->encryption_type);
    }
    fputs("\n}\n", stdout);
}

int cli_put_record_main(int argc, char **argv)
{
    put_record_args a;
    memset(&a, 0, sizeof a);
    const cli_option opts[] = {
        {"--partition-key", true, &a.partition_key},
        {"--data", true, &a.data},
        {"--data-base64", true, &a.data_base64},
        {"--data-file", true, &a.data_file},
        {"--explicit-hash-key", true, &a.explicit_hash_key},
        {"--sequence-number-for-ordering", true, &a.sequence_number},
        CLI_COMMAND_OPTION_TABLE(&a.cmd),
    };
    int rc = cli_command_start(&a.cmd, help, opts, sizeof opts / sizeof opts[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (!a.partition_key)
        return cli_usage_error("--partition-key is required");

    rc = CLI_EXIT_OK;
    kn_client *client = NULL;
    unsigned char *owned = NULL;
    const unsigned char *data = NULL;
    size_t len = 0;
    size_t max = a.cmd.common.max_record_size ? a.cmd.common.max_record_size : KN_DEFAULT_MAX_RECORD_SIZE;
    if ((rc = load_data(&a, max, &data, &len, &owned)) != CLI_EXIT_OK)
        goto cleanup;
    if ((rc = cli_client_new(&a.cmd.common, &client)) != CLI_EXIT_OK)
        goto cleanup;
    kn_put_record_input in = {
        .stream_name = a.cmd.stream_name,
        .stream_arn = a.cmd.stream_arn,
        .data = data,
        .data_len = len,
        .partition_key = a.partition_key,
        .explicit_hash_key = a.explicit_hash_key,
        .sequence_number_for_ordering = a.sequence_number,
    };
    kn_put_record_output out;
    kn_error err;
    if (kn_put_record(client, &in, &out, &err) != KN_OK) {
        rc = cli_report(&err);
        goto cleanup;
    }
    print_result(&out, a.cmd.common.output_json);
cleanup:
    kn_client_destroy(client);
    free(owned);
    return rc;
}
