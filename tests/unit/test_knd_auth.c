/* knd_auth: every refusal AWS gives, triggered by requests signed for real with kn_sigv4_sign (the client's signer),
 * with AWS's exact error type and message; keys from a credentials file (several profiles, a temporary key with a
 * session token and an expiration) and from the environment; anonymous mode. */
#include "../../server/auth.h"
#include "../../server/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* 2026-11-25T20:30:00Z, the time of the example message. */
#define T_SIGN 1795638600LL
#define MS(s) ((int64_t)(s) * 1000)

#define AKID "AKIDEXAMPLEDEFAULT01"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TEMP_AKID "ASIAEXAMPLETEMPORARY"
#define TEMP_SECRET "temporary/secret/key/for/tests/0123456789"
#define TEMP_TOKEN "FwoGZXIvYXdzEXAMPLETOKEN//////////test+token=="
#define TEMP_EXPIRES "2026-11-25T21:00:00Z"
#define T_EXPIRES 1795640400LL

static const char credentials_text[] = "# two keys, one temporary, and a profile with no key\n"
                                       "[default]\n"
                                       "aws_access_key_id = " AKID "\n"
                                       "aws_secret_access_key = " SECRET "\n"
                                       "\n"
                                       "[temp]\n"
                                       "aws_access_key_id = " TEMP_AKID "\n"
                                       "aws_secret_access_key = " TEMP_SECRET "\n"
                                       "aws_session_token = " TEMP_TOKEN "\n"
                                       "expiration = " TEMP_EXPIRES "\n"
                                       "\n"
                                       "[settings-only]\n"
                                       "region = us-west-2\n";

static const char body[] = "{\"StreamName\":\"s\",\"Data\":\"AA==\",\"PartitionKey\":\"k\"}";

/* A signed request under construction: header storage and the knd_request view of it. */
typedef struct signed_req {
    kn_sigv4_header headers[12];
    size_t count;
    char amz_date[32];
    char authorization[512];
    const char *body;
    size_t body_len;
    knd_request req;
} signed_req;

static void add(signed_req *r, const char *name, const char *value)
{
    assert_true(r->count < sizeof r->headers / sizeof r->headers[0]);
    r->headers[r->count++] = (kn_sigv4_header){name, strlen(name), value, strlen(value)};
}

typedef struct sign_opts {
    const char *akid, *secret, *token;
    int64_t when;
    const char *region, *service;
} sign_opts;

/* Builds a Kinesis PutRecord request as an SDK would and signs it with kn_sigv4_sign. */
static void build(signed_req *r, sign_opts o)
{
    memset(r, 0, sizeof *r);
    kn_sigv4_scope scope = {0};
    kn_sigv4_format_time(o.when ? o.when : T_SIGN, &scope);
    snprintf(scope.region, sizeof scope.region, "%s", o.region ? o.region : "us-east-1");
    snprintf(scope.service, sizeof scope.service, "%s", o.service ? o.service : "kinesis");
    snprintf(r->amz_date, sizeof r->amz_date, "%s", scope.amz_date);
    add(r, "host", "127.0.0.1:4567");
    add(r, "content-type", "application/x-amz-json-1.1");
    add(r, "x-amz-target", "Kinesis_20131202.PutRecord");
    add(r, "x-amz-date", r->amz_date);
    if (o.token)
        add(r, "x-amz-security-token", o.token);
    r->body = body;
    r->body_len = strlen(body);
    kn_sigv4_request sreq = {.method = "POST", .path = "/", .path_len = 1, .query = "", .headers = r->headers,
                             .header_count = r->count, .body = r->body, .body_len = r->body_len};
    kn_buf out;
    kn_buf_init(&out, sizeof r->authorization - 1);
    assert_int_equal(kn_sigv4_sign(&sreq, o.akid ? o.akid : AKID, o.secret ? o.secret : SECRET, &scope, NULL, &out),
                     KN_OK);
    memcpy(r->authorization, out.data, out.len + 1);
    kn_buf_cleanup(&out);
    add(r, "authorization", r->authorization);
}

