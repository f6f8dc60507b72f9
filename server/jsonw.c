/* knd_jsonw: each call reserves room for everything it writes (separator, key, value) once, then writes straight into
 * the buffer: responses are built on the request path, and GetRecords writes five members for each of up to 10,000
 * records, so per-append bookkeeping and printf-family formatting showed in profiles. */
#include "jsonw.h"

#include "../lib/base64.h"
#include "../lib/validate.h"

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

/* Bytes that stand for themselves inside a JSON string: printable ASCII but '"' and '\\'. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Nonzero when some byte of x is zero (the classic test, exact for the "some" question). */
static uint64_t has_zero(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

/* Length of the run of plain bytes at the start of s, 8 bytes at a time: a word is plain when no byte has its top
 * bit set, is below 0x20, or equals '"', '\\' or 0x7F. */
static size_t plain_prefix(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if ((x & HIGHS) || ((x - 0x20 * ONES) & HIGHS) || has_zero(x ^ ('"' * ONES)) ||
            has_zero(x ^ ('\\' * ONES)) || has_zero(x ^ (0x7F * ONES)))
            break;
    }
    while (i < len && plain((unsigned char)s[i]))
        i++;
    return i;
}

kn_status knd_jsonw_escape(kn_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = plain_prefix(s, len); /* start of the pending run of bytes that need no escaping */
    if (run == len) /* the common case: nothing to escape */
        return kn_buf_append(b, s, len);
    /* Only invalid text takes the slow path of replacing its non-ASCII bytes. */
    bool valid_utf8 = kn_utf8_chars(s, len) != (size_t)-1;
    kn_status st = KN_OK;
    run = 0;
    for (size_t i = 0; i < len && st == KN_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t esc_len = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc_len = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        } else if (c >= 0x80 && !valid_utf8) {
            memcpy(esc, "\\ufffd", 6);
            esc_len = 6;
        } else {
            continue;
        }
        st = kn_buf_append(b, s + run, i - run);
        if (st == KN_OK)
            st = kn_buf_append(b, esc, esc_len);
        run = i + 1;
    }
    if (st == KN_OK)
        st = kn_buf_append(b, s + run, len - run);
    return st;
}

void knd_jsonw_string(knd_jsonw *w, const char *key, const char *s, size_t len)
{
    size_t key_len = key ? strlen(key) : 0, plain_len = plain_prefix(s, len);
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
    if ((w->status = knd_jsonw_escape(&w->buf, s + plain_len, len - plain_len)) == KN_OK &&
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
