/* knd_auth: see auth.h.
 *
 * The checks run in the order real AWS services run them (observed on DynamoDB and Kinesis, recorded by
 * mhart/dynalite and mhart/kinesalite), so a client sees the same first error AWS would give it:
 *   1. no Authorization header                      → MissingAuthenticationTokenException
 *   2. header malformed or missing parts, no date   → IncompleteSignatureException (AWS's text, quoting the header)
 *   3. date not ISO 8601 basic                      → IncompleteSignatureException
 *   4. date more than 5 minutes off                 → InvalidSignatureException "Signature expired: ..." /
 *                                                     "Signature not yet current: ..."
 *   5. host (and the date header) not signed, credential scope wrong (region, service, terminator, date)
 *                                                   → InvalidSignatureException
 *   6. unknown access key                           → UnrecognizedClientException
 *   7. signature mismatch (constant-time compare)   → InvalidSignatureException
 *   8. session token wrong or missing for the key   → UnrecognizedClientException
 *   9. key past its expiration                      → ExpiredTokenException
 * Anonymous mode (no keys configured) runs 1-5 and stops: any well-formed, fresh, correctly scoped signature passes.
 *
 * Query-string (presigned) authentication is not supported: Kinesis clients sign headers. A request carrying both is
 * refused as AWS refuses it; one carrying only query parameters counts as unsigned. */
#include "auth.h"
#include "log.h"
#include "../lib/error.h"
#include "../lib/ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SKEW_SECONDS (5 * 60)
#define CREDENTIALS_FILE_MAX (1024 * 1024)
#define SERVICE "kinesis"

#define MSG_MISSING "Missing Authentication Token"
#define MSG_UNRECOGNIZED "The security token included in the request is invalid."
#define MSG_EXPIRED_TOKEN "The security token included in the request is expired"
#define MSG_SIGNATURE                                                                                                \
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access " \
    "Key and signing method. Consult the service documentation for details."
#define MSG_BOTH "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."

typedef struct knd_key {
    char *access_key_id;
    char *secret;
    char *session_token;    /* NULL: the key takes no token */
    int64_t expires_ms;     /* 0: never */
    char section[128];      /* where it came from, for error messages */
    /* The signing key derived for the scope this key signed with last (a client signs with one date, region and
     * service all day), so that a request costs no key-cache lookup, whose SHA-256 of the secret and lock cost more
     * than the rest of the check's bookkeeping. Wiped with the secret. */
    kn_sigv4_scope last_scope; /* date, region and service; date empty: nothing derived yet */
    uint8_t last_key[KN_SHA256_LEN];
} knd_key;

struct knd_auth {
    knd_key *keys;
    size_t count, alloc;
    char *region;           /* NULL: any well-formed region */
    kn_sigv4_key_cache cache;
};

/* ---------------------------------------------------------------- keys */

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static char *dup_view(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static knd_key *find_key(knd_auth *auth, const char *akid, size_t len)
{
    for (size_t i = 0; i < auth->count; i++) {
        if (strlen(auth->keys[i].access_key_id) == len && memcmp(auth->keys[i].access_key_id, akid, len) == 0)
            return &auth->keys[i];
    }
    return NULL;
}

static knd_key *add_key(knd_auth *auth)
{
    if (auth->count == auth->alloc) {
        size_t n = auth->alloc ? auth->alloc * 2 : 4;
        knd_key *k = realloc(auth->keys, n * sizeof *k);
        if (!k)
            return NULL;
        auth->keys = k;
        auth->alloc = n;
    }
    knd_key *k = &auth->keys[auth->count++];
    memset(k, 0, sizeof *k);
    return k;
}

/* Parses an expiry as written by STS-minded tools: "2026-11-25T20:00:00Z", optional fractional seconds, "Z" or a
 * "+HH:MM" offset, or the basic form "20261125T200000Z". */
static bool parse_expiration(const char *s, size_t len, int64_t *out_ms)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int64_t basic;
    if (kn_sigv4_parse_amz_date(buf, len, &basic)) {
        *out_ms = basic * 1000;
        return true;
    }
    struct tm tm = {0};
    const char *p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return false;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59)
            return false;
        offset = (*p == '+' ? 1 : -1) * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out_ms = ((int64_t)t - offset) * 1000;
    return true;
}

