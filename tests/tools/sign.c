/* kn_sign: prints the Authorization header kn_sigv4_sign computes for each request described on stdin, so tests in
 * other languages can compare it with another signer (tests/integration/test_sigv4_botocore.py).
 *
 * Input: one JSON object per line:
 *   {"method": "POST", "path": "/", "query": "", "headers": [["Host", "..."], ["X-Amz-Date", "..."], ...],
 *    "body_b64": "...", "akid": "...", "secret": "...", "region": "us-east-1", "service": "kinesis",
 *    "amz_date": "20150830T123600Z"}
 * Output: one line per request, the Authorization header value. Exit status 1 (and a message on stderr naming the
 * line) for malformed input or a signing failure. */
#include "base64.h"
#include "sigv4.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 64
#define LINE_MAX_BYTES (16 << 20)

static const char *member(const cJSON *obj, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static bool read_headers(const cJSON *list, kn_sigv4_header *out, size_t *count)
{
    const cJSON *pair;
    *count = 0;
    cJSON_ArrayForEach(pair, list)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
        const char *value = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1));
        if (!name || !value || *count == MAX_HEADERS)
            return false;
        out[(*count)++] = (kn_sigv4_header){name, strlen(name), value, strlen(value)};
    }
    return true;
}

static bool fill_scope(const cJSON *obj, kn_sigv4_scope *scope)
{
    const char *amz_date = member(obj, "amz_date"), *region = member(obj, "region"),
               *service = member(obj, "service");
    int64_t t;
    if (!amz_date || !region || !service || !kn_sigv4_parse_amz_date(amz_date, strlen(amz_date), &t) ||
        strlen(region) >= sizeof scope->region || strlen(service) >= sizeof scope->service)
        return false;
    kn_sigv4_format_time(t, scope);
    memcpy(scope->region, region, strlen(region) + 1);
    memcpy(scope->service, service, strlen(service) + 1);
    return true;
}

/* Signs the request one line describes and appends its Authorization value to out. */
static bool sign_line(const char *line, kn_buf *out)
{
    bool ok = false;
    cJSON *obj = cJSON_Parse(line);
    kn_buf body;
    kn_buf_init(&body, LINE_MAX_BYTES);
    kn_sigv4_header headers[MAX_HEADERS];
    kn_sigv4_request req = {0};
    kn_sigv4_scope scope = {0};
    const char *method = member(obj, "method"), *path = member(obj, "path"), *query = member(obj, "query");
    const char *body_b64 = member(obj, "body_b64"), *akid = member(obj, "akid"), *secret = member(obj, "secret");
    if (!method || !path || !akid || !secret || !fill_scope(obj, &scope) ||
        !read_headers(cJSON_GetObjectItemCaseSensitive(obj, "headers"), headers, &req.header_count))
        goto cleanup;
    if (body_b64 && kn_base64_decode(body_b64, strlen(body_b64), &body) != KN_OK)
        goto cleanup;
    req.method = method;
    req.path = path;
    req.path_len = strlen(path);
    req.query = query;
    req.query_len = query ? strlen(query) : 0;
    req.headers = headers;
    req.body = body.data;
    req.body_len = body.len;
    ok = kn_sigv4_sign(&req, akid, secret, &scope, NULL, out) == KN_OK;
cleanup:
    kn_buf_cleanup(&body);
    cJSON_Delete(obj);
    return ok;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long number = 0;
    int status = 0;
    kn_buf out;
    kn_buf_init(&out, LINE_MAX_BYTES);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        number++;
        if (n == 1 && line[0] == '\n')
            continue;
        kn_buf_reset(&out);
        if (!sign_line(line, &out)) {
            fprintf(stderr, "kn_sign: line %ld: not a signable request description\n", number);
            status = 1;
            break;
        }
        printf("%s\n", (const char *)out.data);
    }
    free(line);
    kn_buf_cleanup(&out);
    return status;
}
