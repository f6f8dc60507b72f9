/* Fuzz target: kinesisd's fast path for PutRecord and PutRecords bodies (server/schema.h knd_schema_scan) against
 * the general path it stands in for (lib/json.h kn_json_parse, knd_schema_check_types, knd_schema_validate), and
 * the base64 decoders it relies on (lib/base64.h kn_base64_decode_canonical, kn_base64_decode; both AVX2 and scalar).
 *
 * Input: any bytes, used as a JSON body, as base64 text, and as the choices that make a plain body (below).
 * Properties:
 *   - for each shape (PutRecords, PutRecord and a test shape with an enum and a blob length limit): whenever the scan
 *     takes the body, the body is ASCII, kn_json_parse gives an object, both checks pass, and every member the scan
 *     reports is the general path's: the same members present, strings byte for byte (views into the body), blobs as
 *     a reference decoder reads the JSON string (views into the blob buffer, past what it held before), the same
 *     number of list entries with the same members each. The blob buffer grows by exactly the blobs' bytes and stays
 *     NUL-terminated; when the scan refuses, the buffer's length and content are as before;
 *   - a scan that took a list of n entries takes it again with room for exactly n and refuses it with room for n - 1;
 *   - the same for the body cut at every length (at 512 spread lengths and the last 32 for bodies over 512 bytes),
 *     each cut in a heap block of its own size, so ASan sees any read past it;
 *   - a PutRecords or PutRecord body made from the input the way a plain client writes one (members in any order,
 *     JSON whitespace, 1 to 8 records, printable partition keys of up to 256 characters, data of up to 255 bytes,
 *     hash keys, sequence numbers, names, ARNs) is taken, so the comparison above runs on a wide range of values;
 *   - kn_base64_decode and kn_base64_decode_canonical agree with a reference decoder written here from RFC 4648
 *     (section 4 alphabet, section 3.2 padding, section 3.5 zero pad bits) and base64.h's rules (decode: padded or
 *     unpadded, unused low bits ignored; canonical: whole quanta, padding only ending the last one, pad bits zero),
 *     verdict and bytes, on: the input, the input mapped into the alphabet, that with its tail padded, with one
 *     character replaced by an input byte, and cut to whole quanta. Texts of 32 characters or more go through the
 *     AVX2 blocks (on a CPU that has AVX2) and shorter ones only through the scalar code, so each long text is also
 *     decoded in pieces of 28 characters, which must agree with the reference too (and concatenate to the whole
 *     decoding). Output buffers are exactly the documented size (canonical: len / 4 * 3 bytes).
 * Every name here starts with ks_ so that the file can be included beside the other server targets in
 * tests/unit/test_knd_fuzz_regressions.c. */
#include "fuzz_util.h"

#include "base64.h"
#include "json.h"
#include "schema.h"

/* ---- the shapes: copies of server/api.c's k_put_record and k_put_records (static there), keep in step ---- */

#define KS_STREAM_NAME                                                                                              \
    {.name = "StreamName", .type = KND_T_STRING, .flags = KND_F_NOT_NULL_UNLESS_ARN | KND_F_MIN_LEN | KND_F_MAX_LEN, \
     .pattern = KND_PAT_NAME, .min_len = 1, .max_len = 128}
#define KS_STREAM_ARN                                                                                               \
    {.name = "StreamARN", .type = KND_T_STRING, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN,                           \
     .pattern = KND_PAT_STREAM_ARN, .min_len = 1, .max_len = 2048}
#define KS_PARTITION_KEY                                                                                            \
    {.name = "PartitionKey", .type = KND_T_STRING, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN,       \
     .min_len = 1, .max_len = 256}
#define KS_EXPLICIT_HASH_KEY {.name = "ExplicitHashKey", .type = KND_T_STRING, .pattern = KND_PAT_HASH_KEY}
#define KS_DATA {.name = "Data", .type = KND_T_BLOB, .flags = KND_F_NOT_NULL}

