#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kn_buf_init(kn_buf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
}

void kn_buf_cleanup(kn_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void kn_buf_reset(kn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

uint8_t *kn_buf_reserve(kn_buf *b, size_t extra)
{
    if (extra > b->cap || b->len > b->cap - extra)
        return NULL;
    size_t need = b->len + extra + 1; /* +1 keeps room for the convenience NUL */
    if (need > b->alloc) {
        size_t alloc = b->alloc ? b->alloc : 64;
        while (alloc < need)
            alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
        uint8_t *p = realloc(b->data, alloc);
        if (!p)
            return NULL;
        b->data = p;
        b->alloc = alloc;
    }
    return b->data + b->len;
}

kn_status kn_buf_append(kn_buf *b, const void *data, size_t len)
{
    uint8_t *p = kn_buf_reserve(b, len);
    if (!p)
        return KN_ERR_NO_MEMORY;
    if (len)
        memcpy(p, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return KN_OK;
}

kn_status kn_buf_append_str(kn_buf *b, const char *s)
{
    return kn_buf_append(b, s, strlen(s));
}

kn_status kn_buf_printf(kn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return KN_ERR_INVALID_ARGUMENT;
    uint8_t *p = kn_buf_reserve(b, (size_t)n);
    if (!p)
        return KN_ERR_NO_MEMORY;
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return KN_OK;
}
