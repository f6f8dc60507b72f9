/* Fuzz target: kinesisd's authentication (server/auth.h): its --credentials file loader (the AWS shared-credentials
 * format through lib/ini.c, plus session tokens and expirations) and knd_auth_check, the server's SigV4 verification,
 * on requests as its HTTP layer hands them over.
 *
 * Input: one flags byte, the credentials file, then optionally AUTH_SEPARATOR and a raw request (format in
 * fuzz_request.h; names are lowercased and values trimmed as kinesisd's HTTP layer does). flags bit 0: the clock is
 * one hour later.
 * Properties:
 *   - loading never crashes; a refusal says why; a file whose every section with a key setting has both halves of a
 *     key (distinct access key ids, expirations in a form the reference reads) loads, with that many keys;
 *   - no message holds a secret. The file is loaded twice: once with every aws_secret_access_key and
 *     aws_session_token value overwritten with a canary holding DEL (0x7f) bytes, which appear nowhere else in the
 *     file, so no message may hold a DEL (this copy's keys are the ones checked below); and once as given, which
 *     must load or fail alike and serves the fuzzed request, whose error may not quote a secret the request lacks;
 *   - knd_auth_check on the fuzzed request passes or fails with one of AWS's authentication errors, HTTP 400, with a
 *     message;
 *   - every key the file defines (a section with both aws_access_key_id and aws_secret_access_key, when the file
 *     loads) authenticates a request signed with it, with its session token when it has one, until its expiration
 *     (then ExpiredTokenException); the same request fails with InvalidSignatureException under another secret, and
 *     with UnrecognizedClientException without its session token. */
#include "fuzz_request.h"

#include "auth.h"
#include "ini.h"

#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define AUTH_SEPARATOR "\n###REQUEST###\n"
#define CANARY_BYTE '\x7f'
#define T0_MS 1764100000000LL /* 2025-11-25T19:46:40Z */
#define MAX_KEYS 16
#define MAX_SECRETS 64

/* A key as the file defines it, read by a reference pass over the same ini callbacks. */
typedef struct ref_key {
    kn_fuzz_span section, akid, secret, token, expiration;
} ref_key;

typedef struct ref_pass {
    char *text; /* mutable copy of the file */
    ref_key keys[MAX_KEYS];
    size_t n;
    bool ambiguous; /* a section reappears after another one, or too many sections: no key property is checked */
    bool odd_expiration; /* some expiration value (even one a later line replaces) is not in the basic form */
    size_t secret_off[MAX_SECRETS], secret_len[MAX_SECRETS]; /* every secret value, by offset in the file */
    size_t secrets;
} ref_pass;

static bool key_is(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(k, name, n) == 0;
}

static bool span_eq(kn_fuzz_span a, const char *p, size_t n)
{
    return a.n == n && memcmp(a.p, p, n) == 0;
}

/* The expiration as Unix ms when it is in the basic form kn_sigv4_parse_amz_date reads; other forms are left to
 * the loader (the key property is then not checked near its expiry). */
static bool expiry_ms(kn_fuzz_span e, int64_t *ms)
{
    char buf[32];
    int64_t s;
    if (e.n == 0 || e.n >= sizeof buf)
        return false;
    memcpy(buf, e.p, e.n);
    buf[e.n] = '\0';
    if (!kn_sigv4_parse_amz_date(buf, e.n, &s))
        return false;
    *ms = s * 1000;
    return true;
}

static bool on_entry(void *ctx, const char *section, size_t section_len, const char *key, size_t key_len,
                     const char *value, size_t value_len)
{
    ref_pass *r = ctx;
    if (key_is(key, key_len, "aws_secret_access_key") || key_is(key, key_len, "aws_session_token")) {
        size_t off = (size_t)(value - r->text);
        for (size_t i = 0; i < value_len; i++)
            r->text[off + i] = i % 2 ? 'S' : CANARY_BYTE;
        if (r->secrets < MAX_SECRETS) {
            r->secret_off[r->secrets] = off;
            r->secret_len[r->secrets++] = value_len;
        }
    }
    if (r->n == 0 || !span_eq(r->keys[r->n - 1].section, section, section_len)) {
        for (size_t i = 0; i < r->n; i++)
            if (span_eq(r->keys[i].section, section, section_len))
                r->ambiguous = true;
        if (r->n == MAX_KEYS) {
            r->ambiguous = true; /* keys are no longer tracked; secrets still get their canary */
            return true;
        }
        r->keys[r->n++] = (ref_key){.section = {section, section_len}};
    }
    ref_key *k = &r->keys[r->n - 1];
    kn_fuzz_span v = {value, value_len};
    if (key_is(key, key_len, "aws_access_key_id"))
        k->akid = v;
    else if (key_is(key, key_len, "aws_secret_access_key"))
        k->secret = v;
    else if (key_is(key, key_len, "aws_session_token"))
        k->token = v;
    else if (key_is(key, key_len, "expiration"))
        k->expiration = v;
    int64_t ms;
    if (key_is(key, key_len, "expiration") && !expiry_ms(v, &ms))
        r->odd_expiration = true;
    return true;
}