static const knd_field ks_put_record[] = {
    {.name = "SequenceNumberForOrdering", .type = KND_T_STRING, .pattern = KND_PAT_SEQUENCE},
    KS_PARTITION_KEY,
    KS_EXPLICIT_HASH_KEY,
    KS_DATA,
    KS_STREAM_NAME,
    KS_STREAM_ARN,
    {0},
};
static const knd_field ks_put_records_entry[] = {KS_PARTITION_KEY, KS_EXPLICIT_HASH_KEY, KS_DATA, {0}};
static const knd_field ks_put_records_member = {.name = "member", .type = KND_T_STRUCT, .fields = ks_put_records_entry};
static const knd_field ks_put_records[] = {
    {.name = "Records", .type = KND_T_LIST, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1,
     .max_len = 500, .member = &ks_put_records_member,
     .member_str = "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310"},
    KS_STREAM_NAME,
    KS_STREAM_ARN,
    {0},
};

/* Constraints no operation of the fast path has yet (an enum, a blob's maximum and minimum, a short list), so that
 * the scan's checks of them are compared too. */
static const char *const ks_modes[] = {"PROVISIONED", "ON_DEMAND", NULL};
static const knd_field ks_test_entry[] = {
    KS_PARTITION_KEY,
    {.name = "Data", .type = KND_T_BLOB, .flags = KND_F_NOT_NULL | KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1,
     .max_len = 4},
    {0},
};
static const knd_field ks_test_member = {.name = "member", .type = KND_T_STRUCT, .fields = ks_test_entry};
static const knd_field ks_test_shape[] = {
    {.name = "StreamMode", .type = KND_T_STRING, .flags = KND_F_NOT_NULL, .enum_values = ks_modes},
    {.name = "Records", .type = KND_T_LIST, .flags = KND_F_MIN_LEN | KND_F_MAX_LEN, .min_len = 1, .max_len = 3,
     .member = &ks_test_member},
    KS_STREAM_NAME,
    KS_STREAM_ARN,
    {0},
};

static const knd_field *const ks_shapes[] = {ks_put_records, ks_put_record, ks_test_shape};
#define KS_SHAPES (sizeof ks_shapes / sizeof ks_shapes[0])
#define KS_ITEMS 500                   /* what kinesisd gives the scan (server/api_int.h KND_SCAN_ITEMS) */
#define KS_CUT_ALL 512                 /* bodies up to this long are cut at every length */
#define KS_PIECE 28                    /* a piece of text short enough (< 32) for the scalar decoder alone */
#define KS_HELD "held"                 /* what an output buffer holds before a call, which the call must keep */
#define KS_HELD_LEN 4

/* ---- reference base64 decoder ---- */

static int ks_b64_value(unsigned char c)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c ? strchr(alphabet, c) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

/* Decodes text by quanta of 4 characters into out (room for len / 4 * 3 + 2 bytes). canonical: AWS's form (whole
 * quanta, pad bits zero); else base64.h's lenient one (padding optional, unused bits ignored). Returns the decoded
 * length, or -1 when text is not valid in that form. */
static long ks_ref_decode(const unsigned char *text, size_t len, bool canonical, uint8_t *out)
{
    size_t pad = 0;
    while (pad < len && text[len - 1 - pad] == '=')
        pad++;
    size_t data = len - pad, tail = data % 4;
    if (pad > 2 || tail == 1 || (pad > 0 && (len % 4 != 0 || tail + pad != 4)) || (canonical && len % 4 != 0))
        return -1;
    long n = 0;
    for (size_t q = 0; q < data; q += 4) {
        size_t chars = data - q < 4 ? data - q : 4;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int c = k < chars ? ks_b64_value(text[q + k]) : 0;
            if (c < 0)
                return -1;
            v = v << 6 | (uint32_t)c;
        }
        /* chars characters carry 6 * chars bits: chars - 1 whole bytes, the rest are pad bits */
        uint32_t dropped = v & ((UINT32_C(1) << (24 - 8 * (chars - 1))) - 1);
        if (canonical && dropped != 0)
            return -1;
        for (size_t k = 0; k + 1 < chars; k++)
            out[n++] = (uint8_t)(v >> (16 - 8 * k));
    }
    return n;
}

/* A heap copy of exactly n bytes (never NULL, even for 0), so that ASan reports any access past it. */
static uint8_t *ks_exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (!q)
        abort();
    if (n)
        memcpy(q, p, n);
    return q;
}

/* Both decoders on one text, against the reference. When whole is not NULL, this text is a piece of a canonical
 * text of whole_len decoded bytes, whole, so it must be canonical too and decode to whole's bytes from at on. */
