#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* A fake environment: a temp HOME with .aws/ inside, and a small table of variables. */
typedef struct fixture {
    char home[64];
    char aws_dir[96];
    char cred_path[128];
    char conf_path[128];
    const char *names[16];
    const char *values[16];
    int n;
    kn_env env;
} fixture;

static const char *fake_get(void *ctx, const char *name)
{
    fixture *f = ctx;
    for (int i = f->n - 1; i >= 0; i--)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

static void set_env(fixture *f, const char *name, const char *value)
{
    assert_true(f->n < 16);
    f->names[f->n] = name;
    f->values[f->n] = value;
    f->n++;
}

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->home, "/tmp/kn-test-creds-XXXXXX");
    assert_non_null(mkdtemp(f->home));
    snprintf(f->aws_dir, sizeof f->aws_dir, "%s/.aws", f->home);
    assert_int_equal(mkdir(f->aws_dir, 0700), 0);
    snprintf(f->cred_path, sizeof f->cred_path, "%s/credentials", f->aws_dir);
    snprintf(f->conf_path, sizeof f->conf_path, "%s/config", f->aws_dir);
    f->env = (kn_env){.get = fake_get, .ctx = f};
    set_env(f, "HOME", f->home);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->cred_path);
    unlink(f->conf_path);
    rmdir(f->aws_dir);
    rmdir(f->home);
    free(f);
    return 0;
}

static kn_status resolve(fixture *f, const char *profile, kn_creds *c, kn_error *err)
{
    return kn_creds_resolve(&f->env, profile, NULL, NULL, NULL, c, err);
}

static void explicit_credentials_win(void **state)
{
    fixture *f = *state;
    set_env(f, "AWS_ACCESS_KEY_ID", "ENVKEY");
    set_env(f, "AWS_SECRET_ACCESS_KEY", "envsecret");
    kn_creds c = {0};
    assert_int_equal(kn_creds_resolve(&f->env, NULL, "EXPLICIT", SECRET, "TOKEN", &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "EXPLICIT");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, "TOKEN");
    kn_creds_cleanup(&c);
    assert_null(c.access_key_id);
    assert_null(c.secret_access_key);
    assert_null(c.session_token);
}

static void environment_comes_next(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n");
    set_env(f, "AWS_ACCESS_KEY_ID", "ENVKEY");
    set_env(f, "AWS_SECRET_ACCESS_KEY", SECRET);
    set_env(f, "AWS_SESSION_TOKEN", "ENVTOKEN");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "ENVKEY");
    assert_string_equal(c.session_token, "ENVTOKEN");
    kn_creds_cleanup(&c);
}

static void empty_environment_values_count_as_unset(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n");
    set_env(f, "AWS_ACCESS_KEY_ID", "");
    set_env(f, "AWS_SECRET_ACCESS_KEY", "");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "FILEKEY");
    assert_null(c.session_token);
    kn_creds_cleanup(&c);
}

static void partial_environment_is_an_error(void **state)
{
    fixture *f = *state;
    set_env(f, "AWS_ACCESS_KEY_ID", "ENVKEY");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, NULL, &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_string_equal(err.message, "Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY");
    assert_null(c.access_key_id);
}

static void credentials_file_default_profile(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "# mine\n[default]\r\naws_access_key_id = FILEKEY\r\n"
                             "aws_secret_access_key = " SECRET "\r\naws_session_token = FILETOKEN\r\n");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "FILEKEY");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, "FILETOKEN");
    kn_creds_cleanup(&c);
}

static void aws_profile_selects_section(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_access_key_id = D\naws_secret_access_key = d\n"
                             "[dev]\nAWS_ACCESS_KEY_ID = DEVKEY\naws_secret_access_key = devsecret\n");
    set_env(f, "AWS_PROFILE", "dev");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "DEVKEY"); /* keys match in any case, as configparser lowercases them */
    kn_creds_cleanup(&c);
}

static void explicit_profile_beats_aws_profile(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[dev]\naws_access_key_id = DEVKEY\naws_secret_access_key = x\n"
                             "[ops]\naws_access_key_id = OPSKEY\naws_secret_access_key = y\n");
    set_env(f, "AWS_PROFILE", "dev");
    kn_creds c = {0};
    assert_int_equal(resolve(f, "ops", &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "OPSKEY");
    kn_creds_cleanup(&c);
}

static void config_file_profile_section(void **state)
{
    fixture *f = *state;
    write_file(f->conf_path, "[dev]\naws_access_key_id = NOTAPROFILE\naws_secret_access_key = x\n"
                             "[profile  dev]\naws_access_key_id = CONFKEY\naws_secret_access_key = y\n");
    kn_creds c = {0};
    assert_int_equal(resolve(f, "dev", &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "CONFKEY");
    kn_creds_cleanup(&c);
}

static void config_file_default_section(void **state)
{
    fixture *f = *state;
    write_file(f->conf_path, "[default]\naws_access_key_id = CONFDEFAULT\naws_secret_access_key = y\n");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "CONFDEFAULT");
    kn_creds_cleanup(&c);
}

