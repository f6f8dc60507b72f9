/* kn_buf: an owned, growable byte buffer with a hard cap fixed at creation (like curl's dynbuf). */
#ifndef KN_BUF_H
#define KN_BUF_H

#include <kinesis/kinesis.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_buf {
    uint8_t *data; /* always NUL-terminated past len when non-NULL, for convenience; data may contain NULs */
    size_t len;
    size_t alloc;
    size_t cap;    /* the buffer never grows past this many bytes */
} kn_buf;

/* Caller-allocated; kn_buf_cleanup releases the memory. */
void kn_buf_init(kn_buf *b, size_t cap);
void kn_buf_cleanup(kn_buf *b);
/* Empties the buffer, keeping its memory. */
void kn_buf_reset(kn_buf *b);
/* Appends; KN_ERR_NO_MEMORY on allocation failure or when the cap would be exceeded (the buffer is unchanged). */
kn_status kn_buf_append(kn_buf *b, const void *data, size_t len);
kn_status kn_buf_append_str(kn_buf *b, const char *s);
kn_status kn_buf_printf(kn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for `extra` more bytes; returns NULL at the cap or on allocation failure. */
uint8_t *kn_buf_reserve(kn_buf *b, size_t extra);

#endif
