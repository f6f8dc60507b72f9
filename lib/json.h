/* kn_json: small helpers over cJSON for AWS JSON 1.1 bodies, shared by the client and kinesisd. Every lookup checks
 * the member's type, so a number where a string belongs reads as "absent", never as garbage. */
#ifndef KN_JSON_H
#define KN_JSON_H

#include "buf.h"

#include <cjson/cJSON.h>
#include <kinesis/kinesis.h>

/* Parses exactly len bytes (no NUL needed). Returns a tree the caller frees with cJSON_Delete, or NULL when the text
 * is not one complete JSON value, or a string holds a raw control character or a "\u0000" escape (which cJSON
 * would cut strings at). */
cJSON *kn_json_parse(const void *text, size_t len);

/* The string value of member `name` of obj (case-sensitive), or NULL when obj is not an object, the member is absent,
 * or it is not a string. Valid as long as the tree. */
const char *kn_json_string(const cJSON *obj, const char *name);

/* Copies member `name` into out[cap]. False when it is absent, not a string, or longer than cap - 1 bytes (out is then
 * an empty string). */
bool kn_json_copy_string(const cJSON *obj, const char *name, char *out, size_t cap);

/* The AWS error fields of an error body: "__type" and "message" (some services spell it "Message"). Either may come
 * back NULL. Views into the tree. */
void kn_json_error_fields(const cJSON *root, const char **type, const char **message);

/* Appends the len bytes of s (no NUL needed; the caller keeps s) to b as the inside of a JSON string, without the
 * quotes: '"' and '\\' as \" and \\, control characters as \u00XX, printable ASCII and valid UTF-8 as they are. Text
 * that is not valid UTF-8 has its non-ASCII bytes written as \ufffd, so the result always parses. At most 6 bytes are
 * written per input byte. KN_ERR_NO_MEMORY at b's cap or on allocation failure (b may then hold part of the text). */
kn_status kn_json_escape(kn_buf *b, const char *s, size_t len);

/* How many bytes at the start of s kn_json_escape would copy unchanged (printable ASCII but '"' and '\\'), scanned 8
 * bytes at a time: lets a writer copy that run in one piece with its own bookkeeping. */
size_t kn_json_plain_prefix(const char *s, size_t len);

#endif
