#include "jsonw.h"

#include "../lib/base64.h"
#include "../lib/validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void knd_jsonw_init(knd_jsonw *w, size_t cap)
{
    *w = (knd_jsonw){.status = KN_OK};
    kn_buf_init(&w->buf, cap);
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

static void append(knd_jsonw *w, const char *s, size_t len)
{
    if (w->status == KN_OK)
        w->status = kn_buf_append(&w->buf, s, len);
}

static void append_str(knd_jsonw *w, const char *s)
{
    append(w, s, strlen(s));
}

/* Writes the separator and key that precede a value in the current container. */
static void member(knd_jsonw *w, const char *key)
{
    if (w->depth > 0) {
        if (w->has_items[w->depth - 1])
            append(w, ",", 1);
        w->has_items[w->depth - 1] = true;
    }
    if (key) {
        append(w, "\"", 1);
        append_str(w, key);
        append(w, "\":", 2);
    }
}

static void open(knd_jsonw *w, const char *key, const char *bracket)
{
    member(w, key);
    if (w->depth >= KND_JSONW_MAX_DEPTH) {
        if (w->status == KN_OK)
            w->status = KN_ERR_INVALID_ARGUMENT;
        return;
    }
    w->has_items[w->depth++] = false;
    append(w, bracket, 1);
}

static void close_container(knd_jsonw *w, const char *bracket)
{
    if (w->depth == 0) {
        if (w->status == KN_OK)
            w->status = KN_ERR_INVALID_ARGUMENT;
        return;
    }
    w->depth--;
    append(w, bracket, 1);
}

void knd_jsonw_object_begin(knd_jsonw *w, const char *key)
{
    open(w, key, "{");
}

void knd_jsonw_object_end(knd_jsonw *w)
{
    close_container(w, "}");
}

void knd_jsonw_array_begin(knd_jsonw *w, const char *key)
{
    open(w, key, "[");
}

void knd_jsonw_array_end(knd_jsonw *w)
{
    close_container(w, "]");
}

kn_status knd_jsonw_escape(kn_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    /* Only invalid text takes the slow path of replacing its non-ASCII bytes. */
    bool valid_utf8 = kn_utf8_chars(s, len) != (size_t)-1;
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    kn_status st = KN_OK;
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
    member(w, key);
    append(w, "\"", 1);
    if (w->status == KN_OK)
        w->status = knd_jsonw_escape(&w->buf, s, len);
    append(w, "\"", 1);
}

void knd_jsonw_cstring(knd_jsonw *w, const char *key, const char *s)
{
    knd_jsonw_string(w, key, s, strlen(s));
}

void knd_jsonw_int(knd_jsonw *w, const char *key, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    member(w, key);
    append(w, num, (size_t)n);
}

void knd_jsonw_bool(knd_jsonw *w, const char *key, bool v)
{
    member(w, key);
    append_str(w, v ? "true" : "false");
}

void knd_jsonw_epoch_ms(knd_jsonw *w, const char *key, int64_t ms)
{
    char num[32];
    if (ms < 0)
        ms = 0;
    int n = snprintf(num, sizeof num, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    member(w, key);
    append(w, num, (size_t)n);
}

void knd_jsonw_base64(knd_jsonw *w, const char *key, const void *data, size_t len)
{
    member(w, key);
    append(w, "\"", 1);
    if (w->status == KN_OK)
        w->status = kn_base64_encode(data, len, &w->buf);
    append(w, "\"", 1);
}
