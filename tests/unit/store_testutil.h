/* What the store tests (test_knd_store.c, test_knd_journal.c) share: temporary directory trees to remove, or to copy
 * the way a crash leaves them (the files' current bytes, whatever was synced); a file size limit that makes writes
 * fail; and the commit callback that records a commit's outcome. Include after <cmocka.h>: a step that cannot be done
 * fails the test. Header-only because each test program is a single source file. */
#ifndef KN_STORE_TESTUTIL_H
#define KN_STORE_TESTUTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* A commit's outcome: on_commit counts its calls and keeps the last status; ctx is a done. */
typedef struct done {
    int calls;
    kn_status status;
} done;

static inline void on_commit(void *ctx, kn_status status)
{
    done *d = ctx;
    d->calls++;
    d->status = status;
}

static inline int rm_tree_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes path and everything below it; a path that is not there is fine. */
static inline void rm_tree(const char *path)
{
    nftw(path, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

/* Copies the tree at src to dst, creating dst; files dst already holds under the same names are overwritten. */
static inline void copy_tree(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    struct dirent *de;
    assert_non_null(d);
    mkdir(dst, 0755);
    while ((de = readdir(d))) {
        char s[1024], t[1024];
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        assert_true(snprintf(s, sizeof s, "%s/%s", src, de->d_name) < (int)sizeof s);
        assert_true(snprintf(t, sizeof t, "%s/%s", dst, de->d_name) < (int)sizeof t);
        assert_int_equal(stat(s, &st), 0);
        if (S_ISDIR(st.st_mode))
            copy_tree(s, t);
        else
            copy_file(s, t);
    }
    closedir(d);
}

/* Ignores SIGXFSZ, so that a write past the limit set_file_size_limit sets fails with EFBIG, as on a full disk,
 * instead of killing the test; returns the limit in force now, to set again when done. */
static inline rlim_t ignore_file_size_signal(void)
{
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN);
    return saved.rlim_cur;
}

/* Sets the soft limit on the size of files this process writes (the hard limit stays). */
static inline void set_file_size_limit(rlim_t bytes)
{
    struct rlimit rl = {bytes, bytes};
    struct rlimit cur;
    getrlimit(RLIMIT_FSIZE, &cur);
    rl.rlim_max = cur.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

#endif
