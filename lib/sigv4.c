/* kn_sigv4: AWS Signature Version 4, headers form (see docs/sigv4.md for the rules and the choices made).
 *
 * Canonical request:
 *   METHOD \n canonical path \n canonical query \n (name:value \n)* \n signed;header;list \n hex(sha256(body))
 * String to sign:
 *   "AWS4-HMAC-SHA256" \n amz_date \n date/region/service/aws4_request \n hex(sha256(canonical request))
 * Signature: hex(HMAC(kSigning, string to sign)), kSigning derived from the secret by four HMACs and cached. */
#include "sigv4.h"

#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
/* Word-at-a-time byte tests (SWAR). */
#define BYTES_ONES UINT64_C(0x0101010101010101)
#define BYTES_HIGHS UINT64_C(0x8080808080808080)
/* Hard cap of a canonical request's scratch buffer: far above any request kinesisd accepts (16 KiB of headers). */
#define CANONICAL_MAX ((size_t)4 << 20)
/* Header indexes sorted on the stack up to this many headers; more take the heap. */
#define SORT_STACK_MAX 32

/* ---- small text helpers ---- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool view_eq(const char *a, size_t a_len, const char *b)
{
    size_t b_len = strlen(b);
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* Case-insensitive three-way compare of two ASCII header names. */
static int name_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == b[i])
            continue; /* the usual case: both already lowercase (kinesisd lowercases names as it reads them) */
        unsigned char x = (unsigned char)lower(a[i]), y = (unsigned char)lower(b[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a_len < b_len ? -1 : a_len > b_len;
}

/* Undoes a partial append, so a failed call leaves the caller's buffer as it was. */
static void truncate_to(kn_buf *b, size_t len)
{
    if (b->data) {
        b->len = len;
        b->data[len] = '\0';
    }
}

/* A piece of text to append; lists of them keep message-building code flat. */
typedef struct text_view {
    const char *p;
    size_t n;
} text_view;

#define LIT(s) ((text_view){(s), sizeof(s) - 1})
#define VIEW(p, n) ((text_view){(p), (n)})
#define STR(s) ((text_view){(s), strlen(s)})

static kn_status append_views(kn_buf *out, const text_view *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (kn_buf_append(out, v[i].p, v[i].n) != KN_OK)
            return KN_ERR_NO_MEMORY;
    return KN_OK;
}

/* Appends bytes percent-encoded the AWS way: unreserved characters as they are, everything else as %XX (uppercase),
 * '/' kept when keep_slash. */
static kn_status append_encoded(kn_buf *out, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    uint8_t *p = kn_buf_reserve(out, n * 3);
    if (!p)
        return KN_ERR_NO_MEMORY;
    uint8_t *start = p;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            *p++ = c;
        } else {
            *p++ = '%';
            *p++ = (uint8_t)digits[c >> 4];
            *p++ = (uint8_t)digits[c & 15];
        }
    }
    out->len += (size_t)(p - start);
    out->data[out->len] = '\0';
    return KN_OK;
}

/* Appends the canonical form of one query name or value: percent-decoded (a '%' not followed by two hex digits stays
 * a literal '%'), then encoded again, so that equivalent spellings sign alike. */
static kn_status append_query_part(kn_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            c = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
            i += 2;
        }
        kn_status st = append_encoded(out, &c, 1, false);
        if (st != KN_OK)
            return st;
    }
    return KN_OK;
}

/* ---- canonical path ---- */

/* Removes dot segments and empty segments the way AWS SDKs do (botocore's remove_dot_segments): ".." at the root stays
 * at the root, and a trailing slash survives only when the path ends with one and something remains. */
static kn_status append_normalized_path(kn_buf *out, const char *path, size_t len)
{
    if (kn_buf_append(out, "/", 1) != KN_OK)
        return KN_ERR_NO_MEMORY;
    size_t root = out->len;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        const char *seg = path + i;
        size_t seg_len = j - i;
        i = j + 1;
        if (seg_len == 0 || (seg_len == 1 && seg[0] == '.'))
            continue;
        if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
            /* Drop the last "segment/" written, if any. */
            if (out->len > root) {
                size_t k = out->len - 1;
                while (k > root && out->data[k - 1] != '/')
                    k--;
                truncate_to(out, k);
            }
            continue;
        }
        if (append_encoded(out, seg, seg_len, false) != KN_OK || kn_buf_append(out, "/", 1) != KN_OK)
            return KN_ERR_NO_MEMORY;
    }
    if (out->len > root && (len == 0 || path[len - 1] != '/'))
        truncate_to(out, out->len - 1);
    return KN_OK;
}

static kn_status append_path(kn_buf *out, const char *path, size_t len, bool normalize)
{
    if (normalize)
        return append_normalized_path(out, path, len);
    if (len == 0)
        return kn_buf_append(out, "/", 1);
    return append_encoded(out, path, len, true);
}

/* ---- canonical query ---- */

typedef struct query_pair {
    size_t name_off, name_len, value_off, value_len; /* into the scratch buffer of encoded text */
} query_pair;

static int pair_cmp_text(const uint8_t *text, const query_pair *a, const query_pair *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(text + a->name_off, text + b->name_off, n);
    if (c != 0 || a->name_len != b->name_len)
        return c != 0 ? c : (a->name_len < b->name_len ? -1 : 1);
    n = a->value_len < b->value_len ? a->value_len : b->value_len;
    c = memcmp(text + a->value_off, text + b->value_off, n);
    if (c != 0 || a->value_len == b->value_len)
        return c;
    return a->value_len < b->value_len ? -1 : 1;
}

