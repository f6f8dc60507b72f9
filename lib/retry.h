/* kn_retry: AWS "standard" retry mode: exponential backoff with full jitter and a cap, retrying only throttling and
 * transient failures. Clock and randomness are injected so the policy is testable. */
#ifndef KN_RETRY_H
#define KN_RETRY_H

#include <kinesis/kinesis.h>

typedef struct kn_retry_policy {
    int max_attempts;          /* first attempt included; >= 1 */
    uint32_t base_delay_ms;    /* 100 in AWS standard mode */
    uint32_t max_backoff_ms;   /* 20000 in AWS standard mode */
    double (*random)(void *ctx); /* uniform in [0, 1); NULL means a process PRNG */
    void (*sleep_ms)(void *ctx, uint32_t ms); /* NULL means nanosleep */
    void *ctx;
} kn_retry_policy;

/* Classifies a failure by local status, HTTP status and AWS error type (any may be 0/NULL): botocore's standard-mode
 * throttling codes → THROTTLING; its transient codes, InternalError/InternalFailure/ServiceUnavailable, HTTP 500, 502,
 * 503, 504, KN_ERR_NETWORK and KN_ERR_TIMEOUT → TRANSIENT; everything else (validation, authentication, other 4xx,
 * TLS and local errors) → NEVER. */
kn_retry_class kn_retry_classify(kn_status status, int http_status, const char *aws_type);

/* The delay before attempt `attempt + 1` after `attempt` (1-based) failed: random * min(max_backoff, base * 2^(attempt-1)). */
uint32_t kn_retry_delay_ms(const kn_retry_policy *p, int attempt);

/* Whether attempt `attempt` (1-based) that failed with class c should be followed by another. */
bool kn_retry_should(const kn_retry_policy *p, int attempt, kn_retry_class c);

/* Waits ms milliseconds with the policy's sleep_ms, or nanosleep (resumed after signals) when it is NULL. */
void kn_retry_sleep(const kn_retry_policy *p, uint32_t ms);

#endif
