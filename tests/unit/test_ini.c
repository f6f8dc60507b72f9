#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ini.h"

/* Collects every key as "section|key=value" lines, so a test compares one string. */
typedef struct collected {
    char text[2048];
    size_t len;
    int stop_after; /* 0 = never stop */
    int calls;
} collected;

static bool collect(void *ctx, const char *sec, size_t sec_len, const char *key, size_t key_len, const char *value,
                    size_t value_len)
{
    collected *c = ctx;
    int n = snprintf(c->text + c->len, sizeof c->text - c->len, "%.*s|%.*s=%.*s\n", (int)sec_len, sec, (int)key_len,
                     key, (int)value_len, value);
    assert_true(n > 0 && (size_t)n < sizeof c->text - c->len);
    c->len += (size_t)n;
    c->calls++;
    return c->stop_after == 0 || c->calls < c->stop_after;
}

static const char *parse_ok(const char *text, collected *c)
{
    kn_error err = {0};
    assert_int_equal(kn_ini_parse(text, strlen(text), collect, c, &err), KN_OK);
    return c->text;
}

static void parse_fails_at_line(const char *text, const char *want_line)
{
    collected c = {0};
    kn_error err = {0};
    assert_int_equal(kn_ini_parse(text, strlen(text), collect, &c, &err), KN_ERR_CONFIG);
    assert_int_equal(err.status, KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, want_line));
}

static void sections_and_keys_in_order(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[default]\naws_access_key_id = AKID\naws_secret_access_key=SECRET\n"
                                 "[profile dev]\nregion = eu-west-1\n",
                                 &c),
                        "default|aws_access_key_id=AKID\ndefault|aws_secret_access_key=SECRET\n"
                        "profile dev|region=eu-west-1\n");
}

static void whitespace_is_trimmed(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("  [  default  ]  \n\t key \t=\t value with  inner space \t\n", &c),
                        "default|key=value with  inner space\n");
}

static void colon_separates_like_configparser(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[a]\nregion: us-west-2\nrole_arn = arn:aws:iam::1:role/x\n", &c),
                        "a|region=us-west-2\na|role_arn=arn:aws:iam::1:role/x\n");
}

static void full_line_comments_are_skipped(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("# top\n; also\n[a]\n  # indented comment\nk = v\n;k = w\n", &c), "a|k=v\n");
}

static void inline_comment_stays_in_value_like_botocore(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[a]\nregion = us-east-1 # note\n", &c), "a|region=us-east-1 # note\n");
}

static void header_may_carry_a_comment(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[a] # comment\nk = v\n", &c), "a|k=v\n");
}

static void empty_value_is_allowed(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[a]\nk =\n", &c), "a|k=\n");
}

static void nested_settings_are_skipped(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[profile x]\ns3 =\n  addressing_style = path\n\n  # c\n  max = 10\nregion = r\n", &c),
                        "profile x|s3=\nprofile x|region=r\n");
}

static void indented_key_after_header_is_a_key(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[a]\n  k = v\n  j = w\n", &c), "a|k=v\na|j=w\n");
}

static void crlf_line_ends(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("[a]\r\nk = v\r\n\r\n[b]\r\nj=w", &c), "a|k=v\nb|j=w\n");
}

static void byte_order_mark_is_ignored(void **state)
{
    (void)state;
    collected c = {0};
    assert_string_equal(parse_ok("\xef\xbb\xbf[a]\nk = v\n", &c), "a|k=v\n");
}

static void empty_text_has_no_keys(void **state)
{
    (void)state;
    collected c = {0};
    kn_error err = {0};
    assert_int_equal(kn_ini_parse("", 0, collect, &c, &err), KN_OK);
    assert_int_equal(c.calls, 0);
}

static void callback_can_stop(void **state)
{
    (void)state;
    collected c = {.stop_after = 1};
    assert_string_equal(parse_ok("[a]\nk = v\nj = w\n", &c), "a|k=v\n");
}