/* Insertion sort: query strings of signed AWS requests are short, and this keeps the sort reentrant. */
static void sort_pairs(const uint8_t *text, query_pair *pairs, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        query_pair p = pairs[i];
        size_t j = i;
        while (j > 0 && pair_cmp_text(text, &pairs[j - 1], &p) > 0) {
            pairs[j] = pairs[j - 1];
            j--;
        }
        pairs[j] = p;
    }
}

/* Canonical query: every name=value pair (a name without '=' gets an empty value) encoded, sorted by encoded name then
 * value, joined with '&'. Empty pieces ("a=1&&b=2") are dropped. */
static kn_status append_query(kn_buf *out, const char *query, size_t len)
{
    kn_status st = KN_OK;
    kn_buf text;
    kn_buf_init(&text, CANONICAL_MAX);
    query_pair *pairs = NULL;
    size_t count = 0, cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += query[i] == '&';
    pairs = calloc(cap, sizeof *pairs);
    /* Pairs are offsets into text.data, so it must exist even when every name and value is empty ("?="). */
    if (!pairs || !kn_buf_reserve(&text, 0)) {
        st = KN_ERR_NO_MEMORY;
        goto cleanup;
    }
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && query[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && query[eq] != '=')
                eq++;
            query_pair *p = &pairs[count++];
            p->name_off = text.len;
            if ((st = append_query_part(&text, query + i, eq - i)) != KN_OK)
                goto cleanup;
            p->name_len = text.len - p->name_off;
            p->value_off = text.len;
            if (eq < end && (st = append_query_part(&text, query + eq + 1, end - eq - 1)) != KN_OK)
                goto cleanup;
            p->value_len = text.len - p->value_off;
        }
        i = end + 1;
    }
    sort_pairs(text.data, pairs, count);
    for (size_t k = 0; k < count && st == KN_OK; k++) {
        if (k > 0)
            st = kn_buf_append(out, "&", 1);
        if (st == KN_OK)
            st = kn_buf_append(out, text.data + pairs[k].name_off, pairs[k].name_len);
        if (st == KN_OK)
            st = kn_buf_append(out, "=", 1);
        if (st == KN_OK)
            st = kn_buf_append(out, text.data + pairs[k].value_off, pairs[k].value_len);
    }
cleanup:
    free(pairs);
    kn_buf_cleanup(&text);
    return st;
}

/* ---- canonical headers ---- */

/* Hop-by-hop and proxy-managed headers, which SDKs leave unsigned because proxies add, change or drop them
 * (botocore's SIGNED_HEADERS_BLACKLIST), plus the Authorization header itself. */
static const text_view k_never_signed[] = {
    LIT("authorization"),     LIT("connection"), LIT("expect"),     LIT("keep-alive"),
    LIT("proxy-authenticate"), LIT("proxy-authorization"), LIT("te"), LIT("trailer"),
    LIT("transfer-encoding"), LIT("upgrade"),    LIT("user-agent"), LIT("x-amzn-trace-id"),
};

static bool never_signed(const kn_sigv4_header *h)
{
    for (size_t i = 0; i < sizeof k_never_signed / sizeof k_never_signed[0]; i++) {
        const text_view *n = &k_never_signed[i];
        if (h->name_len == n->n && name_cmp(h->name, h->name_len, n->p, n->n) == 0)
            return true;
    }
    return false;
}

/* The request's headers ordered by lowercase name, then by position (so duplicate names keep their order). */
typedef struct sorted_headers {
    const kn_sigv4_header **items;
    size_t count;
    const kn_sigv4_header *stack[SORT_STACK_MAX];
} sorted_headers;

static int header_order(const kn_sigv4_header *a, const kn_sigv4_header *b)
{
    int c = name_cmp(a->name, a->name_len, b->name, b->name_len);
    return c != 0 ? c : (a < b ? -1 : a > b);
}

static int header_order_qsort(const void *a, const void *b)
{
    return header_order(*(const kn_sigv4_header *const *)a, *(const kn_sigv4_header *const *)b);
}

static kn_status sorted_headers_init(sorted_headers *s, const kn_sigv4_request *req)
{
    s->count = req->header_count;
    s->items = s->stack;
    if (s->count > SORT_STACK_MAX) {
        s->items = malloc(s->count * sizeof *s->items);
        if (!s->items)
            return KN_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < s->count; i++)
        s->items[i] = &req->headers[i];
    if (s->count > SORT_STACK_MAX) {
        qsort(s->items, s->count, sizeof *s->items, header_order_qsort);
        return KN_OK;
    }
    for (size_t i = 1; i < s->count; i++) {
        const kn_sigv4_header *h = s->items[i];
        size_t j = i;
        while (j > 0 && header_order(s->items[j - 1], h) > 0) {
            s->items[j] = s->items[j - 1];
            j--;
        }
        s->items[j] = h;
    }
    return KN_OK;
}

static void sorted_headers_cleanup(sorted_headers *s)
{
    if (s->items != s->stack)
        free(s->items);
}

/* Index of the first header named name (any case), or s->count. */
static size_t sorted_headers_find(const sorted_headers *s, const char *name, size_t len)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (name_cmp(s->items[mid]->name, s->items[mid]->name_len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->count && name_cmp(s->items[lo]->name, s->items[lo]->name_len, name, len) == 0)
        return lo;
    return s->count;
}

/* Whether v has no byte <= ' ' (so no whitespace to trim or fold), eight bytes at a time. */
static bool is_plain(const char *v, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, v + i, 8);
        if ((x - 0x21 * BYTES_ONES) & ~x & BYTES_HIGHS) /* some byte < 0x21 */
            return false;
    }
    for (; i < n; i++)
        if ((unsigned char)v[i] <= ' ')
            return false;
    return true;
}

/* Writes a value trimmed, with every run of whitespace (folded continuation lines included) made one space, at p
 * (room for n bytes); returns the end. */
