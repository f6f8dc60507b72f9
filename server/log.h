/* knd_log: kinesisd's log. One line per event on stderr: "2026-11-25T20:40:00.123Z INFO message". Messages are
 * formatted by the caller; control characters in them (a client-supplied value could carry a newline) are escaped so
 * one event stays one line. Never pass a secret, a session token or a signature key here: the log is for operators.
 *
 * Threading: the level is set once at start-up; knd_log itself may be called from any thread (one write per line). */
#ifndef KND_LOG_H
#define KND_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum knd_log_level {
    KND_LOG_DEBUG = 0,
    KND_LOG_INFO,
    KND_LOG_WARN,
    KND_LOG_ERROR,
} knd_log_level;

/* Where finished lines go (each `line` is one event with its trailing '\n', valid only during the call). NULL
 * restores stderr. For tests that check what is (and is not) logged. */
typedef void (*knd_log_writer_fn)(void *ctx, const char *line, size_t len);
void knd_log_set_writer(knd_log_writer_fn fn, void *ctx);

/* Events below `level` are dropped. The default is KND_LOG_INFO. */
void knd_log_set_level(knd_log_level level);
bool knd_log_enabled(knd_log_level level);
/* "debug", "info", "warn" (or "warning"), "error" → *out; false for anything else. */
bool knd_log_parse_level(const char *name, knd_log_level *out);

void knd_log(knd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define knd_log_debug(...) knd_log(KND_LOG_DEBUG, __VA_ARGS__)
#define knd_log_info(...) knd_log(KND_LOG_INFO, __VA_ARGS__)
#define knd_log_warn(...) knd_log(KND_LOG_WARN, __VA_ARGS__)
#define knd_log_error(...) knd_log(KND_LOG_ERROR, __VA_ARGS__)

#endif
