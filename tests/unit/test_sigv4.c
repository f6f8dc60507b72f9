/* kn_sigv4: the AWS SigV4 conformance vectors (both copies in $KN_TESTDATA/sigv4, every case discovered at run time
 * and checked byte for byte), then the server-side parser, scope checks and verification, the key cache, and the
 * canonicalisation rules the vectors do not reach. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define AMZ_DATE "20150830T123600Z"
#define BUF_CAP (1 << 20)
#define MAX_HEADERS 16

/* ---- files ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap + 1);
    size_t got;
    while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            char *bigger = realloc(data, cap + 1);
            if (!bigger)
                free(data);
            data = bigger;
        }
    }
    fclose(f);
    if (data) {
        data[n] = '\0';
        *len = n;
    }
    return data;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir + "/" + name (+ suffix) into out[PATH_BUF]; fails the test rather than truncate. */
#define PATH_BUF 4096
static void make_path(char *out, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(out, PATH_BUF, "%s/%s%s", dir, name, suffix);
    assert_true(n > 0 && n < PATH_BUF);
}

static const char *testdata(void)
{
    const char *d = getenv("KN_TESTDATA");
    return d && d[0] ? d : "../shared/testdata";
}

/* ---- raw .req / request.txt files ---- */

/* A request file parsed in place: views into text, plus headers the signer adds (x-amz-date, token). */
typedef struct raw_request {
    char *text;
    size_t text_len;
    char method[16];
    kn_sigv4_header headers[MAX_HEADERS];
    kn_sigv4_request req;
} raw_request;

static size_t line_end(const char *s, size_t from, size_t len)
{
    while (from < len && s[from] != '\n')
        from++;
    return from;
}

/* "METHOD target HTTP/1.1", headers (a line starting with whitespace continues the previous value, newline kept:
 * canonicalisation folds it), a blank line, the body. The target may contain spaces (normalize-path/get-space). */
static bool parse_raw_request(char *text, size_t len, raw_request *r)
{
    memset(r, 0, sizeof *r);
    r->text = text;
    r->text_len = len;
    size_t eol = line_end(text, 0, len);
    size_t line = eol > 0 && text[eol - 1] == '\r' ? eol - 1 : eol;
    const char *sp = memchr(text, ' ', line);
    const char *http = NULL;
    for (const char *p = text; p + 6 <= text + line; p++)
        if (memcmp(p, " HTTP/", 6) == 0)
            http = p;
    if (!sp || !http || (size_t)(sp - text) >= sizeof r->method)
        return false;
    memcpy(r->method, text, (size_t)(sp - text));
    const char *target = sp + 1;
    size_t target_len = (size_t)(http - target);
    const char *q = memchr(target, '?', target_len);
    r->req.method = r->method;
    r->req.path = target;
    r->req.path_len = q ? (size_t)(q - target) : target_len;
    r->req.query = q ? q + 1 : "";
    r->req.query_len = q ? target_len - r->req.path_len - 1 : 0;
    size_t i = eol + 1;
    while (i < len) {
        size_t e = line_end(text, i, len);
        size_t l = e > i && text[e - 1] == '\r' ? e - 1 : e;
        if (l == i) {
            r->req.body = text + e + 1 <= text + len ? text + e + 1 : text + len;
            r->req.body_len = e + 1 <= len ? len - e - 1 : 0;
            break;
        }
        if ((text[i] == ' ' || text[i] == '\t') && r->req.header_count > 0) {
            kn_sigv4_header *prev = &r->headers[r->req.header_count - 1];
            prev->value_len = (size_t)(text + l - prev->value);
        } else {
            const char *colon = memchr(text + i, ':', l - i);
            if (!colon || r->req.header_count == MAX_HEADERS)
                return false;
            kn_sigv4_header *h = &r->headers[r->req.header_count++];
            h->name = text + i;
            h->name_len = (size_t)(colon - (text + i));
            h->value = colon + 1;
            h->value_len = (size_t)(text + l - (colon + 1));
        }
        i = e + 1;
    }
    r->req.headers = r->headers;
    return true;
}

static bool add_header(raw_request *r, const char *name, const char *value)
{
    if (r->req.header_count == MAX_HEADERS)
        return false;
    r->headers[r->req.header_count++] = (kn_sigv4_header){name, strlen(name), value, strlen(value)};
    return true;
}

/* ---- checking one vector ---- */

/* Compares got with the expected file's bytes; prints both on mismatch. */
static bool same_as_file(const char *what, const char *case_name, const kn_buf *got, const char *path)
{
    size_t len = 0;
    char *want = read_file(path, &len);
    bool same = want && got->len == len && memcmp(got->data, want, len) == 0;
    if (!same)
        print_error("%s: %s differs\n--- expected (%s)\n%s\n--- got\n%.*s\n", case_name, what, path,
                    want ? want : "(unreadable)", (int)got->len, (const char *)got->data);
    free(want);
    return same;
}

typedef struct vector_inputs {
    const char *akid, *secret, *token;
    kn_sigv4_scope scope;
    bool normalize;
} vector_inputs;

/* Canonical request, string to sign and Authorization header of one case; true when all three match the files. */
static bool check_vector(const char *case_name, raw_request *r, const vector_inputs *in, const char *creq_path,
                         const char *sts_path, kn_buf *authz)
{
    kn_buf creq, sts;
    kn_buf_init(&creq, BUF_CAP);
    kn_buf_init(&sts, BUF_CAP);
    r->req.path_as_is = !in->normalize;
    bool ok = kn_sigv4_canonical_request(&r->req, NULL, in->normalize, &creq) == KN_OK &&
              same_as_file("canonical request", case_name, &creq, creq_path) &&
              kn_sigv4_string_to_sign(&in->scope, (const char *)creq.data, creq.len, &sts) == KN_OK &&
              same_as_file("string to sign", case_name, &sts, sts_path) &&
              kn_sigv4_sign(&r->req, in->akid, in->secret, &in->scope, NULL, authz) == KN_OK;
    kn_buf_cleanup(&creq);
    kn_buf_cleanup(&sts);
    return ok;
}

static void suite_scope(kn_sigv4_scope *scope, const char *amz_date, const char *region, const char *service)
{
    memset(scope, 0, sizeof *scope);
    snprintf(scope->amz_date, sizeof scope->amz_date, "%s", amz_date);
    snprintf(scope->date, sizeof scope->date, "%.8s", amz_date);
    snprintf(scope->region, sizeof scope->region, "%s", region);
    snprintf(scope->service, sizeof scope->service, "%s", service);
}

