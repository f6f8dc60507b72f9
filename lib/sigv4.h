/* kn_sigv4: AWS Signature Version 4 (headers form), for signing in the client and verifying in kinesisd with the
 * same code. Inputs are views; results go into the caller's kn_buf or fixed fields. Internals: docs/sigv4.md. */
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
    const char *method; /* required, e.g. "POST" */
    const char *path;  /* as sent, e.g. "/"; it is percent-encoded (again) for the canonical request, as AWS does
                          for every service but S3 */
    size_t path_len;
    const char *query; /* as sent, without '?'; NULL or "" when none. Names and values are percent-decoded and
                          re-encoded the AWS way, so "%7e" and "~" sign alike */
    size_t query_len;
    const kn_sigv4_header *headers;
    size_t header_count;
    const void *body;
    size_t body_len;
    bool path_as_is;   /* sign the path without removing dot segments and duplicate slashes (S3's rule); the default
                          (false) normalises it first, as every other service, Kinesis included, expects */
} kn_sigv4_request;

/* The credential scope and time of a signature. */
typedef struct kn_sigv4_scope {
    char amz_date[17]; /* basic ISO 8601, "20150830T123600Z" */
    char date[9];      /* "20150830" */
    char region[64];
    char service[64];
} kn_sigv4_scope;

#define KN_SIGV4_KEY_CACHE_SLOTS 8

/* One derived key. Only a SHA-256 of the secret is kept, never the secret. */
typedef struct kn_sigv4_key_entry {
    uint8_t secret_hash[KN_SHA256_LEN];
    char date[9];
    char region[64];
    char service[64];
    uint8_t key[KN_SHA256_LEN];
    uint64_t last_used; /* 0: empty slot */
} kn_sigv4_key_entry;

/* A cache of derived signing keys, keyed by secret, date, region and service, so the four HMACs of the derivation
 * run once a day rather than per request. Thread-safe. Caller-allocated (no heap): init before use, cleanup (which
 * wipes the keys) after. Least recently used slots are replaced. */
typedef struct kn_sigv4_key_cache {
    pthread_mutex_t lock;
    kn_sigv4_key_entry entries[KN_SIGV4_KEY_CACHE_SLOTS];
    uint64_t clock;
} kn_sigv4_key_cache;

void kn_sigv4_key_cache_init(kn_sigv4_key_cache *cache);
void kn_sigv4_key_cache_cleanup(kn_sigv4_key_cache *cache);

/* Derives (or fetches from cache, which may be NULL) kSigning = HMAC chain over "AWS4"+secret, date, region,
 * service, "aws4_request". Intermediate keys are wiped. False only when OpenSSL cannot allocate. */
bool kn_sigv4_signing_key(kn_sigv4_key_cache *cache, const char *secret, const kn_sigv4_scope *scope,
                          uint8_t out[KN_SHA256_LEN]);

/* Appends the canonical request to out. signed_headers is the ';'-separated lowercase list to include (as the
 * Authorization header gives it); when NULL every header of req is signed except the ones AWS SDKs never sign because
 * proxies may change them (authorization, connection, expect, keep-alive, proxy-authenticate, proxy-authorization,
 * te, trailer, transfer-encoding, upgrade, user-agent, x-amzn-trace-id: botocore's list). A listed header
 * absent from req contributes no line (the signature then fails to match). normalize_path is true for every
 * service but S3; kn_sigv4_sign and kn_sigv4_verify pass !req->path_as_is. KN_ERR_NO_MEMORY at out's cap or when
 * allocation fails. */
kn_status kn_sigv4_canonical_request(const kn_sigv4_request *req, const char *signed_headers, bool normalize_path,
                                     kn_buf *out);
/* Appends the ';'-separated, sorted, lowercase list of req's header names (duplicates once, the never-signed ones
 * above left out) to out. */
kn_status kn_sigv4_signed_header_list(const kn_sigv4_request *req, kn_buf *out);
/* Appends "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of creq>" to out. */
kn_status kn_sigv4_string_to_sign(const kn_sigv4_scope *scope, const char *creq, size_t creq_len, kn_buf *out);

/* Signs req (whose headers must already include host and x-amz-date, and x-amz-security-token when temporary
 * credentials are used) and appends the Authorization header value to out:
 * "AWS4-HMAC-SHA256 Credential=AKID/SCOPE, SignedHeaders=..., Signature=...". scope->amz_date and ->date must be set
 * (kn_sigv4_format_time). cache may be NULL. KN_ERR_INVALID_ARGUMENT when req has no host header;
 * KN_ERR_NO_MEMORY as above. The secret appears in no buffer but a wiped stack copy of "AWS4"+secret. */
