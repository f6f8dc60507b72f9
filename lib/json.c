#include "json.h"

#include "validate.h"

#include <string.h>

/* What cJSON would take but JSON (RFC 8259) or our C strings cannot: a raw control character inside a string (JSON
 * forbids it; AWS's parser answers SerializationException), and "\u0000", which cJSON decodes into a C string that
 * ends there, silently cutting the value (a partition key "k\u0000x" would become "k"). Such documents are refused
 * whole. */
static bool has_unsafe_string(const char *s, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!in_string) {
            in_string = c == '"';
        } else if (c == '"') {
            in_string = false;
        } else if (c < 0x20) {
            return true;
        } else if (c == '\\') {
            if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                return true;
            i++; /* the escaped character: an escaped quote does not end the string */
        }
    }
    return false;
}

cJSON *kn_json_parse(const void *text, size_t len)
{
    if (!text || len == 0 || has_unsafe_string(text, len))
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root)
        return NULL;
    /* cJSON stops after the first value; anything but whitespace after it means the body is not one JSON value. */
    const char *p = end, *stop = (const char *)text + len;
    while (p < stop && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p != stop) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *kn_json_string(const cJSON *obj, const char *name)
{
    if (!cJSON_IsObject(obj))
        return NULL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

bool kn_json_copy_string(const cJSON *obj, const char *name, char *out, size_t cap)
{
    const char *s = kn_json_string(obj, name);
    size_t n = s ? strlen(s) : 0;
    if (!s || n >= cap) {
        if (cap)
            out[0] = '\0';
        return false;
    }
    memcpy(out, s, n + 1);
    return true;
}

void kn_json_error_fields(const cJSON *root, const char **type, const char **message)
{
    *type = kn_json_string(root, "__type");
    *message = kn_json_string(root, "message");
    if (!*message)
        *message = kn_json_string(root, "Message");
}

/* Bytes that stand for themselves inside a JSON string: printable ASCII but '"' and '\\'. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Nonzero when some byte of x is zero (the classic test, exact for the "some" question). */
static uint64_t has_zero(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

/* A word is plain when no byte has its top bit set, is below 0x20, or equals '"', '\\' or 0x7F. */
size_t kn_json_plain_prefix(const char *s, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if ((x & HIGHS) || ((x - 0x20 * ONES) & HIGHS) || has_zero(x ^ ('"' * ONES)) ||
            has_zero(x ^ ('\\' * ONES)) || has_zero(x ^ (0x7F * ONES)))
            break;
    }
    while (i < len && plain((unsigned char)s[i]))
        i++;
    return i;
}

/* Control characters are spelled \u00XX, never \n or \t: the same JSON, and one rule fewer. */
kn_status kn_json_escape(kn_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t plain_len = kn_json_plain_prefix(s, len);
    if (plain_len == len) /* the common case: nothing to escape */
        return kn_buf_append(b, s, len);
    /* Only invalid text takes the slow path of replacing its non-ASCII bytes. */
    bool valid_utf8 = kn_utf8_chars(s, len) != (size_t)-1;
    kn_status st = KN_OK;
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    for (size_t i = plain_len; i < len && st == KN_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t esc_len = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc_len = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        } else if (c >= 0x80 && !valid_utf8) {
            memcpy(esc, "\\ufffd", 6);
            esc_len = 6;
        } else {
            continue;
        }
        st = kn_buf_append(b, s + run, i - run);
        if (st == KN_OK)
            st = kn_buf_append(b, esc, esc_len);
        run = i + 1;
    }
    if (st == KN_OK)
        st = kn_buf_append(b, s + run, len - run);
    return st;
}