static uint8_t *put_trimmed(uint8_t *p, const char *v, size_t n)
{
    if (is_plain(v, n)) {
        memcpy(p, v, n);
        return p + n;
    }
    uint8_t *start = p;
    bool pending_space = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space(v[i])) {
            pending_space = p != start;
            continue;
        }
        if (pending_space)
            *p++ = ' ';
        pending_space = false;
        *p++ = (uint8_t)v[i];
    }
    return p;
}

static kn_status append_lower(kn_buf *out, const char *s, size_t n)
{
    uint8_t *p = kn_buf_reserve(out, n);
    if (!p)
        return KN_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)lower(s[i]);
    out->len += n;
    out->data[out->len] = '\0';
    return KN_OK;
}

/* Index past the run of same-named headers that starts at sorted index i. */
static size_t run_end(const sorted_headers *s, size_t i)
{
    const kn_sigv4_header *first = s->items[i];
    size_t j = i + 1;
    while (j < s->count && name_cmp(s->items[j]->name, s->items[j]->name_len, first->name, first->name_len) == 0)
        j++;
    return j;
}

/* Appends "name:v1,v2,...\n" for the headers items[0, n), which share one name, in their request order, with one
 * reservation. */
static kn_status append_header_line(kn_buf *out, const kn_sigv4_header *const *items, size_t n)
{
    const kn_sigv4_header *first = items[0];
    size_t need = first->name_len + 1;
    for (size_t j = 0; j < n; j++)
        need += items[j]->value_len + 1; /* the value and the ',' or '\n' after it */
    uint8_t *p = kn_buf_reserve(out, need);
    if (!p)
        return KN_ERR_NO_MEMORY;
    uint8_t *start = p;
    for (size_t k = 0; k < first->name_len; k++)
        *p++ = (uint8_t)lower(first->name[k]);
    *p++ = ':';
    for (size_t j = 0; j < n; j++) {
        if (j > 0)
            *p++ = ',';
        p = put_trimmed(p, items[j]->value, items[j]->value_len);
    }
    *p++ = '\n';
    out->len += (size_t)(p - start);
    out->data[out->len] = '\0';
    return KN_OK;
}

/* The signed-header list, and the canonical header lines when lines is not NULL, for "every header but the
 * never-signed ones". */
static kn_status append_all_headers(kn_buf *lines, const sorted_headers *s, kn_buf *list)
{
    kn_status st = KN_OK;
    size_t start = list->len;
    for (size_t i = 0, end; i < s->count && st == KN_OK; i = end) {
        end = run_end(s, i);
        if (never_signed(s->items[i]))
            continue;
        if (list->len > start)
            st = kn_buf_append(list, ";", 1);
        if (st == KN_OK)
            st = append_lower(list, s->items[i]->name, s->items[i]->name_len);
        if (st == KN_OK && lines)
            st = append_header_line(lines, s->items + i, end - i);
    }
    return st;
}

/* Canonical header lines for the names of a ';'-separated list, in the list's order. The headers are looked up in s,
 * sorted; or, when s is NULL (a request with at most SORT_STACK_MAX headers), by a scan of req's, which for a few
 * headers costs less than sorting them. Either way a name's headers come in request order. */
static kn_status append_listed_headers(kn_buf *out, const kn_sigv4_request *req, const sorted_headers *s,
                                       const char *list, size_t len)
{
    kn_status st = KN_OK;
    const kn_sigv4_header *scan[SORT_STACK_MAX];
    for (size_t i = 0; i <= len && st == KN_OK;) {
        size_t end = i;
        while (end < len && list[end] != ';')
            end++;
        const char *name = list + i;
        size_t name_len = end - i, n = 0;
        const kn_sigv4_header *const *items = scan;
        if (name_len > 0 && !s) {
            for (size_t k = 0; k < req->header_count; k++) {
                const kn_sigv4_header *h = &req->headers[k];
                if (h->name_len == name_len && name_cmp(h->name, h->name_len, name, name_len) == 0)
                    scan[n++] = h;
            }
        } else if (name_len > 0) {
            size_t at = sorted_headers_find(s, name, name_len);
            if (at < s->count) {
                items = s->items + at;
                n = run_end(s, at) - at;
            }
        }
        if (n > 0)
            st = append_header_line(out, items, n);
        i = end + 1;
    }
    return st;
}

/* ---- canonical request ---- */

static size_t canonical_estimate(const kn_sigv4_request *req, size_t list_len)
{
    size_t n = strlen(req->method) + 3 * req->path_len + 3 * req->query_len + 2 * list_len + 128;
    for (size_t i = 0; i < req->header_count; i++)
        n += 2 * req->headers[i].name_len + req->headers[i].value_len + 3;
    return n;
}

/* Builds the canonical request into out. list NULL: sign every header and report where the generated list sits in
 * out (*list_off, *list_len) so the Authorization header can reuse it. */