static void credentials_file_beats_config_file(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_access_key_id = CREDKEY\naws_secret_access_key = x\n");
    write_file(f->conf_path, "[default]\naws_access_key_id = CONFKEY\naws_secret_access_key = y\n");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "CREDKEY");
    kn_creds_cleanup(&c);
}

static void file_variables_override_home(void **state)
{
    fixture *f = *state;
    char other[160];
    snprintf(other, sizeof other, "%s/elsewhere", f->home);
    write_file(other, "[default]\naws_access_key_id = OTHERKEY\naws_secret_access_key = x\n");
    write_file(f->cred_path, "[default]\naws_access_key_id = HOMEKEY\naws_secret_access_key = x\n");
    set_env(f, "AWS_SHARED_CREDENTIALS_FILE", other);
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "OTHERKEY");
    kn_creds_cleanup(&c);
    unlink(other);
}

static void tilde_in_variable_uses_home(void **state)
{
    fixture *f = *state;
    write_file(f->conf_path, "[profile t]\naws_access_key_id = TILDEKEY\naws_secret_access_key = x\n");
    set_env(f, "AWS_CONFIG_FILE", "~/.aws/config");
    set_env(f, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/none");
    kn_creds c = {0};
    assert_int_equal(resolve(f, "t", &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "TILDEKEY");
    kn_creds_cleanup(&c);
}

static void unknown_named_profile_is_an_error(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_access_key_id = D\naws_secret_access_key = d\n");
    set_env(f, "AWS_ACCESS_KEY_ID", "ENVKEY");
    set_env(f, "AWS_SECRET_ACCESS_KEY", "envsecret");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, "nope", &c, &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "The config profile (nope) could not be found"));
    assert_non_null(strstr(err.message, f->cred_path));
}

static void explicitly_named_default_must_exist(void **state)
{
    fixture *f = *state;
    set_env(f, "AWS_PROFILE", "default");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, NULL, &c, &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "The config profile (default) could not be found"));
}

static void nothing_found_names_where_it_looked(void **state)
{
    fixture *f = *state;
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, NULL, &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_int_equal(err.status, KN_ERR_NO_CREDENTIALS);
    assert_non_null(strstr(err.message, "Unable to locate credentials"));
    assert_non_null(strstr(err.message, "AWS_ACCESS_KEY_ID"));
    assert_non_null(strstr(err.message, f->cred_path));
    assert_non_null(strstr(err.message, f->conf_path));
}

static void unsupported_source_is_named(void **state)
{
    fixture *f = *state;
    write_file(f->conf_path, "[profile sso]\nsso_session = corp\nregion = us-east-1\n");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, "sso", &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_non_null(strstr(err.message, "sso_session"));
}

static void partial_profile_is_an_error(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_secret_access_key = " SECRET "\n");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, NULL, &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_non_null(strstr(err.message, "missing: aws_access_key_id"));
    assert_null(strstr(err.message, SECRET));
}

static void malformed_file_names_file_and_line(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "[default]\naws_access_key_id = K\n" SECRET "\n");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, NULL, &c, &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, f->cred_path));
    assert_non_null(strstr(err.message, "line 3"));
    assert_null(strstr(err.message, SECRET));
}

static void broken_files_do_not_matter_when_env_has_keys(void **state)
{
    fixture *f = *state;
    write_file(f->cred_path, "this is not an ini file\n");
    set_env(f, "AWS_ACCESS_KEY_ID", "ENVKEY");
    set_env(f, "AWS_SECRET_ACCESS_KEY", "envsecret");
    kn_creds c = {0};
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    assert_string_equal(c.access_key_id, "ENVKEY");
    kn_creds_cleanup(&c);
}

