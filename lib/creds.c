/* The chain follows botocore (credentials.py, session.py, configloader.py):
 *  - An empty environment variable counts as unset; an access key without its secret (or the reverse) is an error
 *    ("Partial credentials found in ..."), not a reason to look further.
 *  - A profile named explicitly or by AWS_PROFILE must exist in one of the two files, even "default"
 *    ("The config profile (NAME) could not be found"), whatever the other links of the chain hold.
 *  - Credentials file sections are profile names as written; config file sections are "[profile NAME]", plus
 *    "[default]". Keys match case-insensitively; the last occurrence of a key wins.
 *  - For settings such as region, botocore lays the credentials file's profile over the config file's, so a region in
 *    the credentials file wins.
 * Files are read only when the chain gets to them, so a broken ~/.aws does not stop explicit or env credentials. */
#include "creds.h"

#include "error.h"
#include "ini.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_FILE_MAX (1024u * 1024u)

static const char *process_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

const kn_env *kn_env_process(void)
{
    static const kn_env env = {.get = process_get, .ctx = NULL};
    return &env;
}

/* An environment value, or NULL when unset or empty. */
static const char *env_get(const kn_env *env, const char *name)
{
    const char *v = env->get(env->ctx, name);
    return v && *v ? v : NULL;
}

static void wipe_free(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

void kn_creds_cleanup(kn_creds *c)
{
    if (!c)
        return;
    wipe_free(&c->access_key_id);
    wipe_free(&c->secret_access_key);
    wipe_free(&c->session_token);
}

/* ---- one profile as one file holds it ---- */

typedef struct profile_vals {
    bool found; /* the section exists, even if empty */
    char *akid, *secret, *token, *region;
    const char *unsupported; /* a credential source key we do not implement, for the error message */
} profile_vals;

static void profile_vals_cleanup(profile_vals *v)
{
    wipe_free(&v->akid);
    wipe_free(&v->secret);
    wipe_free(&v->token);
    wipe_free(&v->region);
}

typedef struct file_scan {
    const char *profile;
    bool config_file; /* sections are "profile NAME" / "default" rather than NAME */
    profile_vals *vals;
    bool no_memory;
} file_scan;

static bool span_eq(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

static bool key_eq(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp(p, s, n) == 0;
}

/* Whether a section names the profile: the credentials file names profiles directly; the config file says
 * "profile NAME" (any blanks after the word) or "default". */
static bool section_is_profile(const file_scan *fs, const char *sec, size_t n)
{
    if (!fs->config_file)
        return span_eq(sec, n, fs->profile);
    if (span_eq(sec, n, "default") && strcmp(fs->profile, "default") == 0)
        return true;
    if (n <= 7 || memcmp(sec, "profile", 7) != 0 || (sec[7] != ' ' && sec[7] != '\t'))
        return false;
    size_t i = 7;
    while (i < n && (sec[i] == ' ' || sec[i] == '\t'))
        i++;
    return span_eq(sec + i, n - i, fs->profile);
}

static bool set_value(file_scan *fs, char **slot, const char *value, size_t len)
{
    char *copy = strndup(value, len);
    if (!copy) {
        fs->no_memory = true;
        return false;
    }
    wipe_free(slot);
    *slot = copy;
    return true;
}

static bool scan_key(void *ctx, const char *sec, size_t sec_len, const char *key, size_t key_len, const char *value,
                     size_t value_len)
{
    static const char *const unsupported[] = {"role_arn", "credential_process", "sso_session", "sso_start_url",
                                              "web_identity_token_file", "credential_source"};
    file_scan *fs = ctx;
    if (!section_is_profile(fs, sec, sec_len))
        return true;
    profile_vals *v = fs->vals;
    v->found = true;
    if (key_eq(key, key_len, "aws_access_key_id"))
        return set_value(fs, &v->akid, value, value_len);
    if (key_eq(key, key_len, "aws_secret_access_key"))
        return set_value(fs, &v->secret, value, value_len);
    /* aws_security_token is the older name botocore still reads. */
    if (key_eq(key, key_len, "aws_session_token") || key_eq(key, key_len, "aws_security_token"))
        return set_value(fs, &v->token, value, value_len);
    if (key_eq(key, key_len, "region"))
        return set_value(fs, &v->region, value, value_len);
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (key_eq(key, key_len, unsupported[i]) && !v->unsupported)
            v->unsupported = unsupported[i];
    return true;
}

/* Where a file is: the variable's value or the default under ~/.aws, with a leading "~/" taken from HOME.
 * False when it cannot be named (no HOME) or does not fit. */
static bool file_path(const kn_env *env, const char *var, const char *dflt, char *out, size_t cap)
{
    const char *p = env_get(env, var);
    if (!p)
        p = dflt;
    if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        const char *home = env_get(env, "HOME");
        if (!home)
            return false;
        int n = snprintf(out, cap, "%s%s", home, p + 1);
        return n >= 0 && (size_t)n < cap;
    }
    int n = snprintf(out, cap, "%s", p);
    return n >= 0 && (size_t)n < cap;
}

/* Fills vals from one file. A missing file is simply empty; an unreadable or malformed one is an error naming it. */
static kn_status scan_file(const char *path, const char *profile, bool config_file, profile_vals *vals,
                           kn_error *err)
{
    kn_status st = KN_OK;
    char *text = NULL;
    size_t len = 0;
    kn_error local = {0};
    st = kn_ini_read_file(path, CONFIG_FILE_MAX, &text, &len, &local);
    if (st == KN_ERR_IO && (errno == ENOENT || errno == ENOTDIR)) {
        st = KN_OK;
        goto cleanup;
    }
    if (st != KN_OK) {
        /* read_file's message already names the path. */
        st = kn_error_set(err, st, "%s", local.message);
        goto cleanup;
    }
    file_scan fs = {.profile = profile, .config_file = config_file, .vals = vals};
    st = kn_ini_parse(text, len, scan_key, &fs, &local);
    if (fs.no_memory)
        st = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory reading %s", path);
    else if (st != KN_OK)
        st = kn_error_set(err, st, "%s %s", path, local.message);
cleanup:
    if (text) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    return st;
}

/* ---- the profile across both files ---- */

typedef struct profile {
    const char *name;
    bool named; /* given explicitly or by AWS_PROFILE, so it must exist */
    bool loaded;
    char cred_path[PATH_MAX];
    char conf_path[PATH_MAX];
    bool have_cred_path, have_conf_path;
    profile_vals cred, conf;
} profile;

static void profile_init(profile *p, const kn_env *env, const char *explicit_profile)
{
    memset(p, 0, sizeof *p);
    p->name = explicit_profile && *explicit_profile ? explicit_profile : env_get(env, "AWS_PROFILE");
    p->named = p->name != NULL;
    if (!p->name)
        p->name = "default";
}

static void profile_cleanup(profile *p)
{
    profile_vals_cleanup(&p->cred);
    profile_vals_cleanup(&p->conf);
}

static kn_status profile_load(profile *p, const kn_env *env, kn_error *err)
{
    if (p->loaded)
        return KN_OK;
    p->loaded = true;
    p->have_cred_path = file_path(env, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", p->cred_path,
                                  sizeof p->cred_path);
    p->have_conf_path = file_path(env, "AWS_CONFIG_FILE", "~/.aws/config", p->conf_path, sizeof p->conf_path);
    kn_status st = KN_OK;
    if (p->have_cred_path)
        st = scan_file(p->cred_path, p->name, false, &p->cred, err);
    if (st == KN_OK && p->have_conf_path)
        st = scan_file(p->conf_path, p->name, true, &p->conf, err);
    if (st == KN_OK && p->named && !p->cred.found && !p->conf.found)
        st = kn_error_set(err, KN_ERR_CONFIG, "The config profile (%s) could not be found (looked in %s and %s)",
                          p->name, p->have_cred_path ? p->cred_path : "~/.aws/credentials (no HOME)",
                          p->have_conf_path ? p->conf_path : "~/.aws/config (no HOME)");
    return st;
}

/* ---- credentials ---- */

static kn_status creds_set(kn_creds *out, const char *akid, const char *secret, const char *token, kn_error *err)
{
    out->access_key_id = strdup(akid);
    out->secret_access_key = strdup(secret);
    out->session_token = token && *token ? strdup(token) : NULL;
    if (!out->access_key_id || !out->secret_access_key || (token && *token && !out->session_token)) {
        kn_creds_cleanup(out);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory copying credentials");
    }
    return KN_OK;
}

/* Both halves, or neither: one alone is a mistake worth reporting rather than skipping. Names only, never values. */
static kn_status check_pair(const char *akid, const char *secret, const char *where, const char *akid_name,
                            const char *secret_name, kn_error *err)
{
    if ((akid && *akid) == (secret && *secret))
        return KN_OK;
    return kn_error_set(err, KN_ERR_NO_CREDENTIALS, "Partial credentials found in %s, missing: %s", where,
                        akid && *akid ? secret_name : akid_name);
}

static kn_status from_profile_file(const profile_vals *v, const char *where, kn_creds *out, bool *done,
                                   kn_error *err)
{
    kn_status st = check_pair(v->akid, v->secret, where, "aws_access_key_id", "aws_secret_access_key", err);
    if (st != KN_OK || !(v->akid && *v->akid))
        return st;
    *done = true;
    return creds_set(out, v->akid, v->secret, v->token, err);
}

static kn_status not_found(const profile *p, kn_error *err)
{
    const profile_vals *v = p->conf.unsupported ? &p->conf : &p->cred;
    char extra[160] = "";
    if (v->unsupported)
        snprintf(extra, sizeof extra, "; profile (%s) uses %s, which libkinesis does not support", p->name,
                 v->unsupported);
    return kn_error_set(err, KN_ERR_NO_CREDENTIALS,
                        "Unable to locate credentials: looked in the explicit options, AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, [%s] in %s, and [%s%s] in %s%s",
                        p->name, p->have_cred_path ? p->cred_path : "~/.aws/credentials (no HOME)",
                        strcmp(p->name, "default") == 0 ? "" : "profile ", p->name,
                        p->have_conf_path ? p->conf_path : "~/.aws/config (no HOME)", extra);
}

kn_status kn_creds_resolve(const kn_env *env, const char *profile_name, const char *explicit_akid,
                           const char *explicit_secret, const char *explicit_token, kn_creds *out, kn_error *err)
{
    kn_status st = KN_OK;
    bool done = false;
    profile p;
    memset(out, 0, sizeof *out);
    if (!env)
        env = kn_env_process();
    profile_init(&p, env, profile_name);
    if (p.named && (st = profile_load(&p, env, err)) != KN_OK)
        goto cleanup;

    st = check_pair(explicit_akid, explicit_secret, "the explicit options", "access_key_id", "secret_access_key",
                    err);
    if (st != KN_OK)
        goto cleanup;
    if (explicit_akid && *explicit_akid) {
        st = creds_set(out, explicit_akid, explicit_secret, explicit_token, err);
        goto cleanup;
    }

    const char *akid = env_get(env, "AWS_ACCESS_KEY_ID"), *secret = env_get(env, "AWS_SECRET_ACCESS_KEY");
    st = check_pair(akid, secret, "env", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", err);
    if (st != KN_OK)
        goto cleanup;
    if (akid) {
        st = creds_set(out, akid, secret, env_get(env, "AWS_SESSION_TOKEN"), err);
        goto cleanup;
    }

    if ((st = profile_load(&p, env, err)) != KN_OK)
        goto cleanup;
    if ((st = from_profile_file(&p.cred, "shared-credentials-file", out, &done, err)) != KN_OK || done)
        goto cleanup;
    if ((st = from_profile_file(&p.conf, "config-file", out, &done, err)) != KN_OK || done)
        goto cleanup;
    st = not_found(&p, err);
cleanup:
    profile_cleanup(&p);
    return st;
}

/* ---- region ---- */

bool kn_creds_region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = r[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i + 1 < n))
            return false;
    }
    return true;
}

