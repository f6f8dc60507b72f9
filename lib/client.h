/* kn_client internals: the seams through which tests replace the outside world (environment, HTTP, clock, sleep,
 * randomness) — a table of functions handed to the constructor, never a switch inside production code. */
#ifndef KN_CLIENT_H
#define KN_CLIENT_H

#include "creds.h"
#include "http.h"

/* Everything the client would otherwise take from the process. Zero-initialise; NULL members mean "the real one". */
typedef struct kn_client_deps {
    const kn_env *env;                   /* default kn_env_process() */
    const kn_http_transport *transport;  /* default kn_http_curl_new(); see kn_client_new_with for ownership */
    int64_t (*now)(void *ctx);           /* Unix seconds for X-Amz-Date; default time() */
    double (*random)(void *ctx);         /* retry jitter in [0, 1); default the retry module's PRNG */
    void (*sleep_ms)(void *ctx, uint32_t ms); /* retry backoff; default nanosleep */
    void *ctx;                           /* passed to now, random and sleep_ms */
} kn_client_deps;

/* kn_client_new with injected dependencies (deps may be NULL). When deps->transport is given and the call succeeds,
 * the client owns the transport (a copy of the table) and calls its destroy, if any, from kn_client_destroy; when
 * the call fails the caller still owns it. */
kn_status kn_client_new_with(const kn_client_options *options, const kn_client_deps *deps, kn_client **out,
                             kn_error *err);

#endif
