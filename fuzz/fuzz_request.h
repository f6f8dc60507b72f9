/* A raw HTTP/1.1 request as fuzz input, in the form of the AWS SigV4 test suite's .sreq files:
 *   METHOD SP PATH[?QUERY] [SP VERSION] LF, then "Name:value" lines (CRLF or LF; a line starting with a blank
 *   continues the previous value, which then spans the line break), a blank line, then the body.
 * Used by fuzz_sigv4.c (as the signer and verifier see a request) and fuzz_knd_auth.c (as kinesisd's HTTP layer hands
 * it over: names lowercase, values trimmed). */
#ifndef KN_FUZZ_REQUEST_H
#define KN_FUZZ_REQUEST_H

#include "fuzz_util.h"

#include "sigv4.h"

#define KN_FUZZ_MAX_HEADERS 128

typedef struct kn_fuzz_request {
    kn_sigv4_request req;
    kn_sigv4_header headers[KN_FUZZ_MAX_HEADERS];
    char method[16];
    char *names; /* lowercase copies of the names, when asked for (the caller frees it) */
} kn_fuzz_request;

static inline bool kn_fuzz_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One line of s without its LF (and CR); advances s past it. */
static inline kn_fuzz_span kn_fuzz_take_line(kn_fuzz_span *s)
{
    kn_fuzz_span line = kn_fuzz_split(s, "\n");
    if (line.n && line.p[line.n - 1] == '\r')
        line.n--;
    return line;
}

static inline void kn_fuzz_request_line(kn_fuzz_span line, kn_fuzz_request *fr)
{
    kn_fuzz_span rest = line;
    kn_fuzz_span method = kn_fuzz_split(&rest, " ");
    kn_fuzz_span target = kn_fuzz_split(&rest, " ");
    size_t n = method.n < sizeof fr->method - 1 ? method.n : sizeof fr->method - 1;
    memcpy(fr->method, method.p, n);
    fr->method[n] = '\0';
    kn_fuzz_span path = kn_fuzz_split(&target, "?");
    fr->req.method = fr->method;
    fr->req.path = path.p;
    fr->req.path_len = path.n;
    fr->req.query = target.p;
    fr->req.query_len = target.n;
}

/* The way kinesisd's HTTP layer hands headers over: names lowercase (copied into fr->names), values without
 * surrounding blanks. */
static inline void kn_fuzz_request_as_server(kn_fuzz_request *fr)
{
    size_t total = 0;
    for (size_t i = 0; i < fr->req.header_count; i++)
        total += fr->headers[i].name_len;
    fr->names = malloc(total + 1);
    if (!fr->names)
        abort();
    char *p = fr->names;
    for (size_t i = 0; i < fr->req.header_count; i++) {
        kn_sigv4_header *h = &fr->headers[i];
        for (size_t k = 0; k < h->name_len; k++)
            p[k] = (char)(h->name[k] >= 'A' && h->name[k] <= 'Z' ? h->name[k] - 'A' + 'a' : h->name[k]);
        h->name = p;
        p += h->name_len;
        while (h->value_len && kn_fuzz_is_blank(h->value[0])) {
            h->value++;
            h->value_len--;
        }
        while (h->value_len && kn_fuzz_is_blank(h->value[h->value_len - 1]))
            h->value_len--;
    }
}

/* Fills fr from the input; views point into data. */
static inline void kn_fuzz_parse_request(const uint8_t *data, size_t size, kn_fuzz_request *fr)
{
    memset(fr, 0, sizeof *fr);
    kn_fuzz_span s = {(const char *)data, size};
    kn_fuzz_request_line(kn_fuzz_take_line(&s), fr);
    kn_sigv4_header *last = NULL;
    while (s.n > 0) {
        kn_fuzz_span line = kn_fuzz_take_line(&s);
        if (line.n == 0)
            break;
        if (kn_fuzz_is_blank(line.p[0]) && last) {
            last->value_len = (size_t)(line.p + line.n - last->value);
            continue;
        }
        const char *colon = memchr(line.p, ':', line.n);
        if (!colon || fr->req.header_count == KN_FUZZ_MAX_HEADERS)
            continue;
        kn_sigv4_header *h = &fr->headers[fr->req.header_count++];
        h->name = line.p;
        h->name_len = (size_t)(colon - line.p);
        h->value = colon + 1;
        h->value_len = (size_t)(line.p + line.n - h->value);
        last = h;
    }
    fr->req.headers = fr->headers;
    fr->req.body = s.p;
    fr->req.body_len = s.n;
}

#endif