static kn_status region_set(const char *region, char *out, size_t cap, kn_error *err)
{
    if (!kn_creds_region_valid(region))
        return kn_error_set(err, KN_ERR_CONFIG, "Provided region_name '%.64s' doesn't match a supported format.",
                            region);
    if (strlen(region) >= cap)
        return kn_error_set(err, KN_ERR_CONFIG, "region name longer than %zu characters", cap ? cap - 1 : 0);
    kn_strlcpy(out, region, cap);
    return KN_OK;
}

kn_status kn_creds_resolve_region(const kn_env *env, const char *profile_name, const char *explicit_region,
                                  char *out, size_t cap, kn_error *err)
{
    kn_status st = KN_OK;
    profile p;
    if (!env)
        env = kn_env_process();
    if (cap)
        out[0] = '\0';
    profile_init(&p, env, profile_name);
    if (p.named && (st = profile_load(&p, env, err)) != KN_OK)
        goto cleanup;
    const char *r = explicit_region && *explicit_region ? explicit_region : env_get(env, "AWS_REGION");
    if (!r)
        r = env_get(env, "AWS_DEFAULT_REGION");
    if (!r) {
        if ((st = profile_load(&p, env, err)) != KN_OK)
            goto cleanup;
        r = p.cred.region && *p.cred.region ? p.cred.region : p.conf.region;
    }
    if (r && *r)
        st = region_set(r, out, cap, err);
    else
        st = kn_error_set(err, KN_ERR_NO_REGION,
                          "You must specify a region: none given explicitly, in AWS_REGION or AWS_DEFAULT_REGION, "
                          "or as the region of profile (%s) in %s",
                          p.name, p.have_conf_path ? p.conf_path : "~/.aws/config (no HOME)");
cleanup:
    profile_cleanup(&p);
    return st;
}
