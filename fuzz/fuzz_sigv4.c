/* Fuzz target: the SigV4 Authorization header parser and verifier (lib/sigv4.h), as kinesisd runs them on what a
 * client sends, plus the signer on the same request.
 *
 * Input: a raw HTTP/1.1 request as the AWS test suite writes its .sreq files (format in fuzz_request.h).
 * Properties checked beyond "no crash, no leak, no undefined behaviour":
 *   - every view the parser returns points into the header it was given, and INCOMPLETE always comes with a reason;
 *   - a header the parser accepts (with a date) yields no IncompleteSignature message, one it rejects yields one;
 *   - kn_sigv4_check_scope explains every refusal;
 *   - a valid X-Amz-Date round-trips through kn_sigv4_format_time;
 *   - signing the request (when it has a host header and HTTP-token header names) gives a header that parses, passes
 *     the scope check and verifies; the same signature fails once the body changes. */
#include "fuzz_request.h"

#include <strings.h>

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" /* the AWS test suite's, so its requests verify */
#define AKID "AKIDEXAMPLE"
#define FALLBACK_TIME 1440938160 /* 20150830T123600Z */

static const kn_sigv4_header *find_header(const kn_fuzz_request *fr, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < fr->req.header_count; i++)
        if (fr->headers[i].name_len == n && strncasecmp(fr->headers[i].name, name, n) == 0)
            return &fr->headers[i];
    return NULL;
}

static bool within(const char *p, size_t n, const char *base, size_t base_len)
{
    return p >= base && p + n <= base + base_len;
}

/* The scope check with region/service given and left open; a refusal always says why. */
static void check_scope(const kn_sigv4_auth *auth, const char *amz_date)
{
    static const char *const regions[] = {NULL, "us-east-1"};
    static const char *const services[] = {NULL, "kinesis", "service"};
    for (size_t r = 0; r < 2; r++) {
        for (size_t s = 0; s < 3; s++) {
            kn_buf msg;
            kn_buf_init(&msg, 4096);
            if (!kn_sigv4_check_scope(auth, amz_date, regions[r], services[s], &msg))
                KN_FUZZ_CHECK(msg.len > 0);
            kn_buf_cleanup(&msg);
        }
    }
}

/* Everything kinesisd does with one Authorization header value. */
static void check_authorization(const kn_fuzz_request *fr, const char *value, size_t len, const char *amz_date,
                                kn_sigv4_key_cache *cache)
{
    kn_sigv4_auth auth;
    const char *why = NULL;
    kn_sigv4_parse_result r = kn_sigv4_parse_authorization(value, len, &auth, &why);
    KN_FUZZ_CHECK(r == KN_SIGV4_PARSE_OK || r == KN_SIGV4_PARSE_NOT_SIGV4 || r == KN_SIGV4_PARSE_INCOMPLETE);
    if (r == KN_SIGV4_PARSE_INCOMPLETE)
        KN_FUZZ_CHECK(why && *why);
    bool has_date = amz_date != NULL;
    kn_buf msg;
    kn_buf_init(&msg, 64 * 1024);
    KN_FUZZ_CHECK(kn_sigv4_incomplete_message(value, len, has_date, &msg) == KN_OK);
    if (r == KN_SIGV4_PARSE_INCOMPLETE || !has_date)
        KN_FUZZ_CHECK(msg.len > 0);
    else if (r == KN_SIGV4_PARSE_OK)
        KN_FUZZ_CHECK(msg.len == 0);
    kn_buf_cleanup(&msg);
    if (r != KN_SIGV4_PARSE_OK)
        return;
    KN_FUZZ_CHECK(within(auth.access_key_id, auth.access_key_id_len, value, len));
    KN_FUZZ_CHECK(within(auth.credential, auth.credential_len, value, len));
    KN_FUZZ_CHECK(within(auth.signed_headers, auth.signed_headers_len, value, len));
    KN_FUZZ_CHECK(strlen(auth.signature) <= 64); /* shorter only when the 64 bytes sent held a NUL */
    const char *date = amz_date ? amz_date : "";
    check_scope(&auth, date);
    (void)kn_sigv4_verify(&fr->req, &auth, date, SECRET, cache);

    char *list = kn_fuzz_strndup(auth.signed_headers, auth.signed_headers_len);
    kn_buf creq;
    kn_buf_init(&creq, 1u << 20);
    if (kn_sigv4_canonical_request(&fr->req, list, true, &creq) == KN_OK) {
        kn_sigv4_scope scope = auth.scope;
        kn_sigv4_format_time(FALLBACK_TIME, &scope);
        kn_buf sts;
        kn_buf_init(&sts, 4096);
        KN_FUZZ_CHECK(kn_sigv4_string_to_sign(&scope, (const char *)creq.data, creq.len, &sts) == KN_OK);
        kn_buf_cleanup(&sts);
    }
    kn_buf_cleanup(&creq);
    free(list);
}

/* The date header as kinesisd takes it: X-Amz-Date, NUL-terminated (NULL when absent). A valid one must survive
 * parse → format unchanged and sets *when, the signing time of the round trip. */
