/* knd_jsonw: the response writer's output, byte for byte, its escaping, its cap, and buffer reuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jsonw.h"

static void assert_body(knd_jsonw *w, const char *want)
{
    assert_int_equal(knd_jsonw_finish(w), KN_OK);
    assert_int_equal(w->buf.len, strlen(want));
    assert_string_equal((const char *)w->buf.data, want);
}

static void members_and_separators(void **state)
{
    (void)state;
    knd_jsonw w;
    knd_jsonw_init(&w, 1024);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_cstring(&w, "A", "x");
    knd_jsonw_array_begin(&w, "L");
    knd_jsonw_int(&w, NULL, 1);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_bool(&w, "t", true);
    knd_jsonw_bool(&w, "f", false);
    knd_jsonw_object_end(&w);
    knd_jsonw_array_begin(&w, NULL);
    knd_jsonw_array_end(&w);
    knd_jsonw_array_end(&w);
    knd_jsonw_object_begin(&w, "E");
    knd_jsonw_object_end(&w);
    knd_jsonw_object_end(&w);
    assert_body(&w, "{\"A\":\"x\",\"L\":[1,{\"t\":true,\"f\":false},[]],\"E\":{}}");
    knd_jsonw_cleanup(&w);
}

static void integers_and_timestamps(void **state)
{
    (void)state;
    knd_jsonw w;
    knd_jsonw_init(&w, 1024);
    knd_jsonw_array_begin(&w, NULL);
    knd_jsonw_int(&w, NULL, 0);
    knd_jsonw_int(&w, NULL, -42);
    knd_jsonw_int(&w, NULL, INT64_MAX);
    knd_jsonw_int(&w, NULL, INT64_MIN);
    knd_jsonw_epoch_ms(&w, NULL, 1700000000123);
    knd_jsonw_epoch_ms(&w, NULL, 5);
    knd_jsonw_epoch_ms(&w, NULL, 1000);
    knd_jsonw_epoch_ms(&w, NULL, -7);
    knd_jsonw_array_end(&w);
    assert_body(&w, "[0,-42,9223372036854775807,-9223372036854775808,1700000000.123,0.005,1.000,0.000]");
    knd_jsonw_cleanup(&w);
}

static void strings_are_escaped(void **state)
{
    (void)state;
    knd_jsonw w;
    knd_jsonw_init(&w, 1024);
    knd_jsonw_array_begin(&w, NULL);
    knd_jsonw_string(&w, NULL, "plain text 123", 14);
    knd_jsonw_string(&w, NULL, "q\"b\\c", 5);
    knd_jsonw_string(&w, NULL, "nul\0tab\t\x1f", 9);
    knd_jsonw_cstring(&w, NULL, "caf\xc3\xa9 \xe2\x82\xac");        /* valid UTF-8 passes through */
    knd_jsonw_string(&w, NULL, "ok \"x\" \xff\xc3", 9);            /* invalid: non-ASCII bytes replaced */
    knd_jsonw_string(&w, NULL, "", 0);
    knd_jsonw_cstring(&w, NULL, "0123456789abcdef0123456789abcdef\x01+\x7f"); /* past the 8-byte scan */
    knd_jsonw_cstring(&w, NULL, "0123456789abcdefg\"ij\\");
    knd_jsonw_array_end(&w);
    assert_body(&w, "[\"plain text 123\",\"q\\\"b\\\\c\",\"nul\\u0000tab\\u0009\\u001f\",\"caf\xc3\xa9 \xe2\x82\xac\","
                    "\"ok \\\"x\\\" \\ufffd\\ufffd\",\"\",\"0123456789abcdef0123456789abcdef\\u0001+\x7f\","
                    "\"0123456789abcdefg\\\"ij\\\\\"]");
    knd_jsonw_cleanup(&w);
    kn_buf b;
    kn_buf_init(&b, 64);
    assert_int_equal(knd_jsonw_escape(&b, "a\nb", 3), KN_OK);
    assert_string_equal((const char *)b.data, "a\\u000ab");
    kn_buf_cleanup(&b);
}

static void base64_members(void **state)
{
    (void)state;
    knd_jsonw w;
    knd_jsonw_init(&w, 1024);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_base64(&w, "Data", "\x00\xff\x10hello", 8);
    knd_jsonw_base64(&w, "Empty", "", 0);
    knd_jsonw_object_end(&w);
    assert_body(&w, "{\"Data\":\"AP8QaGVsbG8=\",\"Empty\":\"\"}");
    knd_jsonw_cleanup(&w);
}

/* Past the cap every call is a no-op and finish reports the first failure; unbalanced containers fail too. */
static void cap_and_balance_are_enforced(void **state)
{
    (void)state;
    knd_jsonw w;
    knd_jsonw_init(&w, 16);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_cstring(&w, "Key", "a value too long for the cap");
    size_t len = w.buf.len;
    knd_jsonw_int(&w, "N", 1);
    knd_jsonw_object_end(&w);
    assert_int_equal(knd_jsonw_finish(&w), KN_ERR_NO_MEMORY);
    assert_int_equal(w.buf.len, len);
    knd_jsonw_cleanup(&w);
    knd_jsonw_init(&w, 1024);
    knd_jsonw_object_begin(&w, NULL);
    assert_int_equal(knd_jsonw_finish(&w), KN_ERR_INVALID_ARGUMENT);
    knd_jsonw_object_end(&w);
    knd_jsonw_object_end(&w);
    assert_int_equal(knd_jsonw_finish(&w), KN_ERR_INVALID_ARGUMENT);
    knd_jsonw_cleanup(&w);
}

/* A buffer handed back with knd_jsonw_keep serves the next body without reallocating; one over the limit is freed. */
static void buffers_are_reused_up_to_the_limit(void **state)
{
    (void)state;
    kn_buf keep;
    kn_buf_init(&keep, 0);
    knd_jsonw w;
    knd_jsonw_init_reuse(&w, &keep, 1 << 20);
    knd_jsonw_reserve(&w, 4000);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_cstring(&w, "A", "first");
    knd_jsonw_object_end(&w);
    assert_body(&w, "{\"A\":\"first\"}");
    uint8_t *mem = w.buf.data;
    knd_jsonw_keep(&w, &keep, 8192);
    assert_ptr_equal(keep.data, mem);
    knd_jsonw_init_reuse(&w, &keep, 1 << 20);
    assert_null(keep.data);
    assert_ptr_equal(w.buf.data, mem);
    knd_jsonw_object_begin(&w, NULL);
    knd_jsonw_object_end(&w);
    assert_body(&w, "{}");
    knd_jsonw_keep(&w, &keep, 1024); /* over the limit now */
    assert_null(keep.data);
    kn_buf_cleanup(&keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(members_and_separators),
        cmocka_unit_test(integers_and_timestamps),
        cmocka_unit_test(strings_are_escaped),
        cmocka_unit_test(base64_members),
        cmocka_unit_test(cap_and_balance_are_enforced),
        cmocka_unit_test(buffers_are_reused_up_to_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
