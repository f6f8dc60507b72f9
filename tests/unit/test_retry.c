#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "retry.h"

/* A fake clock that only moves when the policy sleeps, and a scripted random source. */
typedef struct fake {
    uint64_t now_ms;
    uint32_t sleeps[16];
    int n_sleeps;
    double randoms[16];
    int n_randoms;
    int next_random;
} fake;

static double fake_random(void *ctx)
{
    fake *f = ctx;
    double r = f->randoms[f->next_random % f->n_randoms];
    f->next_random++;
    return r;
}

static void fake_sleep(void *ctx, uint32_t ms)
{
    fake *f = ctx;
    f->now_ms += ms;
    if (f->n_sleeps < 16)
        f->sleeps[f->n_sleeps++] = ms;
}

static kn_retry_policy standard(fake *f, double r)
{
    f->randoms[0] = r;
    f->n_randoms = 1;
    return (kn_retry_policy){.max_attempts = 3, .base_delay_ms = 100, .max_backoff_ms = 20000,
                             .random = fake_random, .sleep_ms = fake_sleep, .ctx = f};
}

static void throttling_codes_classify_as_throttling(void **state)
{
    (void)state;
    const char *codes[] = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
                           "TooManyRequestsException", "ProvisionedThroughputExceededException",
                           "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
                           "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
                           "EC2ThrottledException", "KMSThrottlingException"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, 400, codes[i]), KN_RETRY_THROTTLING);
}

static void transient_codes_classify_as_transient(void **state)
{
    (void)state;
    const char *codes[] = {"RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
                           "ServiceUnavailable"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, 400, codes[i]), KN_RETRY_TRANSIENT);
}

static void transient_http_statuses(void **state)
{
    (void)state;
    const int yes[] = {500, 502, 503, 504};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, yes[i], NULL), KN_RETRY_TRANSIENT);
    /* A garbled body still carries the status. */
    assert_int_equal(kn_retry_classify(KN_ERR_PROTOCOL, 503, NULL), KN_RETRY_TRANSIENT);
    const int no[] = {400, 403, 404, 409, 413, 501, 505};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, no[i], ""), KN_RETRY_NEVER);
}

static void connection_failures_are_transient(void **state)
{
    (void)state;
    assert_int_equal(kn_retry_classify(KN_ERR_NETWORK, 0, NULL), KN_RETRY_TRANSIENT);
    assert_int_equal(kn_retry_classify(KN_ERR_TIMEOUT, 0, NULL), KN_RETRY_TRANSIENT);
}

static void validation_auth_and_local_errors_never_retry(void **state)
{
    (void)state;
    const char *codes[] = {"ValidationException", "InvalidArgumentException", "ResourceNotFoundException",
                           "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                           "AccessDeniedException", "SerializationException", "KMSAccessDeniedException"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, 400, codes[i]), KN_RETRY_NEVER);
    const kn_status local[] = {KN_ERR_TLS, KN_ERR_INVALID_ARGUMENT, KN_ERR_NO_MEMORY, KN_ERR_NO_CREDENTIALS,
                               KN_ERR_NO_REGION, KN_ERR_CONFIG, KN_ERR_IO, KN_ERR_PROTOCOL};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        assert_int_equal(kn_retry_classify(local[i], 0, NULL), KN_RETRY_NEVER);
}

static void throttling_code_wins_over_status(void **state)
{
    (void)state;
    assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, 503, "SlowDown"), KN_RETRY_THROTTLING);
    assert_int_equal(kn_retry_classify(KN_ERR_SERVICE, 500, "PriorRequestNotComplete"), KN_RETRY_THROTTLING);
}

static void delay_doubles_from_base(void **state)
{
    (void)state;
    fake f = {0};
    kn_retry_policy p = standard(&f, 0.5);
    assert_int_equal(kn_retry_delay_ms(&p, 1), 50);
    assert_int_equal(kn_retry_delay_ms(&p, 2), 100);
    assert_int_equal(kn_retry_delay_ms(&p, 3), 200);
    assert_int_equal(kn_retry_delay_ms(&p, 4), 400);
}