static kn_status build_canonical(const kn_sigv4_request *req, const char *list, size_t list_len, bool normalize,
                                 kn_buf *out, size_t *list_off, size_t *list_out_len)
{
    kn_status st = KN_OK;
    sorted_headers sorted = {0};
    kn_buf generated;
    kn_buf_init(&generated, CANONICAL_MAX);
    uint8_t body_hash[KN_SHA256_LEN];
    char body_hex[2 * KN_SHA256_LEN + 1];

    /* One allocation up front instead of a doubling series; only a hint, so never more than out's cap allows. */
    size_t room = out->cap - out->len, estimate = canonical_estimate(req, list_len);
    kn_buf_reserve(out, estimate < room ? estimate : room);
    bool scan = list && req->header_count <= SORT_STACK_MAX; /* see append_listed_headers */
    if (!scan && sorted_headers_init(&sorted, req) != KN_OK) {
        st = KN_ERR_NO_MEMORY;
        goto cleanup;
    }
    if ((st = kn_buf_append_str(out, req->method)) != KN_OK || (st = kn_buf_append(out, "\n", 1)) != KN_OK ||
        (st = append_path(out, req->path ? req->path : "", req->path ? req->path_len : 0, normalize)) != KN_OK ||
        (st = kn_buf_append(out, "\n", 1)) != KN_OK)
        goto cleanup;
    if (req->query && req->query_len > 0 && (st = append_query(out, req->query, req->query_len)) != KN_OK)
        goto cleanup;
    if ((st = kn_buf_append(out, "\n", 1)) != KN_OK)
        goto cleanup;
    if (list) {
        st = append_listed_headers(out, req, scan ? NULL : &sorted, list, list_len);
    } else {
        st = append_all_headers(out, &sorted, &generated);
        list = (const char *)generated.data;
        list_len = generated.len;
    }
    if (st != KN_OK || (st = kn_buf_append(out, "\n", 1)) != KN_OK)
        goto cleanup;
    if (list_off)
        *list_off = out->len;
    if (list_out_len)
        *list_out_len = list_len;
    if ((list_len > 0 && (st = kn_buf_append(out, list, list_len)) != KN_OK) ||
        (st = kn_buf_append(out, "\n", 1)) != KN_OK)
        goto cleanup;
    if (!kn_crypto_sha256(req->body ? req->body : "", req->body_len, body_hash)) {
        st = KN_ERR_NO_MEMORY;
        goto cleanup;
    }
    kn_crypto_hex(body_hash, sizeof body_hash, body_hex);
    st = kn_buf_append(out, body_hex, 2 * KN_SHA256_LEN);
cleanup:
    sorted_headers_cleanup(&sorted);
    kn_buf_cleanup(&generated);
    return st;
}

kn_status kn_sigv4_canonical_request(const kn_sigv4_request *req, const char *signed_headers, bool normalize_path,
                                     kn_buf *out)
{
    size_t start = out->len;
    kn_status st = build_canonical(req, signed_headers, signed_headers ? strlen(signed_headers) : 0, normalize_path,
                                   out, NULL, NULL);
    if (st != KN_OK)
        truncate_to(out, start);
    return st;
}

kn_status kn_sigv4_signed_header_list(const kn_sigv4_request *req, kn_buf *out)
{
    sorted_headers sorted = {0};
    size_t start = out->len;
    kn_status st = sorted_headers_init(&sorted, req);
    if (st == KN_OK)
        st = append_all_headers(NULL, &sorted, out);
    if (st != KN_OK)
        truncate_to(out, start);
    sorted_headers_cleanup(&sorted);
    return st;
}

/* ---- string to sign ---- */

/* Writes the string to sign into buf[cap] (it is short: the scope fields are bounded); returns its length. */
static size_t format_string_to_sign(const kn_sigv4_scope *scope, const uint8_t creq_hash[KN_SHA256_LEN], char *buf)
{
    char *p = buf;
    const char *parts[] = {ALGORITHM "\n", scope->amz_date, "\n", scope->date, "/", scope->region, "/",
                           scope->service, "/" TERMINATOR "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t n = strlen(parts[i]);
        memcpy(p, parts[i], n);
        p += n;
    }
    kn_crypto_hex(creq_hash, KN_SHA256_LEN, p);
    return (size_t)(p - buf) + 2 * KN_SHA256_LEN;
}

/* Large enough for format_string_to_sign given kn_sigv4_scope's field sizes. */
#define STS_MAX (sizeof ALGORITHM + sizeof(kn_sigv4_scope) + sizeof TERMINATOR + 2 * KN_SHA256_LEN + 8)

kn_status kn_sigv4_string_to_sign(const kn_sigv4_scope *scope, const char *creq, size_t creq_len, kn_buf *out)
{
    uint8_t hash[KN_SHA256_LEN];
    char sts[STS_MAX + 1];
    if (!kn_crypto_sha256(creq, creq_len, hash))
        return KN_ERR_NO_MEMORY;
    return kn_buf_append(out, sts, format_string_to_sign(scope, hash, sts));
}

/* ---- signing key and its cache ---- */

void kn_sigv4_key_cache_init(kn_sigv4_key_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    pthread_mutex_init(&cache->lock, NULL);
}

void kn_sigv4_key_cache_cleanup(kn_sigv4_key_cache *cache)
{
    pthread_mutex_destroy(&cache->lock);
    kn_crypto_wipe(cache->entries, sizeof cache->entries);
}

static bool entry_matches(const kn_sigv4_key_entry *e, const uint8_t secret_hash[KN_SHA256_LEN],
                          const kn_sigv4_scope *scope)
{
    return e->last_used != 0 && memcmp(e->secret_hash, secret_hash, KN_SHA256_LEN) == 0 &&
           strcmp(e->date, scope->date) == 0 && strcmp(e->region, scope->region) == 0 &&
           strcmp(e->service, scope->service) == 0;
}

