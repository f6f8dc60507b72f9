/* bench_sigv4: microseconds per kn_sigv4_sign and per kn_sigv4_verify for a small PutRecord request with the derived
 * key cached (the steady state of a client or of kinesisd), best of several runs. Target: <= 2.5 us each.
 * Usage: bench_sigv4 [iterations per run, default 200000] */
#include "sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench_util.h"

#define RUNS 5
#define AMZ_DATE "20251125T203000Z"

typedef struct bench_request {
    kn_sigv4_header headers[6];
    kn_sigv4_request req;
    kn_sigv4_scope scope;
} bench_request;

static const char k_body[] = "{\"StreamName\":\"bench\",\"Data\":\"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1"
                             "Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5\","
                             "\"PartitionKey\":\"partition-42\"}";

static void bench_request_init(bench_request *b)
{
    memset(b, 0, sizeof *b);
    const char *h[][2] = {
        {"host", "127.0.0.1:4567"},
        {"x-amz-date", AMZ_DATE},
        {"content-type", "application/x-amz-json-1.1"},
        {"x-amz-target", "Kinesis_20131202.PutRecord"},
        {"user-agent", "kinesis-c/0.1.0"},
    };
    for (size_t i = 0; i < 5; i++)
        b->headers[i] = (kn_sigv4_header){h[i][0], strlen(h[i][0]), h[i][1], strlen(h[i][1])};
    b->req = (kn_sigv4_request){.method = "POST", .path = "/", .path_len = 1, .headers = b->headers,
                                .header_count = 5, .body = k_body, .body_len = sizeof k_body - 1};
    kn_sigv4_format_time(1764102600, &b->scope);
    snprintf(b->scope.region, sizeof b->scope.region, "us-east-1");
    snprintf(b->scope.service, sizeof b->scope.service, "kinesis");
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    if (iterations <= 0) {
        fprintf(stderr, "usage: bench_sigv4 [iterations per run]\n");
        return 2;
    }
    const char *akid = "AKIDEXAMPLE", *secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    bench_request b;
    bench_request_init(&b);
    kn_sigv4_key_cache cache;
    kn_sigv4_key_cache_init(&cache);
    kn_buf authz;
    kn_buf_init(&authz, 4096);
    int status = 1;

    if (kn_sigv4_sign(&b.req, akid, secret, &b.scope, &cache, &authz) != KN_OK) {
        fprintf(stderr, "bench_sigv4: signing failed\n");
        goto cleanup;
    }
    double best_sign = 1e30, best_verify = 1e30;
    for (int run = 0; run < RUNS; run++) {
        double t0 = bench_now_s() * 1e6;
        for (long i = 0; i < iterations; i++) {
            kn_buf_reset(&authz);
            if (kn_sigv4_sign(&b.req, akid, secret, &b.scope, &cache, &authz) != KN_OK)
                goto cleanup;
        }
        double sign_us = (bench_now_s() * 1e6 - t0) / (double)iterations;
        kn_sigv4_auth auth;
        if (kn_sigv4_parse_authorization((const char *)authz.data, authz.len, &auth, NULL) != KN_SIGV4_PARSE_OK)
            goto cleanup;
        t0 = bench_now_s() * 1e6;
        for (long i = 0; i < iterations; i++)
            if (!kn_sigv4_verify(&b.req, &auth, AMZ_DATE, secret, &cache)) {
                fprintf(stderr, "bench_sigv4: verification failed\n");
                goto cleanup;
            }
        double verify_us = (bench_now_s() * 1e6 - t0) / (double)iterations;
        best_sign = sign_us < best_sign ? sign_us : best_sign;
        best_verify = verify_us < best_verify ? verify_us : best_verify;
    }
    printf("sigv4 small PutRecord (%zu-byte body, key cached), best of %d runs x %ld:\n", sizeof k_body - 1, RUNS,
           iterations);
    printf("  sign   %.2f us/request\n", best_sign);
    printf("  verify %.2f us/request (parse excluded)\n", best_verify);
    printf("  target <= 2.50 us: %s\n", best_sign <= 2.5 && best_verify <= 2.5 ? "met" : "MISSED");
    status = 0;
cleanup:
    kn_buf_cleanup(&authz);
    kn_sigv4_key_cache_cleanup(&cache);
    return status;
}
