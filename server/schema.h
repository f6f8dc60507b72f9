/* knd_schema: the shapes of Kinesis inputs as data (after botocore's data/kinesis/2013-12-02/service-2.json), and the
 * two checks AWS runs on a request body before any operation sees it, with AWS's own error texts:
 *
 *  1. deserialisation (knd_schema_check_types): a member of the wrong JSON type, or a Data blob that is not canonical
 *     base64, is a SerializationException ("class java.lang.Boolean can not be converted to an String", ...). The
 *     first such member in field order wins.
 *  2. constraints (knd_schema_validate): every violated constraint, in field order and, within a field, in the order
 *     not-null, pattern, minimum length, maximum length, minimum, maximum, enum (the order AWS reports them in), at
 *     most 10, joined into "N validation errors detected: Value 'x' at 'streamName' failed to satisfy constraint:
 *     Member must ...; ...".
 *
 * Members the schema does not know are ignored and JSON null counts as absent, as AWS does. Field order follows AWS's
 * messages as recorded by kinesalite's tests against the real service. */
#ifndef KND_SCHEMA_H
#define KND_SCHEMA_H

#include "../lib/buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum knd_ftype {
    KND_T_STRING,
    KND_T_INTEGER,   /* 32-bit: fractions truncated, values beyond 32 bits clamped, as AWS's deserialiser does */
    KND_T_BOOLEAN,
    KND_T_BLOB,      /* base64 text on the wire; lengths are of the decoded bytes */
    KND_T_TIMESTAMP, /* epoch seconds, fractions allowed */
    KND_T_LIST,
    KND_T_MAP,       /* string keys, values described by `member` */
    KND_T_STRUCT,
} knd_ftype;

typedef enum knd_pattern {
    KND_PAT_NONE,
    KND_PAT_NAME,       /* [a-zA-Z0-9_.-]+ (stream names, shard ids) */
    KND_PAT_HASH_KEY,   /* 0|([1-9]\d{0,38}) */
    KND_PAT_SEQUENCE,   /* 0|([1-9]\d{0,128}) */
    KND_PAT_STREAM_ARN, /* arn:aws.*:kinesis:.*:\d{12}:stream/\S+ */
} knd_pattern;

enum {
    KND_F_NOT_NULL = 1u << 0,
    KND_F_NOT_NULL_UNLESS_ARN = 1u << 1, /* StreamName: required unless the request names the stream by StreamARN */
    KND_F_MIN_LEN = 1u << 2,
    KND_F_MAX_LEN = 1u << 3,
    KND_F_MIN = 1u << 4,
    KND_F_MAX = 1u << 5,
};

typedef struct knd_field {
    const char *name;               /* member name as sent, e.g. "StreamName"; NULL ends an array of fields */
    knd_ftype type;
    unsigned flags;
    knd_pattern pattern;
    int64_t min_len, max_len;       /* string length in characters, blob in bytes, list and map in entries */
    int64_t min, max;               /* numbers */
    const char *const *enum_values; /* NULL-terminated; NULL when any value goes */
    const struct knd_field *member; /* list members and map values */
    const struct knd_field *fields; /* structure members */
    const char *member_str;         /* how AWS prints each member of this list inside a message, when not its value */
    int64_t key_min_len, key_max_len; /* map keys, checked when key_max_len > 0 */
} knd_field;

/* Runs check 1 on obj (a JSON object) against fields. On a mismatch returns false and appends the
 * SerializationException message to msg. */
bool knd_schema_check_types(const knd_field *fields, const cJSON *obj, kn_buf *msg);

/* Runs check 2 on obj, which passed check 1. Returns the number of violations (at most 10); when there are any, the
 * full ValidationException message is appended to msg. */
size_t knd_schema_validate(const knd_field *fields, const cJSON *obj, kn_buf *msg);

/* The member `name` of obj, or NULL when it is absent or JSON null. */
const cJSON *knd_schema_get(const cJSON *obj, const char *name);

/* An integer member's value after check 1, read the way AWS's deserialiser reads it: fractions floored, values
 * beyond 32 bits clamped. */
int64_t knd_schema_int(const cJSON *item);

/* Bytes a canonical base64 text of len characters decodes to. */
size_t knd_schema_blob_len(const char *text, size_t len);

/* ---- the fast path ----
 * A body that a plain client sends (only string, blob and list-of-structure members the shape knows, strings of
 * printable ASCII without escapes, every constraint met) is read without building a cJSON tree: knd_schema_scan
 * reports where each member's text is in the body. It never reports errors: whenever it answers false, the body goes
 * through kn_json_parse and checks 1 and 2 as before, which give AWS's messages. So it must answer true only for a
 * body those would accept, with the same values. */

/* A member's value: for a string its text in the body (the fast path takes no escapes, so the bytes are the value),
 * for a blob its decoded bytes. */
typedef struct knd_view {
    const char *s; /* NULL when the member is absent */
    size_t len;
} knd_view;

#define KND_SCAN_FIELDS 8 /* shapes with more members (at either level) are left to the general path */

typedef struct knd_scan {
    const knd_field *shape;           /* the shape scanned (positions for knd_schema_index) */
    knd_view fields[KND_SCAN_FIELDS]; /* top-level members, by position in the shape */
    knd_view *items;  /* the list member's entries: entry i's members at items[i * KND_SCAN_FIELDS + position] */
    size_t count;     /* entries in the list; 0 when the shape has none or it is absent */
    const knd_field *item_fields; /* the entries' shape (positions for knd_schema_index); NULL without a list */
} knd_scan;

/* Reads body (JSON of len bytes) against fields. True when the body is one the fast path takes and passes checks 1
 * and 2 (and is valid UTF-8: it is ASCII); *out then holds views into body (strings) and into blobs (blobs, decoded
 * and appended there), and out->items = items, an array of items_cap * KND_SCAN_FIELDS views owned by the caller (a
 * list with more entries is left to the general path). Both arrays must outlive the views. False when the general
 * path must decide; *out and the bytes past blobs->len are then undefined. */
bool knd_schema_scan(const knd_field *fields, const char *body, size_t len, knd_view *items, size_t items_cap,
                     kn_buf *blobs, knd_scan *out);

/* Position of member `name` in fields, or -1. */
int knd_schema_index(const knd_field *fields, const char *name);

#endif