static bool cache_get(kn_sigv4_key_cache *cache, const uint8_t secret_hash[KN_SHA256_LEN],
                      const kn_sigv4_scope *scope, uint8_t out[KN_SHA256_LEN])
{
    bool found = false;
    pthread_mutex_lock(&cache->lock);
    for (size_t i = 0; i < KN_SIGV4_KEY_CACHE_SLOTS && !found; i++) {
        kn_sigv4_key_entry *e = &cache->entries[i];
        if (entry_matches(e, secret_hash, scope)) {
            memcpy(out, e->key, KN_SHA256_LEN);
            e->last_used = ++cache->clock;
            found = true;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

static void cache_put(kn_sigv4_key_cache *cache, const uint8_t secret_hash[KN_SHA256_LEN],
                      const kn_sigv4_scope *scope, const uint8_t key[KN_SHA256_LEN])
{
    pthread_mutex_lock(&cache->lock);
    kn_sigv4_key_entry *victim = &cache->entries[0];
    for (size_t i = 0; i < KN_SIGV4_KEY_CACHE_SLOTS; i++) {
        kn_sigv4_key_entry *e = &cache->entries[i];
        if (entry_matches(e, secret_hash, scope)) { /* another thread derived it meanwhile */
            victim = e;
            break;
        }
        if (e->last_used < victim->last_used)
            victim = e;
    }
    memcpy(victim->secret_hash, secret_hash, KN_SHA256_LEN);
    memcpy(victim->date, scope->date, sizeof victim->date);
    memcpy(victim->region, scope->region, sizeof victim->region);
    memcpy(victim->service, scope->service, sizeof victim->service);
    memcpy(victim->key, key, KN_SHA256_LEN);
    victim->last_used = ++cache->clock;
    pthread_mutex_unlock(&cache->lock);
}

static bool derive_key(const char *secret, const kn_sigv4_scope *scope, uint8_t out[KN_SHA256_LEN])
{
    bool ok = false;
    size_t secret_len = strlen(secret);
    uint8_t stack_key[4 + 256];
    uint8_t *k_secret = secret_len <= 256 ? stack_key : malloc(4 + secret_len);
    uint8_t k[KN_SHA256_LEN];
    if (!k_secret)
        return false;
    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, secret_len);
    ok = kn_crypto_hmac_sha256(k_secret, 4 + secret_len, scope->date, strlen(scope->date), k) &&
         kn_crypto_hmac_sha256(k, sizeof k, scope->region, strlen(scope->region), k) &&
         kn_crypto_hmac_sha256(k, sizeof k, scope->service, strlen(scope->service), k) &&
         kn_crypto_hmac_sha256(k, sizeof k, TERMINATOR, strlen(TERMINATOR), out);
    kn_crypto_wipe(k_secret, 4 + secret_len);
    kn_crypto_wipe(k, sizeof k);
    if (k_secret != stack_key)
        free(k_secret);
    return ok;
}

bool kn_sigv4_signing_key(kn_sigv4_key_cache *cache, const char *secret, const kn_sigv4_scope *scope,
                          uint8_t out[KN_SHA256_LEN])
{
    uint8_t secret_hash[KN_SHA256_LEN];
    if (!cache)
        return derive_key(secret, scope, out);
    if (!kn_crypto_sha256(secret, strlen(secret), secret_hash))
        return false;
    if (cache_get(cache, secret_hash, scope, out))
        return true;
    if (!derive_key(secret, scope, out))
        return false;
    cache_put(cache, secret_hash, scope, out);
    return true;
}

/* hex(HMAC(signing key, string to sign)) of a canonical request into hex[65]. */
static bool signature_hex(const char *creq, size_t creq_len, const kn_sigv4_scope *scope,
                          const uint8_t key[KN_SHA256_LEN], char hex[2 * KN_SHA256_LEN + 1])
{
    uint8_t hash[KN_SHA256_LEN], mac[KN_SHA256_LEN];
    char sts[STS_MAX + 1];
    bool ok = kn_crypto_sha256(creq, creq_len, hash) &&
              kn_crypto_hmac_sha256(key, KN_SHA256_LEN, sts, format_string_to_sign(scope, hash, sts), mac);
    kn_crypto_hex(mac, sizeof mac, hex);
    return ok;
}

/* ---- sign ---- */

static bool has_header(const kn_sigv4_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (name_cmp(req->headers[i].name, req->headers[i].name_len, name, strlen(name)) == 0)
            return true;
    return false;
}

/* Appends "AWS4-HMAC-SHA256 Credential=AKID/SCOPE, SignedHeaders=LIST, Signature=HEX". */
static kn_status append_authorization(kn_buf *out, const char *access_key_id, const kn_sigv4_scope *scope,
                                      const char *list, size_t list_len, const char *sig)
{
    text_view v[] = {
        LIT(ALGORITHM " Credential="), STR(access_key_id), LIT("/"), STR(scope->date), LIT("/"), STR(scope->region),
        LIT("/"), STR(scope->service), LIT("/" TERMINATOR ", SignedHeaders="), VIEW(list, list_len),
        LIT(", Signature="), VIEW(sig, 2 * KN_SHA256_LEN),
    };
    return append_views(out, v, sizeof v / sizeof v[0]);
}

kn_status kn_sigv4_sign(const kn_sigv4_request *req, const char *access_key_id, const char *secret,
                        const kn_sigv4_scope *scope, kn_sigv4_key_cache *cache, kn_buf *out)
{
    kn_status st = KN_OK;
    kn_buf creq;
    kn_buf_init(&creq, CANONICAL_MAX);
    size_t list_off = 0, list_len = 0;
    uint8_t key[KN_SHA256_LEN] = {0};
    char sig[2 * KN_SHA256_LEN + 1];
    size_t start = out->len;

    if (!has_header(req, "host")) {
        st = KN_ERR_INVALID_ARGUMENT;
        goto cleanup;
    }
    if ((st = build_canonical(req, NULL, 0, !req->path_as_is, &creq, &list_off, &list_len)) != KN_OK)
        goto cleanup;
    if (!kn_sigv4_signing_key(cache, secret, scope, key) ||
        !signature_hex((const char *)creq.data, creq.len, scope, key, sig)) {
        st = KN_ERR_NO_MEMORY;
        goto cleanup;
    }
    st = append_authorization(out, access_key_id, scope, (const char *)creq.data + list_off, list_len, sig);
cleanup:
    if (st != KN_OK)
        truncate_to(out, start);
    kn_crypto_wipe(key, sizeof key);
    kn_buf_cleanup(&creq);
    return st;
}

/* ---- Authorization header parsing (server side) ----
 * AWS's order of complaints, as its services answer: an unsupported AWS4 algorithm; then a part without '='; then
 * every missing one of Credential, Signature, SignedHeaders (and the date header, which the caller knows about);
 * then a Credential that is not five slash-separated elements. Parts are separated by any run of commas and
 * whitespace, and a repeated key keeps its last value. */

typedef enum parse_problem {
    PROBLEM_NONE = 0,
    PROBLEM_ALGORITHM,  /* "AWS4-..." but not AWS4-HMAC-SHA256 */
    PROBLEM_PAIR,       /* a part without '=' */
    PROBLEM_MISSING,    /* see parse_detail.missing */
    PROBLEM_CREDENTIAL, /* not five slash-separated elements */
} parse_problem;

enum { MISSING_CREDENTIAL = 1, MISSING_SIGNATURE = 2, MISSING_SIGNED_HEADERS = 4 };

typedef struct parse_detail {
    bool other_scheme;      /* the first word is not an AWS4 algorithm at all */
    parse_problem problem;  /* the first problem, in AWS's order */
    unsigned missing;       /* MISSING_* bits */
    const char *text;       /* the header, trimmed */
    size_t text_len;
    const char *bad;        /* the algorithm (PROBLEM_ALGORITHM) or the part without '=' (PROBLEM_PAIR) */
    size_t bad_len;
} parse_detail;

#define MSG_REQ_CREDENTIAL "Authorization header requires 'Credential' parameter."
#define MSG_REQ_SIGNATURE "Authorization header requires 'Signature' parameter."
#define MSG_REQ_SIGNED_HEADERS "Authorization header requires 'SignedHeaders' parameter."
#define MSG_PAIR "not a valid key=value pair (missing equal-sign) in Authorization header"
#define MSG_CREDENTIAL_PARTS                                                                                         \
    "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term"
#define MSG_ALGORITHM "Unsupported AWS 'algorithm': "

/* Every combination of missing parts, indexed by MISSING_* bits, in AWS's order. */
static const char *const k_missing_messages[8] = {
    [0] = "",
    [MISSING_CREDENTIAL] = MSG_REQ_CREDENTIAL,
    [MISSING_SIGNATURE] = MSG_REQ_SIGNATURE,
    [MISSING_SIGNED_HEADERS] = MSG_REQ_SIGNED_HEADERS,
    [MISSING_CREDENTIAL | MISSING_SIGNATURE] = MSG_REQ_CREDENTIAL " " MSG_REQ_SIGNATURE,
    [MISSING_CREDENTIAL | MISSING_SIGNED_HEADERS] = MSG_REQ_CREDENTIAL " " MSG_REQ_SIGNED_HEADERS,
    [MISSING_SIGNATURE | MISSING_SIGNED_HEADERS] = MSG_REQ_SIGNATURE " " MSG_REQ_SIGNED_HEADERS,
    [MISSING_CREDENTIAL | MISSING_SIGNATURE | MISSING_SIGNED_HEADERS] =
        MSG_REQ_CREDENTIAL " " MSG_REQ_SIGNATURE " " MSG_REQ_SIGNED_HEADERS,
};

static bool is_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

/* Whether some byte of x equals b. */
static bool word_has_byte(uint64_t x, unsigned char b)
{
    uint64_t y = x ^ (BYTES_ONES * b);
    return ((y - BYTES_ONES) & ~y & BYTES_HIGHS) != 0;
}

/* The first separator at or after p, or end. Parts are long (a Signature part is 74 bytes), so whole words without
 * a separator are skipped eight bytes at a time. */
static const char *next_separator(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        if (word_has_byte(x, ',') || word_has_byte(x, ' ') || word_has_byte(x, '\t'))
            break;
        p += 8;
    }
    while (p < end && !is_separator(*p))
        p++;
    return p;
}

/* Copies a view into a fixed field when it fits; leaves the field empty otherwise. */
static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    dst[0] = '\0';
    if (len < cap) {
        memcpy(dst, src, len);
        dst[len] = '\0';
    }
}