/* ---- aws-sig-v4-test-suite (botocore's copy) ---- */

/* The suite's one temporary-credentials case does not carry its token in the .req: the signer adds it (botocore's
 * runner takes it from the expected .creq). post-sts-header-before has its token in the .req already, and
 * post-sts-header-after adds it only after signing, so neither needs one here. */
static const struct {
    const char *name, *token;
} k_suite_tokens[] = {
    {"get-vanilla-with-session-token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"},
};

static const char *suite_token(const char *name)
{
    for (size_t i = 0; i < sizeof k_suite_tokens / sizeof k_suite_tokens[0]; i++)
        if (strcmp(k_suite_tokens[i].name, name) == 0)
            return k_suite_tokens[i].token;
    return NULL;
}

typedef struct run_counts {
    int run, failed;
} run_counts;

static void run_suite_case(const char *dir, const char *name, run_counts *counts)
{
    char base[PATH_BUF], path[PATH_BUF];
    make_path(base, dir, name, "");
    make_path(path, dir, name, ".req");
    size_t len = 0;
    char *text = read_file(path, &len);
    raw_request r;
    vector_inputs in = {.akid = AKID, .secret = SECRET, .token = suite_token(name), .normalize = true};
    suite_scope(&in.scope, AMZ_DATE, "us-east-1", "service");
    kn_buf authz;
    kn_buf_init(&authz, BUF_CAP);
    counts->run++;
    bool ok = text && parse_raw_request(text, len, &r) &&
              (!in.token || add_header(&r, "X-Amz-Security-Token", in.token));
    char creq_path[PATH_BUF], sts_path[PATH_BUF], authz_path[PATH_BUF];
    make_path(creq_path, dir, name, ".creq");
    make_path(sts_path, dir, name, ".sts");
    make_path(authz_path, dir, name, ".authz");
    ok = ok && check_vector(name, &r, &in, creq_path, sts_path, &authz) &&
         same_as_file("Authorization", name, &authz, authz_path);
    if (!ok) {
        print_error("FAILED vector %s\n", base);
        counts->failed++;
    }
    kn_buf_cleanup(&authz);
    free(text);
}

/* A folder is a case when it holds <folder>.req; sub-suites (normalize-path/, post-sts-token/) are folders of
 * cases. */
static void walk_suite(const char *dir, run_counts *counts)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_BUF], req[PATH_BUF];
        make_path(sub, dir, e->d_name, "");
        if (!is_dir(sub))
            continue;
        make_path(req, sub, e->d_name, ".req");
        struct stat st;
        if (stat(req, &st) == 0)
            run_suite_case(sub, e->d_name, counts);
        else
            walk_suite(sub, counts);
    }
    closedir(d);
}

static void aws_sig_v4_test_suite_vectors_match(void **state)
{
    (void)state;
    char dir[PATH_BUF];
    make_path(dir, testdata(), "sigv4/aws-sig-v4-test-suite", "");
    run_counts counts = {0};
    walk_suite(dir, &counts);
    print_message("aws-sig-v4-test-suite: %d vectors run, 0 skipped (all apply), %d failed\n", counts.run,
                  counts.failed);
    assert_true(counts.run > 0);
    assert_int_equal(counts.failed, 0);
}

/* ---- aws-c-auth-v4 (the CRT copy): inputs in context.json; header-* files apply, query-* are presigned URLs ---- */

typedef struct crt_context {
    cJSON *json;
    vector_inputs in;
    bool sign_body;
} crt_context;

/* "2015-08-30T12:36:00Z" → "20150830T123600Z" */
static bool basic_iso8601(const char *ext, char out[17])
{
    size_t n = 0;
    for (const char *p = ext; *p && n < 16; p++)
        if (*p != '-' && *p != ':')
            out[n++] = *p;
    out[n] = '\0';
    int64_t t;
    return kn_sigv4_parse_amz_date(out, n, &t);
}

static bool load_context(const char *path, crt_context *c)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    memset(c, 0, sizeof *c);
    c->json = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *creds = cJSON_GetObjectItemCaseSensitive(c->json, "credentials");
    const char *akid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(creds, "access_key_id"));
    const char *secret = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(creds, "secret_access_key"));
    const char *region = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->json, "region"));
    const char *service = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->json, "service"));
    const char *timestamp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->json, "timestamp"));
    char amz_date[17];
    if (!akid || !secret || !region || !service || !timestamp || !basic_iso8601(timestamp, amz_date))
        return false;
    c->in.akid = akid;
    c->in.secret = secret;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->json, "omit_session_token")))
        c->in.token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(creds, "token"));
    c->in.normalize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->json, "normalize"));
    c->sign_body = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->json, "sign_body"));
    suite_scope(&c->in.scope, amz_date, region, service);
    return true;
}

/* The Authorization value from header-signed-request.txt. */
static bool authz_from_signed_request(const char *path, kn_buf *out)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    const char *line = text ? strstr(text, "\nAuthorization:") : NULL;
    bool ok = false;
    if (line) {
        line += strlen("\nAuthorization:");
        size_t n = strcspn(line, "\r\n");
        ok = kn_buf_append(out, line, n) == KN_OK;
    }
    free(text);
    return ok;
}

static bool buf_equals_file_text(const char *what, const char *case_name, const kn_buf *got, const kn_buf *want)
{
    bool same = got->len == want->len && memcmp(got->data, want->data, want->len) == 0;
    if (!same)
        print_error("%s: %s differs\n--- expected\n%s\n--- got\n%s\n", case_name, what, (const char *)want->data,
                    (const char *)got->data);
    return same;
}

static bool run_crt_case_files(const char *dir, const char *name, crt_context *c, kn_buf *authz)
{
    char path[PATH_BUF], creq_path[PATH_BUF], sts_path[PATH_BUF];
    make_path(path, dir, "request.txt", "");
    make_path(creq_path, dir, "header-canonical-request.txt", "");
    make_path(sts_path, dir, "header-string-to-sign.txt", "");
    size_t len = 0;
    char *text = read_file(path, &len);
    raw_request r;
    char body_hex[2 * KN_SHA256_LEN + 1];
    bool ok = text && parse_raw_request(text, len, &r) && add_header(&r, "X-Amz-Date", c->in.scope.amz_date) &&
              (!c->in.token || add_header(&r, "X-Amz-Security-Token", c->in.token));
    if (ok && c->sign_body) {
        uint8_t hash[KN_SHA256_LEN];
        ok = kn_crypto_sha256(r.req.body, r.req.body_len, hash);
        kn_crypto_hex(hash, sizeof hash, body_hex);
        ok = ok && add_header(&r, "X-Amz-Content-Sha256", body_hex);
    }
    ok = ok && check_vector(name, &r, &c->in, creq_path, sts_path, authz);
    free(text);
    return ok;
}

