/* kn_ini: the AWS shared config / credentials file format as botocore reads it ("[section]", "key = value" or
 * "key: value", full-line '#' and ';' comments, indented continuation lines for nested settings skipped, LF or CRLF).
 * ini.c's header comment gives the exact dialect. Keys are passed as written; botocore matches them case-insensitively. */
#ifndef KN_INI_H
#define KN_INI_H

#include <kinesis/kinesis.h>

/* Called for every key in file order. section is the text inside [] (e.g. "profile dev"), trimmed. Return false to
 * stop. Views are valid only during the call and are not NUL-terminated. */
typedef bool (*kn_ini_fn)(void *ctx, const char *section, size_t section_len, const char *key, size_t key_len,
                          const char *value, size_t value_len);

/* Parses text of len bytes. KN_ERR_CONFIG with the line number in err on a malformed line. */
kn_status kn_ini_parse(const char *text, size_t len, kn_ini_fn fn, void *ctx, kn_error *err);

/* Reads a whole file (at most max_len bytes) into a new NUL-terminated buffer the caller frees with free(); a caller
 * reading secrets wipes it first (OPENSSL_cleanse). KN_ERR_IO when missing or unreadable (errno kept, so ENOENT can be
 * told apart), KN_ERR_CONFIG when larger than max_len. *text is NULL on failure. */
kn_status kn_ini_read_file(const char *path, size_t max_len, char **text, size_t *len, kn_error *err);

#endif