static void errors_name_the_line(void **state)
{
    (void)state;
    parse_fails_at_line("k = v\n", "line 1");                  /* before any section */
    parse_fails_at_line("[a]\nk = v\njust words\n", "line 3"); /* no delimiter */
    parse_fails_at_line("[a]\n= v\n", "line 2");               /* no key */
    parse_fails_at_line("[]\n", "line 1");                     /* empty section name */
    parse_fails_at_line("[a\nk = v\n", "line 1");              /* unclosed header */
    parse_fails_at_line("[a] junk\n", "line 1");
    parse_fails_at_line("[a]\r\n\r\nbad\r\n", "line 3");
}

static void error_never_quotes_the_line(void **state)
{
    (void)state;
    collected c = {0};
    kn_error err = {0};
    const char *text = "[a]\nwJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";
    assert_int_equal(kn_ini_parse(text, strlen(text), collect, &c, &err), KN_ERR_CONFIG);
    assert_null(strstr(err.message, "wJalr"));
}

static void nul_byte_is_refused(void **state)
{
    (void)state;
    collected c = {0};
    kn_error err = {0};
    const char text[] = "[a]\nk = ab\0cd\n";
    assert_int_equal(kn_ini_parse(text, sizeof text - 1, collect, &c, &err), KN_ERR_CONFIG);
    assert_non_null(strstr(err.message, "line 2"));
    assert_int_equal(c.calls, 0);
}

static void uses_length_not_nul(void **state)
{
    (void)state;
    collected c = {0};
    kn_error err = {0};
    const char *text = "[a]\nk = v\n[b]\nj = w\n";
    assert_int_equal(kn_ini_parse(text, 10, collect, &c, &err), KN_OK);
    assert_string_equal(c.text, "a|k=v\n");
}

static char *write_temp(const char *content, size_t len)
{
    char *path = strdup("/tmp/kn-test-ini-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void read_file_reads_whole_file(void **state)
{
    (void)state;
    char *path = write_temp("[a]\nk = v\n", 10);
    char *text = NULL;
    size_t len = 0;
    kn_error err = {0};
    assert_int_equal(kn_ini_read_file(path, 10, &text, &len, &err), KN_OK);
    assert_int_equal(len, 10);
    assert_string_equal(text, "[a]\nk = v\n");
    free(text);
    unlink(path);
    free(path);
}

static void read_file_refuses_oversized(void **state)
{
    (void)state;
    char *path = write_temp("[a]\nk = v\n", 10);
    char *text = NULL;
    size_t len = 0;
    kn_error err = {0};
    assert_int_equal(kn_ini_read_file(path, 9, &text, &len, &err), KN_ERR_CONFIG);
    assert_null(text);
    assert_non_null(strstr(err.message, path));
    unlink(path);
    free(path);
}

static void read_file_missing_keeps_errno(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    kn_error err = {0};
    assert_int_equal(kn_ini_read_file("/nonexistent/kn-test/credentials", 1024, &text, &len, &err), KN_ERR_IO);
    assert_int_equal(errno, ENOENT);
    assert_null(text);
    assert_non_null(strstr(err.message, "/nonexistent/kn-test/credentials"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sections_and_keys_in_order),
        cmocka_unit_test(whitespace_is_trimmed),
        cmocka_unit_test(colon_separates_like_configparser),
        cmocka_unit_test(full_line_comments_are_skipped),
        cmocka_unit_test(inline_comment_stays_in_value_like_botocore),
        cmocka_unit_test(header_may_carry_a_comment),
        cmocka_unit_test(empty_value_is_allowed),
        cmocka_unit_test(nested_settings_are_skipped),
        cmocka_unit_test(indented_key_after_header_is_a_key),
        cmocka_unit_test(crlf_line_ends),
        cmocka_unit_test(byte_order_mark_is_ignored),
        cmocka_unit_test(empty_text_has_no_keys),
        cmocka_unit_test(callback_can_stop),
        cmocka_unit_test(errors_name_the_line),
        cmocka_unit_test(error_never_quotes_the_line),
        cmocka_unit_test(nul_byte_is_refused),
        cmocka_unit_test(uses_length_not_nul),
        cmocka_unit_test(read_file_reads_whole_file),
        cmocka_unit_test(read_file_refuses_oversized),
        cmocka_unit_test(read_file_missing_keeps_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