/* Splits a Credential value into its slash-separated elements; returns how many there are (at most 6 are stored). */
static size_t split_credential(const char *cred, size_t len, const char *part[6], size_t part_len[6])
{
    size_t count = 0, i = 0;
    for (;;) {
        size_t end = i;
        while (end < len && cred[end] != '/')
            end++;
        if (count < 6) {
            part[count] = cred + i;
            part_len[count] = end - i;
        }
        count++;
        if (end >= len)
            return count;
        i = end + 1;
    }
}

/* Reads the key=value parts after the algorithm into auth; records the first problem in d. */
static void parse_parts(const char *p, const char *end, kn_sigv4_auth *auth, parse_detail *d)
{
    const char *cred = NULL, *sig = NULL;
    size_t cred_len = 0, sig_len = 0;
    bool have_list = false;
    while (p < end) {
        while (p < end && is_separator(*p))
            p++;
        const char *part = p;
        p = next_separator(p, end);
        if (part == p)
            break;
        const char *eq = memchr(part, '=', (size_t)(p - part));
        if (!eq) {
            d->problem = PROBLEM_PAIR;
            d->bad = part;
            d->bad_len = (size_t)(p - part);
            return;
        }
        const char *v = eq + 1;
        size_t key_len = (size_t)(eq - part), v_len = (size_t)(p - v);
        if (view_eq(part, key_len, "Credential")) {
            cred = v;
            cred_len = v_len;
        } else if (view_eq(part, key_len, "Signature")) {
            sig = v;
            sig_len = v_len;
        } else if (view_eq(part, key_len, "SignedHeaders")) {
            auth->signed_headers = v;
            auth->signed_headers_len = v_len;
            have_list = true;
        }
    }
    d->missing = (cred ? 0 : MISSING_CREDENTIAL) | (sig ? 0 : MISSING_SIGNATURE) |
                 (have_list ? 0 : MISSING_SIGNED_HEADERS);
    if (d->missing) {
        d->problem = PROBLEM_MISSING;
        return;
    }
    auth->credential = cred;
    auth->credential_len = cred_len;
    if (sig_len == 2 * KN_SHA256_LEN)
        copy_field(auth->signature, sizeof auth->signature, sig, sig_len);
    const char *el[6];
    size_t el_len[6];
    if (split_credential(cred, cred_len, el, el_len) != 5) {
        d->problem = PROBLEM_CREDENTIAL;
        return;
    }
    auth->access_key_id = el[0];
    auth->access_key_id_len = el_len[0];
    copy_field(auth->scope.date, sizeof auth->scope.date, el[1], el_len[1]);
    copy_field(auth->scope.region, sizeof auth->scope.region, el[2], el_len[2]);
    copy_field(auth->scope.service, sizeof auth->scope.service, el[3], el_len[3]);
}