static void ks_check_decoders(const uint8_t *t, size_t len, const uint8_t *whole, size_t whole_len, size_t at)
{
    uint8_t *text = ks_exact(t, len);
    uint8_t *expect = malloc(len / 4 * 3 + 3);
    if (!expect)
        abort();

    long lenient = ks_ref_decode(text, len, false, expect);
    kn_buf out;
    kn_buf_init(&out, SIZE_MAX);
    KN_FUZZ_CHECK(kn_buf_append(&out, KS_HELD, KS_HELD_LEN) == KN_OK);
    kn_status st = kn_base64_decode((const char *)text, len, &out);
    KN_FUZZ_CHECK(st == (lenient < 0 ? KN_ERR_INVALID_ARGUMENT : KN_OK));
    KN_FUZZ_CHECK(out.len == KS_HELD_LEN + (lenient < 0 ? 0 : (size_t)lenient));
    KN_FUZZ_CHECK(memcmp(out.data, KS_HELD, KS_HELD_LEN) == 0 && out.data[out.len] == '\0');
    KN_FUZZ_CHECK(lenient <= 0 || memcmp(out.data + KS_HELD_LEN, expect, (size_t)lenient) == 0);
    kn_buf_cleanup(&out);

    long canonical = ks_ref_decode(text, len, true, expect);
    uint8_t *dec = malloc(len >= 4 ? len / 4 * 3 : 1); /* exactly the room the contract asks for */
    if (!dec)
        abort();
    size_t dec_len = SIZE_MAX;
    bool ok = kn_base64_decode_canonical((const char *)text, len, dec, &dec_len);
    KN_FUZZ_CHECK(ok == (canonical >= 0));
    KN_FUZZ_CHECK(ok || !whole);
    if (ok) {
        KN_FUZZ_CHECK(dec_len == (size_t)canonical && (canonical == 0 || memcmp(dec, expect, dec_len) == 0));
        KN_FUZZ_CHECK(!whole || (at + dec_len <= whole_len && (dec_len == 0 || memcmp(whole + at, dec, dec_len) == 0)));
    }
    free(dec);
    free(expect);
    free(text);
}

/* The text, then (when long enough for the AVX2 blocks) its pieces of KS_PIECE characters, decoded by the scalar
 * code alone. */
static void ks_check_text(const uint8_t *text, size_t len)
{
    ks_check_decoders(text, len, NULL, 0, 0);
    if (len < 32)
        return;
    uint8_t *whole = malloc(len / 4 * 3 + 3);
    if (!whole)
        abort();
    long whole_len = ks_ref_decode(text, len, true, whole);
    for (size_t at = 0; at < len; at += KS_PIECE) {
        size_t n = len - at < KS_PIECE ? len - at : KS_PIECE;
        ks_check_decoders(text + at, n, whole_len >= 0 ? whole : NULL, whole_len >= 0 ? (size_t)whole_len : 0,
                          at / 4 * 3);
    }
    free(whole);
}

static void ks_check_base64(const uint8_t *data, size_t size)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ks_check_text(data, size);
    if (size == 0)
        return;
    uint8_t *mapped = malloc(size);
    if (!mapped)
        abort();
    for (size_t i = 0; i < size; i++)
        mapped[i] = (uint8_t)alphabet[data[i] & 63];
    ks_check_text(mapped, size);
    ks_check_text(mapped, size - size % 4);
    /* the last one or two characters made padding */
    size_t pad = (size_t)(data[0] >> 6) % 3;
    for (size_t i = 0; i < pad && i < size; i++)
        mapped[size - 1 - i] = '=';
    ks_check_text(mapped, size);
    /* one character replaced by a byte of the input, anywhere (any lane of a 32-character block) */
    if (size >= 4) {
        size_t at = ((size_t)data[1] << 8 | data[2]) % size;
        mapped[at] = data[3];
        ks_check_text(mapped, size);
    }
    free(mapped);
}

/* ---- the scan against the general path ---- */

/* Whether view v lies inside [lo, hi). */
static bool ks_inside(const knd_view *v, const void *lo, const void *hi)
{
    const char *s = v->s, *a = lo, *b = hi;
    return s >= a && s <= b && v->len <= (size_t)(b - s);
}

