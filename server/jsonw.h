/* knd_jsonw: writes AWS JSON 1.1 response bodies straight into a capped buffer. Responses are built field by field on
 * the request path, so this avoids building a cJSON tree only to print it. Errors are sticky: after the first failed
 * append (the buffer's cap, or memory) every call is a no-op and knd_jsonw_finish reports the failure once. */
#ifndef KND_JSONW_H
#define KND_JSONW_H

#include "../lib/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define KND_JSONW_MAX_DEPTH 16

typedef struct knd_jsonw {
    kn_buf buf;
    kn_status status;
    int depth;
    bool has_items[KND_JSONW_MAX_DEPTH]; /* whether the open container at each depth already holds a member */
} knd_jsonw;

/* Caller-allocated; the text is in w->buf (owned by w) until knd_jsonw_cleanup. cap bounds the body's size. */
void knd_jsonw_init(knd_jsonw *w, size_t cap);
void knd_jsonw_cleanup(knd_jsonw *w);
/* Like knd_jsonw_init, but w takes over storage's memory (storage is left empty), so that a large body's buffer can
 * serve the next body too without new pages; knd_jsonw_keep then gives the memory back to storage when it is at
 * most `keep` bytes (it is freed otherwise) and cleans w up. */
void knd_jsonw_init_reuse(knd_jsonw *w, kn_buf *storage, size_t cap);
void knd_jsonw_keep(knd_jsonw *w, kn_buf *storage, size_t keep);
/* Makes room for a body of about `bytes` at once (a hint: beyond the cap it does nothing). */
void knd_jsonw_reserve(knd_jsonw *w, size_t bytes);
/* KN_OK when every append succeeded and every container was closed; else the first failure. */
kn_status knd_jsonw_finish(const knd_jsonw *w);

/* In each call, key names the member inside an object and must be NULL inside an array (and for the top-level value).
 * Keys are trusted literals and are written unescaped. */
void knd_jsonw_object_begin(knd_jsonw *w, const char *key);
void knd_jsonw_object_end(knd_jsonw *w);
void knd_jsonw_array_begin(knd_jsonw *w, const char *key);
void knd_jsonw_array_end(knd_jsonw *w);
/* A string value of len bytes, escaped. Text that is not valid UTF-8 has its non-ASCII bytes written as U+FFFD, so
 * the body always parses. */
void knd_jsonw_string(knd_jsonw *w, const char *key, const char *s, size_t len);
void knd_jsonw_cstring(knd_jsonw *w, const char *key, const char *s);
void knd_jsonw_int(knd_jsonw *w, const char *key, int64_t v);
void knd_jsonw_bool(knd_jsonw *w, const char *key, bool v);
/* An epoch timestamp in seconds with the milliseconds as a fraction (1700000000.123), as AWS JSON sends them. */
void knd_jsonw_epoch_ms(knd_jsonw *w, const char *key, int64_t ms);
/* bytes as a base64 string. */
void knd_jsonw_base64(knd_jsonw *w, const char *key, const void *data, size_t len);

/* Appends s escaped as the inside of a JSON string (no quotes) to b: kn_json_escape (lib/json.h), under the server's
 * prefix for the server modules that write JSON by hand. */
kn_status knd_jsonw_escape(kn_buf *b, const char *s, size_t len);

#endif