static void run_crt_case(const char *dir, const char *name, run_counts *counts)
{
    char path[PATH_BUF];
    crt_context c;
    kn_buf authz, want_authz, sig;
    kn_buf_init(&authz, BUF_CAP);
    kn_buf_init(&want_authz, BUF_CAP);
    kn_buf_init(&sig, BUF_CAP);
    counts->run++;
    make_path(path, dir, "context.json", "");
    bool ok = load_context(path, &c) && run_crt_case_files(dir, name, &c, &authz);
    make_path(path, dir, "header-signed-request.txt", "");
    ok = ok && authz_from_signed_request(path, &want_authz) &&
         buf_equals_file_text("Authorization", name, &authz, &want_authz);
    /* header-signature.txt holds just the hex signature: the tail of the Authorization value. */
    const char *at = ok ? strstr((const char *)authz.data, "Signature=") : NULL;
    make_path(path, dir, "header-signature.txt", "");
    ok = ok && at && kn_buf_append_str(&sig, at + strlen("Signature=")) == KN_OK &&
         same_as_file("signature", name, &sig, path);
    if (!ok) {
        print_error("FAILED vector %s\n", dir);
        counts->failed++;
    }
    cJSON_Delete(c.json);
    kn_buf_cleanup(&authz);
    kn_buf_cleanup(&want_authz);
    kn_buf_cleanup(&sig);
}

static void aws_c_auth_vectors_match(void **state)
{
    (void)state;
    char dir[PATH_BUF];
    make_path(dir, testdata(), "sigv4/aws-c-auth-v4", "");
    DIR *d = opendir(dir);
    assert_non_null(d);
    run_counts counts = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_BUF], ctx[PATH_BUF];
        make_path(sub, dir, e->d_name, "");
        make_path(ctx, sub, "context.json", "");
        struct stat st;
        if (e->d_name[0] != '.' && is_dir(sub) && stat(ctx, &st) == 0)
            run_crt_case(sub, e->d_name, &counts);
    }
    closedir(d);
    print_message("aws-c-auth-v4: %d vectors run (header form; the query-* presigned-URL files are not ours), "
                  "0 skipped, %d failed\n",
                  counts.run, counts.failed);
    assert_true(counts.run > 0);
    assert_int_equal(counts.failed, 0);
}

/* ---- a PutRecord-like request for the unit tests below ---- */

typedef struct put_request {
    kn_sigv4_header headers[8];
    kn_sigv4_request req;
    kn_sigv4_scope scope;
} put_request;

static const char k_body[] = "{\"StreamName\":\"s\",\"Data\":\"aGk=\",\"PartitionKey\":\"k\"}";

static void put_request_init(put_request *p)
{
    memset(p, 0, sizeof *p);
    suite_scope(&p->scope, AMZ_DATE, "us-east-1", "kinesis");
    const char *h[][2] = {
        {"Host", "kinesis.us-east-1.amazonaws.com"},
        {"X-Amz-Date", AMZ_DATE},
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "Kinesis_20131202.PutRecord"},
        {"User-Agent", "kinesis-c/0.1.0"},
    };
    for (size_t i = 0; i < 5; i++)
        p->headers[i] = (kn_sigv4_header){h[i][0], strlen(h[i][0]), h[i][1], strlen(h[i][1])};
    p->req = (kn_sigv4_request){.method = "POST", .path = "/", .path_len = 1, .headers = p->headers,
                                .header_count = 5, .body = k_body, .body_len = strlen(k_body)};
}

/* Signs p, parses the result into auth (views into authz, which the caller cleans up). */
static void sign_and_parse(put_request *p, kn_buf *authz, kn_sigv4_auth *auth)
{
    kn_buf_init(authz, BUF_CAP);
    assert_int_equal(kn_sigv4_sign(&p->req, AKID, SECRET, &p->scope, NULL, authz), KN_OK);
    assert_int_equal(kn_sigv4_parse_authorization((const char *)authz->data, authz->len, auth, NULL),
                     KN_SIGV4_PARSE_OK);
}

/* ---- parser ---- */

#define GOOD_AUTHZ                                                                                                   \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "                             \
    "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static kn_sigv4_parse_result parse(const char *text, kn_sigv4_auth *auth, const char **why)
{
    return kn_sigv4_parse_authorization(text, strlen(text), auth, why);
}

