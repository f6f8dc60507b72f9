/* kn_sigv4: AWS Signature Version 4 (headers form), for signing in the client and verifying in kinesisd with the
 * same code. Inputs are views; nothing here allocates except through the caller's kn_buf. */
#ifndef KN_SIGV4_H
#define KN_SIGV4_H

#include "buf.h"
#include "crypto.h"
#include <pthread.h>
#include <stdbool.h>

typedef struct kn_sigv4_header {
    const char *name; /* any case; canonicalised to lowercase */
    size_t name_len;
    const char *value; /* trimmed and inner whitespace runs folded when canonicalised */
    size_t value_len;
} kn_sigv4_header;

/* A request as it goes (or came) over the wire. */
typedef struct kn_sigv4_request {
    const char *method;
    const char *path;  /* as sent, already URI-encoded, e.g. "/" */
    size_t path_len;
    const char *query; /* as sent, without '?'; NULL or "" when none */
    size_t query_len;
    const kn_sigv4_header *headers;
    size_t header_count;
    const void *body;
    size_t body_len;
} kn_sigv4_request;

/* The credential scope and time of a signature. */
typedef struct kn_sigv4_scope {
    char amz_date[17]; /* basic ISO 8601, "20150830T123600Z" */
    char date[9];      /* "20150830" */
    char region[64];
    char service[64];
} kn_sigv4_scope;

/* A per-process cache of derived signing keys, keyed by secret, date, region and service, so the four HMACs run once
 * a day rather than per request. Thread-safe. Caller-allocated: init before use, cleanup after. */
typedef struct kn_sigv4_key_cache {
    pthread_mutex_t lock;
    struct kn_sigv4_key_entry *entries; /* small fixed array, see sigv4.c */
    size_t count;
} kn_sigv4_key_cache;

void kn_sigv4_key_cache_init(kn_sigv4_key_cache *cache);
void kn_sigv4_key_cache_cleanup(kn_sigv4_key_cache *cache);

/* Derives (or fetches from cache, which may be NULL) kSigning = HMAC chain over "AWS4"+secret, date, region,
 * service, "aws4_request". */
void kn_sigv4_signing_key(kn_sigv4_key_cache *cache, const char *secret, const kn_sigv4_scope *scope,
                          uint8_t out[KN_SHA256_LEN]);

/* Appends the canonical request to out. signed_headers is the ';'-separated lowercase list to include (sorted);
 * when NULL every header of req is signed. normalize_path is true for every service but S3. */
kn_status kn_sigv4_canonical_request(const kn_sigv4_request *req, const char *signed_headers, bool normalize_path,
                                     kn_buf *out);
/* Appends the ';'-separated, sorted, lowercase list of req's header names (duplicates once) to out. */
kn_status kn_sigv4_signed_header_list(const kn_sigv4_request *req, kn_buf *out);
/* Appends "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of creq>" to out. */
kn_status kn_sigv4_string_to_sign(const kn_sigv4_scope *scope, const char *creq, size_t creq_len, kn_buf *out);

/* Signs req (whose headers must already include host and x-amz-date, and x-amz-security-token when temporary
 * credentials are used) and appends the Authorization header value to out:
 * "AWS4-HMAC-SHA256 Credential=AKID/SCOPE, SignedHeaders=..., Signature=...". */
kn_status kn_sigv4_sign(const kn_sigv4_request *req, const char *access_key_id, const char *secret,
                        const kn_sigv4_scope *scope, kn_sigv4_key_cache *cache, kn_buf *out);

/* A parsed Authorization header. Views point into the header text. */
typedef struct kn_sigv4_auth {
    const char *access_key_id;
    size_t access_key_id_len;
    kn_sigv4_scope scope;       /* date, region and service from the credential; amz_date left empty */
    const char *signed_headers; /* "host;x-amz-date" */
    size_t signed_headers_len;
    char signature[65];         /* lowercase hex */
} kn_sigv4_auth;

typedef enum kn_sigv4_parse_result {
    KN_SIGV4_PARSE_OK = 0,
    KN_SIGV4_PARSE_NOT_SIGV4,   /* another scheme, or no AWS4-HMAC-SHA256 prefix */
    KN_SIGV4_PARSE_INCOMPLETE,  /* a Credential, SignedHeaders or Signature part is missing or malformed */
} kn_sigv4_parse_result;

/* Parses an Authorization header. On KN_SIGV4_PARSE_INCOMPLETE, *why (if not NULL) gets a static English reason
 * in AWS's words where AWS has them, e.g. "Authorization header requires 'Signature' parameter." */
kn_sigv4_parse_result kn_sigv4_parse_authorization(const char *value, size_t len, kn_sigv4_auth *auth,
                                                   const char **why);

/* Recomputes the signature of req over auth's signed headers with the given secret and amz_date, and compares it
 * in constant time. True when it matches. */
bool kn_sigv4_verify(const kn_sigv4_request *req, const kn_sigv4_auth *auth, const char *amz_date, const char *secret,
                     kn_sigv4_key_cache *cache);

/* Fills scope->amz_date and ->date from a Unix time (UTC). */
void kn_sigv4_format_time(int64_t unix_seconds, kn_sigv4_scope *scope);
/* Parses "YYYYMMDDTHHMMSSZ" into Unix seconds; false when malformed. */
bool kn_sigv4_parse_amz_date(const char *s, size_t len, int64_t *unix_seconds);

#endif
