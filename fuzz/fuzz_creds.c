/* Fuzz target: the shared credentials/config file parser (lib/ini.h) and the credential and region chain over it
 * (lib/creds.h), with the files held in memory (memfd, named by /proc/self/fd/N through an injected kn_env).
 *
 * Input: one flags byte, then the credentials file's text, then optionally CREDS_SEPARATOR and the config file's text.
 *   flags bits 0-1: the profile: default / explicit "dev" / AWS_PROFILE=dev / explicit "default"
 *   bit 2: no credentials file (the variable names a missing path); bit 3: no config file
 *   bit 4: AWS_REGION is set; bit 5: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set
 * Properties:
 *   - kn_ini_parse hands over views inside the text, trimmed, on one line, with non-empty section and key;
 *   - no error message of the parser or the chain contains any byte of a secret: every aws_secret_access_key,
 *     aws_session_token and aws_security_token value is overwritten with a canary holding DEL (0x7f) bytes, which
 *     appear nowhere else in the files, and no message may hold a DEL;
 *   - resolved credentials have both halves; a resolved region is well formed. */
#include "fuzz_util.h"

#include "creds.h"
#include "ini.h"

#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define CREDS_SEPARATOR "\n###CONFIG###\n"
#define CANARY_BYTE '\x7f'

static bool ini_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r';
}

typedef struct ini_check {
    char *text; /* mutable copy, so secret values can be overwritten in place */
    size_t len;
    size_t keys;
    size_t stop_after; /* return false from the callback after this many keys (0: never) */
} ini_check;

