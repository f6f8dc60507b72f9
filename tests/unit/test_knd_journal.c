/* knd_store's journal: a commit group is durable once its journal record is synced, before the segments it was
 * written to are. These tests take a copy of a data directory while the store runs (a crash: the page cache's view),
 * then remove from the copy's segments every frame the journal holds (what a power failure may take from segment
 * pages that were never synced), and check that reopening the copy brings back exactly the acknowledged records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "segment.h"
#include "store.h"
#include "store_testutil.h"

/* fdatasync as the store sees it: this definition takes the place of libc's in this test program. When armed, the
 * next sync of a shard's first segment file fails with EIO once, and later ones succeed, as Linux reports a
 * write-back error to one fdatasync only (the pages that failed are then lost, yet the next sync returns 0). */
static bool fail_next_segment_sync;

static bool is_segment_fd(int fd)
{
    static const char first[] = "/0000000000000001.seg";
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    return n >= (ssize_t)sizeof first - 1 && memcmp(path + n - (sizeof first - 1), first, sizeof first - 1) == 0;
}

int fdatasync(int fd)
{
    if (fail_next_segment_sync && is_segment_fd(fd)) {
        fail_next_segment_sync = false;
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

#define NOW 1700000000000LL
#define MAX_RECS 512

typedef struct fixture {
    char dir[64], copy[80];
    uv_loop_t loop;
    knd_store *store, *copy_store;
} fixture;

/* What the test expects a shard to hold, in order. */
typedef struct expect {
    uint32_t shard;
    uint8_t *data;
    size_t len;
    knd_seq seq;
} expect;

static expect recs[MAX_RECS];
static size_t nrecs;

/* ---- helpers ---- */

static knd_store *open_store(fixture *f, const char *dir)
{
    knd_store_options o = {dir, &f->loop, 0, 0};
    kn_error err = {0};
    knd_store *st = NULL;
    if (knd_store_open(&o, &st, &err) != KN_OK)
        fail_msg("knd_store_open %s: %s", dir, err.message);
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/knd_journal_test.XXXXXX");
    if (!f || !mkdtemp(f->dir) || uv_loop_init(&f->loop))
        return -1;
    snprintf(f->copy, sizeof f->copy, "%s.copy", f->dir);
    f->store = open_store(f, f->dir);
    nrecs = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    knd_store_close(f->store);
    knd_store_close(f->copy_store);
    int rc = uv_loop_close(&f->loop);
    rm_tree(f->dir);
    rm_tree(f->copy);
    for (size_t i = 0; i < nrecs; i++)
        free(recs[i].data);
    free(f);
    return rc == 0 ? 0 : -1;
}

static knd_stream *create(fixture *f, const char *name, uint32_t shards)
{
    knd_stream *s = NULL;
    kn_error err = {0};
    if (knd_store_create_stream(f->store, name, shards, KND_MODE_PROVISIONED, NOW, NOW, &s, &err) != KN_OK)
        fail_msg("create_stream: %s", err.message);
    return s;
}

/* Appends n records of len bytes to one shard in one call and waits for the commit; on success they are expected. */
static kn_status put_n(fixture *f, knd_stream *s, uint32_t shard, size_t n, size_t len)
{
    knd_record_in in[MAX_RECS];
    uint32_t shards[MAX_RECS];
    knd_seq seqs[MAX_RECS];
    assert_true(nrecs + n <= MAX_RECS);
    for (size_t i = 0; i < n; i++) {
        expect *e = &recs[nrecs + i];
        *e = (expect){.shard = shard, .data = malloc(len ? len : 1), .len = len};
        for (size_t k = 0; k < len; k++)
            e->data[k] = (uint8_t)((nrecs + i) * 31 + k * 7);
        in[i] = (knd_record_in){e->data, len, "pk", 2};
        shards[i] = shard;
    }
    done d = {0};
    kn_error err = {0};
    kn_status st = knd_store_append(f->store, s, in, shards, NULL, n, NOW, seqs, on_commit, &d, &err);
    while (st == KN_OK && d.calls == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (st == KN_OK)
        st = d.status;
    for (size_t i = 0; i < n; i++) {
        recs[nrecs + i].seq = seqs[i];
        if (st != KN_OK)
            free(recs[nrecs + i].data);
    }
    if (st == KN_OK)
        nrecs += n;
    return st;
}

/* Every expected record of the shard, and nothing else, in order and with its number. */
static void assert_shard(knd_store *st, knd_stream *s, uint32_t shard)
{
    static knd_record_out out[MAX_RECS];
    knd_seq from = {{0}};
    size_t got = 0, j = 0;
    int64_t latest;
    kn_error err = {0};
    if (knd_store_read(st, s, shard, &from, false, MAX_RECS, SIZE_MAX, NOW, out, &got, &latest, &err) != KN_OK)
        fail_msg("read: %s", err.message);
    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].shard != shard)
            continue;
        if (j >= got)
            fail_msg("shard %u: record %zu of %zu missing", shard, j, got);
        assert_int_equal(out[j].data_len, recs[i].len);
        assert_memory_equal(out[j].data, recs[i].data, recs[i].len);
        assert_int_equal(knd_seq_cmp(&out[j].seq, &recs[i].seq), 0);
        j++;
    }
    assert_int_equal(got, j);
}

