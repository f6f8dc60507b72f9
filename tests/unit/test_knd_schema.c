/* knd_schema: AWS's SerializationException and ValidationException texts for a shape like PutRecords'. Expected
 * texts are the ones kinesalite's tests recorded against the real service. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base64.h"
#include "json.h"
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_modes[] = {"PROVISIONED", "ON_DEMAND", NULL};
static const knd_field k_entry[] = {
    {.name = "PartitionKey", .type = KND_T_STRING, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN,
     .min_len = 1, .max_len = 256},
    {.name = "ExplicitHashKey", .type = KND_T_STRING, .pattern = KND_PAT_HASH_KEY},
    {.name = "Data", .type = KND_T_BLOB, .flags = KND_F_NOT_NULL | KND_F_MAX_LEN, .max_len = 4},
    {0},
};
static const knd_field k_member = {.name = "member", .type = KND_T_STRUCT, .fields = k_entry};
static const knd_field k_details[] = {
    {.name = "StreamMode", .type = KND_T_STRING, .flags = KND_F_NOT_NULL, .enum_values = k_modes},
    {0},
};
static const knd_field k_tag = {.name = "member", .type = KND_T_STRING, .max_len = 256};
static const knd_field k_shape[] = {
    {.name = "Records", .type = KND_T_LIST, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1,
     .max_len = 3, .member = &k_member, .member_str = "Entry@1"},
    {.name = "Limit", .type = KND_T_INTEGER, .flags = KND_F_MIN | KND_F_MAX, .min = 1, .max = 10000},
    {.name = "StreamName", .type = KND_T_STRING,
     .flags = KND_F_NOT_NULL_UNLESS_ARN | KND_F_MIN_LEN | KND_F_MAX_LEN, .pattern = KND_PAT_NAME, .min_len = 1,
     .max_len = 128},
    {.name = "StreamARN", .type = KND_T_STRING, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN,
     .pattern = KND_PAT_STREAM_ARN, .min_len = 1, .max_len = 2048},
    {.name = "Details", .type = KND_T_STRUCT, .fields = k_details},
    {.name = "Flag", .type = KND_T_BOOLEAN},
    {.name = "When", .type = KND_T_TIMESTAMP},
    {.name = "Tags", .type = KND_T_MAP, .member = &k_tag, .key_min_len = 1, .key_max_len = 3},
    {0},
};

/* Runs check 1 on json and returns the SerializationException message ("" when the types are fine). */
static char *types(const char *json)
{
    cJSON *in = kn_json_parse(json, strlen(json));
    assert_non_null(in);
    kn_buf msg;
    kn_buf_init(&msg, 1 << 20);
    bool ok = knd_schema_check_types(k_shape, in, &msg);
    cJSON_Delete(in);
    assert_true(ok == (msg.len == 0));
    char *out = strdup(msg.data ? (char *)msg.data : "");
    kn_buf_cleanup(&msg);
    return out;
}

/* Runs check 2 on json (which must pass check 1) and returns the ValidationException message ("" when valid). */
static char *violations(const char *json)
{
    cJSON *in = kn_json_parse(json, strlen(json));
    assert_non_null(in);
    kn_buf msg;
    kn_buf_init(&msg, 1 << 20);
    assert_true(knd_schema_check_types(k_shape, in, &msg));
    size_t n = knd_schema_validate(k_shape, in, &msg);
    cJSON_Delete(in);
    assert_true((n == 0) == (msg.len == 0));
    char *out = strdup(msg.data ? (char *)msg.data : "");
    kn_buf_cleanup(&msg);
    return out;
}

#define EXPECT_TYPES(json, text)                                                                                     \
    do {                                                                                                             \
        char *got = types(json);                                                                                     \
        assert_string_equal(got, text);                                                                              \
        free(got);                                                                                                   \
    } while (0)

#define EXPECT_VIOLATIONS(json, text)                                                                                \
    do {                                                                                                             \
        char *got = violations(json);                                                                                \
        assert_string_equal(got, text);                                                                              \
        free(got);                                                                                                   \
    } while (0)

static void test_string_given_other_types(void **state)
{
    (void)state;
    EXPECT_TYPES("{\"StreamName\":true}", "class java.lang.Boolean can not be converted to an String");
    EXPECT_TYPES("{\"StreamName\":23}",
                 "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String");
    EXPECT_TYPES("{\"StreamName\":34.56}",
                 "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String");
    EXPECT_TYPES("{\"StreamName\":[]}", "Start of list found where not expected");
    EXPECT_TYPES("{\"StreamName\":{}}", "Start of structure or map found where not expected.");
}

