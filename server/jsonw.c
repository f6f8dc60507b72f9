/* knd_jsonw: each call reserves room for everything it writes (separator, key, value) once, then writes straight into
 * the buffer: responses are built on the request path, and GetRecords writes five members for each of up to 10,000
 * records, so per-append bookkeeping and printf-family formatting showed in profiles. */
#include "jsonw.h"

#include "../lib/base64.h"
#include "../lib/json.h"

#include <string.h>

#define INT_CHARS 20   /* an int64_t in decimal, sign included */
#define KEY_EXTRA 4    /* ,"key": */

void knd_jsonw_init(knd_jsonw *w, size_t cap)
{
    *w = (knd_jsonw){.status = KN_OK};
    kn_buf_init(&w->buf, cap);
}

void knd_jsonw_init_reuse(knd_jsonw *w, kn_buf *storage, size_t cap)
{
    *w = (knd_jsonw){.status = KN_OK, .buf = *storage};
    kn_buf_init(storage, storage->cap);
    w->buf.cap = cap;
    kn_buf_reset(&w->buf);
}

void knd_jsonw_keep(knd_jsonw *w, kn_buf *storage, size_t keep)
{
    size_t cap = storage->cap;
    kn_buf_cleanup(storage);
    if (w->buf.alloc <= keep) {
        *storage = w->buf;
        kn_buf_init(&w->buf, 0);
    }
    storage->cap = cap;
    knd_jsonw_cleanup(w);
}

void knd_jsonw_reserve(knd_jsonw *w, size_t bytes)
{
    if (w->status == KN_OK && bytes <= w->buf.cap && !kn_buf_reserve(&w->buf, bytes))
        w->status = KN_ERR_NO_MEMORY;
}

void knd_jsonw_cleanup(knd_jsonw *w)
{
    kn_buf_cleanup(&w->buf);
}

kn_status knd_jsonw_finish(const knd_jsonw *w)
{
    if (w->status != KN_OK)
        return w->status;
    return w->depth == 0 ? KN_OK : KN_ERR_INVALID_ARGUMENT;
}

/* Room for n more bytes; NULL (and the error made sticky) when the cap or memory refuses. */
static char *room(knd_jsonw *w, size_t n)
{
    if (w->status != KN_OK)
        return NULL;
    uint8_t *p = kn_buf_reserve(&w->buf, n);
    if (!p)
        w->status = KN_ERR_NO_MEMORY;
    return (char *)p;
}

/* Ends a write of n bytes at room()'s pointer. */
static void commit(knd_jsonw *w, size_t n)
{
    w->buf.len += n;
    w->buf.data[w->buf.len] = '\0';
}

/* Writes the separator and key that precede a value in the current container at p; returns the bytes written. The
 * caller reserved KEY_EXTRA + strlen(key) for them. */
static size_t member(knd_jsonw *w, char *p, const char *key, size_t key_len)
{
    size_t n = 0;
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1])
            p[n++] = ',';
        w->has_items[w->depth - 1] = true;
    }
    if (key) {
        p[n++] = '"';
        memcpy(p + n, key, key_len);
        n += key_len;
        p[n++] = '"';
        p[n++] = ':';
    }
    return n;
}

/* Writes separator, key and the `len` bytes of a literal value. */
static void member_raw(knd_jsonw *w, const char *key, const char *value, size_t len)
{
    size_t key_len = key ? strlen(key) : 0;
    char *p = room(w, KEY_EXTRA + key_len + len);
    if (!p)
        return;
    size_t n = member(w, p, key, key_len);
    memcpy(p + n, value, len);
    commit(w, n + len);
}

static void open(knd_jsonw *w, const char *key, char bracket)
{
    if (w->depth >= KND_JSONW_MAX_DEPTH) {
        if (w->status == KN_OK)
            w->status = KN_ERR_INVALID_ARGUMENT;
        return;
    }
    member_raw(w, key, &bracket, 1);
    w->has_items[w->depth++] = false;
}