/* ---- losing what the journal covers ---- */

typedef struct covered {
    uint32_t stream, shard;
    uint64_t min_ix;
} covered;

typedef struct covered_list {
    covered v[64];
    size_t n;
} covered_list;

static bool note_entry(void *ctx, uint32_t stream_id, uint32_t shard_index, const uint8_t *frames, size_t len)
{
    covered_list *l = ctx;
    knd_frame fr;
    assert_int_equal(knd_segment_frame_parse(frames, len, &fr), KND_FRAME_OK);
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].stream == stream_id && l->v[i].shard == shard_index) {
            if (fr.ix < l->v[i].min_ix)
                l->v[i].min_ix = fr.ix;
            return true;
        }
    }
    assert_true(l->n < 64);
    l->v[l->n++] = (covered){stream_id, shard_index, fr.ix};
    return true;
}

/* Zeroes, in the newest segment of a shard, every frame from the first one with seq_ix >= min_ix to the end. */
static void zero_from_ix(const char shard_dir[1024], uint64_t min_ix)
{
    DIR *d = opendir(shard_dir);
    if (!d)
        return; /* a deleted stream's directory is gone */
    char newest[256] = ""; /* a d_name fits (the .seg names it keeps are 20 bytes) */
    struct dirent *de;
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 20 && !strcmp(de->d_name + 16, ".seg") && strcmp(de->d_name, newest) > 0)
            snprintf(newest, sizeof newest, "%s", de->d_name);
    closedir(d);
    if (!newest[0])
        return;
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", shard_dir, newest);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    for (uint64_t off = KND_SEGMENT_HEADER_BYTES; off + KND_FRAME_HEADER_BYTES <= (uint64_t)sb.st_size;) {
        uint8_t hdr[KND_FRAME_HEADER_BYTES];
        knd_frame fr;
        assert_int_equal(pread(fd, hdr, sizeof hdr, (off_t)off), (ssize_t)sizeof hdr);
        if (knd_segment_frame_parse(hdr, (uint64_t)sb.st_size - off, &fr) != KND_FRAME_OK)
            break;
        if (fr.ix >= min_ix) {
            assert_int_equal(knd_segment_zero(fd, off, (uint64_t)sb.st_size), 0);
            break;
        }
        off += fr.size;
    }
    close(fd);
}

/* Returns how many records the journal of dir replays; with lose, first takes its frames out of the segments. */
static uint64_t journal_records(const char *dir, bool lose)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/journal", dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    covered_list l = {.n = 0};
    knd_journal_scan sc;
    assert_int_equal(knd_segment_journal_scan(fd, &sc, note_entry, &l), 0);
    close(fd);
    for (size_t i = 0; lose && i < l.n; i++) {
        snprintf(path, sizeof path, "%s/streams/%08" PRIx32 "/%06" PRIu32, dir, l.v[i].stream, l.v[i].shard);
        zero_from_ix(path, l.v[i].min_ix);
    }
    return sc.records;
}