/* Starts a request that the test signs by hand: no headers yet, the test body, and *scope set to us-east-1 kinesis at
 * T_SIGN. */
static void begin_by_hand(signed_req *r, kn_sigv4_scope *scope)
{
    memset(r, 0, sizeof *r);
    *scope = (kn_sigv4_scope){0};
    kn_sigv4_format_time(T_SIGN, scope);
    strcpy(scope->region, "us-east-1");
    strcpy(scope->service, "kinesis");
    r->body = body;
    r->body_len = strlen(body);
}

/* What a request begun by begin_by_hand is signed over; r->headers must outlive it. */
static kn_sigv4_request by_hand_view(const signed_req *r)
{
    return (kn_sigv4_request){.method = "POST", .path = "/", .path_len = 1, .headers = r->headers,
                              .header_count = r->count, .body = body, .body_len = r->body_len};
}

static const knd_request *view(signed_req *r)
{
    r->req = (knd_request){.method = "POST", .path = "/", .path_len = 1, .query = "", .headers = r->headers,
                           .header_count = r->count, .body = (const uint8_t *)r->body, .body_len = r->body_len};
    return &r->req;
}

static kn_sigv4_header *find(signed_req *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++) {
        if (strcmp(r->headers[i].name, name) == 0)
            return &r->headers[i];
    }
    return NULL;
}

static void set_header(signed_req *r, const char *name, const char *value)
{
    kn_sigv4_header *h = find(r, name);
    assert_non_null(h);
    h->value = value;
    h->value_len = strlen(value);
}

static void remove_header(signed_req *r, const char *name)
{
    kn_sigv4_header *h = find(r, name);
    assert_non_null(h);
    *h = r->headers[--r->count];
}

static void expect_error(knd_auth *auth, signed_req *r, int64_t now_ms, const char *type, const char *message)
{
    kn_error err = {0};
    assert_int_equal(knd_auth_check(auth, view(r), now_ms, &err), KN_ERR_SERVICE);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.type, type);
    assert_string_equal(err.message, message);
}

static void expect_ok(knd_auth *auth, signed_req *r, int64_t now_ms)
{
    kn_error err = {0};
    kn_status st = knd_auth_check(auth, view(r), now_ms, &err);
    if (st != KN_OK)
        fail_msg("refused: %s: %s", err.type, err.message);
}

#define MSG_SIGNATURE                                                                                                \
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access " \
    "Key and signing method. Consult the service documentation for details."
#define MSG_UNRECOGNIZED "The security token included in the request is invalid."

/* ---------------------------------------------------------------- fixtures */

typedef struct fixture {
    char path[64];
    knd_auth *auth;
} fixture;

static int setup_file(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/knd-auth-test-XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, credentials_text, sizeof credentials_text - 1), (ssize_t)sizeof credentials_text - 1);
    close(fd);
    kn_error err = {0};
    assert_int_equal(knd_auth_new(f->path, &f->auth, &err), KN_OK);
    *state = f;
    return 0;
}

static int setup_anonymous(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    kn_error err = {0};
    assert_int_equal(knd_auth_new(NULL, &f->auth, &err), KN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    knd_auth_destroy(f->auth);
    if (f->path[0])
        unlink(f->path);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- accepted */

static void test_file_holds_one_key_per_profile(void **state)
{
    fixture *f = *state;
    assert_false(knd_auth_anonymous(f->auth));
    assert_int_equal(knd_auth_key_count(f->auth), 2);
}

static void test_valid_signature_passes(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    expect_ok(f->auth, &r, MS(T_SIGN));
}

static void test_temporary_key_with_its_token_passes(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = TEMP_TOKEN});
    expect_ok(f->auth, &r, MS(T_SIGN));
}

static void test_skew_up_to_five_minutes_passes(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    expect_ok(f->auth, &r, MS(T_SIGN + 300));
    expect_ok(f->auth, &r, MS(T_SIGN - 300));
}