static void parse_core(const char *value, size_t len, kn_sigv4_auth *auth, parse_detail *d)
{
    memset(auth, 0, sizeof *auth);
    memset(d, 0, sizeof *d);
    while (len > 0 && is_space(*value)) {
        value++;
        len--;
    }
    while (len > 0 && is_space(value[len - 1]))
        len--;
    d->text = value;
    d->text_len = len;
    const char *end = value + len, *p = value;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    size_t alg_len = (size_t)(p - value);
    if (!view_eq(value, alg_len, ALGORITHM)) {
        if (alg_len >= 5 && memcmp(value, "AWS4-", 5) == 0) {
            d->problem = PROBLEM_ALGORITHM;
            d->bad = value;
            d->bad_len = alg_len;
            return;
        }
        /* Read on anyway: AWS words its answer to any other scheme from the parts it finds (or does not). */
        d->other_scheme = true;
    }
    parse_parts(p, end, auth, d);
}

kn_sigv4_parse_result kn_sigv4_parse_authorization(const char *value, size_t len, kn_sigv4_auth *auth,
                                                   const char **why)
{
    parse_detail d;
    parse_core(value, len, auth, &d);
    if (d.other_scheme)
        return KN_SIGV4_PARSE_NOT_SIGV4;
    const char *reason = NULL;
    switch (d.problem) {
    case PROBLEM_NONE:
        return KN_SIGV4_PARSE_OK;
    case PROBLEM_ALGORITHM:
        reason = MSG_ALGORITHM "only '" ALGORITHM "' is supported.";
        break;
    case PROBLEM_PAIR:
        reason = "A part is " MSG_PAIR ".";
        break;
    case PROBLEM_MISSING:
        reason = k_missing_messages[d.missing];
        break;
    case PROBLEM_CREDENTIAL:
        reason = MSG_CREDENTIAL_PARTS ".";
        break;
    }
    if (why)
        *why = reason;
    return KN_SIGV4_PARSE_INCOMPLETE;
}

kn_status kn_sigv4_incomplete_message(const char *value, size_t len, bool has_date, kn_buf *out)
{
    kn_sigv4_auth auth;
    parse_detail d;
    parse_core(value, len, &auth, &d);
    size_t start = out->len;
    kn_status st = KN_OK;
    if (d.problem == PROBLEM_ALGORITHM) {
        text_view v[] = {LIT(MSG_ALGORITHM "'"), VIEW(d.bad, d.bad_len), LIT("'.")};
        st = append_views(out, v, 3);
    } else if (d.problem == PROBLEM_PAIR) {
        text_view v[] = {LIT("'"), VIEW(d.bad, d.bad_len), LIT("' " MSG_PAIR ": '"), VIEW(d.text, d.text_len),
                         LIT("'")};
        st = append_views(out, v, 5);
    } else if (d.missing || !has_date) {
        text_view v[] = {STR(k_missing_messages[d.missing]), d.missing && !has_date ? LIT(" ") : LIT(""),
                         has_date ? LIT("") : LIT(KN_SIGV4_MSG_NEED_DATE), LIT(" Authorization="),
                         VIEW(d.text, d.text_len)};
        st = append_views(out, v, 5);
    } else if (d.problem == PROBLEM_CREDENTIAL) {
        text_view v[] = {LIT(MSG_CREDENTIAL_PARTS ", got '"), VIEW(auth.credential, auth.credential_len), LIT("'")};
        st = append_views(out, v, 3);
    }
    if (st != KN_OK)
        truncate_to(out, start);
    return st;
}

/* ---- server-side checks and verification ---- */

static bool list_has(const char *list, size_t len, const char *name)
{
    for (size_t i = 0; i <= len;) {
        size_t end = i;
        while (end < len && list[end] != ';')
            end++;
        if (view_eq(list + i, end - i, name))
            return true;
        i = end + 1;
    }
    return false;
}

static bool scope_name_well_formed(const char *r, size_t n)
{
    if (n == 0 || n >= sizeof(((kn_sigv4_scope *)0)->region))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return false;
    return true;
}

