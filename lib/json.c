#include "json.h"

#include <string.h>

/* cJSON decodes "\u0000" into a C string that ends there, which would silently cut a value (a partition key
 * "k\u0000x" would become "k"); such documents are refused whole instead. Backslashes only occur inside strings in
 * valid JSON, so a scan of escapes needs no string tracking. */
static bool has_nul_escape(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
        i++; /* skip the escaped character: an escaped backslash before "u0000" makes that plain text */
    }
    return false;
}

cJSON *kn_json_parse(const void *text, size_t len)
{
    if (!text || len == 0 || has_nul_escape(text, len))
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
