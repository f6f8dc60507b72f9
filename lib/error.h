/* Internal helpers to fill the public kn_error (see include/kinesis/kinesis.h). */
#ifndef KN_ERROR_H
#define KN_ERROR_H

#include <kinesis/kinesis.h>

/* Sets status, retry class and a printf-formatted message; leaves the HTTP fields empty. err may be NULL.
 * Returns status so callers can write `return kn_error_set(err, KN_ERR_..., "...")`. */
kn_status kn_error_set(kn_error *err, kn_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets a service error: type (any "namespace#" prefix is stripped), message, HTTP status, request id, and the retry
 * class derived from them (kn_retry_classify). Any pointer may be NULL. Returns KN_ERR_SERVICE. */
kn_status kn_error_set_service(kn_error *err, int http_status, const char *type, const char *message,
                               const char *request_id);

/* Copies src into dst[cap] with truncation and a NUL; returns dst. */
char *kn_strlcpy(char *dst, const char *src, size_t cap);

#endif