kn_status kn_sigv4_sign(const kn_sigv4_request *req, const char *access_key_id, const char *secret,
                        const kn_sigv4_scope *scope, kn_sigv4_key_cache *cache, kn_buf *out);

/* A parsed Authorization header. Views point into the header text. */
typedef struct kn_sigv4_auth {
    const char *access_key_id;
    size_t access_key_id_len;
    kn_sigv4_scope scope;       /* date, region and service from the credential; amz_date left empty. A part too
                                   long for its field is left empty: kn_sigv4_check_scope reports it */
    const char *credential;     /* the whole Credential value, for kn_sigv4_check_scope's messages */
    size_t credential_len;
    const char *signed_headers; /* "host;x-amz-date" */
    size_t signed_headers_len;
    char signature[65];         /* as sent when 64 characters long, else empty (and it cannot verify) */
} kn_sigv4_auth;

typedef enum kn_sigv4_parse_result {
    KN_SIGV4_PARSE_OK = 0,
    KN_SIGV4_PARSE_NOT_SIGV4,   /* another scheme (not starting "AWS4-"), e.g. "Bearer x" or SigV2's "AWS k:s" */
    KN_SIGV4_PARSE_INCOMPLETE,  /* a Credential, SignedHeaders or Signature part is missing or malformed */
} kn_sigv4_parse_result;

/* Parses an Authorization header. On KN_SIGV4_PARSE_INCOMPLETE, *why (if not NULL) gets a static English reason in
 * AWS's words, e.g. "Authorization header requires 'Signature' parameter." (every missing part listed, as AWS does).
 * The full IncompleteSignatureException message, which quotes the header, comes from
 * kn_sigv4_incomplete_message. */
kn_sigv4_parse_result kn_sigv4_parse_authorization(const char *value, size_t len, kn_sigv4_auth *auth,
                                                   const char **why);

/* AWS's sentence when a request has an Authorization header but neither X-Amz-Date nor Date. */
#define KN_SIGV4_MSG_NEED_DATE "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."

/* Appends to out the message of AWS's IncompleteSignatureException for an Authorization header value that
 * kn_sigv4_parse_authorization did not accept, or that came without a date header (has_date false), e.g.
 * "Authorization header requires 'Signature' parameter. Authorization header requires existence of either a
 * 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=..." or
 * "'x' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 x'". Appends
 * nothing for a complete header with a date. The header is quoted as sent (it holds no secret). */
kn_status kn_sigv4_incomplete_message(const char *value, size_t len, bool has_date, kn_buf *out);

/* Checks what AWS checks before computing a signature, given the request's X-Amz-Date and the region and service the
 * endpoint serves (region NULL: any well-formed region): that host (or, over HTTP/2, :authority) is a signed header and that the credential's
 * region, service, terminator and date match. On failure returns false and appends AWS's message (the
 * InvalidSignatureException kind) to msg, every failing scope sentence in AWS's order, e.g. "Credential should be
 * scoped to correct service: 'kinesis'." */
bool kn_sigv4_check_scope(const kn_sigv4_auth *auth, const char *amz_date, const char *region, const char *service,
                          kn_buf *msg);

/* Recomputes the signature of req over auth's signed headers with the given secret and amz_date, and compares it
 * in constant time. True when it matches. The payload hash is always that of req->body (an X-Amz-Content-SHA256
 * header is never taken on trust). Scope and freshness are the caller's checks (kn_sigv4_check_scope). */
bool kn_sigv4_verify(const kn_sigv4_request *req, const kn_sigv4_auth *auth, const char *amz_date, const char *secret,
                     kn_sigv4_key_cache *cache);

/* kn_sigv4_verify with the signing key already derived (kn_sigv4_signing_key) for auth->scope's date, region and
 * service: for a server that keeps each client key's signing key between requests instead of looking it up. The key
 * is only read. */
bool kn_sigv4_verify_with_key(const kn_sigv4_request *req, const kn_sigv4_auth *auth, const char *amz_date,
                              const uint8_t signing_key[KN_SHA256_LEN]);

/* Fills scope->amz_date and ->date from a Unix time (UTC). */
void kn_sigv4_format_time(int64_t unix_seconds, kn_sigv4_scope *scope);
/* Parses "YYYYMMDDTHHMMSSZ" into Unix seconds; false when malformed or not a real date and time. */
bool kn_sigv4_parse_amz_date(const char *s, size_t len, int64_t *unix_seconds);

#endif
