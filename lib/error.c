#include "error.h"
#include "retry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
    [KN_OK] = "ok",
    [KN_ERR_INVALID_ARGUMENT] = "invalid argument",
    [KN_ERR_NO_MEMORY] = "out of memory",
    [KN_ERR_NO_CREDENTIALS] = "no credentials",
    [KN_ERR_NO_REGION] = "no region",
    [KN_ERR_CONFIG] = "bad configuration",
    [KN_ERR_NETWORK] = "network error",
    [KN_ERR_TIMEOUT] = "timeout",
    [KN_ERR_TLS] = "TLS error",
    [KN_ERR_SERVICE] = "service error",
    [KN_ERR_PROTOCOL] = "unexpected response",
    [KN_ERR_IO] = "I/O error",
};

const char *kn_status_str(kn_status status)
{
    if ((size_t)status < sizeof status_names / sizeof status_names[0] && status_names[status])
        return status_names[status];
    return "unknown status";
}

void kn_error_clear(kn_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

char *kn_strlcpy(char *dst, const char *src, size_t cap)
{
    if (cap == 0)
        return dst;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

kn_status kn_error_set(kn_error *err, kn_status status, const char *fmt, ...)
{
    if (!err)
        return status;
    int attempts = err->attempts;
    kn_error_clear(err);
    err->status = status;
    err->attempts = attempts;
    err->retry_class = kn_retry_classify(status, 0, NULL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

kn_status kn_error_set_service(kn_error *err, int http_status, const char *type, const char *message,
                               const char *request_id)
{
    if (!err)
        return KN_ERR_SERVICE;
    int attempts = err->attempts;
    kn_error_clear(err);
    err->status = KN_ERR_SERVICE;
    err->attempts = attempts;
    err->http_status = http_status;
    /* Some protocols send "aws.protocoltests#Type" or "Type:http://..."; keep only the type name. */
    const char *hash = type ? strrchr(type, '#') : NULL;
    const char *t = hash ? hash + 1 : type;
    kn_strlcpy(err->type, t, sizeof err->type);
    char *colon = strchr(err->type, ':');
    if (colon)
        *colon = '\0';
    kn_strlcpy(err->message, message, sizeof err->message);
    kn_strlcpy(err->request_id, request_id, sizeof err->request_id);
    err->retry_class = kn_retry_classify(KN_ERR_SERVICE, http_status, err->type);
    return KN_ERR_SERVICE;
}