/* The crash: a copy of the running store's directory, minus the segment frames the journal holds. */
static knd_store *crash_and_reopen(fixture *f)
{
    rm_tree(f->copy);
    copy_tree(f->dir, f->copy);
    assert_true(journal_records(f->copy, true) > 0);
    f->copy_store = open_store(f, f->copy);
    return f->copy_store;
}

/* ---- tests ---- */

static void acknowledged_records_come_back_from_the_journal(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "j", 2);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(put_n(f, s, (uint32_t)(i % 2), 1 + i % 3, i * 37 % 1500), KN_OK);
    knd_store *c = crash_and_reopen(f);
    knd_stream *cs = knd_store_find(c, "j", 1);
    assert_non_null(cs);
    assert_shard(c, cs, 0);
    assert_shard(c, cs, 1);
    /* The replayed numbers are the ones acknowledged; new ones continue after them. */
    knd_record_in in = {(const uint8_t *)"new", 3, "k", 1};
    uint32_t shard = 1;
    knd_seq seq;
    done d = {0};
    assert_int_equal(knd_store_append(c, cs, &in, &shard, NULL, 1, NOW, &seq, on_commit, &d, NULL), KN_OK);
    while (d.calls == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(d.status, KN_OK);
    for (size_t i = nrecs; i-- > 0;)
        if (recs[i].shard == 1) {
            assert_true(knd_seq_cmp(&recs[i].seq, &seq) < 0);
            break;
        }
    /* A replay leaves nothing more to replay: a second crash right after the reopen loses nothing either. */
    knd_store_close(c);
    f->copy_store = NULL;
    assert_int_equal(journal_records(f->copy, false), 0);
}

static void checkpoints_and_journal_growth_keep_every_record(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "cp", 1);
    for (int i = 0; i < 100; i++) /* 5 MB through a 4 MiB journal: at least one checkpoint */
        assert_int_equal(put_n(f, s, 0, 1, 50000), KN_OK);
    assert_int_equal(put_n(f, s, 0, 100, 60000), KN_OK); /* one 6 MB record: the journal grows */
    assert_int_equal(put_n(f, s, 0, 3, 10), KN_OK);
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof path, "%s/journal", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 6000000);
    knd_store *c = crash_and_reopen(f);
    assert_shard(c, knd_store_find(c, "cp", 2), 0);
}

static void a_failed_journal_write_is_never_replayed(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "fail", 2);
    rlim_t saved = ignore_file_size_signal();
    assert_int_equal(put_n(f, s, 1, 1, 5), KN_OK);
    assert_int_equal(put_n(f, s, 0, 3, 60000), KN_OK); /* the journal is now past 180 KB, shard 1's log is not */
    set_file_size_limit(100000);
    size_t before = nrecs;
    assert_int_equal(put_n(f, s, 1, 1, 7), KN_ERR_IO); /* its segment write succeeds, its journal record fails */
    assert_int_equal(nrecs, before);
    assert_non_null(strstr(knd_store_last_error(f->store), "journal"));
    set_file_size_limit(saved);
    assert_int_equal(put_n(f, s, 1, 2, 6), KN_OK);
    assert_shard(f->store, s, 1); /* the failed record was never readable */
    knd_store *c = crash_and_reopen(f);
    knd_stream *cs = knd_store_find(c, "fail", 4);
    assert_shard(c, cs, 0);
    assert_shard(c, cs, 1); /* nor is it after a crash */
}

static void a_clean_close_leaves_nothing_to_replay(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "clean", 3);
    for (uint32_t i = 0; i < 9; i++)
        assert_int_equal(put_n(f, s, i % 3, 2, 100), KN_OK);
    assert_true(journal_records(f->dir, false) > 0);
    knd_store_close(f->store);
    assert_int_equal(journal_records(f->dir, false), 0);
    f->store = open_store(f, f->dir);
    s = knd_store_find(f->store, "clean", 5);
    for (uint32_t k = 0; k < 3; k++)
        assert_shard(f->store, s, k);
}

