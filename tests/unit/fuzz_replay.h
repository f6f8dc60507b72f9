/* Shared by the CTest runners of the fuzz targets (test_fuzz_regressions.c, test_knd_fuzz_regressions.c): replays a
 * target's committed seed corpus. Include after cmocka.h and the target files. */
#ifndef KN_TEST_FUZZ_REPLAY_H
#define KN_TEST_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*fuzz_fn)(const uint8_t *data, size_t size);

/* Runs every file of fuzz/corpus/<name>/ through fn; returns how many there were. */
static size_t replay_corpus(const char *name, fuzz_fn fn)
{
    const char *src = getenv("KN_SOURCE_DIR");
    assert_non_null(src);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", src, name);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        assert_true(feof(f)); /* seeds are small */
        fclose(f);
        fn(buf, n);
        count++;
    }
    closedir(d);
    return count;
}

#endif
