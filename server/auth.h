/* knd_auth: who may call kinesisd. Verifies each request's SigV4 signature with the library's kn_sigv4 code against
 * a set of known keys (from --credentials FILE in AWS shared-credentials format, or the environment). With no keys
 * configured it is "anonymous": any well-formed signature passes. */
#ifndef KND_AUTH_H
#define KND_AUTH_H

#include "http.h"

typedef struct knd_auth knd_auth;

/* credentials_file may be NULL (then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, when set, are the one
 * known key; else anonymous). The file is in AWS shared-credentials format, one key per section:
 * aws_access_key_id, aws_secret_access_key, optional aws_session_token and optional `expiration` (ISO 8601, e.g.
 * 2026-11-25T20:00:00Z; the key is refused with ExpiredTokenException from then on). See docs/server-http.md.
 * *out is released with knd_auth_destroy, which wipes the secrets. */
kn_status knd_auth_new(const char *credentials_file, knd_auth **out, kn_error *err);
void knd_auth_destroy(knd_auth *auth);
bool knd_auth_anonymous(const knd_auth *auth);
size_t knd_auth_key_count(const knd_auth *auth);

/* The region requests must be signed for (copied). NULL (the default) accepts any well-formed region, since local
 * clients are configured with whatever region their user has. */
kn_status knd_auth_set_region(knd_auth *auth, const char *region, kn_error *err);

/* Checks req at time now_ms (Unix ms). On failure returns KN_ERR_SERVICE with err holding AWS's type, message and
 * HTTP status 400 (MissingAuthenticationTokenException, IncompleteSignatureException, InvalidSignatureException,
 * UnrecognizedClientException, ExpiredTokenException). The message never holds a secret. One thread at a time per
 * auth (kinesisd's loop thread): each key keeps the signing key it derived last. */
kn_status knd_auth_check(knd_auth *auth, const knd_request *req, int64_t now_ms, kn_error *err);

#endif