typedef struct ks_ctx {
    const char *body;
    size_t len;
    const kn_buf *blobs;
    size_t blobs_before; /* blobs->len before the scan */
    size_t blob_bytes;   /* decoded bytes the views hold, summed */
} ks_ctx;

/* Member f as the scan reported it (v) and as the general path holds it (item: NULL when absent or null). */
static void ks_same_member(ks_ctx *c, const knd_field *f, const knd_view *v, const cJSON *item)
{
    /* each check guards the reads after it, for a replay whose KN_FUZZ_FAIL returns */
    KN_FUZZ_CHECK((v->s != NULL) == (item != NULL));
    if (!item || !v->s)
        return;
    if (f->type == KND_T_STRING) {
        KN_FUZZ_CHECK(cJSON_IsString(item) && ks_inside(v, c->body, c->body + c->len));
        KN_FUZZ_CHECK(cJSON_IsString(item) && strlen(item->valuestring) == v->len &&
                      memcmp(item->valuestring, v->s, v->len) == 0);
    } else if (f->type == KND_T_BLOB) {
        KN_FUZZ_CHECK(cJSON_IsString(item));
        if (!cJSON_IsString(item))
            return;
        size_t n = strlen(item->valuestring);
        uint8_t *expect = malloc(n / 4 * 3 + 3);
        if (!expect)
            abort();
        long got = ks_ref_decode((const unsigned char *)item->valuestring, n, true, expect);
        KN_FUZZ_CHECK(got >= 0 && (size_t)got == v->len);
        KN_FUZZ_CHECK(ks_inside(v, c->blobs->data + c->blobs_before, c->blobs->data + c->blobs->len));
        KN_FUZZ_CHECK(got <= 0 || (size_t)got != v->len || memcmp(v->s, expect, v->len) == 0);
        c->blob_bytes += v->len;
        free(expect);
    } else {
        KN_FUZZ_CHECK(f->type == KND_T_LIST && cJSON_IsArray(item)); /* the entries are compared by the caller */
    }
}

/* The members of one object (the body or a list entry): views[i] is fields[i]'s. */
static void ks_same_object(ks_ctx *c, const knd_field *fields, const knd_view *views, const cJSON *obj)
{
    KN_FUZZ_CHECK(cJSON_IsObject(obj));
    for (int i = 0; fields[i].name; i++)
        ks_same_member(c, &fields[i], &views[i], knd_schema_get(obj, fields[i].name));
}

/* The scan took body for fields: the general path must take it too and read the same values. */
static void ks_check_taken(const knd_field *fields, const char *body, size_t len, const knd_scan *sc,
                           const knd_view *items, const kn_buf *blobs, size_t blobs_before)
{
    for (size_t i = 0; i < len; i++)
        KN_FUZZ_CHECK((unsigned char)body[i] < 0x80);
    cJSON *in = kn_json_parse(body, len);
    KN_FUZZ_CHECK(cJSON_IsObject(in));
    kn_buf msg;
    kn_buf_init(&msg, 1u << 20);
    KN_FUZZ_CHECK(knd_schema_check_types(fields, in, &msg));
    KN_FUZZ_CHECK(knd_schema_validate(fields, in, &msg) == 0);
    kn_buf_cleanup(&msg);

    ks_ctx c = {.body = body, .len = len, .blobs = blobs, .blobs_before = blobs_before};
    KN_FUZZ_CHECK(sc->shape == fields);
    ks_same_object(&c, fields, sc->fields, in);
    const knd_field *list = NULL;
    for (int i = 0; fields[i].name; i++)
        if (fields[i].type == KND_T_LIST)
            list = &fields[i];
    const cJSON *entries = list ? knd_schema_get(in, list->name) : NULL;
    size_t count = entries ? (size_t)cJSON_GetArraySize(entries) : 0;
    KN_FUZZ_CHECK(sc->count == count);
    if (count > 0 && sc->count == count) {
        KN_FUZZ_CHECK(sc->items == items && sc->item_fields == list->member->fields);
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, entries)
        {
            ks_same_object(&c, list->member->fields, &sc->items[i++ * KND_SCAN_FIELDS], e);
        }
    }
    KN_FUZZ_CHECK(blobs->len == blobs_before + c.blob_bytes && blobs->data[blobs->len] == '\0');
    KN_FUZZ_CHECK(memcmp(blobs->data, KS_HELD, KS_HELD_LEN) == 0);
    cJSON_Delete(in);
}

