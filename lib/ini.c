/* The dialect is botocore's (Python's RawConfigParser as configloader.py sets it up), so a file the aws CLI reads
 * reads the same here:
 *  - "[name]" starts a section; the name is the text up to the last ']', trimmed. A key outside any section is an
 *    error, as configparser's MissingSectionHeaderError is.
 *  - "key = value" or "key: value", split at the first '=' or ':'; key and value trimmed. No inline comments: like
 *    botocore, "region = x # y" has the value "x # y".
 *  - Lines whose first non-blank character is '#' or ';' are comments; blank lines are ignored.
 *  - A line indented deeper than the key line before it continues that key (how nested settings such as
 *    "s3 =\n  addressing_style = path" are written); those lines are skipped. Blank and comment lines in between do
 *    not end the continuation, as in configparser.
 *  - LF or CRLF line ends; a leading UTF-8 byte-order mark is ignored. NUL bytes are refused, because values end up
 *    as C strings and a NUL would silently shorten a key.
 * Error messages carry the line number but never the line, which may hold a secret. */
#include "ini.h"

#include "error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r';
}

static span trim(span s)
{
    while (s.n && is_blank(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_blank(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* The section name of "[name]" with an optional trailing comment, or false when the line is not a header. */
static bool parse_header(span line, span *name)
{
    if (line.n == 0 || line.p[0] != '[')
        return false;
    const char *close = NULL;
    for (size_t i = 1; i < line.n; i++)
        if (line.p[i] == ']')
            close = line.p + i;
    if (!close)
        return false;
    span rest = trim((span){close + 1, (size_t)(line.p + line.n - close - 1)});
    if (rest.n && rest.p[0] != '#' && rest.p[0] != ';')
        return false;
    *name = trim((span){line.p + 1, (size_t)(close - line.p - 1)});
    return name->n > 0;
}

static bool parse_pair(span line, span *key, span *value)
{
    for (size_t i = 0; i < line.n; i++) {
        if (line.p[i] == '=' || line.p[i] == ':') {
            *key = trim((span){line.p, i});
            *value = trim((span){line.p + i + 1, line.n - i - 1});
            return key->n > 0;
        }
    }
    return false;
}

kn_status kn_ini_parse(const char *text, size_t len, kn_ini_fn fn, void *ctx, kn_error *err)
{
    if (!text || len == 0)
        return KN_OK;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (memchr(text, '\0', len)) {
        size_t line_no = 1;
        for (const char *p = text; *p; p++)
            line_no += *p == '\n';
        return kn_error_set(err, KN_ERR_CONFIG, "line %zu: NUL byte", line_no);
    }
    span section = {NULL, 0};
    bool in_key = false;  /* the last content line was "key = ..." */
    size_t key_indent = 0;
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        span raw = {text + pos, end - pos};
        pos = end + 1;
        line_no++;

        size_t indent = 0;
        while (indent < raw.n && is_blank(raw.p[indent]) && raw.p[indent] != '\r')
            indent++;
        span line = trim(raw);
        if (line.n == 0 || line.p[0] == '#' || line.p[0] == ';')
            continue;
        if (in_key && indent > key_indent)
            continue; /* a nested setting or a continued value */
        in_key = false;
        span name, key, value;
        if (parse_header(line, &name)) {
            section = name;
            continue;
        }
        if (!parse_pair(line, &key, &value))
            return kn_error_set(err, KN_ERR_CONFIG, "line %zu: expected \"[section]\" or \"key = value\"", line_no);
        if (!section.p)
            return kn_error_set(err, KN_ERR_CONFIG, "line %zu: setting before any [section] header", line_no);
        in_key = true;
        key_indent = indent;
        if (!fn(ctx, section.p, section.n, key.p, key.n, value.p, value.n))
            break;
    }
    return KN_OK;
}

kn_status kn_ini_read_file(const char *path, size_t max_len, char **text, size_t *len, kn_error *err)
{
    kn_status st = KN_OK;
    char *buf = NULL;
    size_t got = 0;
    int saved_errno = 0;
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        saved_errno = errno;
        st = kn_error_set(err, KN_ERR_IO, "%s: %s", path, strerror(saved_errno));
        goto cleanup;
    }
    buf = malloc(max_len + 1);
    if (!buf) {
        st = kn_error_set(err, KN_ERR_NO_MEMORY, "%s: out of memory", path);
        goto cleanup;
    }
    /* Read one byte past the limit so a file of exactly max_len bytes is told apart from a larger one. */
    char extra;
    for (;;) {
        char *dst = got < max_len ? buf + got : &extra;
        size_t want = got < max_len ? max_len - got : 1;
        ssize_t r = read(fd, dst, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            saved_errno = errno;
            st = kn_error_set(err, KN_ERR_IO, "%s: %s", path, strerror(saved_errno));
            goto cleanup;
        }
        if (r == 0)
            break;
        if (dst == &extra) {
            st = kn_error_set(err, KN_ERR_CONFIG, "%s: larger than %zu bytes", path, max_len);
            goto cleanup;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
cleanup:
    if (buf) {
        OPENSSL_cleanse(buf, got); /* a credentials file's partial text */
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    if (saved_errno)
        errno = saved_errno;
    return st;
}
