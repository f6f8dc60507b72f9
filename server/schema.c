#include "schema.h"

#include "../lib/base64.h"
#include "../lib/validate.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_VIOLATIONS 10 /* AWS stops collecting after ten */
#define PATH_MAX_LEN 256  /* "records.500.member.partitionKey": shapes nest three deep at most */

static const char k_list_here[] = "Start of list found where not expected";
static const char k_map_here[] = "Start of structure or map found where not expected.";
static const char k_number[] = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to ";

const cJSON *knd_schema_get(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return item && !cJSON_IsNull(item) ? item : NULL;
}

int64_t knd_schema_int(const cJSON *item)
{
    double d = item->valuedouble;
    if (d <= (double)INT32_MIN)
        return INT32_MIN;
    if (d >= (double)INT32_MAX)
        return INT32_MAX;
    int64_t v = (int64_t)d; /* truncates toward zero; AWS floors */
    return (double)v > d ? v - 1 : v;
}

static bool is_b64(unsigned char c)
{
    return isalnum(c) || c == '+' || c == '/';
}

size_t knd_schema_blob_len(const char *text, size_t len)
{
    size_t pad = 0;
    while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
        pad++;
    return len / 4 * 3 - pad;
}

/* Bytes of the UTF-8 character that starts with lead byte c (1 for anything malformed). */
static size_t utf8_len(unsigned char c)
{
    return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* AWS decodes blobs strictly: whole quanta, only alphabet characters, padding only at the end, and no stray bits in
 * the last character. Checked in that order, as AWS reports the first rule broken; the accept/reject decision is the
 * same as kn_base64_decode_canonical's, which the fast path uses. */
static bool check_blob(const char *s, size_t len, kn_buf *msg)
{
    const char *why = NULL;
    char detail[96];
    if (len % 4 != 0) {
        snprintf(detail, sizeof detail, "Base64 encoded length is expected a multiple of 4 bytes but found: %zu", len);
        why = detail;
    }
    for (size_t i = 0; !why && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_b64(c) || (c == '=' && (i + 1 == len || s[i + 1] == '=')))
            continue;
        size_t n = utf8_len(c);
        if (n > len - i)
            n = 1;
        snprintf(detail, sizeof detail, "Invalid Base64 character: '%.*s'", (int)n, s + i);
        why = detail;
    }
    /* What is left to break is in the last quantum (more than two '=', or stray bits): the canonical decoder's rule. */
    uint8_t last[3];
    size_t last_len;
    if (!why && len > 0 && !kn_base64_decode_canonical(s + len - 4, 4, last, &last_len))
        why = "Invalid last non-pad Base64 character dectected"; /* sic: AWS's spelling */
    if (!why)
        return true;
    kn_buf_append_str(msg, "'");
    kn_buf_append(msg, s, len);
    kn_buf_append_str(msg, "' can not be converted to a Blob: ");
    kn_buf_append_str(msg, why);
    return false;
}

static bool type_error(kn_buf *msg, const char *a, const char *b)
{
    kn_buf_append_str(msg, a);
    if (b)
        kn_buf_append_str(msg, b);
    return false;
}

static bool check_fields(const knd_field *fields, const cJSON *obj, kn_buf *msg);

/* Whether v (never NULL or null) can be read as f's type. */
static bool check_value(const knd_field *f, const cJSON *v, kn_buf *msg);

static bool check_children(const knd_field *member, const cJSON *v, kn_buf *msg)
{
    const cJSON *child;
    cJSON_ArrayForEach(child, v)
    {
        if (!cJSON_IsNull(child) && !check_value(member, child, msg))
            return false;
    }
    return true;
}