typedef struct file_parse {
    knd_auth *auth;
    kn_error *err;
    kn_status status;
    char *section; /* owned: the profile being read, any length */
    char *akid, *secret, *token;
    bool has_expiration;
    int64_t expires_ms;
} file_parse;

static void section_reset(file_parse *fp)
{
    wipe_free(fp->akid);
    wipe_free(fp->secret);
    wipe_free(fp->token);
    fp->akid = fp->secret = fp->token = NULL;
    fp->has_expiration = false;
    fp->expires_ms = 0;
}

/* Turns the finished section into a key; sections without any key setting (e.g. only a region) are skipped. */
static bool section_finish(file_parse *fp)
{
    if (!fp->akid && !fp->secret && !fp->token && !fp->has_expiration)
        return true;
    if (!fp->akid || !fp->secret || !fp->akid[0] || !fp->secret[0]) {
        fp->status = kn_error_set(fp->err, KN_ERR_CONFIG,
                                  "credentials: section [%s] needs both aws_access_key_id and aws_secret_access_key",
                                  fp->section);
        return false;
    }
    if (find_key(fp->auth, fp->akid, strlen(fp->akid))) {
        fp->status = kn_error_set(fp->err, KN_ERR_CONFIG, "credentials: section [%s] repeats access key %s",
                                  fp->section, fp->akid);
        return false;
    }
    if (fp->token && !fp->token[0]) {
        /* An empty aws_session_token is no token, as an empty AWS_SESSION_TOKEN is (load_env): botocore sends no
         * X-Amz-Security-Token for it, so requiring one would refuse every request signed with this key. */
        wipe_free(fp->token);
        fp->token = NULL;
    }
    knd_key *k = add_key(fp->auth);
    if (!k) {
        fp->status = kn_error_set(fp->err, KN_ERR_NO_MEMORY, "out of memory");
        return false;
    }
    k->access_key_id = fp->akid;
    k->secret = fp->secret;
    k->session_token = fp->token;
    k->expires_ms = fp->expires_ms;
    snprintf(k->section, sizeof k->section, "%s", fp->section);
    fp->akid = fp->secret = fp->token = NULL;
    section_reset(fp);
    return true;
}

static bool key_is(const char *key, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(key, name, len) == 0;
}

static bool on_ini_entry(void *ctx, const char *section, size_t section_len, const char *key, size_t key_len,
                         const char *value, size_t value_len)
{
    file_parse *fp = ctx;
    if (!fp->section || strlen(fp->section) != section_len || memcmp(fp->section, section, section_len) != 0) {
        if (fp->section && !section_finish(fp))
            return false;
        free(fp->section);
        if (!(fp->section = strndup(section, section_len))) {
            fp->status = kn_error_set(fp->err, KN_ERR_NO_MEMORY, "out of memory");
            return false;
        }
    }
    char **slot = key_is(key, key_len, "aws_access_key_id")       ? &fp->akid
                  : key_is(key, key_len, "aws_secret_access_key") ? &fp->secret
                  : key_is(key, key_len, "aws_session_token")     ? &fp->token
                                                                  : NULL;
    if (slot) {
        wipe_free(*slot);
        *slot = dup_view(value, value_len);
        if (!*slot) {
            fp->status = kn_error_set(fp->err, KN_ERR_NO_MEMORY, "out of memory");
            return false;
        }
    } else if (key_is(key, key_len, "expiration")) {
        if (!parse_expiration(value, value_len, &fp->expires_ms)) {
            fp->status = kn_error_set(fp->err, KN_ERR_CONFIG,
                                      "credentials: section [%s]: expiration '%.*s' is not an ISO 8601 time such as "
                                      "2026-11-25T20:00:00Z",
                                      fp->section, (int)(value_len > 64 ? 64 : value_len), value);
            return false;
        }
        fp->has_expiration = true;
    }
    return true;
}