static void test_integer_boolean_timestamp_given_other_types(void **state)
{
    (void)state;
    EXPECT_TYPES("{\"Limit\":\"23\"}", "class java.lang.String can not be converted to an Integer");
    EXPECT_TYPES("{\"Limit\":true}", "class java.lang.Boolean can not be converted to an Integer");
    EXPECT_TYPES("{\"Flag\":23}",
                 "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean");
    EXPECT_TYPES("{\"Flag\":\"yes\"}", "'YES' can not be converted to an Boolean");
    EXPECT_TYPES("{\"When\":\"x\"}", "class java.lang.String can not be converted to milliseconds since epoch");
    EXPECT_TYPES("{\"When\":false}", "class java.lang.Boolean can not be converted to milliseconds since epoch");
}

static void test_containers_given_other_types(void **state)
{
    (void)state;
    EXPECT_TYPES("{\"Records\":\"23\"}", "Expected list or null");
    EXPECT_TYPES("{\"Records\":{}}", "Start of structure or map found where not expected.");
    EXPECT_TYPES("{\"Records\":[23]}", "Expected null");
    EXPECT_TYPES("{\"Records\":[[]]}", "Start of list found where not expected");
    EXPECT_TYPES("{\"Tags\":5}", "Expected map or null");
    EXPECT_TYPES("{\"Tags\":[]}", "Start of list found where not expected");
    EXPECT_TYPES("{\"Records\":[{\"PartitionKey\":1}]}",
                 "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String");
}

static void test_blob_must_be_canonical_base64(void **state)
{
    (void)state;
    EXPECT_TYPES("{\"Records\":[{\"Data\":true}]}", "class java.lang.Boolean can not be converted to a Blob");
    EXPECT_TYPES("{\"Records\":[{\"Data\":\"23456\"}]}",
                 "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes "
                 "but found: 5");
    EXPECT_TYPES("{\"Records\":[{\"Data\":\"=+/=\"}]}",
                 "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='");
    EXPECT_TYPES("{\"Records\":[{\"Data\":\"ab c\"}]}",
                 "'ab c' can not be converted to a Blob: Invalid Base64 character: ' '");
    EXPECT_TYPES("{\"Records\":[{\"Data\":\"+/+=\"}]}",
                 "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected");
    EXPECT_TYPES("{\"Records\":[{\"Data\":\"QQ==\"}]}", "");
    EXPECT_TYPES("{\"Records\":[{\"Data\":\"\"}]}", "");
}

static void test_nulls_and_unknown_members_are_absent(void **state)
{
    (void)state;
    EXPECT_TYPES("{\"StreamName\":null,\"Whatever\":[1,2]}", "");
    EXPECT_VIOLATIONS("{\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],\"StreamName\":null}",
                      "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member "
                      "must not be null");
}

static void test_required_members(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{}", "2 validation errors detected: "
                            "Value null at 'records' failed to satisfy constraint: Member must not be null; "
                            "Value null at 'streamName' failed to satisfy constraint: Member must not be null");
}

static void test_stream_arn_stands_in_for_stream_name(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],"
                      "\"StreamARN\":\"arn:aws:kinesis:us-east-1:123456789012:stream/x\"}",
                      "");
    EXPECT_VIOLATIONS("{\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],\"StreamARN\":\"arn:x\"}",
                      "1 validation error detected: Value 'arn:x' at 'streamARN' failed to satisfy constraint: Member "
                      "must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+");
}

static void test_pattern_then_length_in_field_order(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{\"StreamName\":\"\",\"Records\":[],\"Limit\":0}",
                      "4 validation errors detected: "
                      "Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or "
                      "equal to 1; "
                      "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal "
                      "to 1; "
                      "Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression "
                      "pattern: [a-zA-Z0-9_.-]+; "
                      "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or "
                      "equal to 1");
}

static void test_list_members_are_numbered_from_one(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"},"
                      "{\"PartitionKey\":\"\",\"ExplicitHashKey\":\"01\",\"Data\":\"AAAAAAA=\"}]}",
                      "3 validation errors detected: "
                      "Value '' at 'records.2.member.partitionKey' failed to satisfy constraint: Member must have "
                      "length greater than or equal to 1; "
                      "Value '01' at 'records.2.member.explicitHashKey' failed to satisfy constraint: Member must "
                      "satisfy regular expression pattern: 0|([1-9]\\d{0,38}); "
                      "Value at 'records.2.member.data' failed to satisfy constraint: Member must have length less "
                      "than or equal to 4");
}