static bool check_scalar(const knd_field *f, const cJSON *v, kn_buf *msg)
{
    bool b = cJSON_IsBool(v), num = cJSON_IsNumber(v), str = cJSON_IsString(v);
    switch (f->type) {
    case KND_T_STRING:
        if (b)
            return type_error(msg, "class java.lang.Boolean can not be converted to an String", NULL);
        if (num)
            return type_error(msg, k_number, "an String");
        return true;
    case KND_T_INTEGER:
        if (b)
            return type_error(msg, "class java.lang.Boolean can not be converted to an Integer", NULL);
        if (str)
            return type_error(msg, "class java.lang.String can not be converted to an Integer", NULL);
        return true;
    case KND_T_BOOLEAN:
        if (num)
            return type_error(msg, k_number, "an Boolean");
        if (str) {
            kn_buf_append_str(msg, "'");
            for (const char *p = v->valuestring; *p; p++)
                kn_buf_append(msg, &(char){(char)toupper((unsigned char)*p)}, 1);
            return type_error(msg, "' can not be converted to an Boolean", NULL);
        }
        return true;
    case KND_T_BLOB:
        if (b)
            return type_error(msg, "class java.lang.Boolean can not be converted to a Blob", NULL);
        if (num)
            return type_error(msg, k_number, "a Blob");
        return check_blob(v->valuestring, strlen(v->valuestring), msg);
    case KND_T_TIMESTAMP:
        if (b)
            return type_error(msg, "class java.lang.Boolean can not be converted to milliseconds since epoch", NULL);
        if (str)
            return type_error(msg, "class java.lang.String can not be converted to milliseconds since epoch", NULL);
        return true;
    case KND_T_LIST:
        return type_error(msg, "Expected list or null", NULL);
    case KND_T_MAP:
        return type_error(msg, "Expected map or null", NULL);
    case KND_T_STRUCT:
        return type_error(msg, "Expected null", NULL);
    }
    return true;
}

static bool check_value(const knd_field *f, const cJSON *v, kn_buf *msg)
{
    if (cJSON_IsArray(v)) {
        if (f->type != KND_T_LIST)
            return type_error(msg, k_list_here, NULL);
        return check_children(f->member, v, msg);
    }
    if (cJSON_IsObject(v)) {
        if (f->type == KND_T_MAP)
            return check_children(f->member, v, msg);
        if (f->type == KND_T_STRUCT)
            return check_fields(f->fields, v, msg);
        return type_error(msg, k_map_here, NULL);
    }
    return check_scalar(f, v, msg);
}

static bool check_fields(const knd_field *fields, const cJSON *obj, kn_buf *msg)
{
    for (const knd_field *f = fields; f->name; f++) {
        const cJSON *v = knd_schema_get(obj, f->name);
        if (v && !check_value(f, v, msg))
            return false;
    }
    return true;
}

bool knd_schema_check_types(const knd_field *fields, const cJSON *obj, kn_buf *msg)
{
    return check_fields(fields, obj, msg);
}

/* ---- constraints ---- */

typedef struct vctx {
    kn_buf *out;  /* "; "-joined violations */
    size_t count;
} vctx;

static bool name_pattern_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

static const char *pattern_text(knd_pattern p)
{
    switch (p) {
    case KND_PAT_NAME:
        return "[a-zA-Z0-9_.-]+";
    case KND_PAT_HASH_KEY:
        return "0|([1-9]\\d{0,38})";
    case KND_PAT_SEQUENCE:
        return "0|([1-9]\\d{0,128})";
    case KND_PAT_STREAM_ARN:
        return "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
    case KND_PAT_NONE:
        break;
    }
    return "";
}

static bool pattern_ok(knd_pattern p, const char *s, size_t len)
{
    switch (p) {
    case KND_PAT_NAME:
        return name_pattern_ok(s, len);
    case KND_PAT_HASH_KEY: {
        /* A well-formed key >= 2^128 matches the pattern; AWS rejects it later as an InvalidArgumentException. */
        const char *why = kn_validate_explicit_hash_key(s, len);
        return !why || why == kn_validate_hash_key_range;
    }
    case KND_PAT_SEQUENCE:
        return kn_validate_sequence_number(s, len) == NULL;
    case KND_PAT_STREAM_ARN:
        /* Over-long ARNs are reported by the length rule alone. */
        return len > 2048 || kn_validate_stream_arn(s, len) == NULL;
    case KND_PAT_NONE:
        break;
    }
    return true;
}