static kn_status load_file(knd_auth *auth, const char *path, kn_error *err)
{
    char *text = NULL;
    size_t len = 0;
    file_parse fp = {.auth = auth, .err = err, .status = KN_OK};
    kn_status st = kn_ini_read_file(path, CREDENTIALS_FILE_MAX, &text, &len, err);
    if (st != KN_OK)
        goto cleanup;
    kn_error perr = {0};
    st = kn_ini_parse(text, len, on_ini_entry, &fp, &perr);
    if (st != KN_OK && fp.status == KN_OK) {
        kn_error_set(err, st, "credentials file %s: %s", path, perr.message);
        goto cleanup;
    }
    if (fp.status == KN_OK)
        section_finish(&fp);
    st = fp.status;
    if (st == KN_OK && auth->count == 0)
        st = kn_error_set(err, KN_ERR_CONFIG, "credentials file %s holds no aws_access_key_id", path);
cleanup:
    section_reset(&fp);
    free(fp.section);
    if (text) {
        explicit_bzero(text, len);
        free(text);
    }
    return st;
}

static kn_status load_env(knd_auth *auth, kn_error *err)
{
    const char *akid = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    if (!akid || !*akid || !secret || !*secret)
        return KN_OK; /* anonymous */
    knd_key *k = add_key(auth);
    if (!k)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    k->access_key_id = strdup(akid);
    k->secret = strdup(secret);
    k->session_token = token && *token ? strdup(token) : NULL;
    snprintf(k->section, sizeof k->section, "environment");
    if (!k->access_key_id || !k->secret || (token && *token && !k->session_token))
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    return KN_OK;
}

kn_status knd_auth_new(const char *credentials_file, knd_auth **out, kn_error *err)
{
    *out = NULL;
    knd_auth *auth = calloc(1, sizeof *auth);
    if (!auth)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    kn_sigv4_key_cache_init(&auth->cache);
    kn_status st = credentials_file ? load_file(auth, credentials_file, err) : load_env(auth, err);
    if (st != KN_OK) {
        knd_auth_destroy(auth);
        return st;
    }
    *out = auth;
    return KN_OK;
}

void knd_auth_destroy(knd_auth *auth)
{
    if (!auth)
        return;
    for (size_t i = 0; i < auth->count; i++) {
        wipe_free(auth->keys[i].access_key_id);
        wipe_free(auth->keys[i].secret);
        wipe_free(auth->keys[i].session_token);
        kn_crypto_wipe(auth->keys[i].last_key, sizeof auth->keys[i].last_key);
    }
    free(auth->keys);
    free(auth->region);
    kn_sigv4_key_cache_cleanup(&auth->cache);
    free(auth);
}

bool knd_auth_anonymous(const knd_auth *auth)
{
    return auth->count == 0;
}

size_t knd_auth_key_count(const knd_auth *auth)
{
    return auth->count;
}

kn_status knd_auth_set_region(knd_auth *auth, const char *region, kn_error *err)
{
    char *copy = NULL;
    if (region) {
        copy = strdup(region);
        if (!copy)
            return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    }
    free(auth->region);
    auth->region = copy;
    return KN_OK;
}

/* ---------------------------------------------------------------- checking a request */

static const kn_sigv4_header *header(const knd_request *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const kn_sigv4_header *h = &req->headers[i];
        if (h->name_len == len && strncasecmp(h->name, name, len) == 0)
            return h;
    }
    return NULL;
}

static bool query_has_algorithm(const knd_request *req)
{
    static const char param[] = "X-Amz-Algorithm";
    const char *q = req->query;
    size_t n = req->query_len, plen = sizeof param - 1;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        if (end - i >= plen && strncmp(q + i, param, plen) == 0 && (end - i == plen || q[i + plen] == '='))
            return true;
        i = end + 1;
    }
    return false;
}

static kn_status fail(kn_error *err, const char *type, const char *message)
{
    return kn_error_set_service(err, 400, type, message, NULL);
}

/* The request's time in ISO 8601 basic form, from X-Amz-Date, or from an RFC 1123 Date header (which AWS also
 * accepts and signs in the basic form). *signed_name is the header that must then be signed. */
static bool request_time(const kn_sigv4_header *amz, const kn_sigv4_header *date, char out[17], int64_t *unix_s,
                         const char **signed_name)
{
    if (amz) {
        *signed_name = "x-amz-date";
        if (amz->value_len != 16)
            return false;
        memcpy(out, amz->value, 16);
        out[16] = '\0';
        return kn_sigv4_parse_amz_date(out, 16, unix_s);
    }
    *signed_name = "date";
    char buf[64];
    if (date->value_len >= sizeof buf)
        return false;
    memcpy(buf, date->value, date->value_len);
    buf[date->value_len] = '\0';
    struct tm tm = {0};
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    kn_sigv4_scope scope;
    kn_sigv4_format_time((int64_t)t, &scope);
    memcpy(out, scope.amz_date, 17);
    *unix_s = (int64_t)t;
    return true;
}