static void test_too_long_list_prints_members_and_caps_at_ten(void **state)
{
    (void)state;
    const char *in = "{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"\",\"Data\":\"\"},"
                     "{\"PartitionKey\":\"\",\"Data\":\"\"},{\"PartitionKey\":\"\",\"Data\":\"\"},"
                     "{\"PartitionKey\":\"\",\"Data\":\"\"},{\"PartitionKey\":\"\",\"Data\":\"\"},"
                     "{\"PartitionKey\":\"\",\"Data\":\"\"},{\"PartitionKey\":\"\",\"Data\":\"\"},"
                     "{\"PartitionKey\":\"\",\"Data\":\"\"},{\"PartitionKey\":\"\",\"Data\":\"\"},"
                     "{\"PartitionKey\":\"\",\"Data\":\"\"},{\"PartitionKey\":\"\",\"Data\":\"\"}]}";
    char *got = violations(in);
    const char *head = "10 validation errors detected: Value '[Entry@1, Entry@1, Entry@1, Entry@1, Entry@1, Entry@1, "
                       "Entry@1, Entry@1, Entry@1, Entry@1, Entry@1]' at 'records' failed to satisfy constraint: "
                       "Member must have length less than or equal to 3; Value '' at 'records.1.member.partitionKey'";
    assert_memory_equal(got, head, strlen(head));
    assert_non_null(strstr(got, "'records.9.member.partitionKey'"));
    assert_null(strstr(got, "'records.10.member.partitionKey'"));
    free(got);
}

static void test_integer_limits_and_truncation(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],\"Limit\":100000}",
                      "1 validation error detected: Value '100000' at 'limit' failed to satisfy constraint: Member "
                      "must have value less than or equal to 10000");
    EXPECT_VIOLATIONS("{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],\"Limit\":0.9}",
                      "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must "
                      "have value greater than or equal to 1");
}

static void test_enum_and_nested_structure(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],"
                      "\"Details\":{\"StreamMode\":\"FAST\"}}",
                      "1 validation error detected: Value 'FAST' at 'details.streamMode' failed to satisfy "
                      "constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]");
}

static void test_map_keys_and_values(void **state)
{
    (void)state;
    EXPECT_VIOLATIONS("{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}],"
                      "\"Tags\":{\"long\":\"v\"}}",
                      "1 validation error detected: Value '{long=v}' at 'tags' failed to satisfy constraint: Map keys "
                      "must satisfy constraint: [Member must have length less than or equal to 3, Member must have "
                      "length greater than or equal to 1]");
}

static void test_partition_key_counts_characters(void **state)
{
    (void)state;
    /* 256 two-byte characters (512 bytes) are within the 256-character limit. */
    char in[2048] = "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"";
    for (int i = 0; i < 256; i++)
        strcat(in, "\xc3\xa9");
    strcat(in, "\"}]}");
    EXPECT_VIOLATIONS(in, "");
}

/* ---- the fast path ---- */

/* PutRecords' input as server/api.c declares it. */
static const knd_field k_put_entry[] = {
    {.name = "PartitionKey", .type = KND_T_STRING, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN,
     .min_len = 1, .max_len = 256},
    {.name = "ExplicitHashKey", .type = KND_T_STRING, .pattern = KND_PAT_HASH_KEY},
    {.name = "Data", .type = KND_T_BLOB, .flags = KND_F_NOT_NULL},
    {0},
};
static const knd_field k_put_member = {.name = "member", .type = KND_T_STRUCT, .fields = k_put_entry};
static const knd_field k_put[] = {
    {.name = "Records", .type = KND_T_LIST, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1,
     .max_len = 500, .member = &k_put_member},
    {.name = "StreamName", .type = KND_T_STRING,
     .flags = KND_F_NOT_NULL_UNLESS_ARN | KND_F_MIN_LEN | KND_F_MAX_LEN, .pattern = KND_PAT_NAME, .min_len = 1,
     .max_len = 128},
    {.name = "StreamARN", .type = KND_T_STRING, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN,
     .pattern = KND_PAT_STREAM_ARN, .min_len = 1, .max_len = 2048},
    {0},
};

/* One member as the general path reads it equals its view: strings byte for byte, blobs once decoded. */
static void assert_view_is(const knd_field *f, const cJSON *v, const knd_view *view)
{
    if (!v) {
        assert_null(view->s);
        return;
    }
    assert_non_null(view->s);
    if (f->type == KND_T_STRING) {
        assert_int_equal(view->len, strlen(v->valuestring));
        assert_memory_equal(view->s, v->valuestring, view->len);
    } else if (f->type == KND_T_BLOB) {
        kn_buf d;
        kn_buf_init(&d, SIZE_MAX);
        assert_int_equal(kn_base64_decode(v->valuestring, strlen(v->valuestring), &d), KN_OK);
        assert_int_equal(view->len, d.len);
        if (d.len)
            assert_memory_equal(view->s, d.data, d.len);
        kn_buf_cleanup(&d);
    }
}