static void test_rfc1123_date_header_is_accepted_when_signed(void **state)
{
    fixture *f = *state;
    /* Signed with a Date header instead: the signature's time is the Date in ISO 8601 basic form. */
    signed_req r;
    kn_sigv4_scope scope;
    begin_by_hand(&r, &scope);
    add(&r, "host", "h");
    add(&r, "date", "Wed, 25 Nov 2026 20:30:00 GMT");
    kn_sigv4_request sreq = by_hand_view(&r);
    kn_buf out;
    kn_buf_init(&out, 512);
    assert_int_equal(kn_sigv4_sign(&sreq, AKID, SECRET, &scope, NULL, &out), KN_OK);
    memcpy(r.authorization, out.data, out.len + 1);
    kn_buf_cleanup(&out);
    add(&r, "authorization", r.authorization);
    expect_ok(f->auth, &r, MS(T_SIGN));
}

/* The JS SDK v3 over HTTP/2 sends and signs ":authority" instead of host (knd_http hands it over under both names).
 * kn_sigv4_sign insists on a host header, so this request is signed step by step with the same library. */
static void test_authority_signed_instead_of_host_passes(void **state)
{
    fixture *f = *state;
    signed_req r;
    kn_sigv4_scope scope;
    begin_by_hand(&r, &scope);
    add(&r, ":authority", "127.0.0.1:4567");
    add(&r, "content-type", "application/x-amz-json-1.1");
    add(&r, "x-amz-date", scope.amz_date);
    add(&r, "x-amz-target", "Kinesis_20131202.PutRecord");
    const char *signed_list = ":authority;content-type;x-amz-date;x-amz-target";
    kn_sigv4_request sreq = by_hand_view(&r);
    kn_buf creq, sts;
    kn_buf_init(&creq, 1 << 16);
    kn_buf_init(&sts, 1 << 16);
    assert_int_equal(kn_sigv4_canonical_request(&sreq, signed_list, true, &creq), KN_OK);
    assert_int_equal(kn_sigv4_string_to_sign(&scope, (const char *)creq.data, creq.len, &sts), KN_OK);
    uint8_t key[KN_SHA256_LEN], mac[KN_SHA256_LEN];
    assert_true(kn_sigv4_signing_key(NULL, SECRET, &scope, key));
    kn_crypto_hmac_sha256(key, sizeof key, sts.data, sts.len, mac);
    char hex[2 * KN_SHA256_LEN + 1];
    kn_crypto_hex(mac, sizeof mac, hex);
    snprintf(r.authorization, sizeof r.authorization,
             "AWS4-HMAC-SHA256 Credential=" AKID "/%s/us-east-1/kinesis/aws4_request, SignedHeaders=%s, Signature=%s",
             scope.date, signed_list, hex);
    kn_buf_cleanup(&creq);
    kn_buf_cleanup(&sts);
    add(&r, "host", "127.0.0.1:4567");
    add(&r, "authorization", r.authorization);
    expect_ok(f->auth, &r, MS(T_SIGN));
    /* ...and it is really checked: the same signature over another body fails. */
    r.body = "{}";
    r.body_len = 2;
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException", MSG_SIGNATURE);
}

/* ---------------------------------------------------------------- refused, in AWS's words */

static void test_missing_authorization(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    remove_header(&r, "authorization");
    expect_error(f->auth, &r, MS(T_SIGN), "MissingAuthenticationTokenException", "Missing Authentication Token");
}