static void records_of_a_deleted_stream_are_not_replayed(void **state)
{
    fixture *f = *state;
    knd_stream *gone = create(f, "gone", 1);
    knd_stream *keep = create(f, "keep", 1);
    assert_int_equal(put_n(f, gone, 0, 3, 100), KN_OK);
    size_t gone_recs = nrecs;
    assert_int_equal(put_n(f, keep, 0, 3, 100), KN_OK);
    assert_int_equal(knd_store_delete_stream(f->store, gone, NULL), KN_OK);
    while (uv_run(&f->loop, UV_RUN_NOWAIT))
        ;
    for (size_t i = 0; i < gone_recs; i++) /* keep's records are the expected ones from here on */
        free(recs[i].data);
    memmove(recs, recs + gone_recs, (nrecs - gone_recs) * sizeof *recs);
    nrecs -= gone_recs;
    knd_store *c = crash_and_reopen(f);
    assert_int_equal(knd_store_stream_count(c), 1);
    assert_null(knd_store_find(c, "gone", 4));
    assert_shard(c, knd_store_find(c, "keep", 4), 0);
}

/* Appends one record to shard without waiting; its status lands in *d once committed. */
static void put_async(fixture *f, knd_stream *s, uint32_t shard, size_t len, done *d)
{
    assert_true(nrecs < MAX_RECS);
    expect *e = &recs[nrecs];
    *e = (expect){.shard = shard, .data = malloc(len ? len : 1), .len = len};
    for (size_t k = 0; k < len; k++)
        e->data[k] = (uint8_t)(nrecs * 13 + k * 5);
    knd_record_in in = {e->data, len, "pk", 2};
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, NULL, 1, NOW, &e->seq, on_commit, d, NULL), KN_OK);
    nrecs++;
}

/* Drops the expected records whose appends failed. */
static void forget_failed(done *d, size_t first)
{
    size_t k = first;
    for (size_t i = first; i < nrecs; i++) {
        if (d[i - first].status != KN_OK) {
            free(recs[i].data);
            continue;
        }
        recs[k++] = recs[i];
    }
    nrecs = k;
}

static uint64_t pipelined(knd_store *st)
{
    knd_store_stats stats;
    knd_store_get_stats(st, &stats);
    return stats.pipelined;
}

/* Records appended while a commit is on disk go into the next one, planned behind it: the journal holds them in
 * order and in records numbered on from the one in flight, so a crash brings them all back. */
static void pipelined_commits_come_back_from_the_journal(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "pipe", 3);
    static done d[120];
    for (uint32_t k = 0; k < 3; k++) /* a shard's first commit starts its segment: nothing is planned behind it */
        assert_int_equal(put_n(f, s, k, 1, 10), KN_OK);
    size_t first = nrecs;
    for (size_t i = 0; i < 120; i++) {
        put_async(f, s, (uint32_t)(i % 3), 1 + i * 53 % 900, &d[i]);
        uv_run(&f->loop, UV_RUN_NOWAIT); /* plans a commit: pipelined when one is in flight */
    }
    for (size_t i = 0; i < 120; i++) {
        while (d[i].calls == 0)
            uv_run(&f->loop, UV_RUN_ONCE);
        assert_int_equal(d[i].status, KN_OK);
    }
    assert_int_equal(nrecs, first + 120);
    assert_true(pipelined(f->store) > 0);
    for (uint32_t k = 0; k < 3; k++)
        assert_shard(f->store, s, k);
    knd_store *c = crash_and_reopen(f);
    knd_stream *cs = knd_store_find(c, "pipe", 4);
    for (uint32_t k = 0; k < 3; k++)
        assert_shard(c, cs, k);
}

/* When a commit fails, the one pipelined behind it is not attempted (its frames and its journal record would sit
 * behind what the failure left): its appends fail too, and nothing of either is readable, before or after a crash. */