/* How AWS prints a value inside a violation: strings and numbers quoted, lists and maps in Java's toString form. */
static void render_value(const knd_field *f, const cJSON *v, kn_buf *b)
{
    switch (f->type) {
    case KND_T_STRING:
        kn_buf_append_str(b, v->valuestring);
        break;
    case KND_T_INTEGER:
        kn_buf_printf(b, "%" PRId64, knd_schema_int(v));
        break;
    case KND_T_LIST: {
        const cJSON *child;
        kn_buf_append_str(b, "[");
        cJSON_ArrayForEach(child, v)
        {
            if (child != v->child)
                kn_buf_append_str(b, ", ");
            if (f->member_str)
                kn_buf_append_str(b, f->member_str);
            else if (cJSON_IsString(child))
                kn_buf_append_str(b, child->valuestring);
        }
        kn_buf_append_str(b, "]");
        break;
    }
    case KND_T_MAP: {
        const cJSON *child;
        kn_buf_append_str(b, "{");
        cJSON_ArrayForEach(child, v)
        {
            if (child != v->child)
                kn_buf_append_str(b, ", ");
            kn_buf_printf(b, "%s=%s", child->string, cJSON_IsString(child) ? child->valuestring : "");
        }
        kn_buf_append_str(b, "}");
        break;
    }
    default:
        break;
    }
}

/* Records one violation of the member at `path` (value v, NULL when absent). */
static void violation(vctx *c, const knd_field *f, const cJSON *v, const char *path, const char *constraint)
{
    if (c->count >= MAX_VIOLATIONS)
        return;
    if (c->count++)
        kn_buf_append_str(c->out, "; ");
    if (!v) {
        kn_buf_append_str(c->out, "Value null");
    } else if (f->type == KND_T_BLOB) {
        /* AWS stopped quoting blob contents (once "java.nio.HeapByteBuffer[...]"): "Value at 'data' ...". */
        kn_buf_append_str(c->out, "Value");
    } else {
        kn_buf_append_str(c->out, "Value '");
        render_value(f, v, c->out);
        kn_buf_append_str(c->out, "'");
    }
    kn_buf_printf(c->out, " at '%s' failed to satisfy constraint: %s", path, constraint);
}

static int64_t value_length(const knd_field *f, const cJSON *v)
{
    switch (f->type) {
    case KND_T_STRING: {
        size_t len = strlen(v->valuestring);
        size_t chars = kn_utf8_chars(v->valuestring, len);
        return (int64_t)(chars == (size_t)-1 ? len : chars);
    }
    case KND_T_BLOB:
        return (int64_t)knd_schema_blob_len(v->valuestring, strlen(v->valuestring));
    case KND_T_LIST:
    case KND_T_MAP:
        return cJSON_GetArraySize(v);
    default:
        return 0;
    }
}

static void validate_fields(vctx *c, const knd_field *fields, const cJSON *obj, const char *parent);
static void validate_value(vctx *c, const knd_field *f, const cJSON *v, const char *path, bool required);

static void validate_map_keys(vctx *c, const knd_field *f, const cJSON *v, const char *path)
{
    const cJSON *child;
    bool keys_ok = true, values_ok = true;
    cJSON_ArrayForEach(child, v)
    {
        int64_t klen = (int64_t)strlen(child->string);
        keys_ok = keys_ok && klen >= f->key_min_len && klen <= f->key_max_len;
        int64_t vlen = cJSON_IsString(child) ? (int64_t)strlen(child->valuestring) : 0;
        values_ok = values_ok && vlen >= f->member->min_len && vlen <= f->member->max_len;
    }
    char text[160];
    if (!keys_ok) {
        snprintf(text, sizeof text,
                 "Map keys must satisfy constraint: [Member must have length less than or equal to %" PRId64
                 ", Member must have length greater than or equal to %" PRId64 "]",
                 f->key_max_len, f->key_min_len);
        violation(c, f, v, path, text);
    }
    if (!values_ok) {
        snprintf(text, sizeof text,
                 "Map value must satisfy constraint: [Member must have length less than or equal to %" PRId64
                 ", Member must have length greater than or equal to %" PRId64 "]",
                 f->member->max_len, f->member->min_len);
        violation(c, f, v, path, text);
    }
}