static void test_malformed_authorization(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    set_header(&r, "authorization", "X");
    remove_header(&r, "x-amz-date");
    /* Kinesis's answer to "Authorization: X" without a date, as recorded by kinesalite. */
    expect_error(f->auth, &r, MS(T_SIGN), "IncompleteSignatureException",
                 "Authorization header requires 'Credential' parameter. "
                 "Authorization header requires 'Signature' parameter. "
                 "Authorization header requires 'SignedHeaders' parameter. "
                 "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                 "Authorization=X");
}

static void test_authorization_without_signature(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    char *sig = strstr(r.authorization, ", Signature=");
    assert_non_null(sig);
    *sig = '\0';
    set_header(&r, "authorization", r.authorization);
    char want[600];
    snprintf(want, sizeof want, "Authorization header requires 'Signature' parameter. Authorization=%s",
             r.authorization);
    expect_error(f->auth, &r, MS(T_SIGN), "IncompleteSignatureException", want);
}

static void test_missing_date(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    remove_header(&r, "x-amz-date");
    char want[700];
    snprintf(want, sizeof want,
             "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%s",
             r.authorization);
    expect_error(f->auth, &r, MS(T_SIGN), "IncompleteSignatureException", want);
}

static void test_date_not_iso8601_basic(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    set_header(&r, "x-amz-date", "2026-11-25T20:30:00Z");
    expect_error(f->auth, &r, MS(T_SIGN), "IncompleteSignatureException",
                 "Date must be in ISO-8601 'basic format'. Got '2026-11-25T20:30:00Z'. See "
                 "http://en.wikipedia.org/wiki/ISO_8601");
}

static void test_signature_expired(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    expect_error(f->auth, &r, MS(T_SIGN + 600), "InvalidSignatureException",
                 "Signature expired: 20261125T203000Z is now earlier than 20261125T203500Z (20261125T204000Z - 5 min.)");
}

static void test_signature_not_yet_current(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.when = T_SIGN + 600});
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException",
                 "Signature not yet current: 20261125T204000Z is still later than 20261125T203500Z "
                 "(20261125T203000Z + 5 min.)");
}

static void test_unknown_access_key(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.akid = "AKIDNOBODYKNOWS00000"});
    expect_error(f->auth, &r, MS(T_SIGN), "UnrecognizedClientException", MSG_UNRECOGNIZED);
}

static void test_wrong_secret(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.secret = "not-the-secret"});
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException", MSG_SIGNATURE);
}

static void test_body_changed_after_signing(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    r.body = "{\"StreamName\":\"s\",\"Data\":\"AQ==\",\"PartitionKey\":\"k\"}";
    r.body_len = strlen(r.body);
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException", MSG_SIGNATURE);
}

static void test_signed_header_changed_after_signing(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    set_header(&r, "x-amz-target", "Kinesis_20131202.DeleteStream");
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException", MSG_SIGNATURE);
}

/* The comparison covers all 64 hex digits: a change in the first or in the last one is caught alike (it runs in
 * kn_crypto_equal_ct, whose time does not depend on where the inputs differ). */
static void test_signature_differing_in_one_digit_fails(void **state)
{
    fixture *f = *state;
    size_t positions[] = {0, 31, 63};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        signed_req r;
        build(&r, (sign_opts){0});
        char *sig = strstr(r.authorization, "Signature=") + 10;
        sig[positions[i]] = sig[positions[i]] == '0' ? '1' : '0';
        expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException", MSG_SIGNATURE);
    }
}

/* A request whose Authorization names only signed_headers (and a signature of zeros) is refused with message. */
static void expect_signed_headers_refused(knd_auth *auth, const char *signed_headers, const char *message)
{
    signed_req r;
    build(&r, (sign_opts){0});
    char value[512];
    snprintf(value, sizeof value,
             "AWS4-HMAC-SHA256 Credential=" AKID "/20261125/us-east-1/kinesis/aws4_request, "
             "SignedHeaders=%s, Signature=%064d", signed_headers, 0);
    set_header(&r, "authorization", value);
    expect_error(auth, &r, MS(T_SIGN), "InvalidSignatureException", message);
}

static void test_host_must_be_signed(void **state)
{
    fixture *f = *state;
    expect_signed_headers_refused(f->auth, "content-type;x-amz-date;x-amz-target",
                                  "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
}

static void test_date_must_be_signed(void **state)
{
    fixture *f = *state;
    expect_signed_headers_refused(f->auth, "content-type;host;x-amz-target",
                                  "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
}

static void test_scope_with_wrong_service(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.service = "dynamodb"});
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException",
                 "Credential should be scoped to correct service: 'kinesis'.");
}

