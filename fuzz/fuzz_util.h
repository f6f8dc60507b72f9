/* Shared by the libFuzzer targets in fuzz/fuzz_<name>.c. Each target defines its body as a function and names it with
 * KN_FUZZ_ENTRY, which becomes LLVMFuzzerTestOneInput in the fuzz build. The unit tests that replay the corpora and
 * past crashes (tests/unit/test_fuzz_regressions.c, test_knd_fuzz_regressions.c) include the target files with
 * KN_FUZZ_NO_ENTRY defined, so a finding keeps being checked by the ordinary CTest and ASan builds. */
#ifndef KN_FUZZ_UTIL_H
#define KN_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KN_FUZZ_NO_ENTRY
#define KN_FUZZ_ENTRY(fn)
#else
#define KN_FUZZ_ENTRY(fn)                                                                                            \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                                    \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                                     \
    {                                                                                                                \
        fn(data, size);                                                                                              \
        return 0;                                                                                                    \
    }
#endif

/* A property the target checks failed: the input is a finding, so stop the way a sanitizer would (libFuzzer saves
 * the input as a crash). A replaying unit test defines KN_FUZZ_FAIL(message) to fail just the current test instead. */
#ifndef KN_FUZZ_FAIL
#define KN_FUZZ_FAIL(message) abort()
#endif
#define KN_FUZZ_CHECK(cond)                                                                                          \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);                         \
            KN_FUZZ_FAIL("fuzz property failed: " #cond);                                                            \
        }                                                                                                            \
    } while (0)

/* A (pointer, length) piece of the input. */
typedef struct kn_fuzz_span {
    const char *p;
    size_t n;
} kn_fuzz_span;

/* Splits *rest at the first occurrence of sep: returns the part before it and leaves *rest after it; without sep
 * the whole of *rest is returned and *rest becomes empty. */
static inline kn_fuzz_span kn_fuzz_split(kn_fuzz_span *rest, const char *sep)
{
    size_t sep_len = strlen(sep);
    kn_fuzz_span head = *rest;
    for (size_t i = 0; sep_len <= rest->n && i <= rest->n - sep_len; i++) {
        if (memcmp(rest->p + i, sep, sep_len) == 0) {
            head.n = i;
            rest->p += i + sep_len;
            rest->n -= i + sep_len;
            return head;
        }
    }
    rest->p += rest->n;
    rest->n = 0;
    return head;
}

/* Whether needle (n bytes, n > 0) occurs in hay (h bytes). */
static inline bool kn_fuzz_contains(const void *hay, size_t h, const void *needle, size_t n)
{
    return n > 0 && n <= h && memmem(hay, h, needle, n) != NULL;
}

/* A NUL-terminated heap copy of a span (the caller frees it); abort on allocation failure, which in a fuzz run is
 * not a finding about the code under test. */
static inline char *kn_fuzz_strndup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

#endif