static void no_home_still_uses_environment(void **state)
{
    fixture *f = *state;
    set_env(f, "HOME", "");
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(resolve(f, NULL, &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_non_null(strstr(err.message, "no HOME"));
    set_env(f, "AWS_ACCESS_KEY_ID", "ENVKEY");
    set_env(f, "AWS_SECRET_ACCESS_KEY", "envsecret");
    assert_int_equal(resolve(f, NULL, &c, NULL), KN_OK);
    kn_creds_cleanup(&c);
}

static void partial_explicit_is_an_error(void **state)
{
    fixture *f = *state;
    kn_creds c = {0};
    kn_error err = {0};
    assert_int_equal(kn_creds_resolve(&f->env, NULL, "AKID", NULL, NULL, &c, &err), KN_ERR_NO_CREDENTIALS);
    assert_non_null(strstr(err.message, "missing: secret_access_key"));
}

static kn_status region(fixture *f, const char *profile, const char *explicit_region, char *out, kn_error *err)
{
    return kn_creds_resolve_region(&f->env, profile, explicit_region, out, 64, err);
}

static void region_chain_order(void **state)
{
    fixture *f = *state;
    char r[64];
    write_file(f->conf_path, "[default]\nregion = eu-central-1\n");
    assert_int_equal(region(f, NULL, NULL, r, NULL), KN_OK);
    assert_string_equal(r, "eu-central-1");
    set_env(f, "AWS_DEFAULT_REGION", "us-west-1");
    assert_int_equal(region(f, NULL, NULL, r, NULL), KN_OK);
    assert_string_equal(r, "us-west-1");
    set_env(f, "AWS_REGION", "us-west-2");
    assert_int_equal(region(f, NULL, NULL, r, NULL), KN_OK);
    assert_string_equal(r, "us-west-2");
    assert_int_equal(region(f, NULL, "ap-south-1", r, NULL), KN_OK);
    assert_string_equal(r, "ap-south-1");
}

static void region_from_named_profile(void **state)
{
    fixture *f = *state;
    char r[64];
    write_file(f->conf_path, "[default]\nregion = eu-central-1\n[profile cn]\nregion = cn-north-1\n");
    set_env(f, "AWS_PROFILE", "cn");
    assert_int_equal(region(f, NULL, NULL, r, NULL), KN_OK);
    assert_string_equal(r, "cn-north-1");
}

static void region_in_credentials_file_wins_like_botocore(void **state)
{
    fixture *f = *state;
    char r[64];
    write_file(f->cred_path, "[default]\nregion = sa-east-1\n");
    write_file(f->conf_path, "[default]\nregion = eu-central-1\n");
    assert_int_equal(region(f, NULL, NULL, r, NULL), KN_OK);
    assert_string_equal(r, "sa-east-1");
}

static void no_region_is_a_clear_error(void **state)
{
    fixture *f = *state;
    char r[64];
    kn_error err = {0};
    assert_int_equal(region(f, NULL, NULL, r, &err), KN_ERR_NO_REGION);
    assert_non_null(strstr(err.message, "AWS_REGION"));
    assert_non_null(strstr(err.message, f->conf_path));
}

static void malformed_region_is_refused(void **state)
{
    fixture *f = *state;
    char r[64];
    kn_error err = {0};
    assert_int_equal(region(f, NULL, "us-east-1/../evil", r, &err), KN_ERR_CONFIG);
    assert_int_equal(region(f, NULL, "-us", r, &err), KN_ERR_CONFIG);
    assert_true(kn_creds_region_valid("us-gov-west-1"));
    assert_false(kn_creds_region_valid("us-"));
    assert_false(kn_creds_region_valid(""));
}

static void region_named_profile_must_exist(void **state)
{
    fixture *f = *state;
    char r[64];
    kn_error err = {0};
    assert_int_equal(region(f, "ghost", "us-east-1", r, &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "(ghost)"));
}

static void process_env_reads_getenv(void **state)
{
    (void)state;
    setenv("KN_TEST_CREDS_VAR", "value", 1);
    const kn_env *env = kn_env_process();
    assert_string_equal(env->get(env->ctx, "KN_TEST_CREDS_VAR"), "value");
    unsetenv("KN_TEST_CREDS_VAR");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(explicit_credentials_win),
        T(environment_comes_next),
        T(empty_environment_values_count_as_unset),
        T(partial_environment_is_an_error),
        T(credentials_file_default_profile),
        T(aws_profile_selects_section),
        T(explicit_profile_beats_aws_profile),
        T(config_file_profile_section),
        T(config_file_default_section),
        T(credentials_file_beats_config_file),
        T(file_variables_override_home),
        T(tilde_in_variable_uses_home),
        T(unknown_named_profile_is_an_error),
        T(explicitly_named_default_must_exist),
        T(nothing_found_names_where_it_looked),
        T(unsupported_source_is_named),
        T(partial_profile_is_an_error),
        T(malformed_file_names_file_and_line),
        T(broken_files_do_not_matter_when_env_has_keys),
        T(no_home_still_uses_environment),
        T(partial_explicit_is_an_error),
        T(region_chain_order),
        T(region_from_named_profile),
        T(region_in_credentials_file_wins_like_botocore),
        T(no_region_is_a_clear_error),
        T(malformed_region_is_refused),
        T(region_named_profile_must_exist),
        cmocka_unit_test(process_env_reads_getenv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