static char *amz_date_of(const kn_fuzz_request *fr, int64_t *when)
{
    const kn_sigv4_header *h = find_header(fr, "x-amz-date");
    if (!h)
        return NULL;
    /* Trimmed, as the HTTP layer hands header values over. */
    const char *v = h->value;
    size_t n = h->value_len;
    while (n && kn_fuzz_is_blank(*v)) {
        v++;
        n--;
    }
    while (n && kn_fuzz_is_blank(v[n - 1]))
        n--;
    char *s = kn_fuzz_strndup(v, n);
    if (kn_sigv4_parse_amz_date(s, strlen(s), when)) {
        kn_sigv4_scope scope;
        kn_sigv4_format_time(*when, &scope);
        KN_FUZZ_CHECK(strcmp(scope.amz_date, s) == 0);
    }
    return s;
}

/* RFC 9110 tchar: what an HTTP parser lets through as a header name. */
static bool is_token(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return false;
    }
    return true;
}

static bool signable(const kn_fuzz_request *fr)
{
    if (!fr->method[0] || !find_header(fr, "host"))
        return false;
    for (size_t i = 0; i < fr->req.header_count; i++)
        if (!is_token(fr->headers[i].name, fr->headers[i].name_len))
            return false;
    return true;
}

/* Sign, then parse and verify what was signed: the client and kinesisd must agree on every request a client could
 * send. */
static void check_round_trip(const kn_fuzz_request *fr, int64_t when, kn_sigv4_key_cache *cache)
{
    kn_sigv4_scope scope = {0};
    kn_sigv4_format_time(when, &scope);
    strcpy(scope.region, "us-east-1");
    strcpy(scope.service, "kinesis");
    kn_buf authz;
    kn_buf_init(&authz, 1u << 20);
    KN_FUZZ_CHECK(kn_sigv4_sign(&fr->req, AKID, SECRET, &scope, cache, &authz) == KN_OK);
    kn_sigv4_auth auth;
    KN_FUZZ_CHECK(kn_sigv4_parse_authorization((const char *)authz.data, authz.len, &auth, NULL) ==
                  KN_SIGV4_PARSE_OK);
    KN_FUZZ_CHECK(auth.access_key_id_len == strlen(AKID) && memcmp(auth.access_key_id, AKID, strlen(AKID)) == 0);
    kn_buf msg;
    kn_buf_init(&msg, 4096);
    KN_FUZZ_CHECK(kn_sigv4_check_scope(&auth, scope.amz_date, "us-east-1", "kinesis", &msg));
    kn_buf_cleanup(&msg);
    KN_FUZZ_CHECK(kn_sigv4_verify(&fr->req, &auth, scope.amz_date, SECRET, cache));
    KN_FUZZ_CHECK(!kn_sigv4_verify(&fr->req, &auth, scope.amz_date, SECRET "x", cache));
    if (fr->req.body_len > 0) {
        char *tampered = kn_fuzz_strndup(fr->req.body, fr->req.body_len);
        tampered[0] ^= 1;
        kn_sigv4_request req = fr->req;
        req.body = tampered;
        KN_FUZZ_CHECK(!kn_sigv4_verify(&req, &auth, scope.amz_date, SECRET, cache));
        free(tampered);
    }
    kn_buf_cleanup(&authz);
}

static void fuzz_sigv4(const uint8_t *data, size_t size)
{
    /* One cache for the whole run, as kinesisd keeps one: evictions get exercised too. */
    static kn_sigv4_key_cache cache;
    static bool cache_ready;
    if (!cache_ready) {
        kn_sigv4_key_cache_init(&cache);
        cache_ready = true;
    }
    kn_fuzz_request fr;
    kn_fuzz_parse_request(data, size, &fr);
    int64_t when = FALLBACK_TIME;
    char *amz_date = amz_date_of(&fr, &when);

    for (size_t i = 0; i < fr.req.header_count; i++)
        if (fr.headers[i].name_len == 13 && strncasecmp(fr.headers[i].name, "authorization", 13) == 0)
            check_authorization(&fr, fr.headers[i].value, fr.headers[i].value_len, amz_date, &cache);
    /* The body as a header value too, so the parser is fuzzed directly as well. */
    check_authorization(&fr, fr.req.body, fr.req.body_len, amz_date, &cache);

    kn_buf out;
    kn_buf_init(&out, 1u << 20);
    KN_FUZZ_CHECK(kn_sigv4_canonical_request(&fr.req, NULL, true, &out) == KN_OK);
    kn_buf_reset(&out);
    KN_FUZZ_CHECK(kn_sigv4_canonical_request(&fr.req, NULL, false, &out) == KN_OK);
    kn_buf_reset(&out);
    KN_FUZZ_CHECK(kn_sigv4_signed_header_list(&fr.req, &out) == KN_OK);
    kn_buf_cleanup(&out);

    if (signable(&fr))
        check_round_trip(&fr, when, &cache);
    free(amz_date);
}

KN_FUZZ_ENTRY(fuzz_sigv4)