/* Scans body with room for cap list entries; checks the answer against the general path. Returns whether the scan
 * took it, and the number of entries in *count. */
static bool ks_scan_one(const knd_field *fields, const char *body, size_t len, size_t cap, size_t *count)
{
    /* kinesisd's room (KS_ITEMS entries) is one block kept for the run, as kinesisd keeps it; a smaller room is a
     * block of exactly its size */
    static knd_view *full;
    if (!full && !(full = malloc(KS_ITEMS * KND_SCAN_FIELDS * sizeof *full)))
        abort();
    knd_view *items = cap == KS_ITEMS ? full : malloc((cap ? cap : 1) * KND_SCAN_FIELDS * sizeof *items);
    if (!items)
        abort();
    kn_buf blobs;
    kn_buf_init(&blobs, SIZE_MAX);
    KN_FUZZ_CHECK(kn_buf_append(&blobs, KS_HELD, KS_HELD_LEN) == KN_OK);
    knd_scan sc;
    bool took = knd_schema_scan(fields, body, len, items, cap, &blobs, &sc);
    if (took) {
        ks_check_taken(fields, body, len, &sc, items, &blobs, KS_HELD_LEN);
        *count = sc.count;
    } else {
        KN_FUZZ_CHECK(blobs.len == KS_HELD_LEN && memcmp(blobs.data, KS_HELD, KS_HELD_LEN) == 0);
    }
    kn_buf_cleanup(&blobs);
    if (items != full)
        free(items);
    return took;
}

/* The body against every shape; a taken list must need exactly its room. */
static void ks_check_body(const char *body, size_t len)
{
    for (size_t s = 0; s < KS_SHAPES; s++) {
        size_t n = 0, again = 0;
        if (!ks_scan_one(ks_shapes[s], body, len, KS_ITEMS, &n) || n == 0)
            continue;
        KN_FUZZ_CHECK(ks_scan_one(ks_shapes[s], body, len, n, &again) && again == n);
        KN_FUZZ_CHECK(!ks_scan_one(ks_shapes[s], body, len, n - 1, &again));
    }
}

/* ---- plain bodies made from the input ---- */

/* The input read as choices; zeros once it runs out. */
typedef struct ks_src {
    const uint8_t *p;
    size_t n, i;
} ks_src;

static unsigned ks_next(ks_src *s)
{
    return s->i < s->n ? s->p[s->i++] : 0;
}

static void ks_ws(ks_src *s, kn_buf *b)
{
    static const char *const ws[] = {"", "", "", " ", "\n", "\t", "\r\n  "};
    kn_buf_append_str(b, ws[ks_next(s) % 7]);
}

/* up to max characters of set, at least min */
static void ks_chars(ks_src *s, kn_buf *b, const char *set, size_t min, size_t max)
{
    size_t len = min + ks_next(s) % (max - min + 1), k = strlen(set);
    for (size_t i = 0; i < len; i++)
        kn_buf_append(b, &set[ks_next(s) % k], 1);
}

/* A decimal without a leading zero, of 1 to max digits. */
static void ks_decimal(ks_src *s, kn_buf *b, size_t max)
{
    if (ks_next(s) % 8 == 0) {
        kn_buf_append_str(b, "0");
        return;
    }
    ks_chars(s, b, "123456789", 1, 1);
    ks_chars(s, b, "0123456789", 0, max - 1);
}

