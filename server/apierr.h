/* knd_apierr: the AWS-side errors kinesisd answers with, as values: a type, an HTTP status and a message, with the
 * exact texts AWS uses (as recorded by kinesalite's tests against the real service and by AWS's documentation).
 * Messages may quote client input (a stream name, a rejected value), so they are built into an owned, capped buffer. */
#ifndef KND_APIERR_H
#define KND_APIERR_H

#include "../lib/buf.h"

#include <stdbool.h>

#define KND_APIERR_MESSAGE_CAP (16u * 1024u * 1024u) /* a message may quote a whole rejected value */

typedef struct knd_apierr {
    const char *type;   /* static: "ValidationException", ...; NULL while no error is set */
    int http_status;
    bool capital_key;   /* AWS spells the key "Message" in SerializationException bodies */
    kn_buf message;     /* empty when AWS sends no message (SerializationException for a malformed body, ...) */
} knd_apierr;

/* Caller-allocated; knd_apierr_cleanup releases the message. */
void knd_apierr_init(knd_apierr *e);
void knd_apierr_cleanup(knd_apierr *e);

/* Sets type, status and a printf-formatted message (fmt NULL: no message). Replaces any earlier error. */
void knd_apierr_set(knd_apierr *e, int http_status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Convenience forms for the errors every operation shares, taking (e, fmt, ...). Macros rather than functions so
 * that the one variadic path, knd_apierr_set, formats and format-checks every message. */
#define knd_apierr_invalid_argument(e, ...) knd_apierr_set((e), 400, "InvalidArgumentException", __VA_ARGS__)
#define knd_apierr_not_found(e, ...) knd_apierr_set((e), 400, "ResourceNotFoundException", __VA_ARGS__)
#define knd_apierr_in_use(e, ...) knd_apierr_set((e), 400, "ResourceInUseException", __VA_ARGS__)
void knd_apierr_internal(knd_apierr *e);

/* Appends the JSON body {"__type":"...","message":"..."} to out. */
kn_status knd_apierr_json(const knd_apierr *e, kn_buf *out);

/* AWS's InternalFailure (HTTP 500) and ServiceUnavailable (HTTP 503) texts. */
#define KND_MSG_INTERNAL "The request processing has failed because of an unknown error, exception or failure."
#define KND_MSG_UNAVAILABLE "The request has failed due to a temporary failure of the server."

#endif
