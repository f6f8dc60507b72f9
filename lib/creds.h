/* kn_creds: the standard AWS credential and region chain.
 * Credentials: explicit → AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN → shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, [NAME]) → config file (AWS_CONFIG_FILE or ~/.aws/config,
 * [profile NAME] / [default]). Profile: explicit → AWS_PROFILE → "default".
 * Region: explicit → AWS_REGION → AWS_DEFAULT_REGION → the profile's `region` (credentials file, then config file, as
 * botocore merges them). */
#ifndef KN_CREDS_H
#define KN_CREDS_H

#include <kinesis/kinesis.h>

/* Owned copies; kn_creds_cleanup wipes the secrets before freeing them. */
typedef struct kn_creds {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL when not temporary */
} kn_creds;

/* Lookups of the process environment and home directory, injected so tests need not touch the real ones. */
typedef struct kn_env {
    const char *(*get)(void *ctx, const char *name); /* like getenv */
    void *ctx;
} kn_env;

/* The real environment (getenv). */
const kn_env *kn_env_process(void);

/* Resolves credentials into *out (owned by the caller, released with kn_creds_cleanup; zeroed on failure). explicit_*
 * and profile may be NULL; env NULL means kn_env_process(). KN_ERR_NO_CREDENTIALS when the chain finds none, naming
 * the places looked at, or when only half a key pair is found; KN_ERR_CONFIG for a malformed file; KN_ERR_IO for an
 * unreadable one (a missing file is just empty). The profile named explicitly or by AWS_PROFILE must exist, else
 * KN_ERR_CONFIG "The config profile (NAME) could not be found". Messages never contain a secret. */
kn_status kn_creds_resolve(const kn_env *env, const char *profile, const char *explicit_akid,
                           const char *explicit_secret, const char *explicit_token, kn_creds *out, kn_error *err);
void kn_creds_cleanup(kn_creds *c);

/* Resolves the region into out[cap]. KN_ERR_NO_REGION when none is found; KN_ERR_CONFIG when it is not a valid region
 * name or the named profile does not exist. */
kn_status kn_creds_resolve_region(const kn_env *env, const char *profile, const char *explicit_region, char *out,
                                  size_t cap, kn_error *err);

/* Whether r is a well-formed region name (botocore's validate_region_name: 1-63 letters, digits and inner hyphens).
 * The region becomes part of a host name and of the signing scope, so nothing else may pass. */
bool kn_creds_region_valid(const char *r);

#endif