static bool has_canary(const char *s)
{
    return strchr(s, CANARY_BYTE) != NULL;
}

static bool alnum_only(kn_fuzz_span s)
{
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return s.n > 0;
}

/* knd_auth_check on a request signed with (akid, secret, token); returns the status and fills err. */
static kn_status check_signed(knd_auth *auth, const ref_key *k, const char *secret, bool with_token, int64_t now_ms,
                              kn_error *err)
{
    char *akid = kn_fuzz_strndup(k->akid.p, k->akid.n);
    char *sec = secret ? kn_fuzz_strndup(secret, strlen(secret)) : kn_fuzz_strndup(k->secret.p, k->secret.n);
    kn_sigv4_scope scope = {.region = "us-east-1", .service = "kinesis"};
    kn_sigv4_format_time(now_ms / 1000, &scope);
    static const char body[] = "{\"StreamName\":\"s\"}";
    kn_sigv4_header h[5] = {
        {"host", 4, "127.0.0.1:4567", 14},
        {"x-amz-date", 10, scope.amz_date, 16},
        {"x-amz-target", 12, "Kinesis_20131202.ListShards", 27},
    };
    size_t n = 3;
    if (with_token && k->token.n)
        h[n++] = (kn_sigv4_header){"x-amz-security-token", 20, k->token.p, k->token.n};
    kn_sigv4_request sr = {.method = "POST", .path = "/", .path_len = 1, .query = "", .headers = h,
                           .header_count = n, .body = body, .body_len = sizeof body - 1};
    kn_buf authz;
    kn_buf_init(&authz, 1u << 20);
    KN_FUZZ_CHECK(kn_sigv4_sign(&sr, akid, sec, &scope, NULL, &authz) == KN_OK);
    h[n++] = (kn_sigv4_header){"authorization", 13, (const char *)authz.data, authz.len};
    knd_request req = {.method = "POST", .path = "/", .path_len = 1, .query = "", .headers = h, .header_count = n,
                       .body = (const uint8_t *)body, .body_len = sizeof body - 1};
    kn_error_clear(err);
    kn_status st = knd_auth_check(auth, &req, now_ms, err);
    KN_FUZZ_CHECK(!has_canary(err->message));
    kn_buf_cleanup(&authz);
    free(akid);
    free(sec);
    return st;
}

/* Tokens are compared as sent; keep to values an HTTP header can carry unchanged. */
static bool token_sendable(kn_fuzz_span t)
{
    for (size_t i = 0; i < t.n; i++)
        if ((unsigned char)t.p[i] < 0x20 && t.p[i] != '\t')
            return false;
    return true;
}

/* How many keys a file that must load defines; SIZE_MAX when the reference cannot tell whether it loads: a section
 * with some key setting but not both halves, a repeated access key, or an expiration in a form other than the basic
 * one (the loader's other forms go through strptime). */
static size_t expected_keys(const ref_pass *r)
{
    size_t n = 0;
    if (r->odd_expiration)
        return SIZE_MAX;
    for (size_t i = 0; i < r->n; i++) {
        const ref_key *k = &r->keys[i];
        if (!k->akid.p && !k->secret.p && !k->token.p && !k->expiration.p)
            continue;
        if (!k->akid.n || !k->secret.n)
            return SIZE_MAX;
        for (size_t j = 0; j < i; j++)
            if (r->keys[j].akid.n == k->akid.n && memcmp(r->keys[j].akid.p, k->akid.p, k->akid.n) == 0)
                return SIZE_MAX;
        n++;
    }
    return n;
}

static void check_keys(knd_auth *auth, const ref_pass *r, int64_t now_ms)
{
    if (r->ambiguous)
        return;
    for (size_t i = 0; i < r->n; i++) {
        const ref_key *k = &r->keys[i];
        int64_t exp = 0;
        bool has_exp = k->expiration.n > 0;
        if (!k->akid.n || !k->secret.n || !alnum_only(k->akid) || !token_sendable(k->token))
            continue;
        if (has_exp && (!expiry_ms(k->expiration, &exp) || (exp > now_ms - 2000 && exp < now_ms + 2000)))
            continue;
        kn_error err = {0};
        kn_status st = check_signed(auth, k, NULL, true, now_ms, &err);
        if (has_exp && exp <= now_ms) {
            KN_FUZZ_CHECK(st == KN_ERR_SERVICE && strcmp(err.type, "ExpiredTokenException") == 0);
            continue;
        }
        KN_FUZZ_CHECK(st == KN_OK);
        st = check_signed(auth, k, "not-the-secret", true, now_ms, &err);
        KN_FUZZ_CHECK(st == KN_ERR_SERVICE && strcmp(err.type, "InvalidSignatureException") == 0);
        if (k->token.n) {
            st = check_signed(auth, k, NULL, false, now_ms, &err);
            KN_FUZZ_CHECK(st == KN_ERR_SERVICE && strcmp(err.type, "UnrecognizedClientException") == 0);
        }
    }
}

