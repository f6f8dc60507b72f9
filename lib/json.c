#include "json.h"

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