static kn_status check_freshness(const char *amz_date, int64_t t, int64_t now_ms, kn_error *err)
{
    int64_t now = now_ms / 1000;
    if (t >= now - SKEW_SECONDS && t <= now + SKEW_SECONDS)
        return KN_OK; /* the messages below are formatted only for a refusal */
    kn_sigv4_scope now_s, bound;
    kn_sigv4_format_time(now, &now_s);
    char msg[256];
    if (t < now - SKEW_SECONDS) {
        kn_sigv4_format_time(now - SKEW_SECONDS, &bound);
        snprintf(msg, sizeof msg, "Signature expired: %s is now earlier than %s (%s - 5 min.)", amz_date,
                 bound.amz_date, now_s.amz_date);
        return fail(err, "InvalidSignatureException", msg);
    }
    kn_sigv4_format_time(now + SKEW_SECONDS, &bound);
    snprintf(msg, sizeof msg, "Signature not yet current: %s is still later than %s (%s + 5 min.)", amz_date,
             bound.amz_date, now_s.amz_date);
    return fail(err, "InvalidSignatureException", msg);
}

static bool signed_list_has(const kn_sigv4_auth *a, const char *name)
{
    size_t n = strlen(name);
    const char *p = a->signed_headers, *end = a->signed_headers + a->signed_headers_len;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t len = semi ? (size_t)(semi - p) : (size_t)(end - p);
        if (len == n && strncasecmp(p, name, n) == 0)
            return true;
        if (!semi)
            break;
        p = semi + 1;
    }
    return false;
}

/* Steps 2 and 3 of the header comment: the Authorization header parses and the request has a usable date. */
static kn_status check_well_formed(const kn_sigv4_header *authz, const kn_sigv4_header *amz,
                                   const kn_sigv4_header *date, kn_sigv4_auth *a, kn_error *err)
{
    const char *why = NULL;
    kn_sigv4_parse_result r = kn_sigv4_parse_authorization(authz->value, authz->value_len, a, &why);
    if (r == KN_SIGV4_PARSE_OK && (amz || date))
        return KN_OK;
    kn_buf msg;
    kn_buf_init(&msg, KN_ERROR_MESSAGE_MAX);
    kn_status st = kn_sigv4_incomplete_message(authz->value, authz->value_len, amz || date, &msg);
    if (st != KN_OK || msg.len == 0) {
        /* Too long to quote in full, or a case the message builder does not cover: AWS's sentence without the
         * quoted header. */
        kn_buf_reset(&msg);
        kn_buf_append_str(&msg, why ? why : "Authorization header requires 'Credential' parameter.");
    }
    st = fail(err, "IncompleteSignatureException", (const char *)msg.data);
    kn_buf_cleanup(&msg);
    return st;
}