/* Members of a list are reported as "<list>.<1-based index>.member". */
static void validate_members(vctx *c, const knd_field *f, const cJSON *v, const char *path)
{
    const cJSON *child;
    int i = 0;
    cJSON_ArrayForEach(child, v)
    {
        i++;
        if (c->count >= MAX_VIOLATIONS)
            return;
        char sub[PATH_MAX_LEN];
        snprintf(sub, sizeof sub, "%s.%d.member", path, i);
        validate_value(c, f->member, cJSON_IsNull(child) ? NULL : child, sub, false);
    }
}

static void validate_value(vctx *c, const knd_field *f, const cJSON *v, const char *path, bool required)
{
    char text[160];
    if (!v) {
        if (required)
            violation(c, f, NULL, path, "Member must not be null");
        return;
    }
    if (f->type == KND_T_STRING && f->pattern != KND_PAT_NONE &&
        !pattern_ok(f->pattern, v->valuestring, strlen(v->valuestring))) {
        snprintf(text, sizeof text, "Member must satisfy regular expression pattern: %s", pattern_text(f->pattern));
        violation(c, f, v, path, text);
    }
    if (f->flags & (KND_F_MIN_LEN | KND_F_MAX_LEN)) {
        int64_t len = value_length(f, v);
        if ((f->flags & KND_F_MIN_LEN) && len < f->min_len) {
            snprintf(text, sizeof text, "Member must have length greater than or equal to %" PRId64, f->min_len);
            violation(c, f, v, path, text);
        }
        if ((f->flags & KND_F_MAX_LEN) && len > f->max_len) {
            snprintf(text, sizeof text, "Member must have length less than or equal to %" PRId64, f->max_len);
            violation(c, f, v, path, text);
        }
    }
    if (f->type == KND_T_INTEGER) {
        int64_t n = knd_schema_int(v);
        if ((f->flags & KND_F_MIN) && n < f->min) {
            snprintf(text, sizeof text, "Member must have value greater than or equal to %" PRId64, f->min);
            violation(c, f, v, path, text);
        }
        if ((f->flags & KND_F_MAX) && n > f->max) {
            snprintf(text, sizeof text, "Member must have value less than or equal to %" PRId64, f->max);
            violation(c, f, v, path, text);
        }
    }
    if (f->enum_values) {
        bool found = false;
        for (const char *const *e = f->enum_values; *e && !found; e++)
            found = strcmp(*e, v->valuestring) == 0;
        if (!found) {
            kn_buf set;
            kn_buf_init(&set, 1024);
            kn_buf_append_str(&set, "Member must satisfy enum value set: [");
            for (const char *const *e = f->enum_values; *e; e++)
                kn_buf_printf(&set, "%s%s", e == f->enum_values ? "" : ", ", *e);
            kn_buf_append_str(&set, "]");
            violation(c, f, v, path, set.data ? (const char *)set.data : "");
            kn_buf_cleanup(&set);
        }
    }
    if (f->type == KND_T_MAP && f->key_max_len > 0)
        validate_map_keys(c, f, v, path);
    if (f->type == KND_T_LIST)
        validate_members(c, f, v, path);
    if (f->type == KND_T_STRUCT)
        validate_fields(c, f->fields, v, path);
}

