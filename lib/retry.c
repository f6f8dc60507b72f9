#include "retry.h"

#include "crypto.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* botocore's standard mode (retries/standard.py): its throttling codes, its transient codes and HTTP statuses, plus
 * the generic server-side failure codes other SDKs treat as transient. A code in both lists counts as throttling. */
static const char *const throttling_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "KMSThrottlingException", /* Kinesis: a PutRecords entry of a KMS-encrypted stream throttled by KMS */
};

static const char *const transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
};

static const int transient_http_statuses[] = {500, 502, 503, 504};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return true;
    return false;
}

kn_retry_class kn_retry_classify(kn_status status, int http_status, const char *aws_type)
{
    /* No response at all: the request may never have reached the service. TLS failures are configuration or attack,
     * not noise, so they are final. */
    if (status == KN_ERR_NETWORK || status == KN_ERR_TIMEOUT)
        return KN_RETRY_TRANSIENT;
    if (aws_type && *aws_type) {
        if (in_list(aws_type, throttling_codes, COUNT(throttling_codes)))
            return KN_RETRY_THROTTLING;
        if (in_list(aws_type, transient_codes, COUNT(transient_codes)))
            return KN_RETRY_TRANSIENT;
    }
    for (size_t i = 0; i < COUNT(transient_http_statuses); i++)
        if (http_status == transient_http_statuses[i])
            return KN_RETRY_TRANSIENT;
    return KN_RETRY_NEVER;
}

/* xorshift64*: jitter needs no cryptographic strength, only independence between threads, so each thread keeps its
 * own state, seeded once from the system's random source. */
static _Thread_local uint64_t prng_state;

static double process_random(void)
{
    if (prng_state == 0) {
        if (!kn_crypto_random(&prng_state, sizeof prng_state) || prng_state == 0)
            prng_state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&prng_state ^ 0x9E3779B97F4A7C15u;
    }
    prng_state ^= prng_state >> 12;
    prng_state ^= prng_state << 25;
    prng_state ^= prng_state >> 27;
    uint64_t r = prng_state * 0x2545F4914F6CDD1Du;
    return (double)(r >> 11) * 0x1.0p-53; /* 53 random bits: uniform in [0, 1) */
}

uint32_t kn_retry_delay_ms(const kn_retry_policy *p, int attempt)
{
    if (attempt < 1)
        attempt = 1;
    uint64_t ceiling = p->base_delay_ms;
    /* Doubling stops at the cap, so a large attempt number cannot overflow the shift. */
    for (int i = 1; i < attempt && ceiling > 0 && ceiling < p->max_backoff_ms; i++)
        ceiling *= 2;
    if (ceiling > p->max_backoff_ms)
        ceiling = p->max_backoff_ms;
    double r = p->random ? p->random(p->ctx) : process_random();
    if (!(r >= 0.0)) /* also catches NaN */
        r = 0.0;
    if (r >= 1.0)
        r = 1.0;
    return (uint32_t)(r * (double)ceiling);
}

bool kn_retry_should(const kn_retry_policy *p, int attempt, kn_retry_class c)
{
    int max = p->max_attempts < 1 ? 1 : p->max_attempts;
    return c != KN_RETRY_NEVER && attempt < max;
}

void kn_retry_sleep(const kn_retry_policy *p, uint32_t ms)
{
    if (p->sleep_ms) {
        p->sleep_ms(p->ctx, ms);
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