/* One member's value, as a plain client writes it. */
static void ks_value(ks_src *s, kn_buf *b, const char *name)
{
    static const char printable[] = " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`"
                                    "abcdefghijklmnopqrstuvwxyz{|}~\x7f";
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    kn_buf_append_str(b, "\"");
    if (strcmp(name, "PartitionKey") == 0) {
        ks_chars(s, b, printable, 1, ks_next(s) % 4 == 0 ? 256 : 16);
    } else if (strcmp(name, "Data") == 0) {
        uint8_t raw[255];
        unsigned most = ks_next(s) % 4 == 0 ? 256 : 8;
        size_t len = ks_next(s) % most;
        for (size_t i = 0; i < len; i++)
            raw[i] = (uint8_t)ks_next(s);
        kn_base64_encode(raw, len, b);
    } else if (strcmp(name, "ExplicitHashKey") == 0) {
        ks_decimal(s, b, 39);
    } else if (strcmp(name, "SequenceNumberForOrdering") == 0) {
        ks_decimal(s, b, 129);
    } else if (strcmp(name, "StreamARN") == 0) {
        kn_buf_append_str(b, ks_next(s) & 1 ? "arn:aws:kinesis:us-east-1:123456789012:stream/"
                                            : "arn:aws-cn:kinesis:cn-north-1:000000000000:stream/");
        ks_chars(s, b, name_chars, 1, 24);
    } else {
        ks_chars(s, b, name_chars, 1, ks_next(s) % 4 == 0 ? 128 : 8);
    }
    kn_buf_append_str(b, "\"");
}

/* An object of some of fields' members (always the required ones and, at the top, StreamName or StreamARN) in an
 * order the input picks; a list member holds 1 to 8 entries. */
static void ks_object(ks_src *s, kn_buf *b, const knd_field *fields)
{
    int n = 0, order[KND_SCAN_FIELDS], stream_name = -1;
    bool named = false;
    for (int i = 0; fields[i].name && i < KND_SCAN_FIELDS; i++) {
        if (fields[i].flags & KND_F_NOT_NULL_UNLESS_ARN)
            stream_name = i;
        if ((fields[i].flags & KND_F_NOT_NULL) || ks_next(s) & 1) {
            order[n++] = i;
            named = named || strcmp(fields[i].name, "StreamName") == 0 || strcmp(fields[i].name, "StreamARN") == 0;
        }
    }
    if (!named && stream_name >= 0)
        order[n++] = stream_name;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(ks_next(s) % (unsigned)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    ks_ws(s, b);
    kn_buf_append_str(b, "{");
    for (int k = 0; k < n; k++) {
        const knd_field *f = &fields[order[k]];
        ks_ws(s, b);
        kn_buf_printf(b, "%s\"%s\"", k ? "," : "", f->name);
        ks_ws(s, b);
        kn_buf_append_str(b, ":");
        ks_ws(s, b);
        if (f->type != KND_T_LIST) {
            ks_value(s, b, f->name);
            continue;
        }
        kn_buf_append_str(b, "[");
        unsigned entries = 1 + ks_next(s) % 8;
        for (unsigned e = 0; e < entries; e++) {
            if (e)
                kn_buf_append_str(b, ",");
            ks_object(s, b, f->member->fields);
        }
        kn_buf_append_str(b, "]");
    }
    ks_ws(s, b);
    kn_buf_append_str(b, "}");
    ks_ws(s, b);
}

/* A PutRecords or PutRecord body made from the input as a plain client writes one: the scan must take it, and so
 * its values are checked against the general path's for a wide range of values. */
static void ks_check_plain(const uint8_t *data, size_t size)
{
    ks_src s = {data, size, 0};
    const knd_field *shape = ks_next(&s) & 1 ? ks_put_record : ks_put_records;
    kn_buf b;
    kn_buf_init(&b, SIZE_MAX);
    ks_object(&s, &b, shape);
    uint8_t *body = ks_exact(b.data, b.len);
    size_t count = 0;
    KN_FUZZ_CHECK(ks_scan_one(shape, (const char *)body, b.len, KS_ITEMS, &count));
    free(body);
    kn_buf_cleanup(&b);
}

/* The body cut to n bytes, in a block of its own size. */
static void ks_check_cut(const uint8_t *data, size_t n)
{
    uint8_t *cut = ks_exact(data, n);
    ks_check_body((const char *)cut, n);
    free(cut);
}

static void fuzz_knd_scan(const uint8_t *data, size_t size)
{
    ks_check_body((const char *)data, size);
    if (size <= KS_CUT_ALL) {
        for (size_t n = 0; n < size; n++)
            ks_check_cut(data, n);
    } else {
        for (size_t k = 0; k < KS_CUT_ALL; k++)
            ks_check_cut(data, size * k / KS_CUT_ALL);
        for (size_t n = size - 32; n < size; n++)
            ks_check_cut(data, n);
    }
    ks_check_base64(data, size);
    ks_check_plain(data, size);
}

KN_FUZZ_ENTRY(fuzz_knd_scan)