bool kn_sigv4_check_scope(const kn_sigv4_auth *auth, const char *amz_date, const char *region, const char *service,
                          kn_buf *msg)
{
    /* Over HTTP/2 a client may sign the ":authority" pseudo-header in host's stead (the JS SDK v3 does), and AWS
     * accepts either: its message names both. */
    if (!list_has(auth->signed_headers, auth->signed_headers_len, "host") &&
        !list_has(auth->signed_headers, auth->signed_headers_len, ":authority")) {
        kn_buf_append_str(msg, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        return false;
    }
    const char *el[6];
    size_t el_len[6];
    if (!auth->credential || split_credential(auth->credential, auth->credential_len, el, el_len) != 5) {
        text_view v[] = {LIT(MSG_CREDENTIAL_PARTS ", got '"), VIEW(auth->credential, auth->credential_len),
                         LIT("'")};
        append_views(msg, v, 3);
        return false;
    }
    /* Messages are best effort (msg may hit its cap); the verdict never depends on them. */
    size_t start = msg->len;
    bool ok = true;
    if (region ? !view_eq(el[2], el_len[2], region) : !scope_name_well_formed(el[2], el_len[2])) {
        text_view v[] = {LIT("Credential should be scoped to a valid region, not '"), VIEW(el[2], el_len[2]),
                         LIT("'. ")};
        append_views(msg, v, 3);
        ok = false;
    }
    if (service ? !view_eq(el[3], el_len[3], service) : !scope_name_well_formed(el[3], el_len[3])) {
        text_view v[] = {LIT("Credential should be scoped to correct service: '"),
                         service ? STR(service) : VIEW(el[3], el_len[3]), LIT("'. ")};
        append_views(msg, v, 3);
        ok = false;
    }
    if (!view_eq(el[4], el_len[4], TERMINATOR)) {
        text_view v[] = {LIT("Credential should be scoped with a valid terminator: '" TERMINATOR "', not '"),
                         VIEW(el[4], el_len[4]), LIT("'. ")};
        append_views(msg, v, 3);
        ok = false;
    }
    size_t amz_len = strlen(amz_date);
    if (amz_len < 8 || el_len[1] != 8 || memcmp(el[1], amz_date, 8) != 0) {
        text_view v[] = {LIT("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                             "HTTP: '"),
                         VIEW(el[1], el_len[1]), LIT("' != '"), VIEW(amz_date, amz_len < 8 ? amz_len : 8),
                         LIT("', from '"), VIEW(amz_date, amz_len), LIT("'. ")};
        append_views(msg, v, 7);
        ok = false;
    }
    /* Each sentence was written with a trailing space for the next one; AWS's message ends at the last period. */
    if (msg->len > start && msg->data[msg->len - 1] == ' ')
        truncate_to(msg, msg->len - 1);
    return ok;
}

bool kn_sigv4_verify_with_key(const kn_sigv4_request *req, const kn_sigv4_auth *auth, const char *amz_date,
                              const uint8_t signing_key[KN_SHA256_LEN])
{
    bool ok = false;
    kn_buf creq;
    kn_buf_init(&creq, CANONICAL_MAX);
    kn_sigv4_scope scope = auth->scope;
    char sig[2 * KN_SHA256_LEN + 1];
    size_t amz_len = strlen(amz_date);
    if (strlen(auth->signature) != 2 * KN_SHA256_LEN || !auth->signed_headers || !scope.date[0] ||
        !scope.region[0] || !scope.service[0] || amz_len >= sizeof scope.amz_date)
        goto cleanup;
    memcpy(scope.amz_date, amz_date, amz_len + 1);
    if (build_canonical(req, auth->signed_headers, auth->signed_headers_len, !req->path_as_is, &creq, NULL, NULL) !=
            KN_OK ||
        !signature_hex((const char *)creq.data, creq.len, &scope, signing_key, sig))
        goto cleanup;
    ok = kn_crypto_equal_ct(sig, auth->signature, 2 * KN_SHA256_LEN);
cleanup:
    kn_buf_cleanup(&creq);
    return ok;
}

bool kn_sigv4_verify(const kn_sigv4_request *req, const kn_sigv4_auth *auth, const char *amz_date, const char *secret,
                     kn_sigv4_key_cache *cache)
{
    uint8_t key[KN_SHA256_LEN] = {0};
    /* An incomplete scope cannot verify: no key is derived (or cached) for it. */
    bool complete = auth->scope.date[0] && auth->scope.region[0] && auth->scope.service[0];
    bool ok = complete && kn_sigv4_signing_key(cache, secret, &auth->scope, key) &&
              kn_sigv4_verify_with_key(req, auth, amz_date, key);
    kn_crypto_wipe(key, sizeof key);
    return ok;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void kn_sigv4_format_time(int64_t unix_seconds, kn_sigv4_scope *scope)
{
    int64_t days = unix_seconds >= 0 ? unix_seconds / 86400 : -((-unix_seconds + 86399) / 86400);
    int64_t secs = unix_seconds - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char *p = scope->amz_date;
    put_digits(p, (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y), 4);
    put_digits(p + 4, m, 2);
    put_digits(p + 6, d, 2);
    p[8] = 'T';
    put_digits(p + 9, (unsigned)(secs / 3600), 2);
    put_digits(p + 11, (unsigned)(secs / 60 % 60), 2);
    put_digits(p + 13, (unsigned)(secs % 60), 2);
    p[15] = 'Z';
    p[16] = '\0';
    memcpy(scope->date, p, 8);
    scope->date[8] = '\0';
}

static bool read_digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool kn_sigv4_parse_amz_date(const char *s, size_t len, int64_t *unix_seconds)
{
    static const unsigned month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, m, d, hh, mm, ss;
    if (len != 16 || s[8] != 'T' || s[15] != 'Z' || !read_digits(s, 4, &y) || !read_digits(s + 4, 2, &m) ||
        !read_digits(s + 6, 2, &d) || !read_digits(s + 9, 2, &hh) || !read_digits(s + 11, 2, &mm) ||
        !read_digits(s + 13, 2, &ss))
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12 || d < 1 || d > month_days[m - 1] || (m == 2 && d == 29 && !leap) || hh > 23 || mm > 59 ||
        ss > 59)
        return false;
    *unix_seconds = days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
    return true;
}