static bool is_secret_key(const char *k, size_t n)
{
    static const char *const names[] = {"aws_secret_access_key", "aws_session_token", "aws_security_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncasecmp(k, names[i], n) == 0)
            return true;
    return false;
}

static void check_view(const ini_check *c, const char *p, size_t n, bool may_be_empty)
{
    KN_FUZZ_CHECK(p >= c->text && p + n <= c->text + c->len);
    KN_FUZZ_CHECK(may_be_empty || n > 0);
    KN_FUZZ_CHECK(memchr(p, '\n', n) == NULL);
    if (n > 0)
        KN_FUZZ_CHECK(!ini_is_blank(p[0]) && !ini_is_blank(p[n - 1]));
}

static bool on_key(void *ctx, const char *section, size_t section_len, const char *key, size_t key_len,
                   const char *value, size_t value_len)
{
    ini_check *c = ctx;
    check_view(c, section, section_len, false);
    check_view(c, key, key_len, false);
    check_view(c, value, value_len, true);
    /* The canary keeps the value's length and stays inside its line: DEL is neither blank nor syntax. */
    if (is_secret_key(key, key_len))
        for (size_t i = 0; i < value_len; i++)
            c->text[value - c->text + (ptrdiff_t)i] = i % 2 ? 'S' : CANARY_BYTE;
    c->keys++;
    return c->stop_after == 0 || c->keys < c->stop_after;
}

static bool has_canary(const char *s)
{
    return strchr(s, CANARY_BYTE) != NULL;
}

/* Parses a file's text (copied into *c, DEL bytes replaced, secrets then overwritten with the canary), then again
 * with the canaries in place and with the callback stopping the parse after stop_after keys. */
static void parse_file(kn_fuzz_span text, size_t stop_after, ini_check *c)
{
    memset(c, 0, sizeof *c);
    c->text = kn_fuzz_strndup(text.p, text.n);
    c->len = text.n;
    for (size_t i = 0; i < c->len; i++)
        if (c->text[i] == CANARY_BYTE)
            c->text[i] = '~';
    kn_error err = {0};
    kn_status st = kn_ini_parse(c->text, c->len, on_key, c, &err);
    KN_FUZZ_CHECK(st == KN_OK || st == KN_ERR_CONFIG);
    if (st != KN_OK)
        KN_FUZZ_CHECK(err.message[0] != '\0');
    size_t keys = c->keys;
    c->keys = 0;
    c->stop_after = stop_after;
    kn_error err2 = {0};
    kn_status st2 = kn_ini_parse(c->text, c->len, on_key, c, &err2);
    KN_FUZZ_CHECK(!has_canary(err2.message));
    if (stop_after == 0 || keys < stop_after)
        KN_FUZZ_CHECK(st2 == st && c->keys == keys);
    else
        KN_FUZZ_CHECK(st2 == KN_OK && c->keys == stop_after);
}

/* ---- the files in memory and an injected environment ---- */

typedef struct fuzz_env {
    char cred_path[64], conf_path[64];
    bool region, env_keys;
    const char *aws_profile;
} fuzz_env;

static const char *env_get(void *ctx, const char *name)
{
    const fuzz_env *e = ctx;
    if (strcmp(name, "AWS_SHARED_CREDENTIALS_FILE") == 0)
        return e->cred_path;
    if (strcmp(name, "AWS_CONFIG_FILE") == 0)
        return e->conf_path;
    if (strcmp(name, "AWS_PROFILE") == 0)
        return e->aws_profile;
    if (strcmp(name, "AWS_REGION") == 0)
        return e->region ? "eu-west-1" : NULL;
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return e->env_keys ? "AKIDENV" : NULL;
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return e->env_keys ? "secretenv" : NULL;
    if (strcmp(name, "HOME") == 0)
        return "/nonexistent-kn-fuzz-home";
    return NULL;
}

/* Replaces the content of an in-memory file; returns its path through /proc. */
static void memfile_set(int *fd, const char *name, const char *text, size_t len, char *path, size_t cap)
{
    if (*fd < 0 && (*fd = memfd_create(name, MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(*fd, 0) != 0 || (len > 0 && pwrite(*fd, text, len, 0) != (ssize_t)len))
        abort();
    snprintf(path, cap, "/proc/self/fd/%d", *fd);
}

static void check_chain(const fuzz_env *fe, const char *profile)
{
    const kn_env env = {.get = env_get, .ctx = (void *)fe};
    kn_creds creds;
    kn_error err = {0};
    kn_status st = kn_creds_resolve(&env, profile, NULL, NULL, NULL, &creds, &err);
    KN_FUZZ_CHECK(!has_canary(err.message));
    if (st == KN_OK) {
        KN_FUZZ_CHECK(creds.access_key_id && *creds.access_key_id);
        KN_FUZZ_CHECK(creds.secret_access_key && *creds.secret_access_key);
    } else {
        KN_FUZZ_CHECK(st == KN_ERR_NO_CREDENTIALS || st == KN_ERR_CONFIG || st == KN_ERR_IO);
        KN_FUZZ_CHECK(err.message[0] != '\0');
        KN_FUZZ_CHECK(!creds.access_key_id && !creds.secret_access_key && !creds.session_token);
    }
    kn_creds_cleanup(&creds);

    char region[64];
    kn_error rerr = {0};
    st = kn_creds_resolve_region(&env, profile, NULL, region, sizeof region, &rerr);
    KN_FUZZ_CHECK(!has_canary(rerr.message));
    if (st == KN_OK)
        KN_FUZZ_CHECK(kn_creds_region_valid(region));
    else
        KN_FUZZ_CHECK(rerr.message[0] != '\0');
}

static void fuzz_creds(const uint8_t *data, size_t size)
{
    static int cred_fd = -1, conf_fd = -1;
    if (size == 0)
        return;
    uint8_t flags = data[0];
    kn_fuzz_span rest = {(const char *)data + 1, size - 1};
    kn_fuzz_span cred_text = kn_fuzz_split(&rest, CREDS_SEPARATOR);
    kn_fuzz_span conf_text = rest;

    ini_check cred, conf;
    parse_file(cred_text, flags >> 6, &cred);
    parse_file(conf_text, 0, &conf);

    fuzz_env fe = {.region = flags & 16, .env_keys = flags & 32};
    memfile_set(&cred_fd, "credentials", cred.text, cred.len, fe.cred_path, sizeof fe.cred_path);
    memfile_set(&conf_fd, "config", conf.text, conf.len, fe.conf_path, sizeof fe.conf_path);
    if (flags & 4)
        strcpy(fe.cred_path, "/nonexistent-kn-fuzz/credentials");
    if (flags & 8)
        strcpy(fe.conf_path, "/nonexistent-kn-fuzz/config");
    static const char *const profiles[] = {NULL, "dev", NULL, "default"};
    if ((flags & 3) == 2)
        fe.aws_profile = "dev";
    check_chain(&fe, profiles[flags & 3]);

    free(cred.text);
    free(conf.text);
}

KN_FUZZ_ENTRY(fuzz_creds)
