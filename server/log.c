#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A line longer than this is cut (and ends with "..."): log lines are for people, not for payloads. */
#define LOG_LINE_MAX 2048

static atomic_int log_level = KND_LOG_INFO;
static knd_log_writer_fn log_writer;
static void *log_writer_ctx;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void knd_log_set_writer(knd_log_writer_fn fn, void *ctx)
{
    log_writer = fn;
    log_writer_ctx = ctx;
}

void knd_log_set_level(knd_log_level level)
{
    atomic_store(&log_level, (int)level);
}

bool knd_log_enabled(knd_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

bool knd_log_parse_level(const char *name, knd_log_level *out)
{
    static const struct {
        const char *name;
        knd_log_level level;
    } names[] = {{"debug", KND_LOG_DEBUG}, {"info", KND_LOG_INFO},   {"warn", KND_LOG_WARN},
                 {"warning", KND_LOG_WARN}, {"error", KND_LOG_ERROR}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return true;
        }
    }
    return false;
}

/* Copies in to out with control characters escaped, so an attacker-chosen value cannot forge a second line. */
static size_t escape_into(char *out, size_t cap, const char *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch >= 0x20 && ch != 0x7f) {
            if (n + 1 > cap)
                break;
            out[n++] = (char)ch;
        } else {
            if (n + 4 > cap)
                break;
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    return n;
}

void knd_log(knd_log_level level, const char *fmt, ...)
{
    if (!knd_log_enabled(level))
        return;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t msg_len = (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[LOG_LINE_MAX * 4 + 64];
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
                          level_names[level <= KND_LOG_ERROR ? level : KND_LOG_ERROR]);
    n += escape_into(line + n, sizeof line - n - 5, msg, msg_len);
    if ((size_t)m >= sizeof msg) {
        memcpy(line + n, "...", 3);
        n += 3;
    }
    line[n++] = '\n';

    if (log_writer) {
        log_writer(log_writer_ctx, line, n);
        return;
    }
    /* One write(2) per line keeps lines whole when several threads log at once. */
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}