/* Scans json against PutRecords' shape. When the scan takes it, the general path (kn_json_parse, checks 1 and 2)
 * must accept it too and read the same values; returns whether the scan took it. */
static bool scan(const char *json, size_t len)
{
    knd_view *items = calloc(500 * KND_SCAN_FIELDS, sizeof *items);
    kn_buf blobs;
    kn_buf_init(&blobs, SIZE_MAX);
    knd_scan sc;
    bool took = knd_schema_scan(k_put, json, len, items, 500, &blobs, &sc);
    if (took) {
        cJSON *in = kn_json_parse(json, len);
        assert_non_null(in);
        kn_buf msg;
        kn_buf_init(&msg, 1 << 20);
        assert_true(knd_schema_check_types(k_put, in, &msg));
        assert_int_equal(knd_schema_validate(k_put, in, &msg), 0);
        kn_buf_cleanup(&msg);
        assert_view_is(&k_put[1], knd_schema_get(in, "StreamName"), &sc.fields[1]);
        assert_view_is(&k_put[2], knd_schema_get(in, "StreamARN"), &sc.fields[2]);
        const cJSON *records = knd_schema_get(in, "Records");
        assert_int_equal(sc.count, cJSON_GetArraySize(records));
        assert_ptr_equal(sc.item_fields, k_put_entry);
        for (size_t i = 0; i < sc.count; i++) {
            const cJSON *r = cJSON_GetArrayItem(records, (int)i);
            for (int k = 0; k < 3; k++)
                assert_view_is(&k_put_entry[k], knd_schema_get(r, k_put_entry[k].name),
                               &sc.items[i * KND_SCAN_FIELDS + k]);
        }
        cJSON_Delete(in);
    }
    kn_buf_cleanup(&blobs);
    free(items);
    return took;
}

#define SCANS(json) assert_true(scan(json, strlen(json)))
#define LEAVES(json) assert_false(scan(json, strlen(json)))

static void test_scan_takes_plain_put_records(void **state)
{
    (void)state;
    SCANS("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AQ==\",\"PartitionKey\":\"k\"}]}");
    SCANS("{\"Records\":[{\"PartitionKey\":\"k\",\"Data\":\"\"},{\"Data\":\"AAEC\",\"PartitionKey\":\"a b\","
          "\"ExplicitHashKey\":\"340282366920938463463374607431768211455\"}],\"StreamName\":\"a-b_c.d\"}");
    /* botocore's separators and any JSON whitespace */
    SCANS(" {\"Records\": [{\"Data\": \"/w==\", \"PartitionKey\": \"~!@#$%^&*()/\"}], \"StreamName\": \"s\"}\r\n");
    SCANS("{\n\t\"Records\" :\r[ {\"Data\":\"Zm9v\" , \"PartitionKey\":\"k\"} ] ,\"StreamName\":\"s\" } ");
    SCANS("{\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}],"
          "\"StreamARN\":\"arn:aws:kinesis:us-east-1:000000000000:stream/s\"}");
    SCANS("{\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}],\"StreamName\":\"s\","
          "\"StreamARN\":\"arn:aws:kinesis:us-east-1:000000000000:stream/t\"}"); /* the operation compares them */
    SCANS("{\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"\x7f\"}],\"StreamName\":\"s\"}");
}

static void test_scan_takes_500_records_not_501(void **state)
{
    (void)state;
    char *body = malloc(600 * 64);
    for (int n = 499; n <= 501; n++) {
        strcpy(body, "{\"StreamName\":\"s\",\"Records\":[");
        for (int i = 0; i < n; i++)
            sprintf(body + strlen(body), "%s{\"Data\":\"AAAA\",\"PartitionKey\":\"k%d\"}", i ? "," : "", i);
        strcat(body, "]}");
        assert_int_equal(scan(body, strlen(body)), n <= 500);
    }
    free(body);
}