static void test_scope_with_wrong_region_when_region_is_set(void **state)
{
    fixture *f = *state;
    kn_error err = {0};
    assert_int_equal(knd_auth_set_region(f->auth, "us-east-1", &err), KN_OK);
    signed_req r;
    build(&r, (sign_opts){.region = "eu-west-1"});
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException",
                 "Credential should be scoped to a valid region, not 'eu-west-1'.");
    build(&r, (sign_opts){0});
    expect_ok(f->auth, &r, MS(T_SIGN));
}

static void test_any_region_when_none_is_set(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.region = "ap-southeast-2"});
    expect_ok(f->auth, &r, MS(T_SIGN));
}

/* Each key keeps the signing key of the scope it used last: a key signing for scopes in turn (two regions, then the
 * next day) passes every time, and a wrong secret still fails for the scope whose key is kept. */
static void test_key_signing_for_scopes_in_turn(void **state)
{
    fixture *f = *state;
    signed_req r;
    const int64_t midnight = T_SIGN + 3 * 3600 + 1800; /* 2026-11-26T00:00:00Z */
    const struct {
        const char *region;
        int64_t when;
    } turns[] = {{"us-east-1", T_SIGN}, {"eu-west-1", T_SIGN}, {"us-east-1", T_SIGN}, {"us-east-1", midnight - 60},
                 {"us-east-1", midnight + 60}, {"us-east-1", midnight - 60}};
    for (size_t i = 0; i < sizeof turns / sizeof turns[0]; i++) {
        build(&r, (sign_opts){.region = turns[i].region, .when = turns[i].when});
        expect_ok(f->auth, &r, MS(turns[i].when));
        build(&r, (sign_opts){.region = turns[i].region, .when = turns[i].when, .secret = "not-the-secret"});
        expect_error(f->auth, &r, MS(turns[i].when), "InvalidSignatureException", MSG_SIGNATURE);
    }
}

static void test_header_and_query_signature_together(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    view(&r);
    r.req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256";
    r.req.query_len = strlen(r.req.query);
    kn_error err = {0};
    assert_int_equal(knd_auth_check(f->auth, &r.req, MS(T_SIGN), &err), KN_ERR_SERVICE);
    assert_string_equal(err.type, "InvalidSignatureException");
    assert_string_equal(err.message,
                        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.");
}

static void test_session_token_missing_for_temporary_key(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET});
    expect_error(f->auth, &r, MS(T_SIGN), "UnrecognizedClientException", MSG_UNRECOGNIZED);
}

static void test_session_token_wrong(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = "FwoGZXIvYXdzEXAMPLETOKEN//////////test+tokem=="});
    expect_error(f->auth, &r, MS(T_SIGN), "UnrecognizedClientException", MSG_UNRECOGNIZED);
}

static void test_session_token_for_permanent_key(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.token = TEMP_TOKEN});
    expect_error(f->auth, &r, MS(T_SIGN), "UnrecognizedClientException", MSG_UNRECOGNIZED);
}

static void test_expired_session_token(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = TEMP_TOKEN, .when = T_EXPIRES + 60});
    expect_error(f->auth, &r, MS(T_EXPIRES + 60), "ExpiredTokenException",
                 "The security token included in the request is expired");
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = TEMP_TOKEN, .when = T_EXPIRES - 1});
    expect_ok(f->auth, &r, MS(T_EXPIRES - 1));
}

/* ---------------------------------------------------------------- secrets stay out of the log */

typedef struct captured {
    char text[16384];
    size_t len;
} captured;

static void capture(void *ctx, const char *line, size_t len)
{
    captured *c = ctx;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, line, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
}