static void parse_reads_every_field(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    assert_int_equal(parse(GOOD_AUTHZ, &a, NULL), KN_SIGV4_PARSE_OK);
    assert_int_equal(a.access_key_id_len, strlen(AKID));
    assert_memory_equal(a.access_key_id, AKID, strlen(AKID));
    assert_string_equal(a.scope.date, "20150830");
    assert_string_equal(a.scope.region, "us-east-1");
    assert_string_equal(a.scope.service, "service");
    assert_string_equal(a.scope.amz_date, "");
    assert_int_equal(a.signed_headers_len, strlen("host;x-amz-date"));
    assert_memory_equal(a.signed_headers, "host;x-amz-date", a.signed_headers_len);
    assert_string_equal(a.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    assert_int_equal(a.credential_len, strlen("AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"));
}

static void parse_accepts_any_separator_spacing_and_order(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    const char *variants[] = {
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,SignedHeaders=host;"
        "x-amz-date,Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "  AWS4-HMAC-SHA256   Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31 ,  "
        "SignedHeaders=host;x-amz-date,\tCredential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request  ",
    };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(parse(variants[i], &a, NULL), KN_SIGV4_PARSE_OK);
        assert_string_equal(a.scope.region, "us-east-1");
        assert_memory_equal(a.signed_headers, "host;x-amz-date", a.signed_headers_len);
        assert_string_equal(a.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    }
}

static void parse_keeps_last_of_a_repeated_part(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    assert_int_equal(parse(GOOD_AUTHZ ", SignedHeaders=host", &a, NULL), KN_SIGV4_PARSE_OK);
    assert_int_equal(a.signed_headers_len, 4);
}

static void parse_lists_every_missing_part(void **state)
{
    (void)state;
    const struct {
        const char *header, *why;
    } cases[] = {
        {"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab",
         "Authorization header requires 'Credential' parameter."},
        {"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host",
         "Authorization header requires 'Signature' parameter."},
        {"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=ab",
         "Authorization header requires 'SignedHeaders' parameter."},
        {"AWS4-HMAC-SHA256 Credential=a/b/c/d/e",
         "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
         "parameter."},
        {"AWS4-HMAC-SHA256 Signature=ab",
         "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' "
         "parameter."},
        {"AWS4-HMAC-SHA256",
         "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
         "parameter. Authorization header requires 'SignedHeaders' parameter."},
        {"AWS4-HMAC-SHA256 Foo=Bar, Baz=Burp",
         "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
         "parameter. Authorization header requires 'SignedHeaders' parameter."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kn_sigv4_auth a;
        const char *why = NULL;
        assert_int_equal(parse(cases[i].header, &a, &why), KN_SIGV4_PARSE_INCOMPLETE);
        assert_string_equal(why, cases[i].why);
    }
}

static void parse_rejects_a_part_without_equals(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    const char *why = NULL;
    /* A space inside the credential splits it: AWS then complains about the second half. */
    assert_int_equal(parse("AWS4-HMAC-SHA256 Credential=AKID /20150830/us-east-1/kinesis/aws4_request, "
                           "SignedHeaders=host, Signature=ab",
                           &a, &why),
                     KN_SIGV4_PARSE_INCOMPLETE);
    assert_non_null(strstr(why, "not a valid key=value pair (missing equal-sign)"));
}

static void parse_rejects_credential_without_five_elements(void **state)
{
    (void)state;
    const char *headers[] = {
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesis, SignedHeaders=host, Signature=ab",
        ("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesis/aws4_request/x, SignedHeaders=host, "
         "Signature=ab"),
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=ab",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        kn_sigv4_auth a;
        const char *why = NULL;
        assert_int_equal(parse(headers[i], &a, &why), KN_SIGV4_PARSE_INCOMPLETE);
        assert_string_equal(why, "Credential must have exactly 5 slash-delimited elements, e.g. "
                                 "keyid/date/region/service/term.");
    }
}

static void parse_rejects_other_aws4_algorithms(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    const char *why = NULL;
    assert_int_equal(parse("AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=ab", &a, &why),
                     KN_SIGV4_PARSE_INCOMPLETE);
    assert_non_null(strstr(why, "Unsupported AWS 'algorithm'"));
}

static void parse_reports_other_schemes(void **state)
{
    (void)state;
    const char *headers[] = {"", "   ", "Bearer eyJhbGciOi", "AWS AKIAI2HBJEUM7LRSTWOQ:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=",
                             "aws4-hmac-sha256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=ab"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        kn_sigv4_auth a;
        assert_int_equal(parse(headers[i], &a, NULL), KN_SIGV4_PARSE_NOT_SIGV4);
    }
}

static void parse_leaves_a_wrong_length_signature_empty(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    assert_int_equal(parse("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesis/aws4_request, "
                           "SignedHeaders=host, Signature=ABCDEF",
                           &a, NULL),
                     KN_SIGV4_PARSE_OK);
    assert_string_equal(a.signature, "");
}

static void parse_uses_length_not_nul(void **state)
{
    (void)state;
    kn_sigv4_auth a;
    char text[] = GOOD_AUTHZ "XYZ";
    assert_int_equal(kn_sigv4_parse_authorization(text, strlen(GOOD_AUTHZ), &a, NULL), KN_SIGV4_PARSE_OK);
    assert_string_equal(a.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void assert_incomplete_message(const char *header, bool has_date, const char *want)
{
    kn_buf msg;
    kn_buf_init(&msg, BUF_CAP);
    assert_int_equal(kn_sigv4_incomplete_message(header, strlen(header), has_date, &msg), KN_OK);
    assert_string_equal(msg.data ? (const char *)msg.data : "", want);
    kn_buf_cleanup(&msg);
}

static void incomplete_message_is_aws_wording(void **state)
{
    (void)state;
    assert_incomplete_message(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE", false,
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
        "parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE");
    assert_incomplete_message("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, Signature=ABCDEF", true,
                              "Authorization header requires 'SignedHeaders' parameter. "
                              "Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, Signature=ABCDEF");
    assert_incomplete_message("AWS4-HMAC-SHA256 FooBar, BazBurp", true,
                              "'FooBar' not a valid key=value pair (missing equal-sign) in Authorization header: "
                              "'AWS4-HMAC-SHA256 FooBar, BazBurp'");
    assert_incomplete_message("AWS4-HMAC-SHA512 Credential=a", true,
                              "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.");
    assert_incomplete_message("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, Signature=ABCDEF, SignedHeaders=host", true,
                              "Credential must have exactly 5 slash-delimited elements, e.g. "
                              "keyid/date/region/service/term, got 'AKIDEXAMPLE'");
    assert_incomplete_message(GOOD_AUTHZ, false,
                              "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                              "header. Authorization=" GOOD_AUTHZ);
    assert_incomplete_message("Bearer abc", true,
                              "'abc' not a valid key=value pair (missing equal-sign) in Authorization header: "
                              "'Bearer abc'");
}

static void incomplete_message_is_empty_for_a_complete_header(void **state)
{
    (void)state;
    assert_incomplete_message(GOOD_AUTHZ, true, "");
}

/* ---- scope checks ---- */

static bool check(const char *header, const char *amz_date, const char *region, const char *service, kn_buf *msg)
{
    kn_sigv4_auth a;
    assert_int_equal(parse(header, &a, NULL), KN_SIGV4_PARSE_OK);
    return kn_sigv4_check_scope(&a, amz_date, region, service, msg);
}

static void check_scope_accepts_matching_scope(void **state)
{
    (void)state;
    kn_buf msg;
    kn_buf_init(&msg, BUF_CAP);
    assert_true(check(GOOD_AUTHZ, AMZ_DATE, "us-east-1", "service", &msg));
    assert_true(check(GOOD_AUTHZ, AMZ_DATE, NULL, "service", &msg));
    assert_int_equal(msg.len, 0);
    kn_buf_cleanup(&msg);
}

static void check_scope_requires_host_signed(void **state)
{
    (void)state;
    kn_buf msg;
    kn_buf_init(&msg, BUF_CAP);
    assert_false(check("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                       "SignedHeaders=hostx;x-amz-date, Signature=ab",
                       AMZ_DATE, NULL, "service", &msg));
    assert_string_equal((const char *)msg.data,
                        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    kn_buf_cleanup(&msg);
}

static void check_scope_accepts_signed_authority_for_http2(void **state)
{
    (void)state;
    kn_buf msg;
    kn_buf_init(&msg, BUF_CAP);
    assert_true(check("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                      "SignedHeaders=:authority;x-amz-date, Signature=ab",
                      AMZ_DATE, NULL, "service", &msg));
    assert_int_equal(msg.len, 0);
    kn_buf_cleanup(&msg);
}

static void check_scope_lists_every_wrong_part_in_aws_order(void **state)
{
    (void)state;
    kn_buf msg;
    kn_buf_init(&msg, BUF_CAP);
    assert_false(check("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/foobar/wrong-region/wrong-service/aws5_request, "
                       "SignedHeaders=host;x-amz-date, Signature=ab",
                       "20150830T122100Z", "us-east-1", "service", &msg));
    assert_string_equal((const char *)msg.data,
                        "Credential should be scoped to a valid region, not 'wrong-region'. Credential should be "
                        "scoped to correct service: 'service'. Credential should be scoped with a valid terminator: "
                        "'aws4_request', not 'aws5_request'. Date in Credential scope does not match YYYYMMDD from "
                        "ISO-8601 version of date from HTTP: 'foobar' != '20150830', from '20150830T122100Z'.");
    kn_buf_cleanup(&msg);
}

static void check_scope_rejects_each_wrong_part_alone(void **state)
{
    (void)state;
    const struct {
        const char *credential, *want;
    } cases[] = {
        {"AKID/20150830/eu-west-1/service/aws4_request",
         "Credential should be scoped to a valid region, not 'eu-west-1'."},
        {"AKID/20150830/us-east-1/kinesis/aws4_request", "Credential should be scoped to correct service: 'service'."},
        {"AKID/20150830/us-east-1/service/aws4_reques",
         "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'."},
        {"AKID/20150831/us-east-1/service/aws4_request",
         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != "
         "'20150830', from '20150830T123600Z'."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char header[512];
        snprintf(header, sizeof header,
                 "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=host;x-amz-date, Signature=ab", cases[i].credential);
        kn_buf msg;
        kn_buf_init(&msg, BUF_CAP);
        assert_false(check(header, AMZ_DATE, "us-east-1", "service", &msg));
        assert_string_equal((const char *)msg.data, cases[i].want);
        kn_buf_cleanup(&msg);
    }
}

static void check_scope_without_region_wants_a_well_formed_one(void **state)
{
    (void)state;
    char header[512];
    char long_region[80];
    memset(long_region, 'a', sizeof long_region - 1);
    long_region[sizeof long_region - 1] = '\0';
    const char *bad[] = {"", "US_EAST_1", long_region};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(header, sizeof header,
                 "AWS4-HMAC-SHA256 Credential=AKID/20150830/%s/kinesis/aws4_request, SignedHeaders=host, "
                 "Signature=ab",
                 bad[i]);
        kn_buf msg;
        kn_buf_init(&msg, BUF_CAP);
        assert_false(check(header, AMZ_DATE, NULL, "kinesis", &msg));
        assert_non_null(strstr((const char *)msg.data, "Credential should be scoped to a valid region"));
        kn_buf_cleanup(&msg);
    }
}

static void check_scope_verdict_does_not_depend_on_message_room(void **state)
{
    (void)state;
    kn_buf msg;
    kn_buf_init(&msg, 0);
    assert_false(check(GOOD_AUTHZ, AMZ_DATE, "eu-west-1", "service", &msg));
    assert_false(check(GOOD_AUTHZ, "20150831T000000Z", "us-east-1", "service", &msg));
    assert_int_equal(msg.len, 0);
    kn_buf_cleanup(&msg);
}

/* ---- verify ---- */

static void verify_accepts_its_own_signature(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    kn_sigv4_key_cache cache;
    kn_sigv4_key_cache_init(&cache);
    assert_true(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    assert_true(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, &cache));
    assert_true(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, &cache));
    kn_sigv4_key_cache_cleanup(&cache);
    kn_buf_cleanup(&authz);
}

static void verify_rejects_wrong_secret(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz", NULL));
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, "", NULL));
    kn_buf_cleanup(&authz);
}

static void verify_rejects_changed_body(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    char body[sizeof k_body];
    memcpy(body, k_body, sizeof body);
    body[strlen("{\"StreamName\":\"")] = 't';
    p.req.body = body;
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    p.req.body = k_body;
    p.req.body_len--; /* truncated by one byte */
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_rejects_changed_signed_header(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    p.headers[3].value = "Kinesis_20131202.DeleteStream";
    p.headers[3].value_len = strlen(p.headers[3].value);
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_rejects_removed_or_added_duplicate_signed_header(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    p.headers[5] = (kn_sigv4_header){"x-amz-target", 12, "Kinesis_20131202.DeleteStream", 29};
    p.req.header_count = 6;
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    p.req.header_count = 5;
    p.headers[3] = p.headers[4]; /* x-amz-target gone */
    p.req.header_count = 4;
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_ignores_unsigned_headers(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    assert_null(strstr((const char *)authz.data, "user-agent"));
    p.headers[4].value = "another-agent/2.0"; /* user-agent was never signed */
    p.headers[4].value_len = strlen(p.headers[4].value);
    p.headers[5] = (kn_sigv4_header){"X-Forwarded-For", 15, "10.0.0.1", 8};
    p.headers[6] = (kn_sigv4_header){"authorization", 13, (const char *)authz.data, authz.len};
    p.req.header_count = 7;
    assert_true(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_matches_names_in_any_case(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    /* kinesisd hands headers over lowercased; HTTP/1.1 clients may send any case. */
    p.headers[0].name = "HOST";
    p.headers[3].name = "x-amz-target";
    assert_true(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_rejects_other_date_method_or_path(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    assert_false(kn_sigv4_verify(&p.req, &auth, "20150830T123601Z", SECRET, NULL));
    p.req.method = "PUT";
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    p.req.method = "POST";
    p.req.path = "/x";
    p.req.path_len = 2;
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_rejects_tampered_signature_or_scope(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    for (size_t i = 0; i < 64; i += 21) {
        kn_sigv4_auth bad = auth;
        bad.signature[i] = bad.signature[i] == '0' ? '1' : '0';
        assert_false(kn_sigv4_verify(&p.req, &bad, AMZ_DATE, SECRET, NULL));
    }
    kn_sigv4_auth bad = auth;
    memcpy(bad.scope.region, "us-west-2", 10);
    assert_false(kn_sigv4_verify(&p.req, &bad, AMZ_DATE, SECRET, NULL));
    bad = auth;
    bad.signature[0] = '\0';
    assert_false(kn_sigv4_verify(&p.req, &bad, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

static void verify_rejects_narrower_signed_header_list(void **state)
{
    (void)state;
    /* An attacker cannot drop a signed header from the list: the list is part of what is signed. */
    put_request p;
    put_request_init(&p);
    kn_buf authz;
    kn_sigv4_auth auth;
    sign_and_parse(&p, &authz, &auth);
    auth.signed_headers = "host;x-amz-date";
    auth.signed_headers_len = strlen(auth.signed_headers);
    assert_false(kn_sigv4_verify(&p.req, &auth, AMZ_DATE, SECRET, NULL));
    kn_buf_cleanup(&authz);
}

/* ---- sign ---- */

static void sign_requires_host(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    p.req.headers = p.headers + 1;
    p.req.header_count = 4;
    kn_buf out;
    kn_buf_init(&out, BUF_CAP);
    assert_int_equal(kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, NULL, &out), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(out.len, 0);
    kn_buf_cleanup(&out);
}

static void sign_leaves_out_unchanged_at_its_cap(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf out;
    kn_buf_init(&out, 40);
    assert_int_equal(kn_buf_append_str(&out, "prefix"), KN_OK);
    assert_int_equal(kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, NULL, &out), KN_ERR_NO_MEMORY);
    assert_string_equal((const char *)out.data, "prefix");
    kn_buf_cleanup(&out);
}

static void sign_leaves_proxy_headers_unsigned(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    p.headers[5] = (kn_sigv4_header){"Expect", 6, "100-continue", 12};
    p.headers[6] = (kn_sigv4_header){"X-Amzn-Trace-Id", 15, "Root=1", 6};
    p.headers[7] = (kn_sigv4_header){"Transfer-Encoding", 17, "chunked", 7};
    p.req.header_count = 8;
    kn_buf list;
    kn_buf_init(&list, BUF_CAP);
    assert_int_equal(kn_sigv4_signed_header_list(&p.req, &list), KN_OK);
    assert_string_equal((const char *)list.data, "content-type;host;x-amz-date;x-amz-target");
    kn_buf_cleanup(&list);
}

static void sign_with_and_without_cache_agree(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_sigv4_key_cache cache;
    kn_sigv4_key_cache_init(&cache);
    kn_buf a, b, c;
    kn_buf_init(&a, BUF_CAP);
    kn_buf_init(&b, BUF_CAP);
    kn_buf_init(&c, BUF_CAP);
    assert_int_equal(kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, NULL, &a), KN_OK);
    assert_int_equal(kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, &cache, &b), KN_OK);
    assert_int_equal(kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, &cache, &c), KN_OK);
    assert_string_equal((const char *)a.data, (const char *)b.data);
    assert_string_equal((const char *)a.data, (const char *)c.data);
    kn_buf_cleanup(&a);
    kn_buf_cleanup(&b);
    kn_buf_cleanup(&c);
    kn_sigv4_key_cache_cleanup(&cache);
}

/* ---- signing key cache ---- */

static void signing_key_matches_aws_documented_example(void **state)
{
    (void)state;
    /* AWS General Reference, "Examples of how to derive a signing key for Signature Version 4" (iam, 20120215). */
    kn_sigv4_scope scope;
    suite_scope(&scope, "20120215T000000Z", "us-east-1", "iam");
    uint8_t key[KN_SHA256_LEN];
    char hex[2 * KN_SHA256_LEN + 1];
    assert_true(kn_sigv4_signing_key(NULL, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &scope, key));
    kn_crypto_hex(key, sizeof key, hex);
    assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void key_cache_keys_by_secret_and_scope(void **state)
{
    (void)state;
    kn_sigv4_key_cache cache;
    kn_sigv4_key_cache_init(&cache);
    const char *secrets[] = {SECRET, "another-secret"};
    const char *regions[] = {"us-east-1", "eu-west-1", "ap-south-1"};
    const char *dates[] = {"20150830T000000Z", "20150831T000000Z"};
    /* 12 combinations through 8 slots, twice: hits, misses and evictions must all give the derived key. */
    for (int round = 0; round < 2; round++)
        for (size_t s = 0; s < 2; s++)
            for (size_t r = 0; r < 3; r++)
                for (size_t d = 0; d < 2; d++) {
                    kn_sigv4_scope scope;
                    suite_scope(&scope, dates[d], regions[r], "kinesis");
                    uint8_t want[KN_SHA256_LEN], got[KN_SHA256_LEN];
                    assert_true(kn_sigv4_signing_key(NULL, secrets[s], &scope, want));
                    assert_true(kn_sigv4_signing_key(&cache, secrets[s], &scope, got));
                    assert_memory_equal(got, want, sizeof want);
                }
    kn_sigv4_key_cache_cleanup(&cache);
}

static void key_cache_never_holds_the_secret(void **state)
{
    (void)state;
    kn_sigv4_key_cache cache;
    kn_sigv4_key_cache_init(&cache);
    put_request p;
    put_request_init(&p);
    uint8_t key[KN_SHA256_LEN];
    assert_true(kn_sigv4_signing_key(&cache, SECRET, &p.scope, key));
    const uint8_t *bytes = (const uint8_t *)&cache;
    for (size_t i = 0; i + 8 <= sizeof cache; i++)
        assert_false(memcmp(bytes + i, SECRET, 8) == 0);
    kn_sigv4_key_cache_cleanup(&cache);
    for (size_t i = 0; i < KN_SIGV4_KEY_CACHE_SLOTS; i++)
        for (size_t j = 0; j < KN_SHA256_LEN; j++)
            assert_int_equal(cache.entries[i].key[j], 0);
}

typedef struct thread_job {
    kn_sigv4_key_cache *cache;
    const char *want;
    int mismatches;
} thread_job;

static void *sign_many(void *arg)
{
    thread_job *job = arg;
    put_request p;
    put_request_init(&p);
    const char *regions[] = {"us-east-1", "eu-west-1"};
    for (int i = 0; i < 400; i++) {
        kn_buf out;
        kn_buf_init(&out, BUF_CAP);
        snprintf(p.scope.region, sizeof p.scope.region, "%s", regions[i % 2]);
        if (kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, job->cache, &out) != KN_OK ||
            (i % 2 == 0 && strcmp((const char *)out.data, job->want) != 0))
            job->mismatches++;
        kn_buf_cleanup(&out);
    }
    return NULL;
}

static void sign_is_thread_safe_with_a_shared_cache(void **state)
{
    (void)state;
    put_request p;
    put_request_init(&p);
    kn_buf want;
    kn_buf_init(&want, BUF_CAP);
    assert_int_equal(kn_sigv4_sign(&p.req, AKID, SECRET, &p.scope, NULL, &want), KN_OK);
    kn_sigv4_key_cache cache;
    kn_sigv4_key_cache_init(&cache);
    pthread_t threads[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){&cache, (const char *)want.data, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, sign_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].mismatches, 0);
    }
    kn_sigv4_key_cache_cleanup(&cache);
    kn_buf_cleanup(&want);
}

/* ---- canonicalisation beyond the vectors ---- */

static void assert_creq_line(const char *method, const char *path, const char *query, int line, const char *want)
{
    kn_sigv4_header host = {"host", 4, "h", 1};
    kn_sigv4_request req = {.method = method, .path = path, .path_len = strlen(path), .query = query,
                            .query_len = query ? strlen(query) : 0, .headers = &host, .header_count = 1};
    kn_buf out;
    kn_buf_init(&out, BUF_CAP);
    assert_int_equal(kn_sigv4_canonical_request(&req, NULL, true, &out), KN_OK);
    const char *p = (const char *)out.data;
    for (int i = 0; i < line; i++)
        p = strchr(p, '\n') + 1;
    size_t n = strcspn(p, "\n");
    char got[512];
    snprintf(got, sizeof got, "%.*s", (int)n, p);
    assert_string_equal(got, want);
    kn_buf_cleanup(&out);
}

static void path_is_normalised_then_encoded_again(void **state)
{
    (void)state;
    assert_creq_line("GET", "", NULL, 1, "/");
    assert_creq_line("GET", "/a/b/..", NULL, 1, "/a");
    assert_creq_line("GET", "/a/./b/", NULL, 1, "/a/b/");
    assert_creq_line("GET", "/../../a", NULL, 1, "/a");
    assert_creq_line("GET", "/a//b///c", NULL, 1, "/a/b/c");
    /* A path sent percent-encoded is encoded once more (every service but S3 signs it that way). */
    assert_creq_line("GET", "/%E1%88%B4", NULL, 1, "/%25E1%2588%25B4");
    assert_creq_line("GET", "/a+b=c&d", NULL, 1, "/a%2Bb%3Dc%26d");
}

static void query_is_decoded_encoded_and_sorted(void **state)
{
    (void)state;
    assert_creq_line("GET", "/", "b=2&a=1", 2, "a=1&b=2");
    assert_creq_line("GET", "/", "a=%7e&a=~x", 2, "a=~&a=~x");
    assert_creq_line("GET", "/", "k=a+b c", 2, "k=a%2Bb%20c");
    assert_creq_line("GET", "/", "flag&&x=", 2, "flag=&x=");
    assert_creq_line("GET", "/", "a=%zz&b=%4", 2, "a=%25zz&b=%254");
    assert_creq_line("GET", "/", "a=b=c", 2, "a=b%3Dc");
    assert_creq_line("GET", "/", "", 2, "");
}

static void header_values_are_trimmed_and_folded(void **state)
{
    (void)state;
    kn_sigv4_header h[] = {{"host", 4, "h", 1}, {"X-A", 3, " \t a \t\t b\r\n  c  ", 16}, {"x-b", 3, "   ", 3}};
    kn_sigv4_request req = {.method = "GET", .path = "/", .path_len = 1, .headers = h, .header_count = 3};
    kn_buf out;
    kn_buf_init(&out, BUF_CAP);
    assert_int_equal(kn_sigv4_canonical_request(&req, NULL, true, &out), KN_OK);
    assert_non_null(strstr((const char *)out.data, "\nhost:h\nx-a:a b c\nx-b:\n\nhost;x-a;x-b\n"));
    kn_buf_cleanup(&out);
}

static void many_headers_keep_duplicate_order(void **state)
{
    (void)state;
    /* More headers than fit the stack sort, with one name repeated among them. */
    enum { N = 60 };
    kn_sigv4_header h[N];
    char names[N][16], values[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], i % 3 == 0 ? "X-Dup" : "x-h%02d", N - i);
        snprintf(values[i], sizeof values[i], "v%d", i);
        h[i] = (kn_sigv4_header){names[i], strlen(names[i]), values[i], strlen(values[i])};
    }
    h[1] = (kn_sigv4_header){"Host", 4, "h", 1};
    kn_sigv4_request req = {.method = "GET", .path = "/", .path_len = 1, .headers = h, .header_count = N};
    kn_buf out;
    kn_buf_init(&out, BUF_CAP);
    assert_int_equal(kn_sigv4_canonical_request(&req, NULL, true, &out), KN_OK);
    const char *dup = strstr((const char *)out.data, "\nx-dup:");
    assert_non_null(dup);
    assert_memory_equal(dup, "\nx-dup:v0,v3,v6,v9,", strlen("\nx-dup:v0,v3,v6,v9,"));
    assert_non_null(strstr((const char *)out.data, "\nx-h02:v58\nx-h04:v56\n"));
    kn_buf_cleanup(&out);
}

static void listed_headers_follow_the_list(void **state)
{
    (void)state;
    kn_sigv4_header h[] = {{"host", 4, "h", 1}, {"x-b", 3, "2", 1}, {"x-a", 3, "1", 1}};
    kn_sigv4_request req = {.method = "GET", .path = "/", .path_len = 1, .headers = h, .header_count = 3};
    kn_buf out;
    kn_buf_init(&out, BUF_CAP);
    assert_int_equal(kn_sigv4_canonical_request(&req, "host;x-a;x-missing", true, &out), KN_OK);
    assert_non_null(strstr((const char *)out.data, "\n\nhost:h\nx-a:1\n\nhost;x-a;x-missing\n"));
    kn_buf_cleanup(&out);
}

/* The listed headers of a request with n headers (40 takes the sorted lookup, 8 the scan): mixed-case names, a
 * repeated name whose values keep request order, and list names in any case. */
static void check_listed_duplicates(int n)
{
    kn_sigv4_header h[40];
    char names[40][16], values[40][16];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], i % 3 == 0 ? "X-Dup" : "x-h%02d", n - i);
        snprintf(values[i], sizeof values[i], "v%d", i);
        h[i] = (kn_sigv4_header){names[i], strlen(names[i]), values[i], strlen(values[i])};
    }
    h[1] = (kn_sigv4_header){"Host", 4, " h ", 3};
    kn_sigv4_request req = {.method = "GET", .path = "/", .path_len = 1, .headers = h, .header_count = (size_t)n};
    kn_buf out;
    kn_buf_init(&out, BUF_CAP);
    char list[64], want[160];
    snprintf(list, sizeof list, "x-dup;HOST;x-absent;%s", names[2]);
    assert_int_equal(kn_sigv4_canonical_request(&req, list, true, &out), KN_OK);
    snprintf(want, sizeof want, "\n\nx-dup:v0,v3,v6%s\nhost:h\n%s:v2\n\n%s\n",
             n == 40 ? ",v9,v12,v15,v18,v21,v24,v27,v30,v33,v36,v39" : "", names[2], list);
    assert_non_null(strstr((const char *)out.data, want));
    kn_buf_cleanup(&out);
}

static void listed_headers_repeated_name_keeps_request_order(void **state)
{
    (void)state;
    check_listed_duplicates(8);  /* few headers: found by a scan */
    check_listed_duplicates(40); /* more than the stack sort holds: found in the sorted headers */
}

/* ---- time ---- */

static void format_time_matches_vectors(void **state)
{
    (void)state;
    kn_sigv4_scope s;
    kn_sigv4_format_time(1440938160, &s);
    assert_string_equal(s.amz_date, AMZ_DATE);
    assert_string_equal(s.date, "20150830");
    kn_sigv4_format_time(0, &s);
    assert_string_equal(s.amz_date, "19700101T000000Z");
    kn_sigv4_format_time(951825599, &s); /* 2000-02-29T11:59:59Z */
    assert_string_equal(s.amz_date, "20000229T115959Z");
}

static void parse_amz_date_round_trips(void **state)
{
    (void)state;
    for (int64_t t = 0; t < (int64_t)4102444800; t += 7919 * 3607) {
        kn_sigv4_scope s;
        kn_sigv4_format_time(t, &s);
        int64_t back = -1;
        assert_true(kn_sigv4_parse_amz_date(s.amz_date, 16, &back));
        assert_true(back == t);
    }
}

static void parse_amz_date_rejects_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "20150830T123600",
                         "20150830T123600z",
                         "20150830 123600Z",
                         "2015-08-30T12:36:00Z",
                         "20151330T123600Z",
                         "20150230T123600Z",
                         "20150229T123600Z",
                         "20150830T243600Z",
                         "20150830T126000Z",
                         "20150830T123660Z",
                         "2015083aT123600Z",
                         "20150830T123600ZZ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t;
        assert_false(kn_sigv4_parse_amz_date(bad[i], strlen(bad[i]), &t));
    }
    int64_t t;
    assert_true(kn_sigv4_parse_amz_date("20160229T000000Z", 16, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aws_sig_v4_test_suite_vectors_match),
        cmocka_unit_test(aws_c_auth_vectors_match),
        cmocka_unit_test(parse_reads_every_field),
        cmocka_unit_test(parse_accepts_any_separator_spacing_and_order),
        cmocka_unit_test(parse_keeps_last_of_a_repeated_part),
        cmocka_unit_test(parse_lists_every_missing_part),
        cmocka_unit_test(parse_rejects_a_part_without_equals),
        cmocka_unit_test(parse_rejects_credential_without_five_elements),
        cmocka_unit_test(parse_rejects_other_aws4_algorithms),
        cmocka_unit_test(parse_reports_other_schemes),
        cmocka_unit_test(parse_leaves_a_wrong_length_signature_empty),
        cmocka_unit_test(parse_uses_length_not_nul),
        cmocka_unit_test(incomplete_message_is_aws_wording),
        cmocka_unit_test(incomplete_message_is_empty_for_a_complete_header),
        cmocka_unit_test(check_scope_accepts_matching_scope),
        cmocka_unit_test(check_scope_requires_host_signed),
        cmocka_unit_test(check_scope_accepts_signed_authority_for_http2),
        cmocka_unit_test(check_scope_lists_every_wrong_part_in_aws_order),
        cmocka_unit_test(check_scope_rejects_each_wrong_part_alone),
        cmocka_unit_test(check_scope_without_region_wants_a_well_formed_one),
        cmocka_unit_test(check_scope_verdict_does_not_depend_on_message_room),
        cmocka_unit_test(verify_accepts_its_own_signature),
        cmocka_unit_test(verify_rejects_wrong_secret),
        cmocka_unit_test(verify_rejects_changed_body),
        cmocka_unit_test(verify_rejects_changed_signed_header),
        cmocka_unit_test(verify_rejects_removed_or_added_duplicate_signed_header),
        cmocka_unit_test(verify_ignores_unsigned_headers),
        cmocka_unit_test(verify_matches_names_in_any_case),
        cmocka_unit_test(verify_rejects_other_date_method_or_path),
        cmocka_unit_test(verify_rejects_tampered_signature_or_scope),
        cmocka_unit_test(verify_rejects_narrower_signed_header_list),
        cmocka_unit_test(sign_requires_host),
        cmocka_unit_test(sign_leaves_out_unchanged_at_its_cap),
        cmocka_unit_test(sign_leaves_proxy_headers_unsigned),
        cmocka_unit_test(sign_with_and_without_cache_agree),
        cmocka_unit_test(signing_key_matches_aws_documented_example),
        cmocka_unit_test(key_cache_keys_by_secret_and_scope),
        cmocka_unit_test(key_cache_never_holds_the_secret),
        cmocka_unit_test(sign_is_thread_safe_with_a_shared_cache),
        cmocka_unit_test(path_is_normalised_then_encoded_again),
        cmocka_unit_test(query_is_decoded_encoded_and_sorted),
        cmocka_unit_test(header_values_are_trimmed_and_folded),
        cmocka_unit_test(many_headers_keep_duplicate_order),
        cmocka_unit_test(listed_headers_repeated_name_keeps_request_order),
        cmocka_unit_test(listed_headers_follow_the_list),
        cmocka_unit_test(format_time_matches_vectors),
        cmocka_unit_test(parse_amz_date_round_trips),
        cmocka_unit_test(parse_amz_date_rejects_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