static void validate_fields(vctx *c, const knd_field *fields, const cJSON *obj, const char *parent)
{
    bool has_arn = knd_schema_get(obj, "StreamARN") != NULL;
    for (const knd_field *f = fields; f->name; f++) {
        char path[PATH_MAX_LEN];
        /* AWS names members in messages in lower camel case: "streamName", "records.1.member.data". */
        snprintf(path, sizeof path, "%s%s%c%s", parent ? parent : "", parent ? "." : "",
                 tolower((unsigned char)f->name[0]), f->name + 1);
        bool required = (f->flags & KND_F_NOT_NULL) || ((f->flags & KND_F_NOT_NULL_UNLESS_ARN) && !has_arn);
        validate_value(c, f, knd_schema_get(obj, f->name), path, required);
    }
}

size_t knd_schema_validate(const knd_field *fields, const cJSON *obj, kn_buf *msg)
{
    kn_buf list;
    kn_buf_init(&list, msg->cap);
    vctx c = {.out = &list};
    validate_fields(&c, fields, obj, NULL);
    if (c.count) {
        kn_buf_printf(msg, "%zu validation error%s detected: ", c.count, c.count == 1 ? "" : "s");
        if (list.data)
            kn_buf_append(msg, list.data, list.len);
    }
    kn_buf_cleanup(&list);
    return c.count;
}

/* ---- the fast path ---- */

typedef struct scanner {
    const char *p, *end;
    knd_view *items;
    size_t items_cap;
    knd_scan *out;
    uint8_t *blob_at; /* where the next blob is decoded to */
} scanner;

int knd_schema_index(const knd_field *fields, const char *name)
{
    for (int i = 0; fields[i].name; i++)
        if (strcmp(fields[i].name, name) == 0)
            return i;
    return -1;
}

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Consumes c after optional whitespace. */
static bool take(scanner *s, char c)
{
    skip_ws(s);
    if (s->p == s->end || *s->p != c)
        return false;
    s->p++;
    return true;
}

/* A string of printable ASCII without escapes (its closing quote consumed). */
static bool plain_string(scanner *s, knd_view *v)
{
    if (!take(s, '"'))
        return false;
    const char *start = s->p;
    for (; s->p < s->end; s->p++) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *v = (knd_view){start, (size_t)(s->p++ - start)};
            return true;
        }
        if (c < 0x20 || c >= 0x80 || c == '\\')
            return false;
    }
    return false;
}

/* Base64 text holds no quote, so its end is the first quote; the strict decoder then vets every character. */
static bool blob_string(scanner *s, knd_view *v)
{
    if (!take(s, '"'))
        return false;
    const char *close = memchr(s->p, '"', (size_t)(s->end - s->p));
    size_t n;
    if (!close || !kn_base64_decode_canonical(s->p, (size_t)(close - s->p), s->blob_at, &n))
        return false;
    *v = (knd_view){(const char *)s->blob_at, n};
    s->blob_at += n;
    s->p = close + 1;
    return true;
}

/* What validate_value checks of a string or blob, on ASCII text (characters are bytes). */
static bool constraints_ok(const knd_field *f, const knd_view *v)
{
    int64_t len = (int64_t)v->len; /* a blob's view is of its decoded bytes */
    if (f->type == KND_T_STRING && f->pattern != KND_PAT_NONE && !pattern_ok(f->pattern, v->s, v->len))
        return false;
    if ((f->flags & KND_F_MIN_LEN) && len < f->min_len)
        return false;
    if ((f->flags & KND_F_MAX_LEN) && len > f->max_len)
        return false;
    if (f->enum_values) {
        for (const char *const *e = f->enum_values; *e; e++)
            if (strlen(*e) == v->len && memcmp(*e, v->s, v->len) == 0)
                return true;
        return false;
    }
    return true;
}

/* The member of fields the key names (an exact match, as cJSON_GetObjectItemCaseSensitive finds it); -1 for one the
 * shape does not know, which the general path ignores but this one does not skip. */
static int field_of(const knd_field *fields, const knd_view *key)
{
    for (int i = 0; fields[i].name && i < KND_SCAN_FIELDS; i++)
        if (fields[i].name[0] == key->s[0] && strlen(fields[i].name) == key->len &&
            memcmp(fields[i].name, key->s, key->len) == 0)
            return i;
    return -1;
}