static void test_refusals_log_no_secret(void **state)
{
    fixture *f = *state;
    captured cap = {0};
    knd_log_set_writer(capture, &cap);
    knd_log_set_level(KND_LOG_DEBUG);
    signed_req r;
    build(&r, (sign_opts){.secret = "wrong"});
    expect_error(f->auth, &r, MS(T_SIGN), "InvalidSignatureException", MSG_SIGNATURE);
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = "not-it"});
    expect_error(f->auth, &r, MS(T_SIGN), "UnrecognizedClientException", MSG_UNRECOGNIZED);
    knd_log_set_writer(NULL, NULL);
    knd_log_set_level(KND_LOG_INFO);
    assert_true(cap.len > 0); /* refusals are logged at debug level... */
    assert_null(strstr(cap.text, SECRET)); /* ...without any secret or token */
    assert_null(strstr(cap.text, TEMP_SECRET));
    assert_null(strstr(cap.text, TEMP_TOKEN));
}

/* ---------------------------------------------------------------- anonymous and environment */

static void test_anonymous_accepts_any_well_formed_signature(void **state)
{
    fixture *f = *state;
    assert_true(knd_auth_anonymous(f->auth));
    signed_req r;
    build(&r, (sign_opts){.akid = "ANYONE", .secret = "anything"});
    expect_ok(f->auth, &r, MS(T_SIGN));
}

static void test_anonymous_still_refuses_unsigned_and_stale(void **state)
{
    fixture *f = *state;
    signed_req r;
    build(&r, (sign_opts){0});
    remove_header(&r, "authorization");
    expect_error(f->auth, &r, MS(T_SIGN), "MissingAuthenticationTokenException", "Missing Authentication Token");
    build(&r, (sign_opts){0});
    expect_error(f->auth, &r, MS(T_SIGN + 600), "InvalidSignatureException",
                 "Signature expired: 20261125T203000Z is now earlier than 20261125T203500Z (20261125T204000Z - 5 min.)");
}

static void test_environment_key(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", TEMP_AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", TEMP_SECRET, 1);
    setenv("AWS_SESSION_TOKEN", TEMP_TOKEN, 1);
    knd_auth *auth = NULL;
    kn_error err = {0};
    assert_int_equal(knd_auth_new(NULL, &auth, &err), KN_OK);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    assert_int_equal(knd_auth_key_count(auth), 1);
    signed_req r;
    build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = TEMP_TOKEN});
    expect_ok(auth, &r, MS(T_SIGN));
    build(&r, (sign_opts){0});
    expect_error(auth, &r, MS(T_SIGN), "UnrecognizedClientException", MSG_UNRECOGNIZED);
    knd_auth_destroy(auth);
}

/* ---------------------------------------------------------------- credentials file problems */

/* Loads credentials from a temporary file holding text. The verifier goes to *out (the caller's to destroy) or, with
 * out NULL, is destroyed at once. */
static kn_status load_text_into(const char *text, knd_auth **out, kn_error *err)
{
    char path[] = "/tmp/knd-auth-text-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    knd_auth *auth = NULL;
    kn_status st = knd_auth_new(path, &auth, err);
    unlink(path);
    if (out)
        *out = auth;
    else
        knd_auth_destroy(auth);
    return st;
}

static kn_status load_text(const char *text, kn_error *err)
{
    return load_text_into(text, NULL, err);
}

static void test_bad_credentials_files_are_refused(void **state)
{
    (void)state;
    kn_error err = {0};
    assert_int_equal(load_text("[a]\naws_access_key_id = AKID\n", &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "[a]"));
    assert_int_equal(load_text("[a]\naws_access_key_id = A\naws_secret_access_key = s\n"
                               "[b]\naws_access_key_id = A\naws_secret_access_key = t\n", &err),
                     KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "repeats"));
    assert_int_equal(load_text("[a]\naws_access_key_id = A\naws_secret_access_key = s\nexpiration = soon\n", &err),
                     KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "expiration"));
    assert_int_equal(load_text("[a]\nregion = us-east-1\n", &err), KN_ERR_CONFIG);
    assert_null(strstr(err.message, "secret"));
    knd_auth *auth = NULL;
    assert_int_equal(knd_auth_new("/nonexistent/credentials", &auth, &err), KN_ERR_IO);
    assert_null(auth);
}