static void close_container(knd_jsonw *w, char bracket)
{
    if (w->depth == 0) {
        if (w->status == KN_OK)
            w->status = KN_ERR_INVALID_ARGUMENT;
        return;
    }
    w->depth--;
    char *p = room(w, 1);
    if (p) {
        *p = bracket;
        commit(w, 1);
    }
}

void knd_jsonw_object_begin(knd_jsonw *w, const char *key)
{
    open(w, key, '{');
}

void knd_jsonw_object_end(knd_jsonw *w)
{
    close_container(w, '}');
}

void knd_jsonw_array_begin(knd_jsonw *w, const char *key)
{
    open(w, key, '[');
}

void knd_jsonw_array_end(knd_jsonw *w)
{
    close_container(w, ']');
}

/* apierr.c writes error messages with it; the escaping itself is the library's, shared with the client. */
kn_status knd_jsonw_escape(kn_buf *b, const char *s, size_t len)
{
    return kn_json_escape(b, s, len);
}

void knd_jsonw_string(knd_jsonw *w, const char *key, const char *s, size_t len)
{
    size_t key_len = key ? strlen(key) : 0, plain_len = kn_json_plain_prefix(s, len);
    /* Text with nothing to escape is written in one piece; anything else is escaped after its opening quote. */
    char *p = room(w, KEY_EXTRA + key_len + 2 + plain_len);
    if (!p)
        return;
    size_t n = member(w, p, key, key_len);
    p[n++] = '"';
    memcpy(p + n, s, plain_len);
    n += plain_len;
    if (plain_len == len) {
        p[n++] = '"';
        commit(w, n);
        return;
    }
    commit(w, n);
    if ((w->status = kn_json_escape(&w->buf, s + plain_len, len - plain_len)) == KN_OK &&
        (p = room(w, 1)) != NULL) {
        *p = '"';
        commit(w, 1);
    }
}

void knd_jsonw_cstring(knd_jsonw *w, const char *key, const char *s)
{
    knd_jsonw_string(w, key, s, strlen(s));
}

/* Writes v in decimal at the end of out[INT_CHARS] and returns where the digits start. */
static char *format_u64(char *end, uint64_t v)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void knd_jsonw_int(knd_jsonw *w, const char *key, int64_t v)
{
    char num[INT_CHARS], *end = num + sizeof num;
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = format_u64(end, mag);
    if (v < 0)
        *--p = '-';
    member_raw(w, key, p, (size_t)(end - p));
}

void knd_jsonw_bool(knd_jsonw *w, const char *key, bool v)
{
    member_raw(w, key, v ? "true" : "false", v ? 4 : 5);
}

void knd_jsonw_epoch_ms(knd_jsonw *w, const char *key, int64_t ms)
{
    char num[INT_CHARS + 4], *end = num + sizeof num;
    if (ms < 0)
        ms = 0;
    uint64_t frac = (uint64_t)ms % 1000;
    end[-3] = (char)('0' + frac / 100);
    end[-2] = (char)('0' + frac / 10 % 10);
    end[-1] = (char)('0' + frac % 10);
    end[-4] = '.';
    char *p = format_u64(end - 4, (uint64_t)ms / 1000);
    member_raw(w, key, p, (size_t)(end - p));
}

void knd_jsonw_base64(knd_jsonw *w, const char *key, const void *data, size_t len)
{
    size_t key_len = key ? strlen(key) : 0;
    /* One reservation for the whole member, so that the encoder's own append never reallocates. */
    char *p = room(w, KEY_EXTRA + key_len + 2 + kn_base64_encoded_len(len));
    if (!p)
        return;
    size_t n = member(w, p, key, key_len);
    p[n++] = '"';
    commit(w, n);
    if ((w->status = kn_base64_encode(data, len, &w->buf)) == KN_OK) {
        w->buf.data[w->buf.len++] = '"'; /* inside the reservation */
        w->buf.data[w->buf.len] = '\0';
    }
}
