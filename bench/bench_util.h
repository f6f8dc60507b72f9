/* Helpers every benchmark program shares: a monotonic clock and the JSON string printer for BENCH_RESULT lines. */
#ifndef KN_BENCH_UTIL_H
#define KN_BENCH_UTIL_H

#include <stdio.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints s as a JSON string; control characters, quotes and backslashes are escaped. */
static inline void bench_print_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == '"' || *p == '\\')
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

#endif
