/* knd_api: the Kinesis JSON 1.1 API on top of knd_store: routes X-Amz-Target to an operation from one table,
 * validates input with AWS's error types and messages, and formats responses. */
#ifndef KND_API_H
#define KND_API_H

#include "auth.h"
#include "http.h"
#include "store.h"

typedef struct knd_api_options {
    knd_store *store;
    knd_auth *auth;
    uv_loop_t *loop;
    uint32_t create_delay_ms;  /* CREATING → ACTIVE; default 0 would mean immediate, kinesisd's flag default is short */
    uint32_t delete_delay_ms;  /* DELETING → gone */
    uint32_t update_delay_ms;  /* UPDATING → ACTIVE */
    const char *region;        /* for ARNs; default "us-east-1" */
    const char *account_id;    /* for ARNs; default "000000000000" */
} knd_api_options;

typedef struct knd_api knd_api;

kn_status knd_api_new(const knd_api_options *opts, knd_api **out, kn_error *err);
void knd_api_destroy(knd_api *api);

/* The knd_handler_fn for knd_http: ctx is the knd_api. */
void knd_api_handle(void *ctx, knd_exchange *x, const knd_request *req);

/* Requests whose responses wait on a commit. */
size_t knd_api_pending(const knd_api *api);

#endif