static void a_commit_pipelined_behind_a_failed_one_fails(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "pfail", 2);
    rlim_t saved = ignore_file_size_signal();
    assert_int_equal(put_n(f, s, 1, 1, 5), KN_OK); /* shard 1 has its segment; shard 0 has none yet */
    set_file_size_limit(500000);
    uint64_t before = pipelined(f->store);
    size_t first = nrecs;
    done d[2] = {{0}, {0}};
    put_async(f, s, 0, 10, &d[0]); /* its new 1 MiB segment cannot be filled: this commit fails */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    put_async(f, s, 1, 10, &d[1]); /* would succeed on its own */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    while (d[0].calls == 0 || d[1].calls == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    set_file_size_limit(saved);
    assert_int_equal(d[0].status, KN_ERR_IO);
    if (pipelined(f->store) > before) /* the second was planned behind the first (not when the loop saw the first
                                        * fail before planning it, which timing may allow) */
        assert_int_equal(d[1].status, KN_ERR_IO);
    forget_failed(d, first);
    assert_int_equal(put_n(f, s, 1, 2, 6), KN_OK);
    assert_int_equal(put_n(f, s, 0, 2, 6), KN_OK);
    assert_shard(f->store, s, 0);
    assert_shard(f->store, s, 1);
    knd_store *c = crash_and_reopen(f);
    knd_stream *cs = knd_store_find(c, "pfail", 5);
    assert_shard(c, cs, 0);
    assert_shard(c, cs, 1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An append that needs a new segment waits until no commit is in flight; a steady stream of appends to another shard
 * must not postpone that for as long as it lasts. */
static void a_shard_that_needs_a_new_segment_is_not_starved(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "starve", 2);
    assert_int_equal(put_n(f, s, 1, 1, 10), KN_OK);
    assert_int_equal(put_n(f, s, 0, 1, 1000000), KN_OK); /* shard 0's first segment (1 MiB) is nearly full */
    static done big; /* static: after a failed assertion, teardown's close still completes the appends */
    done *small = calloc(MAX_RECS, sizeof *small);
    big = (done){0};
    assert_non_null(small);
    put_async(f, s, 0, 100000, &big); /* does not fit: it goes to a new segment */
    size_t n = 0;
    for (double end = now_s() + 5; big.calls == 0 && now_s() < end && n < MAX_RECS - 8; n++) {
        put_async(f, s, 1, 10, &small[n]);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    assert_int_equal(big.calls, 1);
    assert_int_equal(big.status, KN_OK);
    for (size_t i = 0; i < n; i++) {
        while (small[i].calls == 0)
            uv_run(&f->loop, UV_RUN_ONCE);
        assert_int_equal(small[i].status, KN_OK);
    }
    free(small);
    assert_shard(f->store, s, 0);
    assert_shard(f->store, s, 1);
}

/* A checkpoint whose segment sync failed must not be retried: the retry would "succeed" with the failed pages lost and
 * then start a new epoch, dropping the journal's copy of acknowledged records. Appends are refused from then on, and
 * a restart brings every acknowledged record back from the journal. */
static void a_failed_segment_sync_stops_commits_until_restart(void **state)
{
    fixture *f = *state;
    knd_stream *s = create(f, "s", 1);
    assert_int_equal(put_n(f, s, 0, 1, 100), KN_OK);
    assert_int_equal(put_n(f, s, 0, 1, 100), KN_OK); /* written without a sync: only the journal makes it durable */
    fail_next_segment_sync = true;
    kn_status st = KN_OK;
    for (int i = 0; i < 32 && st == KN_OK; i++) /* 64 KiB records until the journal is full and checkpoints */
        st = put_n(f, s, 0, 4, 64 << 10);
    assert_false(fail_next_segment_sync);
    assert_int_equal(st, KN_ERR_IO);
    assert_int_equal(put_n(f, s, 0, 1, 100), KN_ERR_IO);
    assert_non_null(strstr(knd_store_last_error(f->store), "restart"));
    knd_store_close(f->store);
    f->store = open_store(f, f->dir);
    assert_shard(f->store, knd_store_find(f->store, "s", 1), 0);
    assert_int_equal(put_n(f, knd_store_find(f->store, "s", 1), 0, 1, 100), KN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(acknowledged_records_come_back_from_the_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(checkpoints_and_journal_growth_keep_every_record, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_journal_write_is_never_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_clean_close_leaves_nothing_to_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(records_of_a_deleted_stream_are_not_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_segment_sync_stops_commits_until_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(pipelined_commits_come_back_from_the_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(a_commit_pipelined_behind_a_failed_one_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(a_shard_that_needs_a_new_segment_is_not_starved, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