/* Found by fuzz_knd_auth (docs/fuzzing.md #6): an empty aws_session_token line made the key require an empty token,
 * so every request signed the way botocore signs it (no X-Amz-Security-Token for an empty token) was refused. */
static void test_empty_session_token_line_means_no_token(void **state)
{
    (void)state;
    const char text[] = "[p]\naws_access_key_id = " AKID "\naws_secret_access_key = " SECRET "\naws_session_token =\n";
    knd_auth *auth = NULL;
    kn_error err = {0};
    assert_int_equal(load_text_into(text, &auth, &err), KN_OK);
    signed_req r;
    build(&r, (sign_opts){0});
    expect_ok(auth, &r, MS(T_SIGN));
    knd_auth_destroy(auth);
}

static void test_expiration_forms(void **state)
{
    (void)state;
    const char *forms[] = {"2026-11-25T21:00:00Z", "2026-11-25T21:00:00.000Z", "2026-11-25T22:00:00+01:00",
                           "20261125T210000Z"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "[t]\naws_access_key_id = " TEMP_AKID "\naws_secret_access_key = " TEMP_SECRET
                 "\naws_session_token = " TEMP_TOKEN "\nexpiration = %s\n",
                 forms[i]);
        knd_auth *auth = NULL;
        kn_error err = {0};
        assert_int_equal(load_text_into(text, &auth, &err), KN_OK);
        signed_req r;
        build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = TEMP_TOKEN, .when = T_EXPIRES - 1});
        expect_ok(auth, &r, MS(T_EXPIRES - 1));
        build(&r, (sign_opts){.akid = TEMP_AKID, .secret = TEMP_SECRET, .token = TEMP_TOKEN, .when = T_EXPIRES});
        expect_error(auth, &r, MS(T_EXPIRES), "ExpiredTokenException",
                     "The security token included in the request is expired");
        knd_auth_destroy(auth);
    }
}

int main(void)
{
#define F(name) cmocka_unit_test_setup_teardown(name, setup_file, teardown)
#define A(name) cmocka_unit_test_setup_teardown(name, setup_anonymous, teardown)
    const struct CMUnitTest tests[] = {
        F(test_file_holds_one_key_per_profile),
        F(test_valid_signature_passes),
        F(test_temporary_key_with_its_token_passes),
        F(test_skew_up_to_five_minutes_passes),
        F(test_rfc1123_date_header_is_accepted_when_signed),
        F(test_authority_signed_instead_of_host_passes),
        F(test_missing_authorization),
        F(test_malformed_authorization),
        F(test_authorization_without_signature),
        F(test_missing_date),
        F(test_date_not_iso8601_basic),
        F(test_signature_expired),
        F(test_signature_not_yet_current),
        F(test_unknown_access_key),
        F(test_wrong_secret),
        F(test_body_changed_after_signing),
        F(test_signed_header_changed_after_signing),
        F(test_signature_differing_in_one_digit_fails),
        F(test_host_must_be_signed),
        F(test_date_must_be_signed),
        F(test_scope_with_wrong_service),
        F(test_scope_with_wrong_region_when_region_is_set),
        F(test_any_region_when_none_is_set),
        F(test_key_signing_for_scopes_in_turn),
        F(test_header_and_query_signature_together),
        F(test_session_token_missing_for_temporary_key),
        F(test_session_token_wrong),
        F(test_session_token_for_permanent_key),
        F(test_expired_session_token),
        F(test_refusals_log_no_secret),
        A(test_anonymous_accepts_any_well_formed_signature),
        A(test_anonymous_still_refuses_unsigned_and_stale),
        cmocka_unit_test(test_environment_key),
        cmocka_unit_test(test_bad_credentials_files_are_refused),
        cmocka_unit_test(test_empty_session_token_line_means_no_token),
        cmocka_unit_test(test_expiration_forms),
    };
#undef F
#undef A
    return cmocka_run_group_tests(tests, NULL, NULL);
}