/* Whether s is a short run of letters, which AWS's fixed English texts can hold by chance ("toke" in "token"). */
static bool wordlike(const char *s, size_t n)
{
    if (n >= 8)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

/* Whether msg quotes a secret of the original file (one at least 4 bytes long and not wordlike, so that it cannot
 * appear by chance) that the request does not itself hold (AWS quotes a malformed Authorization header back). */
static bool leaks_secret(const char *msg, const ref_pass *r, const char *orig, kn_fuzz_span raw)
{
    for (size_t i = 0; i < r->secrets; i++) {
        const char *sec = orig + r->secret_off[i];
        size_t n = r->secret_len[i];
        if (n >= 4 && !wordlike(sec, n) && kn_fuzz_contains(msg, strlen(msg), sec, n) &&
            !kn_fuzz_contains(raw.p, raw.n, sec, n))
            return true;
    }
    return false;
}

static void check_request(knd_auth *auth, kn_fuzz_span raw, int64_t now_ms, const ref_pass *r, const char *orig)
{
    static const char *const types[] = {"MissingAuthenticationTokenException", "IncompleteSignatureException",
                                        "InvalidSignatureException", "UnrecognizedClientException",
                                        "ExpiredTokenException"};
    kn_fuzz_request fr;
    kn_fuzz_parse_request((const uint8_t *)raw.p, raw.n, &fr);
    kn_fuzz_request_as_server(&fr);
    knd_request req = {.method = fr.method, .path = fr.req.path, .path_len = fr.req.path_len,
                       .query = fr.req.query ? fr.req.query : "", .query_len = fr.req.query_len,
                       .headers = fr.headers, .header_count = fr.req.header_count,
                       .body = (const uint8_t *)fr.req.body, .body_len = fr.req.body_len};
    kn_error err = {0};
    kn_status st = knd_auth_check(auth, &req, now_ms, &err);
    KN_FUZZ_CHECK(r->secrets == MAX_SECRETS || !leaks_secret(err.message, r, orig, raw));
    if (st != KN_OK) {
        KN_FUZZ_CHECK(st == KN_ERR_SERVICE && err.http_status == 400 && err.message[0]);
        bool known = false;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            known = known || strcmp(err.type, types[i]) == 0;
        KN_FUZZ_CHECK(known);
    }
    free(fr.names);
}

/* Loads a credentials file's text through an in-memory file. */
static kn_status load(int *fd, const char *text, size_t len, knd_auth **auth, kn_error *err)
{
    if (*fd < 0 && (*fd = memfd_create("credentials", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(*fd, 0) != 0 || (len > 0 && pwrite(*fd, text, len, 0) != (ssize_t)len))
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", *fd);
    *auth = NULL;
    kn_status st = knd_auth_new(path, auth, err);
    if (st != KN_OK)
        KN_FUZZ_CHECK(err->message[0] != '\0' && *auth == NULL);
    else
        KN_FUZZ_CHECK(knd_auth_key_count(*auth) > 0);
    return st;
}

static void fuzz_knd_auth(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (size == 0)
        return;
    int64_t now_ms = T0_MS + (data[0] & 1 ? 3600000 : 0);
    kn_fuzz_span rest = {(const char *)data + 1, size - 1};
    kn_fuzz_span file = kn_fuzz_split(&rest, AUTH_SEPARATOR);

    /* The file with its secrets replaced by canaries: its messages and its keys. */
    ref_pass r = {.text = kn_fuzz_strndup(file.p, file.n)};
    for (size_t i = 0; i < file.n; i++)
        if (r.text[i] == CANARY_BYTE)
            r.text[i] = '~';
    kn_error perr = {0};
    if (kn_ini_parse(r.text, file.n, on_entry, &r, &perr) != KN_OK)
        r.ambiguous = true;
    knd_auth *auth = NULL;
    kn_error err = {0};
    kn_status st = load(&fd, r.text, file.n, &auth, &err);
    KN_FUZZ_CHECK(!has_canary(err.message));
    size_t expect = r.ambiguous ? SIZE_MAX : expected_keys(&r);
    if (expect != SIZE_MAX && expect > 0)
        KN_FUZZ_CHECK(st == KN_OK && knd_auth_key_count(auth) == expect);
    if (st == KN_OK)
        check_keys(auth, &r, now_ms);
    knd_auth_destroy(auth);

    /* The file as given (a secret's bytes cannot change whether it loads), against the fuzzed request. */
    char *orig = kn_fuzz_strndup(file.p, file.n);
    kn_error err2 = {0};
    KN_FUZZ_CHECK(load(&fd, orig, file.n, &auth, &err2) == st);
    if (st == KN_OK)
        check_request(auth, rest, now_ms, &r, orig);
    knd_auth_destroy(auth);
    free(orig);
    free(r.text);
}

KN_FUZZ_ENTRY(fuzz_knd_auth)
