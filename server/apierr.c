#include "apierr.h"

#include "jsonw.h"

#include <stdarg.h>
#include <stdio.h>

void knd_apierr_init(knd_apierr *e)
{
    *e = (knd_apierr){0};
    kn_buf_init(&e->message, KND_APIERR_MESSAGE_CAP);
}

void knd_apierr_cleanup(knd_apierr *e)
{
    kn_buf_cleanup(&e->message);
    e->type = NULL;
}

static void vset(knd_apierr *e, int http_status, const char *type, const char *fmt, va_list ap)
{
    e->type = type;
    e->http_status = http_status;
    e->capital_key = false;
    kn_buf_reset(&e->message);
    if (!fmt)
        return;
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    uint8_t *p = n >= 0 ? kn_buf_reserve(&e->message, (size_t)n) : NULL;
    if (!p)
        return; /* a message too large for the cap is dropped; the type still tells the client what happened */
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    e->message.len += (size_t)n;
}

void knd_apierr_set(knd_apierr *e, int http_status, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, http_status, type, fmt, ap);
    va_end(ap);
}

void knd_apierr_internal(knd_apierr *e)
{
    knd_apierr_set(e, 500, "InternalFailure", "%s", KND_MSG_INTERNAL);
}

kn_status knd_apierr_json(const knd_apierr *e, kn_buf *out)
{
    kn_status st = kn_buf_append_str(out, "{\"__type\":\"");
    if (st == KN_OK)
        st = kn_buf_append_str(out, e->type ? e->type : "InternalFailure");
    if (st == KN_OK)
        st = kn_buf_append_str(out, "\"");
    if (st == KN_OK && e->message.len) {
        st = kn_buf_append_str(out, e->capital_key ? ",\"Message\":\"" : ",\"message\":\"");
        if (st == KN_OK)
            st = knd_jsonw_escape(out, (const char *)e->message.data, e->message.len);
        if (st == KN_OK)
            st = kn_buf_append_str(out, "\"");
    }
    if (st == KN_OK)
        st = kn_buf_append_str(out, "}");
    return st;
}