static bool scan_object(scanner *s, const knd_field *fields, knd_view *views, bool top);

/* A list of structures: its entries go to s->items. */
static bool scan_list(scanner *s, const knd_field *f, knd_view *v)
{
    if (!take(s, '[') || !f->member || f->member->type != KND_T_STRUCT || s->out->items)
        return false;
    s->out->items = s->items;
    s->out->item_fields = f->member->fields;
    size_t n = 0;
    do {
        if (n == s->items_cap)
            return false;
        knd_view *entry = s->items + n * KND_SCAN_FIELDS;
        for (int i = 0; i < KND_SCAN_FIELDS; i++)
            entry[i] = (knd_view){NULL, 0};
        if (!scan_object(s, f->member->fields, entry, false))
            return false;
        n++;
    } while (take(s, ','));
    if (!take(s, ']'))
        return false;
    s->out->count = n;
    *v = (knd_view){"", 0}; /* present; its entries are in items */
    return ((f->flags & KND_F_MIN_LEN) == 0 || (int64_t)n >= f->min_len) &&
           ((f->flags & KND_F_MAX_LEN) == 0 || (int64_t)n <= f->max_len);
}

static bool scan_member(scanner *s, const knd_field *f, knd_view *v, bool top)
{
    switch (f->type) {
    case KND_T_STRING:
        return plain_string(s, v) && constraints_ok(f, v);
    case KND_T_BLOB:
        return blob_string(s, v) && constraints_ok(f, v);
    case KND_T_LIST:
        return top && scan_list(s, f, v);
    default:
        return false;
    }
}

/* An object of the shape's members, each at most once; then its required members. */
static bool scan_object(scanner *s, const knd_field *fields, knd_view *views, bool top)
{
    if (!take(s, '{'))
        return false;
    do {
        knd_view key;
        if (!plain_string(s, &key) || !take(s, ':'))
            return false;
        int i = field_of(fields, &key);
        if (i < 0 || views[i].s || !scan_member(s, &fields[i], &views[i], top))
            return false;
    } while (take(s, ','));
    if (!take(s, '}'))
        return false;
    for (int i = 0; fields[i].name; i++) {
        if (views[i].s)
            continue;
        if (fields[i].flags & KND_F_NOT_NULL)
            return false;
        if (fields[i].flags & KND_F_NOT_NULL_UNLESS_ARN) {
            int arn = field_of(fields, &(knd_view){"StreamARN", 9});
            if (arn < 0 || !views[arn].s)
                return false;
        }
    }
    return true;
}

/* Whether the general path would see the same members: a shape of at most KND_SCAN_FIELDS members at each level. */
static bool shape_fits(const knd_field *fields)
{
    int n = 0;
    for (; fields[n].name; n++) {
        if (n == KND_SCAN_FIELDS)
            return false;
        const knd_field *m = fields[n].member;
        if (fields[n].type == KND_T_LIST && m && m->type == KND_T_STRUCT && !shape_fits(m->fields))
            return false;
    }
    return true;
}

bool knd_schema_scan(const knd_field *fields, const char *body, size_t len, knd_view *items, size_t items_cap,
                     kn_buf *blobs, knd_scan *out)
{
    *out = (knd_scan){.shape = fields};
    if (!shape_fits(fields))
        return false;
    /* Blobs decode to at most 3/4 of their text, so this one reservation holds them all and never moves. */
    scanner s = {.p = body, .end = body + len, .items = items, .items_cap = items_cap, .out = out,
                 .blob_at = kn_buf_reserve(blobs, len / 4 * 3)};
    if (!s.blob_at || !scan_object(&s, fields, out->fields, true))
        return false;
    skip_ws(&s);
    if (s.p != s.end)
        return false;
    blobs->len += (size_t)(s.blob_at - (blobs->data + blobs->len));
    blobs->data[blobs->len] = '\0';
    return true;
}
