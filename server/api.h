/* knd_api: the Kinesis JSON 1.1 API on top of knd_store: routes X-Amz-Target to an operation from one table,
 * validates input with AWS's error types and messages, and formats responses.
 *
 * Order of checks for each request, as AWS orders them (kinesalite's connection tests, recorded against the real
 * service, show unsigned requests getting UnknownOperationException and SerializationException before
 * MissingAuthenticationTokenException): oversized body → method → Content-Type → X-Amz-Target → JSON syntax →
 * knd_auth_check → member types (SerializationException) → constraints (ValidationException) → the operation.
 *
 * Threading: everything runs on the server's event-loop thread. */
#ifndef KND_API_H
#define KND_API_H

#include "auth.h"
#include "http.h"
#include "store.h"

typedef struct knd_api_options {
    knd_store *store;          /* borrowed; must outlive the API */
    knd_auth *auth;            /* borrowed; must outlive the API */
    uv_loop_t *loop;           /* runs a 1 s housekeeping timer (stream status changes, retention); NULL in tests:
                                  status changes then happen as requests arrive, which they do anyway */
    uint32_t create_delay_ms;  /* CREATING → ACTIVE; 0 means immediately */
    uint32_t delete_delay_ms;  /* DELETING → gone; 0 means immediately */
    uint32_t update_delay_ms;  /* UPDATING → ACTIVE; no operation implemented today enters UPDATING */
    const char *region;        /* for ARNs; default "us-east-1" */
    const char *account_id;    /* for ARNs and messages; default "000000000000" */
    uint32_t shard_limit;      /* open shards in the account; default 500, AWS's default quota in us-east-1 */
    size_t max_body_bytes;     /* the HTTP layer's body limit, quoted when a body exceeds it; 0 when unknown */
    int64_t (*clock_ms)(void *ctx); /* wall clock in Unix ms; NULL means the system clock (tests inject one) */
    void *clock_ctx;
} knd_api_options;

typedef struct knd_api knd_api;

/* On success *out is an API the caller releases with knd_api_destroy. */
kn_status knd_api_new(const knd_api_options *opts, knd_api **out, kn_error *err);
/* Call when knd_api_pending() is 0 (commit callbacks reference the API). Closes the housekeeping timer: when a loop
 * was given, run it once more (as for any libuv handle) before uv_loop_close so the handle's memory is released.
 * NULL is allowed. */
void knd_api_destroy(knd_api *api);

/* The knd_handler_fn for knd_http: ctx is the knd_api. */
void knd_api_handle(void *ctx, knd_exchange *x, const knd_request *req);

/* How knd_api_dispatch answers: called exactly once per request, now or later (after a commit), on the loop thread.
 * headers and body are valid only during the call. */
typedef void (*knd_api_reply_fn)(void *ctx, int status, const kn_sigv4_header *headers, size_t header_count,
                                 const void *body, size_t body_len);

/* Handles one request, answering through reply (knd_api_handle is this with knd_exchange_respond). req must stay
 * valid until reply has been called. */
void knd_api_dispatch(knd_api *api, const knd_request *req, knd_api_reply_fn reply, void *reply_ctx);

/* Requests whose responses wait on a commit. */
size_t knd_api_pending(const knd_api *api);

/* For --create-stream NAME[:SHARDS]: creates the stream ACTIVE at once (provisioned, `shards` shards) unless a stream
 * of that name exists, which is not an error. KN_ERR_INVALID_ARGUMENT for an invalid name or shard count (err says
 * which, in AWS's words), KN_ERR_IO when the store cannot persist it. */
kn_status knd_api_create_stream(knd_api *api, const char *name, uint32_t shards, kn_error *err);

#endif