static void delay_is_capped(void **state)
{
    (void)state;
    fake f = {0};
    kn_retry_policy p = standard(&f, 0.999999);
    assert_int_equal(kn_retry_delay_ms(&p, 8), 12799);   /* 100 * 2^7 = 12800 */
    assert_int_equal(kn_retry_delay_ms(&p, 9), 19999);   /* 25600 capped at 20000 */
    assert_int_equal(kn_retry_delay_ms(&p, 1000), 19999); /* no overflow however many attempts */
    p.max_backoff_ms = 150;
    assert_int_equal(kn_retry_delay_ms(&p, 2), 149);
}

static void delay_is_full_jitter(void **state)
{
    (void)state;
    fake f = {0};
    kn_retry_policy p = standard(&f, 0.0);
    assert_int_equal(kn_retry_delay_ms(&p, 3), 0);
    f.randoms[0] = 0.25;
    assert_int_equal(kn_retry_delay_ms(&p, 3), 100);
}

static void delay_with_process_random_stays_in_bounds(void **state)
{
    (void)state;
    kn_retry_policy p = {.max_attempts = 3, .base_delay_ms = 100, .max_backoff_ms = 20000};
    uint32_t max_seen = 0;
    for (int i = 0; i < 2000; i++) {
        uint32_t d = kn_retry_delay_ms(&p, 2);
        assert_true(d < 200);
        if (d > max_seen)
            max_seen = d;
    }
    /* 2000 uniform draws below 100 of 200 would mean the source is not uniform over [0, 1). */
    assert_true(max_seen >= 100);
}

static void only_retryable_classes_retry(void **state)
{
    (void)state;
    fake f = {0};
    kn_retry_policy p = standard(&f, 0.5);
    assert_true(kn_retry_should(&p, 1, KN_RETRY_THROTTLING));
    assert_true(kn_retry_should(&p, 1, KN_RETRY_TRANSIENT));
    assert_false(kn_retry_should(&p, 1, KN_RETRY_NEVER));
}

static void attempts_stop_at_max(void **state)
{
    (void)state;
    fake f = {0};
    kn_retry_policy p = standard(&f, 0.5);
    assert_true(kn_retry_should(&p, 2, KN_RETRY_TRANSIENT));
    assert_false(kn_retry_should(&p, 3, KN_RETRY_TRANSIENT));
    p.max_attempts = 1;
    assert_false(kn_retry_should(&p, 1, KN_RETRY_THROTTLING));
    p.max_attempts = 0; /* nonsense is read as "no retries", never as "forever" */
    assert_false(kn_retry_should(&p, 1, KN_RETRY_THROTTLING));
}

/* The loop a client runs: each failed attempt sleeps the policy's delay on the injected clock. */
static void retry_loop_sleeps_on_injected_clock(void **state)
{
    (void)state;
    fake f = {0};
    kn_retry_policy p = standard(&f, 1.0);
    p.max_attempts = 5;
    f.randoms[0] = 0.5;
    int attempt = 1;
    while (kn_retry_should(&p, attempt, KN_RETRY_THROTTLING)) {
        kn_retry_sleep(&p, kn_retry_delay_ms(&p, attempt));
        attempt++;
    }
    assert_int_equal(attempt, 5);
    assert_int_equal(f.n_sleeps, 4);
    const uint32_t want[] = {50, 100, 200, 400};
    assert_memory_equal(f.sleeps, want, sizeof want);
    assert_int_equal(f.now_ms, 750);
}

static void default_sleep_really_waits(void **state)
{
    (void)state;
    kn_retry_policy p = {.max_attempts = 1};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    kn_retry_sleep(&p, 20);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    assert_true(ms >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(throttling_codes_classify_as_throttling),
        cmocka_unit_test(transient_codes_classify_as_transient),
        cmocka_unit_test(transient_http_statuses),
        cmocka_unit_test(connection_failures_are_transient),
        cmocka_unit_test(validation_auth_and_local_errors_never_retry),
        cmocka_unit_test(throttling_code_wins_over_status),
        cmocka_unit_test(delay_doubles_from_base),
        cmocka_unit_test(delay_is_capped),
        cmocka_unit_test(delay_is_full_jitter),
        cmocka_unit_test(delay_with_process_random_stays_in_bounds),
        cmocka_unit_test(only_retryable_classes_retry),
        cmocka_unit_test(attempts_stop_at_max),
        cmocka_unit_test(retry_loop_sleeps_on_injected_clock),
        cmocka_unit_test(default_sleep_really_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
