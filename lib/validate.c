#include "validate.h"

#include "hashkey.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The service's patterns, as its ValidationException messages quote them. */
#define HASH_KEY_PATTERN "0|([1-9]\\d{0,38})"
#define SEQUENCE_NUMBER_PATTERN "0|([1-9]\\d{0,128})"
#define STREAM_NAME_PATTERN "[a-zA-Z0-9_.-]+"
#define STREAM_ARN_PATTERN "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"
#define STREAM_ARN_MAX 2048

const char kn_validate_hash_key_range[] = "ExplicitHashKey must be in the range: [0, 2^128-1]";

static const char MIN_LENGTH_1[] = "Member must have length greater than or equal to 1";
static const char BAD_UTF8[] = "Member must be valid UTF-8";

/* Length of the UTF-8 sequence starting at s[0], or 0 when it is not a well-formed, shortest-form scalar value. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Length of the run of whole 8-byte blocks at p with no byte's top bit set: all ASCII, one character a byte. */
static size_t ascii_blocks(const unsigned char *p, size_t len)
{
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v & UINT64_C(0x8080808080808080))
            break;
    }
    return i;
}

/* Text here is mostly ASCII (request bodies, names, keys), so ASCII is skipped 8 bytes at a time and only the bytes
 * around a non-ASCII one are decoded one sequence at a time. */
size_t kn_utf8_chars(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    size_t i = 0;
    while (i < len) {
        size_t run = ascii_blocks(p + i, len - i);
        i += run;
        chars += run;
        if (i == len)
            break;
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0)
            return (size_t)-1;
        i += n;
        chars++;
    }
    return chars;
}

const char *kn_validate_partition_key(const char *s, size_t len)
{
    if (!s || len == 0)
        return MIN_LENGTH_1;
    size_t chars = kn_utf8_chars(s, len);
    if (chars == (size_t)-1)
        return BAD_UTF8;
    if (chars > KN_PARTITION_KEY_MAX_CHARS)
        return "Member must have length less than or equal to 256";
    return NULL;
}

/* Whether s matches 0|([1-9]\d{0,max_more}) in full. */
static bool is_decimal(const char *s, size_t len, size_t max_more)
{
    if (!s || len == 0 || len > max_more + 1)
        return false;
    if (s[0] == '0')
        return len == 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

const char *kn_validate_explicit_hash_key(const char *s, size_t len)
{
    if (!is_decimal(s, len, 38))
        return "Member must satisfy regular expression pattern: " HASH_KEY_PATTERN;
    if (!kn_hashkey_parse(s, len, NULL))
        return kn_validate_hash_key_range;
    return NULL;
}

const char *kn_validate_sequence_number(const char *s, size_t len)
{
    if (!is_decimal(s, len, 128))
        return "Member must satisfy regular expression pattern: " SEQUENCE_NUMBER_PATTERN;
    return NULL;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

const char *kn_validate_stream_name(const char *s, size_t len)
{
    if (!s || len == 0)
        return MIN_LENGTH_1;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char(s[i]))
            return "Member must satisfy regular expression pattern: " STREAM_NAME_PATTERN;
    if (len > KN_STREAM_NAME_MAX)
        return "Member must have length less than or equal to 128";
    return NULL;
}

/* Characters that Java's regex '.' does not match (line terminators) and those '\S' does not match. */
static bool is_line_end(char c)
{
    return c == '\n' || c == '\r';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool has_prefix(const char *s, size_t len, size_t at, const char *p)
{
    size_t n = strlen(p);
    return at + n <= len && memcmp(s + at, p, n) == 0;
}

/* Whether ":" + 12 digits + ":stream/" starts at j and the rest of s is one or more non-space characters. */
static bool arn_tail_at(const char *s, size_t len, size_t j)
{
    if (!has_prefix(s, len, j, ":"))
        return false;
    for (size_t k = j + 1; k < j + 13; k++)
        if (k >= len || s[k] < '0' || s[k] > '9')
            return false;
    size_t name = j + 13 + strlen(":stream/");
    if (!has_prefix(s, len, j + 13, ":stream/") || name >= len)
        return false;
    for (size_t k = name; k < len; k++)
        if (is_space(s[k]))
            return false;
    return true;
}

/* Matches arn:aws.*:kinesis:.*:\d{12}:stream/\S+ in full, trying every way the two '.*' can split the text; returns
 * the offset of the stream name, or 0 when it does not match. */
static size_t arn_match(const char *s, size_t len)
{
    if (!has_prefix(s, len, 0, "arn:aws"))
        return 0;
    for (size_t i = 7; i < len && !is_line_end(s[i - 1]); i++) {
        if (!has_prefix(s, len, i, ":kinesis:"))
            continue;
        /* The ':' that ends ":kinesis:" may not double as the one before the account id. */
        for (size_t j = i + 9; j < len; j++) {
            if (arn_tail_at(s, len, j))
                return j + 13 + strlen(":stream/");
            if (is_line_end(s[j]))
                break;
        }
    }
    return 0;
}

const char *kn_validate_stream_arn(const char *s, size_t len)
{
    if (!s || len == 0)
        return MIN_LENGTH_1;
    if (len > STREAM_ARN_MAX)
        return "Member must have length less than or equal to 2048";
    if (!arn_match(s, len))
        return "Member must satisfy regular expression pattern: " STREAM_ARN_PATTERN;
    return NULL;
}

size_t kn_stream_arn_name(const char *s, size_t len, const char **name)
{
    if (!s || kn_validate_stream_arn(s, len))
        return 0;
    size_t at = arn_match(s, len);
    *name = s + at;
    return len - at;
}
