/* knd_auth: who may call kinesisd. Verifies each request's SigV4 signature with the library's kn_sigv4 code against
 * a set of known keys (from --credentials FILE in AWS shared-credentials format, or the environment). With no keys
 * configured it is "anonymous": any well-formed signature passes. */
#ifndef KND_AUTH_H
#define KND_AUTH_H

#include "http.h"

typedef struct knd_auth knd_auth;

/* credentials_file may be NULL (then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, when set, are the one
 * known key; else anonymous). *out is released with knd_auth_destroy. */
kn_status knd_auth_new(const char *credentials_file, knd_auth **out, kn_error *err);
void knd_auth_destroy(knd_auth *auth);
bool knd_auth_anonymous(const knd_auth *auth);
size_t knd_auth_key_count(const knd_auth *auth);

/* Checks req. On failure returns KN_ERR_SERVICE with err holding AWS's type, message and HTTP status
 * (MissingAuthenticationTokenException, IncompleteSignatureException, InvalidSignatureException,
 * UnrecognizedClientException, ExpiredTokenException, ...). On success *access_key_id (may be NULL) points at the
 * caller's key inside req's headers. */
kn_status knd_auth_check(knd_auth *auth, const knd_request *req, int64_t now_ms, kn_error *err);

#endif
