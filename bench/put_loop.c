/* bench_put_loop: libkinesis's PutRecord in a loop on one client (one kept-alive connection) for a fixed time, the
 * C side of the "library vs boto3" client workload (bench/boto3_loop.py is the other side, doing the same calls).
 *
 *   bench_put_loop --stream NAME [--seconds S] [--record-size B]
 *
 * Endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...)
 * as for any program using the library. Each call puts record-size bytes (default 100) under its own partition key,
 * with the client's default retry policy. Prints BENCH_RESULT {"calls":N,"seconds":S,"failed":F,"retried":R,
 * "first_error":"..."}: calls that succeeded, failures (any makes the run invalid) and calls that needed a retry.
 * Exit 0 when no call failed, 1 otherwise, 2 on bad usage or when the client cannot be made. */
#include <kinesis/kinesis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"

#define MAX_RECORD_SIZE 4096


static int usage(void)
{
    fprintf(stderr, "usage: bench_put_loop --stream NAME [--seconds S] [--record-size B]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *stream = NULL;
    double seconds = 10;
    long record_size = 100;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--stream") == 0)
            stream = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--record-size") == 0)
            record_size = strtol(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (!stream || seconds <= 0 || record_size <= 0 || record_size > MAX_RECORD_SIZE)
        return usage();

    kn_client_options opts = {0};
    kn_client *client = NULL;
    kn_error err = {0};
    if (kn_client_new(&opts, &client, &err) != KN_OK) {
        fprintf(stderr, "bench_put_loop: %s\n", err.message);
        return 2;
    }
    unsigned char data[MAX_RECORD_SIZE];
    for (long i = 0; i < record_size; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    long calls = 0, failed = 0, retried = 0;
    char first_error[KN_ERROR_TYPE_MAX + KN_ERROR_MESSAGE_MAX + 4] = "";
    char key[32];
    double t0 = bench_now_s(), elapsed = 0;
    while ((elapsed = bench_now_s() - t0) < seconds) {
        snprintf(key, sizeof key, "loop-%ld", calls + failed);
        kn_put_record_input in = {.stream_name = stream, .data = data, .data_len = (size_t)record_size,
                                  .partition_key = key};
        kn_put_record_output out;
        kn_status st = kn_put_record(client, &in, &out, &err);
        if (st == KN_OK) {
            calls++;
        } else {
            failed++;
            if (!first_error[0])
                snprintf(first_error, sizeof first_error, "%s: %s", err.type[0] ? err.type : kn_status_str(st),
                         err.message);
        }
        retried += err.attempts > 1;
    }
    printf("BENCH_RESULT {\"calls\":%ld,\"seconds\":%.6f,\"failed\":%ld,\"retried\":%ld,\"first_error\":", calls,
           elapsed, failed, retried);
    bench_print_json_string(first_error);
    printf("}\n");
    kn_client_destroy(client);
    return failed ? 1 : 0;
}
