/* kn_validate: the service's own input constraints, shared by the client (checked before sending) and kinesisd
 * (checked on receipt). Each returns NULL when the value is valid, else a static English reason naming the rule,
 * e.g. "Member must have length less than or equal to 256"; callers add the field name. */
#ifndef KN_VALIDATE_H
#define KN_VALIDATE_H

#include <stddef.h>

#define KN_PARTITION_KEY_MAX_CHARS 256
#define KN_DEFAULT_MAX_RECORD_SIZE (1024u * 1024u)
#define KN_STREAM_NAME_MAX 128

/* Counts Unicode characters of UTF-8 text; returns (size_t)-1 for invalid UTF-8 (overlongs, surrogates, > U+10FFFF). */
size_t kn_utf8_chars(const char *s, size_t len);

const char *kn_validate_partition_key(const char *s, size_t len);      /* 1-256 characters of valid UTF-8 */
const char *kn_validate_explicit_hash_key(const char *s, size_t len);  /* 0|([1-9]\d{0,38}), < 2^128 */
const char *kn_validate_sequence_number(const char *s, size_t len);    /* 0|([1-9]\d{0,128}) */
const char *kn_validate_stream_name(const char *s, size_t len);        /* 1-128 of [a-zA-Z0-9_.-] */
const char *kn_validate_stream_arn(const char *s, size_t len);         /* arn:aws.*:kinesis:.*:\d{12}:stream/\S+, <= 2048 */

/* The reason kn_validate_explicit_hash_key returns (this very pointer) for a well-formed key >= 2^128. AWS reports
 * that case as InvalidArgumentException rather than as a ValidationException, so callers compare against it. */
extern const char kn_validate_hash_key_range[];

/* Extracts the stream name part of a valid stream ARN (a view into s). Returns 0 if s is not a valid ARN. */
size_t kn_stream_arn_name(const char *s, size_t len, const char **name);

#endif