/* Step 5: what must be signed, and the credential scope. */
static kn_status check_scope(const knd_auth *auth, const kn_sigv4_auth *a, const char *amz_date,
                             const char *date_header, kn_error *err)
{
    kn_buf msg;
    kn_buf_init(&msg, KN_ERROR_MESSAGE_MAX);
    kn_status st = KN_OK;
    if (!kn_sigv4_check_scope(a, amz_date, auth->region, SERVICE, &msg)) {
        st = fail(err, "InvalidSignatureException", msg.len ? (const char *)msg.data : MSG_SIGNATURE);
    } else if (!signed_list_has(a, date_header)) {
        /* The string to sign holds the date anyway; AWS's SDKs always sign it, and we insist, as on host. */
        st = fail(err, "InvalidSignatureException",
                  strcmp(date_header, "date") == 0
                      ? "'Date' must be a 'SignedHeader' in the AWS Authorization."
                      : "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
    }
    kn_buf_cleanup(&msg);
    return st;
}

static bool tokens_equal(const char *expected, const kn_sigv4_header *got)
{
    size_t n = strlen(expected);
    /* The length is not secret (tokens of a kind share it); the bytes are compared in constant time. */
    return got->value_len == n && kn_crypto_equal_ct(expected, got->value, n);
}

/* k's signing key for scope (date, region and service), derived through the shared cache when k last signed with
 * another scope. False only when OpenSSL cannot allocate. */
static bool signing_key(knd_auth *auth, knd_key *k, const kn_sigv4_scope *scope, const uint8_t **key)
{
    kn_sigv4_scope *last = &k->last_scope;
    if (!last->date[0] || strcmp(last->date, scope->date) != 0 || strcmp(last->region, scope->region) != 0 ||
        strcmp(last->service, scope->service) != 0) {
        last->date[0] = '\0';
        if (!kn_sigv4_signing_key(&auth->cache, k->secret, scope, k->last_key))
            return false;
        memcpy(last->region, scope->region, sizeof last->region);
        memcpy(last->service, scope->service, sizeof last->service);
        memcpy(last->date, scope->date, sizeof last->date);
    }
    *key = k->last_key;
    return true;
}

/* Steps 6-9: the key, the signature, the token and the expiry. */
static kn_status check_key(knd_auth *auth, const knd_request *req, const kn_sigv4_auth *a, const char *amz_date,
                           int64_t now_ms, kn_error *err)
{
    knd_key *k = find_key(auth, a->access_key_id, a->access_key_id_len);
    if (!k)
        return fail(err, "UnrecognizedClientException", MSG_UNRECOGNIZED);
    kn_sigv4_request sreq = {
        .method = req->method,
        .path = req->path,
        .path_len = req->path_len,
        .query = req->query,
        .query_len = req->query_len,
        .headers = req->headers,
        .header_count = req->header_count,
        .body = req->body,
        .body_len = req->body_len,
    };
    /* A scope part too long for its field is empty: such a request cannot verify, and no key is derived for it. */
    const uint8_t *key = NULL;
    bool complete = a->scope.date[0] && a->scope.region[0] && a->scope.service[0];
    if (!complete || !signing_key(auth, k, &a->scope, &key) || !kn_sigv4_verify_with_key(&sreq, a, amz_date, key))
        return fail(err, "InvalidSignatureException", MSG_SIGNATURE);
    const kn_sigv4_header *token = header(req, "x-amz-security-token");
    if (k->session_token ? !token || !tokens_equal(k->session_token, token) : token != NULL)
        return fail(err, "UnrecognizedClientException", MSG_UNRECOGNIZED);
    if (k->expires_ms && now_ms >= k->expires_ms)
        return fail(err, "ExpiredTokenException", MSG_EXPIRED_TOKEN);
    return KN_OK;
}

kn_status knd_auth_check(knd_auth *auth, const knd_request *req, int64_t now_ms, kn_error *err)
{
    const kn_sigv4_header *authz = header(req, "authorization");
    if (authz && query_has_algorithm(req))
        return fail(err, "InvalidSignatureException", MSG_BOTH);
    if (!authz)
        return fail(err, "MissingAuthenticationTokenException", MSG_MISSING);
    const kn_sigv4_header *amz = header(req, "x-amz-date");
    const kn_sigv4_header *date = header(req, "date");
    kn_sigv4_auth a;
    kn_status st = check_well_formed(authz, amz, date, &a, err);
    if (st != KN_OK)
        return st;
    char amz_date[17];
    int64_t t = 0;
    const char *date_header = NULL;
    if (!request_time(amz, date, amz_date, &t, &date_header)) {
        const kn_sigv4_header *d = amz ? amz : date;
        char msg[256];
        snprintf(msg, sizeof msg, "Date must be in ISO-8601 'basic format'. Got '%.*s'. See "
                 "http://en.wikipedia.org/wiki/ISO_8601", (int)(d->value_len > 64 ? 64 : d->value_len), d->value);
        return fail(err, "IncompleteSignatureException", msg);
    }
    st = check_freshness(amz_date, t, now_ms, err);
    if (st == KN_OK)
        st = check_scope(auth, &a, amz_date, date_header, err);
    if (st == KN_OK && auth->count > 0)
        st = check_key(auth, req, &a, amz_date, now_ms, err);
    if (st != KN_OK && err) {
        int n = (int)(a.access_key_id_len > 128 ? 128 : a.access_key_id_len);
        knd_log_debug("auth: refused a request signed by access key %.*s: %s", n, a.access_key_id, err->type);
    }
    return st;
}
