#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "endpoint.h"

typedef struct fake_env {
    const char *kinesis_url; /* AWS_ENDPOINT_URL_KINESIS */
    const char *url;         /* AWS_ENDPOINT_URL */
} fake_env;

static const char *fake_get(void *ctx, const char *name)
{
    const fake_env *f = ctx;
    if (strcmp(name, "AWS_ENDPOINT_URL_KINESIS") == 0)
        return f->kinesis_url;
    if (strcmp(name, "AWS_ENDPOINT_URL") == 0)
        return f->url;
    return NULL;
}

static kn_status resolve(fake_env *f, const char *url, const char *region, char *out, kn_error *err)
{
    kn_env env = {.get = fake_get, .ctx = f};
    return kn_endpoint_resolve(&env, url, region, out, 256, err);
}

static void assert_resolves(const char *url, const char *want)
{
    fake_env f = {0};
    char out[256];
    kn_error err = {0};
    assert_int_equal(resolve(&f, url, "us-east-1", out, &err), KN_OK);
    assert_string_equal(out, want);
}

static void assert_refused(const char *url)
{
    fake_env f = {0};
    char out[256];
    kn_error err = {0};
    assert_int_equal(resolve(&f, url, "us-east-1", out, &err), KN_ERR_CONFIG);
    assert_int_equal(err.status, KN_ERR_CONFIG);
    assert_true(strlen(err.message) > 0);
}

static void default_is_regional_https(void **state)
{
    (void)state;
    fake_env f = {0};
    char out[256];
    assert_int_equal(resolve(&f, NULL, "eu-west-1", out, NULL), KN_OK);
    assert_string_equal(out, "https://kinesis.eu-west-1.amazonaws.com");
}

static void china_regions_use_com_cn(void **state)
{
    (void)state;
    fake_env f = {0};
    char out[256];
    assert_int_equal(resolve(&f, NULL, "cn-north-1", out, NULL), KN_OK);
    assert_string_equal(out, "https://kinesis.cn-north-1.amazonaws.com.cn");
    assert_int_equal(resolve(&f, NULL, "cn-northwest-1", out, NULL), KN_OK);
    assert_string_equal(out, "https://kinesis.cn-northwest-1.amazonaws.com.cn");
}

static void explicit_beats_environment(void **state)
{
    (void)state;
    fake_env f = {.kinesis_url = "http://127.0.0.1:1111", .url = "http://127.0.0.1:2222"};
    char out[256];
    assert_int_equal(resolve(&f, "http://127.0.0.1:4567", "us-east-1", out, NULL), KN_OK);
    assert_string_equal(out, "http://127.0.0.1:4567");
}

static void service_variable_beats_generic(void **state)
{
    (void)state;
    fake_env f = {.kinesis_url = "http://127.0.0.1:1111", .url = "http://127.0.0.1:2222"};
    char out[256];
    assert_int_equal(resolve(&f, NULL, "us-east-1", out, NULL), KN_OK);
    assert_string_equal(out, "http://127.0.0.1:1111");
    f.kinesis_url = "";
    assert_int_equal(resolve(&f, NULL, "us-east-1", out, NULL), KN_OK);
    assert_string_equal(out, "http://127.0.0.1:2222");
}

static void url_forms_accepted(void **state)
{
    (void)state;
    assert_resolves("http://localhost:4567", "http://localhost:4567");
    assert_resolves("http://localhost:4567/", "http://localhost:4567/");
    assert_resolves("HTTPS://Example.com", "https://Example.com");
    assert_resolves("https://kinesis.us-east-1.amazonaws.com:443", "https://kinesis.us-east-1.amazonaws.com");
    assert_resolves("http://h:80/prefix", "http://h/prefix");
    assert_resolves("https://h:80", "https://h:80");
    assert_resolves("http://[::1]:4567", "http://[::1]:4567");
    assert_resolves("http://my_host.internal:65535", "http://my_host.internal:65535");
}

static void malformed_urls_refused(void **state)
{
    (void)state;
    assert_refused("ftp://host");
    assert_refused("localhost:4567");
    assert_refused("http://");
    assert_refused("http://:4567");
    assert_refused("http://host:");
    assert_refused("http://host:0");
    assert_refused("http://host:65536");
    assert_refused("http://host:123456");
    assert_refused("http://host:12a");
    assert_refused("http://ho st");
    assert_refused("http://host/a b");
    assert_refused("http://host?x=1");
    assert_refused("http://host/#frag");
    assert_refused("http://[::1");
    assert_refused("http://[zz]:1");
    assert_refused("http://host\r\nX-Injected: 1");
}

static void user_info_refused_without_echoing_it(void **state)
{
    (void)state;
    fake_env f = {0};
    char out[256];
    kn_error err = {0};
    assert_int_equal(resolve(&f, "http://user:hunter2@host", "us-east-1", out, &err), KN_ERR_CONFIG);
    assert_null(strstr(err.message, "hunter2"));
}

static void bad_env_url_names_the_variable(void **state)
{
    (void)state;
    fake_env f = {.kinesis_url = "nonsense"};
    char out[256];
    kn_error err = {0};
    assert_int_equal(resolve(&f, NULL, "us-east-1", out, &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AWS_ENDPOINT_URL_KINESIS"));
}

static void no_url_and_no_region(void **state)
{
    (void)state;
    fake_env f = {0};
    char out[256];
    kn_error err = {0};
    assert_int_equal(resolve(&f, NULL, NULL, out, &err), KN_ERR_NO_REGION);
    assert_int_equal(resolve(&f, NULL, "", out, &err), KN_ERR_NO_REGION);
}

static void bad_region_cannot_forge_a_host(void **state)
{
    (void)state;
    fake_env f = {0};
    char out[256];
    assert_int_equal(resolve(&f, NULL, "evil.com/x", out, NULL), KN_ERR_CONFIG);
}

static void output_too_small(void **state)
{
    (void)state;
    kn_env env = {.get = fake_get, .ctx = &(fake_env){0}};
    char out[16];
    kn_error err = {0};
    assert_int_equal(kn_endpoint_resolve(&env, NULL, "us-east-1", out, sizeof out, &err), KN_ERR_CONFIG);
}

static void host_is_authority_view(void **state)
{
    (void)state;
    const char *host = NULL;
    const char *url = "http://127.0.0.1:4567/prefix";
    assert_int_equal(kn_endpoint_host(url, &host), strlen("127.0.0.1:4567"));
    assert_ptr_equal(host, url + 7);
    assert_string_equal(host + 14, "/prefix");
    assert_int_equal(kn_endpoint_host("https://kinesis.us-east-1.amazonaws.com", &host),
                     strlen("kinesis.us-east-1.amazonaws.com"));
    assert_int_equal(kn_endpoint_host("nonsense", &host), 0);
    assert_int_equal(kn_endpoint_host("http://", &host), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_is_regional_https),
        cmocka_unit_test(china_regions_use_com_cn),
        cmocka_unit_test(explicit_beats_environment),
        cmocka_unit_test(service_variable_beats_generic),
        cmocka_unit_test(url_forms_accepted),
        cmocka_unit_test(malformed_urls_refused),
        cmocka_unit_test(user_info_refused_without_echoing_it),
        cmocka_unit_test(bad_env_url_names_the_variable),
        cmocka_unit_test(no_url_and_no_region),
        cmocka_unit_test(bad_region_cannot_forge_a_host),
        cmocka_unit_test(output_too_small),
        cmocka_unit_test(host_is_authority_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