/* Everything the scan leaves to the general path, whose answers (AWS's messages) the other tests check. */
static void test_scan_leaves_the_rest_to_the_general_path(void **state)
{
    (void)state;
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"\\u0041\"}]}"); /* escape */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"\\\"\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"\xc3\xa9\"}]}"); /* UTF-8 */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"\xc3\"}]}"); /* bad UTF-8 */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"a\tb\"}]}"); /* control */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}],\"X\":1}"); /* unknown */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\",\"X\":\"\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}],\"StreamARN\":null}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":1}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":true}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\",\"PartitionKey\":\"j\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":{}}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[null]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\"}]}");             /* no PartitionKey */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"k\"}]}");         /* no Data */
    LEAVES("{\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}");            /* no stream */
    LEAVES("{\"StreamName\":\"s s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}");
    LEAVES("{\"StreamName\":\"\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AQ=\",\"PartitionKey\":\"k\"}]}");   /* not canonical */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AR==\",\"PartitionKey\":\"k\"}]}");  /* stray bits */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"A A=\",\"PartitionKey\":\"k\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\","
           "\"ExplicitHashKey\":\"01\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}],"
           "\"StreamARN\":\"arn:aws:kinesis:us-east-1:0:stream/s\"}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}x");  /* trailing */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"},]}"); /* trailing comma */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}],}");
    LEAVES("\xef\xbb\xbf{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}"); /* BOM */
    LEAVES("{\"StreamName\":\"s\",\x01\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]}");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\"}]");     /* truncated */
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k");
    LEAVES("{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==");
    LEAVES("[]");
    LEAVES("");
    /* a 257-character key */
    char body[512];
    snprintf(body, sizeof body, "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"%0257d\"}]}", 0);
    LEAVES(body);
    snprintf(body, sizeof body, "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"%0256d\"}]}", 0);
    SCANS(body);
    /* a NUL inside the body ends nothing: the scan goes by length */
    static const char nul[] = "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\",\"PartitionKey\":\"k\0\"}]}";
    assert_false(scan(nul, sizeof nul - 1));
}

/* A shape the scan cannot represent (more than KND_SCAN_FIELDS members) is always left to the general path. */
static void test_scan_leaves_shapes_it_cannot_hold(void **state)
{
    (void)state;
    kn_buf blobs;
    kn_buf_init(&blobs, SIZE_MAX);
    knd_scan sc;
    knd_view items[KND_SCAN_FIELDS];
    const char *json = "{\"StreamName\":\"s\"}";
    assert_false(knd_schema_scan(k_shape, json, strlen(json), items, 1, &blobs, &sc)); /* Limit: an integer */
    static const knd_field nine[] = {{.name = "A", .type = KND_T_STRING}, {.name = "B", .type = KND_T_STRING},
                                     {.name = "C", .type = KND_T_STRING}, {.name = "D", .type = KND_T_STRING},
                                     {.name = "E", .type = KND_T_STRING}, {.name = "F", .type = KND_T_STRING},
                                     {.name = "G", .type = KND_T_STRING}, {.name = "H", .type = KND_T_STRING},
                                     {.name = "I", .type = KND_T_STRING}, {0}};
    json = "{\"A\":\"x\"}";
    assert_true(knd_schema_scan(nine + 1, "{\"B\":\"x\"}", 9, items, 1, &blobs, &sc));
    assert_false(knd_schema_scan(nine, json, strlen(json), items, 1, &blobs, &sc));
    assert_int_equal(knd_schema_index(k_put_entry, "Data"), 2);
    assert_int_equal(knd_schema_index(k_put_entry, "Nope"), -1);
    kn_buf_cleanup(&blobs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_given_other_types),
        cmocka_unit_test(test_integer_boolean_timestamp_given_other_types),
        cmocka_unit_test(test_containers_given_other_types),
        cmocka_unit_test(test_blob_must_be_canonical_base64),
        cmocka_unit_test(test_nulls_and_unknown_members_are_absent),
        cmocka_unit_test(test_required_members),
        cmocka_unit_test(test_stream_arn_stands_in_for_stream_name),
        cmocka_unit_test(test_pattern_then_length_in_field_order),
        cmocka_unit_test(test_list_members_are_numbered_from_one),
        cmocka_unit_test(test_too_long_list_prints_members_and_caps_at_ten),
        cmocka_unit_test(test_integer_limits_and_truncation),
        cmocka_unit_test(test_enum_and_nested_structure),
        cmocka_unit_test(test_map_keys_and_values),
        cmocka_unit_test(test_partition_key_counts_characters),
        cmocka_unit_test(test_scan_takes_plain_put_records),
        cmocka_unit_test(test_scan_takes_500_records_not_501),
        cmocka_unit_test(test_scan_leaves_the_rest_to_the_general_path),
        cmocka_unit_test(test_scan_leaves_shapes_it_cannot_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
