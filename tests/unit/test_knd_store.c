/* knd_store: durability contract, recovery after torn writes, retention, in-memory mode, and the CRC-32C it uses.
 * Every test works in its own temporary directory with its own libuv loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "segment.h"
#include "store.h"
#include "store_testutil.h"

#define NOW 1700000000000LL
#define HOUR 3600000LL

typedef struct fixture {
    char dir[64];
    uv_loop_t loop;
    knd_store *store;
    bool memory;
    uint64_t segment_bytes, memory_limit;
} fixture;

/* A record read back, copied out of the store's views. */
typedef struct rec {
    knd_seq seq;
    int64_t ms;
    uint8_t *data;
    size_t len;
    char *key;
    size_t klen;
} rec;

/* ---- helpers ---- */

static char found_path[1024];
static int found_count;
static const char *find_suffix;

static int find_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    size_t n = strlen(path), m = strlen(find_suffix);
    if (type == FTW_F && n > m && !strcmp(path + n - m, find_suffix)) {
        if (found_count == 0 || strcmp(path, found_path) > 0)
            snprintf(found_path, sizeof found_path, "%s", path);
        found_count++;
    }
    return 0;
}

/* Number of files under dir whose name ends with suffix; found_path gets the greatest such path. */
static int count_files(const char *dir, const char *suffix)
{
    found_count = 0;
    find_suffix = suffix;
    nftw(dir, find_entry, 16, FTW_PHYS);
    return found_count;
}

static void fx_open_status(fixture *f, kn_status want)
{
    knd_store_options o = {f->memory ? NULL : f->dir, &f->loop, f->segment_bytes, f->memory_limit};
    kn_error err = {0};
    kn_status st = knd_store_open(&o, &f->store, &err);
    if (st != want)
        fail_msg("knd_store_open: %d (%s)", st, err.message);
}

static void fx_open(fixture *f)
{
    fx_open_status(f, KN_OK);
}

static void fx_close(fixture *f)
{
    knd_store_close(f->store);
    f->store = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/knd_store_test.XXXXXX");
    if (!f || !mkdtemp(f->dir) || uv_loop_init(&f->loop))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fx_close(f);
    int rc = uv_loop_close(&f->loop);
    rm_tree(f->dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void run_until(fixture *f, const done *d, int calls)
{
    while (d->calls < calls)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static knd_stream *create(fixture *f, const char *name, uint32_t shards)
{
    knd_stream *s = NULL;
    kn_error err = {0};
    if (knd_store_create_stream(f->store, name, shards, KND_MODE_PROVISIONED, NOW, NOW, &s, &err) != KN_OK)
        fail_msg("create_stream: %s", err.message);
    return s;
}

static kn_status put_at(fixture *f, knd_stream *s, uint32_t shard, const void *data, size_t len, const char *key,
                        int64_t now, knd_seq *seq)
{
    knd_record_in in = {data, len, key, strlen(key)};
    done d = {0};
    kn_error err = {0};
    knd_seq tmp;
    kn_status st = knd_store_append(f->store, s, &in, &shard, NULL, 1, now, seq ? seq : &tmp, on_commit, &d, &err);
    if (st != KN_OK)
        return st;
    run_until(f, &d, 1);
    return d.status;
}

static kn_status put(fixture *f, knd_stream *s, uint32_t shard, const char *text, knd_seq *seq)
{
    return put_at(f, s, shard, text, strlen(text), "key", NOW, seq);
}

static void recs_free(rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].data);
        free(r[i].key);
    }
    free(r);
}

/* Reads a shard from TRIM_HORIZON to its end in pages of `page` records, continuing after each page's last
 * record as a GetRecords iterator does. */
static size_t read_all_paged(fixture *f, knd_stream *s, uint32_t shard, int64_t now, size_t page, rec **out)
{
    knd_seq from = {{0}};
    bool after = false;
    size_t n = 0, cap = 0;
    knd_record_out *buf = calloc(page, sizeof *buf);
    *out = NULL;
    for (;;) {
        size_t got = 0;
        int64_t latest = 0;
        kn_error err = {0};
        if (knd_store_read(f->store, s, shard, &from, after, page, SIZE_MAX, now, buf, &got, &latest, &err))
            fail_msg("read: %s", err.message);
        if (got == 0)
            break;
        for (size_t i = 0; i < got; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                *out = realloc(*out, cap * sizeof **out);
            }
            rec *r = &(*out)[n++];
            r->seq = buf[i].seq;
            r->ms = buf[i].arrival_ms;
            r->len = buf[i].data_len;
            r->data = malloc(r->len + 1);
            memcpy(r->data, buf[i].data, r->len);
            r->klen = buf[i].partition_key_len;
            r->key = malloc(r->klen + 1);
            memcpy(r->key, buf[i].partition_key, r->klen);
        }
        from = buf[got - 1].seq;
        after = true;
    }
    free(buf);
    return n;
}

static size_t read_all(fixture *f, knd_stream *s, uint32_t shard, rec **out)
{
    return read_all_paged(f, s, shard, NOW, 7, out);
}

static void assert_rec(const rec *r, const void *data, size_t len, const char *key)
{
    assert_int_equal(r->len, len);
    assert_memory_equal(r->data, data, len);
    assert_int_equal(r->klen, strlen(key));
    assert_memory_equal(r->key, key, r->klen);
}

/* ---- CRC-32C ---- */

static void crc32c_matches_the_standard_check_value(void **state)
{
    (void)state;
    assert_int_equal(knd_crc32c_compute("123456789", 9), 0xE3069283u);
    assert_int_equal(knd_crc32c_extend_portable(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(knd_crc32c_compute("", 0), 0);
}

static void crc32c_hardware_and_table_agree_and_extend(void **state)
{
    (void)state;
    uint8_t buf[1031];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len + off <= sizeof buf; len += 97) {
            uint32_t whole = knd_crc32c_compute(buf + off, len);
            assert_int_equal(whole, knd_crc32c_extend_portable(0, buf + off, len));
            size_t cut = len / 3;
            assert_int_equal(whole, knd_crc32c_extend(knd_crc32c_compute(buf + off, cut), buf + off + cut, len - cut));
        }
    }
}

/* ---- durability contract ---- */

static void append_commit_read_round_trip_binary(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "round", 1);
    const uint8_t bin[] = {0, 1, 2, 0xff, 0, 0x80, '\n', 0};
    const char *key = "k\xc3\xa9y"; /* UTF-8 */
    knd_seq seq[3];
    assert_int_equal(put_at(f, s, 0, bin, sizeof bin, key, NOW, &seq[0]), KN_OK);
    assert_int_equal(put_at(f, s, 0, "", 0, "e", NOW + 5, &seq[1]), KN_OK);
    assert_int_equal(put_at(f, s, 0, bin, 3, key, NOW + 1000, &seq[2]), KN_OK);
    rec *r;
    assert_int_equal(read_all(f, s, 0, &r), 3);
    assert_rec(&r[0], bin, sizeof bin, key);
    assert_rec(&r[1], "", 0, "e");
    assert_rec(&r[2], bin, 3, key);
    for (int i = 0; i < 3; i++)
        assert_int_equal(knd_seq_cmp(&r[i].seq, &seq[i]), 0);
    assert_int_equal(r[0].ms, NOW);
    assert_int_equal(r[2].ms, NOW + 1000);
    assert_true(knd_seq_cmp(&seq[0], &seq[1]) < 0 && knd_seq_cmp(&seq[1], &seq[2]) < 0);
    knd_seq_parts p;
    assert_true(knd_seq_parts_of(&seq[0], &p));
    assert_int_equal(p.shard_index, 0);
    assert_true(knd_seq_cmp(&s->shards[0].starting_seq, &seq[0]) < 0);
    recs_free(r, 3);
}

static void records_are_invisible_until_the_commit_callback(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "vis", 1);
    knd_record_in in = {(const uint8_t *)"x", 1, "k", 1};
    uint32_t shard = 0;
    done d = {0};
    knd_seq seq, zero = {{0}};
    knd_seq latest_before = knd_store_latest(f->store, s, 0);
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, NULL, 1, NOW, &seq, on_commit, &d, NULL), KN_OK);
    knd_record_out out[4];
    size_t n = 9;
    int64_t latest_ms = -1;
    assert_int_equal(knd_store_read(f->store, s, 0, &zero, false, 4, SIZE_MAX, NOW, out, &n, &latest_ms, NULL), KN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(latest_ms, 0);
    assert_int_equal(d.calls, 0);
    run_until(f, &d, 1);
    assert_int_equal(d.status, KN_OK);
    assert_int_equal(knd_store_read(f->store, s, 0, &zero, false, 4, SIZE_MAX, NOW, out, &n, &latest_ms, NULL), KN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(latest_ms, NOW);
    /* LATEST taken before the commit still sees the record; LATEST taken after does not. */
    assert_int_equal(knd_store_read(f->store, s, 0, &latest_before, false, 4, SIZE_MAX, NOW, out, &n, &latest_ms,
                                    NULL), KN_OK);
    assert_int_equal(n, 1);
    knd_seq latest_after = knd_store_latest(f->store, s, 0);
    assert_int_equal(knd_store_read(f->store, s, 0, &latest_after, false, 4, SIZE_MAX, NOW, out, &n, &latest_ms,
                                    NULL), KN_OK);
    assert_int_equal(n, 0);
    assert_true(knd_seq_cmp(&seq, &latest_after) < 0);
}

static void sequence_numbers_increase_across_reopen(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "reopen", 2);
    knd_seq a, b, c;
    assert_int_equal(put(f, s, 1, "one", &a), KN_OK);
    assert_int_equal(put(f, s, 1, "two", &b), KN_OK);
    fx_close(f);
    fx_open(f);
    s = knd_store_find(f->store, "reopen", 6);
    assert_non_null(s);
    /* The clock went back meanwhile: numbers still increase, arrival times do not decrease. */
    assert_int_equal(put_at(f, s, 1, "three", 5, "key", NOW - HOUR, &c), KN_OK);
    assert_true(knd_seq_cmp(&a, &b) < 0 && knd_seq_cmp(&b, &c) < 0);
    rec *r;
    assert_int_equal(read_all(f, s, 1, &r), 3);
    assert_rec(&r[2], "three", 5, "key");
    assert_int_equal(r[2].ms, NOW);
    recs_free(r, 3);
    fx_close(f);
    fx_open(f);
    s = knd_store_find(f->store, "reopen", 6);
    assert_int_equal(read_all(f, s, 1, &r), 3);
    recs_free(r, 3);
    assert_int_equal(read_all(f, s, 0, &r), 0);
}

static void metadata_survives_reopen(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *a = NULL, *b = create(f, "beta", 3);
    assert_int_equal(knd_store_create_stream(f->store, "alpha", 5, KND_MODE_ON_DEMAND, NOW, NOW + 500, &a, NULL),
                     KN_OK);
    assert_int_equal(a->status, KND_STREAM_CREATING);
    a->status = KND_STREAM_ACTIVE;
    a->retention_hours = 48;
    a->max_record_size = 10u << 20;
    assert_int_equal(knd_store_save_stream(f->store, a, NULL), KN_OK);
    uint32_t ida = a->id, idb = b->id;
    knd_shard sh[5];
    memcpy(sh, a->shards, sizeof sh);
    fx_close(f);
    fx_open(f);
    assert_int_equal(knd_store_stream_count(f->store), 2);
    a = knd_store_find(f->store, "alpha", 5);
    b = knd_store_find(f->store, "beta", 4);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->id, ida);
    assert_int_equal(b->id, idb);
    assert_int_equal(a->status, KND_STREAM_ACTIVE);
    assert_int_equal(a->mode, KND_MODE_ON_DEMAND);
    assert_int_equal(a->retention_hours, 48);
    assert_int_equal(a->max_record_size, 10u << 20);
    assert_int_equal(a->created_ms, NOW);
    assert_int_equal(a->shard_count, 5);
    for (int i = 0; i < 5; i++) {
        assert_true(a->shards[i].start_hash == sh[i].start_hash && a->shards[i].end_hash == sh[i].end_hash);
        assert_int_equal(knd_seq_cmp(&a->shards[i].starting_seq, &sh[i].starting_seq), 0);
        assert_int_equal(a->shards[i].parent, -1);
        assert_false(a->shards[i].closed);
    }
    assert_true(a->shards[4].end_hash == ~(kn_u128)0);
    assert_true(a->shards[0].start_hash == 0);
    /* Name order, and a new stream gets a new id. */
    assert_ptr_equal(a->next, b);
    knd_stream *c = create(f, "gamma", 1);
    assert_true(c->id != ida && c->id != idb);
}

static void second_open_of_a_data_dir_is_refused(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_store *first = f->store;
    fx_open_status(f, KN_ERR_IO);
    f->store = first;
}

/* ---- torn tails ---- */

#define TORN_RECORDS 12
#define TORN_LAST 4 /* offsets across this many last records are damaged, one by one */

typedef enum damage { TRUNCATE, ZERO_TAIL, FLIP_BYTE } damage;

static uint8_t torn_data[TORN_RECORDS][64];
static size_t torn_len[TORN_RECORDS];

static void damage_file(const char *path, uint64_t off, damage how)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    if (how == TRUNCATE) {
        assert_int_equal(ftruncate(fd, (off_t)off), 0);
    } else if (how == ZERO_TAIL) {
        assert_int_equal(knd_segment_zero(fd, off, (uint64_t)st.st_size), 0);
    } else {
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
        b ^= 0x5A;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    }
    close(fd);
}

/* Damages the pristine copy at off, reopens, and checks: exactly the records wholly before the damage come back,
 * and the store takes new appends whose numbers continue the order. */
static void torn_case(fixture *f, const char *pristine, const uint64_t *frame_off, uint64_t off, damage how)
{
    rm_tree(f->dir);
    copy_tree(pristine, f->dir);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    damage_file(found_path, off, how);
    size_t keep = 0; /* the records wholly before the damage; zeroing a frame's padding (already zero) is none */
    while (keep < TORN_RECORDS &&
           (how == ZERO_TAIL ? frame_off[keep] + KND_FRAME_HEADER_BYTES + 2 + torn_len[keep] : frame_off[keep + 1]) <=
               off)
        keep++;
    fx_open(f);
    knd_stream *s = knd_store_find(f->store, "torn", 4);
    rec *r;
    size_t n = read_all(f, s, 0, &r);
    if (n != keep)
        fail_msg("damage %d at offset %llu: %zu records back, expected %zu", (int)how, (unsigned long long)off, n,
                 keep);
    for (size_t i = 0; i < n; i++)
        assert_rec(&r[i], torn_data[i], torn_len[i], "pk");
    knd_seq seq;
    assert_int_equal(put(f, s, 0, "after", &seq), KN_OK);
    if (n)
        assert_true(knd_seq_cmp(&r[n - 1].seq, &seq) < 0);
    recs_free(r, n);
    assert_int_equal(read_all(f, s, 0, &r), keep + 1);
    assert_rec(&r[keep], "after", 5, "key");
    recs_free(r, keep + 1);
    fx_close(f);
}

static void torn_tail_keeps_every_complete_record(void **state)
{
    fixture *f = *state;
    char pristine[80];
    uint64_t frame_off[TORN_RECORDS + 1] = {KND_SEGMENT_HEADER_BYTES};
    f->segment_bytes = 16 << 10; /* keeps each reopen's new segment small */
    fx_open(f);
    knd_stream *s = create(f, "torn", 1);
    for (int i = 0; i < TORN_RECORDS; i++) {
        torn_len[i] = (size_t)(i * 13 % 40) + 1;
        for (size_t k = 0; k < torn_len[i]; k++)
            torn_data[i][k] = (uint8_t)(k * 7 + (size_t)i);
        assert_int_equal(put_at(f, s, 0, torn_data[i], torn_len[i], "pk", NOW + i, NULL), KN_OK);
        frame_off[i + 1] = frame_off[i] + knd_segment_frame_size(2, torn_len[i]);
    }
    fx_close(f);
    snprintf(pristine, sizeof pristine, "%s.pristine", f->dir);
    rm_tree(pristine);
    copy_tree(f->dir, pristine);
    uint64_t from = frame_off[TORN_RECORDS - TORN_LAST], to = frame_off[TORN_RECORDS] + 16;
    for (uint64_t off = from; off <= to; off++) {
        torn_case(f, pristine, frame_off, off, TRUNCATE);
        torn_case(f, pristine, frame_off, off, ZERO_TAIL);
        torn_case(f, pristine, frame_off, off, FLIP_BYTE);
    }
    rm_tree(pristine);
}

static void damaged_header_of_newest_segment_is_refused_zero_header_removed(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "hdr", 1);
    assert_int_equal(put(f, s, 0, "a", NULL), KN_OK);
    fx_close(f);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    char seg[1024], spare[1100];
    snprintf(seg, sizeof seg, "%s", found_path);
    /* A zero-filled next segment (a spare, or a creation cut short by a crash) is removed. */
    snprintf(spare, sizeof spare, "%.*s0000000000000002.seg", (int)(strlen(seg) - 20), seg);
    int fd = open(spare, O_RDWR | O_CREAT, 0644);
    assert_int_equal(knd_segment_zero(fd, 0, 4096), 0);
    close(fd);
    fx_open(f);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    fx_close(f);
    damage_file(seg, 20, FLIP_BYTE);
    fx_open_status(f, KN_ERR_IO);
}

/* A prepared segment must read as all zeros to its last byte (a scan takes the first zero frame header as the end
 * of the log), whatever the file held before and however its size divides into the fill's steps. */
static void paced_fill_zeroes_the_whole_file(void **state)
{
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/fill", f->dir);
    const uint64_t size = (512u << 10) + 1000; /* two whole 256 KiB steps and a short one */
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    memset(buf, 0xA5, size);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
    assert_int_equal(knd_segment_fill_paced(fd, size), 0);
    struct stat sb;
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(sb.st_size, (off_t)size);
    assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
    for (uint64_t i = 0; i < size; i++)
        if (buf[i])
            fail_msg("byte %llu is %u, not zero", (unsigned long long)i, buf[i]);
    close(fd);
    fd = open(path, O_RDONLY);
    assert_int_equal(knd_segment_fill_paced(fd, size), EBADF); /* errors are returned, not ignored */
    close(fd);
    free(buf);
}

/* ---- failures ---- */

static void failed_commit_is_reported_and_never_readable(void **state)
{
    fixture *f = *state;
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN); /* writes past the limit then fail with EFBIG, like a full disk */
    f->segment_bytes = 64 << 10;
    fx_open(f);
    knd_stream *s = create(f, "fail", 1);
    /* 1: creating the first segment fails: it is zero-filled to 64 KiB, past the 8 KiB limit. */
    set_file_size_limit(8 << 10);
    assert_int_equal(put(f, s, 0, "lost", NULL), KN_ERR_IO);
    assert_non_null(strstr(knd_store_last_error(f->store), "segment"));
    set_file_size_limit(saved.rlim_cur);
    assert_int_equal(count_files(f->dir, ".seg"), 0); /* the half-made file was removed */
    knd_seq a;
    assert_int_equal(put(f, s, 0, "kept", &a), KN_OK);
    /* 2: a write inside the active segment fails half way; the next commit goes where it was and clears it. */
    char big[3000];
    memset(big, 'b', sizeof big);
    assert_int_equal(put_at(f, s, 0, big, sizeof big, "key", NOW, NULL), KN_OK);
    set_file_size_limit(4 << 10);
    assert_int_equal(put_at(f, s, 0, big, sizeof big, "key", NOW, NULL), KN_ERR_IO);
    set_file_size_limit(saved.rlim_cur);
    knd_store_stats stats;
    knd_store_get_stats(f->store, &stats);
    assert_int_equal(stats.commit_failures, 2);
    assert_int_equal(put(f, s, 0, "z", NULL), KN_OK);
    rec *r;
    assert_int_equal(read_all(f, s, 0, &r), 3);
    assert_rec(&r[0], "kept", 4, "key");
    assert_rec(&r[1], big, sizeof big, "key");
    assert_rec(&r[2], "z", 1, "key");
    recs_free(r, 3);
    fx_close(f);
    fx_open(f);
    s = knd_store_find(f->store, "fail", 4);
    assert_int_equal(read_all(f, s, 0, &r), 3);
    assert_rec(&r[2], "z", 1, "key");
    recs_free(r, 3);
}

/* Appends one record to each of n shards of s, one append each, and waits for them all; returns how many failed. */
static int put_each_shard(fixture *f, knd_stream *s, uint32_t n, const char *text)
{
    done *d = calloc(n, sizeof *d);
    int failed = 0;
    assert_non_null(d);
    for (uint32_t k = 0; k < n; k++) {
        knd_record_in in = {(const uint8_t *)text, strlen(text), "pk", 2};
        knd_seq seq;
        assert_int_equal(knd_store_append(f->store, s, &in, &k, NULL, 1, NOW, &seq, on_commit, &d[k], NULL), KN_OK);
    }
    for (uint32_t k = 0; k < n; k++) {
        run_until(f, &d[k], 1);
        failed += d[k].status != KN_OK;
    }
    free(d);
    return failed;
}

/* A shard's active segment holding frames that are not synced yet (only the journal has them until the next
 * checkpoint) must stay the shard's newest segment, even when it cannot be reopened for a while (EMFILE): recovery
 * scans only the newest segment of a shard, so frames a power failure took from an older one would be lost. Its
 * appends fail meanwhile, and the shard goes on in the same segment afterwards. */
static void a_dirty_segment_that_cannot_be_reopened_stays_active(void **state)
{
    fixture *f = *state;
    enum { SHARDS = 300 }; /* more segments than the store keeps open: some must be reopened */
    f->segment_bytes = 16 << 10;
    fx_open(f);
    knd_stream *s = create(f, "fds", SHARDS);
    assert_int_equal(put_each_shard(f, s, SHARDS, "one"), 0); /* new segments, synced with their first frames */
    assert_int_equal(put_each_shard(f, s, SHARDS, "two"), 0); /* appended without a sync: every segment is dirty */
    knd_stream *other = create(f, "other", 1); /* its new segment's descriptor pushes older ones out of the cache */
    assert_int_equal(put(f, other, 0, "x", NULL), KN_OK);
    assert_int_equal(count_files(f->dir, ".seg"), SHARDS + 1);
    struct rlimit saved, rl;
    getrlimit(RLIMIT_NOFILE, &saved);
    int lowest = dup(0); /* the lowest free descriptor: with the limit there, every open fails with EMFILE */
    assert_true(lowest >= 0);
    close(lowest);
    rl = (struct rlimit){(rlim_t)lowest, saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int failed = put_each_shard(f, s, SHARDS, "three");
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_true(failed > 0);
    assert_non_null(strstr(knd_store_last_error(f->store), "reopen segment"));
    assert_int_equal(put_each_shard(f, s, SHARDS, "four"), 0);
    assert_int_equal(count_files(f->dir, ".seg"), SHARDS + 1); /* no segment was sealed and replaced */
    fx_close(f);
    fx_open(f);
    s = knd_store_find(f->store, "fds", 3);
    size_t total = 0;
    for (uint32_t k = 0; k < SHARDS; k++) {
        rec *r;
        size_t n = read_all(f, s, k, &r);
        assert_true(n == 3 || n == 4);
        assert_rec(&r[0], "one", 3, "pk");
        assert_rec(&r[1], "two", 3, "pk");
        assert_rec(&r[n - 1], "four", 4, "pk");
        total += n;
        recs_free(r, n);
    }
    assert_int_equal(total, 3 * SHARDS + (SHARDS - failed));
}

static void bad_appends_fail_up_front_without_callback(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "bad", 2);
    knd_record_in in = {(const uint8_t *)"x", 1, "k", 1};
    uint32_t shard = 2;
    done d = {0};
    knd_seq seq;
    kn_error err = {0};
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, NULL, 0, NOW, &seq, on_commit, &d, &err),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, NULL, 1, NOW, &seq, on_commit, &d, &err),
                     KN_ERR_INVALID_ARGUMENT);
    /* An ordering number from a shard created later cannot be exceeded by this shard's numbers. */
    shard = 0;
    knd_seq_parts later = {NOW + 5000, 0, 1, NOW + 5000};
    knd_seq big = knd_seq_make(&later);
    const knd_seq *min[1] = {&big};
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, min, 1, NOW, &seq, on_commit, &d, &err),
                     KN_ERR_INVALID_ARGUMENT);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(d.calls, 0);
}

static void sequence_number_for_ordering_is_exceeded(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "order", 2);
    knd_seq first, next;
    assert_int_equal(put(f, s, 0, "a", &first), KN_OK);
    knd_seq_parts p;
    assert_true(knd_seq_parts_of(&first, &p));
    p.seq_ix += 1000; /* a number far ahead of the shard's counter, with a later arrival time */
    p.time_ms += 60000;
    knd_seq ahead = knd_seq_make(&p);
    knd_record_in in = {(const uint8_t *)"b", 1, "k", 1};
    uint32_t shard = 0;
    const knd_seq *min[1] = {&ahead};
    done d = {0};
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, min, 1, NOW, &next, on_commit, &d, NULL), KN_OK);
    run_until(f, &d, 1);
    assert_true(knd_seq_cmp(&ahead, &next) < 0);
    knd_seq after;
    assert_int_equal(put(f, s, 0, "c", &after), KN_OK);
    assert_true(knd_seq_cmp(&next, &after) < 0);
    /* A number below the shard's (the TRIM_HORIZON zero) imposes nothing. */
    knd_seq zero = {{0}};
    min[0] = &zero;
    d.calls = 0;
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, min, 1, NOW, &next, on_commit, &d, NULL), KN_OK);
    run_until(f, &d, 1);
    assert_true(knd_seq_cmp(&after, &next) < 0);
}

/* ---- reads ---- */

static void read_respects_limit_and_max_bytes(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "lim", 1);
    char data[100];
    memset(data, 'd', sizeof data);
    for (int i = 0; i < 10; i++)
        assert_int_equal(put_at(f, s, 0, data, sizeof data, "kk", NOW, NULL), KN_OK);
    knd_seq zero = {{0}};
    knd_record_out out[10];
    size_t n;
    int64_t latest;
    assert_int_equal(knd_store_read(f->store, s, 0, &zero, false, 3, SIZE_MAX, NOW, out, &n, &latest, NULL), KN_OK);
    assert_int_equal(n, 3);
    assert_int_equal(knd_store_read(f->store, s, 0, &zero, false, 10, 350, NOW, out, &n, &latest, NULL), KN_OK);
    assert_int_equal(n, 3); /* 102 bytes each: a fourth would pass 350 */
    assert_int_equal(knd_store_read(f->store, s, 0, &zero, false, 10, 1, NOW, out, &n, &latest, NULL), KN_OK);
    assert_int_equal(n, 1); /* always at least one, so readers make progress */
    /* AT the fourth record's number (no cursor) and AFTER the third's (cursor) give the same records. */
    assert_int_equal(knd_store_read(f->store, s, 0, &zero, false, 4, SIZE_MAX, NOW, out, &n, &latest, NULL), KN_OK);
    knd_seq third = out[2].seq, fourth = out[3].seq;
    knd_record_out a[10], b[10];
    size_t na, nb;
    assert_int_equal(knd_store_read(f->store, s, 0, &third, true, 10, SIZE_MAX, NOW, a, &na, &latest, NULL), KN_OK);
    knd_seq a_first = a[0].seq;
    assert_int_equal(knd_store_read(f->store, s, 0, &fourth, false, 10, SIZE_MAX, NOW, b, &nb, &latest, NULL), KN_OK);
    assert_int_equal(na, 7);
    assert_int_equal(nb, 7);
    assert_int_equal(knd_seq_cmp(&a_first, &b[0].seq), 0);
    assert_int_equal(knd_seq_cmp(&b[0].seq, &fourth), 0);
}

static void at_timestamp_and_latest(void **state)
{
    fixture *f = *state;
    f->segment_bytes = 16 << 10;
    fx_open(f);
    knd_stream *s = create(f, "ts", 1);
    knd_seq seq[300];
    char data[200];
    memset(data, 't', sizeof data);
    for (int i = 0; i < 300; i++) /* spans several 16 KiB segments */
        assert_int_equal(put_at(f, s, 0, data, sizeof data, "k", NOW + i * 10, &seq[i]), KN_OK);
    for (int round = 0; round < 2; round++) { /* live, then sealed and re-read from .idx files after reopen */
        for (int i = 0; i < 300; i += 37) {
            knd_seq at = knd_store_at_timestamp(f->store, s, 0, NOW + i * 10 - 5);
            assert_int_equal(knd_seq_cmp(&at, &seq[i]), 0);
            at = knd_store_at_timestamp(f->store, s, 0, NOW + i * 10);
            assert_int_equal(knd_seq_cmp(&at, &seq[i]), 0);
        }
        knd_seq past = knd_store_at_timestamp(f->store, s, 0, NOW + 10 * HOUR);
        knd_seq latest = knd_store_latest(f->store, s, 0);
        assert_int_equal(knd_seq_cmp(&past, &latest), 0);
        fx_close(f);
        fx_open(f);
        s = knd_store_find(f->store, "ts", 2);
    }
    assert_true(count_files(f->dir, ".seg") > 3);
    knd_seq latest = knd_store_latest(f->store, s, 0), last;
    assert_int_equal(put(f, s, 0, "new", &last), KN_OK);
    knd_record_out out[4];
    size_t n;
    int64_t latest_ms;
    assert_int_equal(knd_store_read(f->store, s, 0, &latest, false, 4, SIZE_MAX, NOW, out, &n, &latest_ms, NULL),
                     KN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(knd_seq_cmp(&out[0].seq, &last), 0);
}

static void segments_roll_over_and_index_files_are_rebuilt(void **state)
{
    fixture *f = *state;
    f->segment_bytes = 16 << 10;
    fx_open(f);
    knd_stream *s = create(f, "roll", 1);
    char data[1000];
    for (int i = 0; i < 100; i++) {
        memset(data, 'a' + i % 26, sizeof data);
        assert_int_equal(put_at(f, s, 0, data, sizeof data - (size_t)i, "k", NOW, NULL), KN_OK);
    }
    rec *r;
    assert_int_equal(read_all_paged(f, s, 0, NOW, 3, &r), 100);
    recs_free(r, 100);
    fx_close(f);
    int segs = count_files(f->dir, ".seg");
    assert_true(segs >= 6);
    while (count_files(f->dir, ".idx") > 0)
        unlink(found_path);
    fx_open(f);
    s = knd_store_find(f->store, "roll", 4);
    assert_int_equal(read_all_paged(f, s, 0, NOW, 10, &r), 100);
    for (int i = 0; i < 100; i++) {
        memset(data, 'a' + i % 26, sizeof data);
        assert_rec(&r[i], data, sizeof data - (size_t)i, "k");
        if (i)
            assert_true(knd_seq_cmp(&r[i - 1].seq, &r[i].seq) < 0);
    }
    recs_free(r, 100);
    assert_int_equal(count_files(f->dir, ".idx"), segs);
}

static void large_record_of_1_mib(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "big", 1);
    size_t len = 1 << 20;
    uint8_t *data = malloc(len);
    char key[257];
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    memset(key, 'p', 256);
    key[256] = '\0';
    assert_int_equal(put(f, s, 0, "small", NULL), KN_OK);
    assert_int_equal(put_at(f, s, 0, data, len, key, NOW, NULL), KN_OK);
    assert_int_equal(put(f, s, 0, "tail", NULL), KN_OK);
    for (int round = 0; round < 2; round++) {
        rec *r;
        assert_int_equal(read_all(f, s, 0, &r), 3);
        assert_rec(&r[1], data, len, key);
        assert_rec(&r[2], "tail", 4, "key");
        recs_free(r, 3);
        fx_close(f);
        fx_open(f);
        s = knd_store_find(f->store, "big", 3);
    }
    free(data);
}

static void many_shards_in_one_append(void **state)
{
    fixture *f = *state;
    fx_open(f);
    enum { SHARDS = 64, N = 500 };
    knd_stream *s = create(f, "many", SHARDS);
    knd_record_in in[N];
    uint32_t shard[N];
    knd_seq seqs[N];
    char bodies[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "r%d", i);
        in[i] = (knd_record_in){(const uint8_t *)bodies[i], strlen(bodies[i]), "pk", 2};
        shard[i] = (uint32_t)(i * 7 % SHARDS);
    }
    done d = {0};
    assert_int_equal(knd_store_append(f->store, s, in, shard, NULL, N, NOW, seqs, on_commit, &d, NULL), KN_OK);
    run_until(f, &d, 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, KN_OK);
    for (int i = 0; i < N; i++) /* unique across the stream */
        for (int j = i + 1; j < N; j++)
            assert_int_not_equal(knd_seq_cmp(&seqs[i], &seqs[j]), 0);
    fx_close(f);
    fx_open(f);
    s = knd_store_find(f->store, "many", 4);
    size_t total = 0;
    for (uint32_t k = 0; k < SHARDS; k++) {
        rec *r;
        size_t n = read_all(f, s, k, &r), j = 0;
        for (int i = 0; i < N; i++) { /* each shard holds its records in call order */
            if (shard[i] != k)
                continue;
            assert_true(j < n);
            assert_rec(&r[j], bodies[i], strlen(bodies[i]), "pk");
            assert_int_equal(knd_seq_cmp(&r[j].seq, &seqs[i]), 0);
            j++;
        }
        assert_int_equal(j, n);
        total += n;
        recs_free(r, n);
    }
    assert_int_equal(total, N);
}

/* ---- retention and deletion ---- */

static void retention_drops_old_segments_and_hides_old_records(void **state)
{
    fixture *f = *state;
    f->segment_bytes = 16 << 10;
    fx_open(f);
    knd_stream *s = create(f, "ret", 1);
    char data[500];
    memset(data, 'o', sizeof data);
    for (int i = 0; i < 100; i++) /* 48 hours old */
        assert_int_equal(put_at(f, s, 0, data, sizeof data, "k", NOW - 48 * HOUR, NULL), KN_OK);
    memset(data, 'n', sizeof data);
    for (int i = 0; i < 5; i++)
        assert_int_equal(put_at(f, s, 0, data, sizeof data, "k", NOW, NULL), KN_OK);
    int before = count_files(f->dir, ".seg");
    rec *r;
    /* Invisible before any expiry ran. */
    assert_int_equal(read_all_paged(f, s, 0, NOW, 7, &r), 5);
    assert_rec(&r[0], data, sizeof data, "k");
    recs_free(r, 5);
    knd_store_expire(f->store, NOW);
    int after = count_files(f->dir, ".seg");
    assert_true(before >= 4);
    assert_true(after < before);
    assert_int_equal(read_all_paged(f, s, 0, NOW, 7, &r), 5);
    recs_free(r, 5);
    /* 25 hours later everything is past the 24-hour retention: the newest segment is replaced by an empty one. */
    knd_seq last = knd_store_latest(f->store, s, 0);
    knd_store_expire(f->store, NOW + 25 * HOUR);
    while (uv_run(&f->loop, UV_RUN_NOWAIT))
        ;
    knd_store_expire(f->store, NOW + 25 * HOUR);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    assert_int_equal(read_all_paged(f, s, 0, NOW + 25 * HOUR, 7, &r), 0);
    fx_close(f);
    fx_open(f);
    s = knd_store_find(f->store, "ret", 3);
    knd_seq next;
    assert_int_equal(put_at(f, s, 0, "x", 1, "k", NOW + 25 * HOUR, &next), KN_OK);
    assert_true(knd_seq_cmp(&last, &next) <= 0); /* the counter survived the emptied log */
    assert_int_equal(read_all_paged(f, s, 0, NOW + 25 * HOUR, 7, &r), 1);
    recs_free(r, 1);
}

static void delete_stream_removes_its_files(void **state)
{
    fixture *f = *state;
    fx_open(f);
    knd_stream *s = create(f, "gone", 2);
    knd_stream *keep = create(f, "keep", 1);
    assert_int_equal(put(f, s, 0, "a", NULL), KN_OK);
    assert_int_equal(put(f, keep, 0, "k", NULL), KN_OK);
    /* An append still in flight when the stream is deleted gets exactly one callback. */
    knd_record_in in = {(const uint8_t *)"x", 1, "k", 1};
    uint32_t shard = 1;
    knd_seq seq;
    done d = {0};
    assert_int_equal(knd_store_append(f->store, s, &in, &shard, NULL, 1, NOW, &seq, on_commit, &d, NULL), KN_OK);
    assert_int_equal(knd_store_delete_stream(f->store, s, NULL), KN_OK);
    assert_null(knd_store_find(f->store, "gone", 4));
    run_until(f, &d, 1);
    while (uv_run(&f->loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(d.calls, 1);
    assert_int_equal(count_files(f->dir, ".seg"), 1); /* only keep's */
    s = create(f, "gone", 1);
    rec *r;
    assert_int_equal(read_all(f, s, 0, &r), 0);
    fx_close(f);
    fx_open(f);
    assert_int_equal(knd_store_stream_count(f->store), 2);
    keep = knd_store_find(f->store, "keep", 4);
    assert_int_equal(read_all(f, keep, 0, &r), 1);
    recs_free(r, 1);
}

/* ---- in-memory mode ---- */

static void in_memory_round_trip_and_limit(void **state)
{
    fixture *f = *state;
    f->memory = true;
    f->memory_limit = 3 << 20;
    fx_open(f);
    knd_stream *s = create(f, "mem", 2);
    knd_seq a, b;
    assert_int_equal(put(f, s, 1, "one", &a), KN_OK);
    assert_int_equal(put(f, s, 1, "two", &b), KN_OK);
    assert_true(knd_seq_cmp(&a, &b) < 0);
    rec *r;
    assert_int_equal(read_all(f, s, 1, &r), 2);
    assert_rec(&r[1], "two", 3, "key");
    recs_free(r, 2);
    assert_int_equal(count_files(f->dir, ".seg"), 0);
    /* Fill to the limit: the error is clear and up front; deleting the stream frees the space. */
    static char big[512 << 10];
    kn_status st = KN_OK;
    int stored = 0;
    for (int i = 0; i < 20 && st == KN_OK; i++)
        if ((st = put_at(f, s, 0, big, sizeof big, "k", NOW, NULL)) == KN_OK)
            stored++;
    assert_int_equal(st, KN_ERR_NO_MEMORY);
    assert_true(stored >= 2 && stored <= 6); /* the limit counts whole 1 MiB memory segments */
    assert_int_equal(read_all(f, s, 0, &r), (size_t)stored);
    recs_free(r, (size_t)stored);
    assert_int_equal(knd_store_delete_stream(f->store, s, NULL), KN_OK);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    s = create(f, "mem2", 1);
    assert_int_equal(put_at(f, s, 0, big, sizeof big, "k", NOW, NULL), KN_OK);
    /* Retention frees memory segments too. */
    knd_store_stats before, after;
    knd_store_get_stats(f->store, &before);
    knd_store_expire(f->store, NOW + 25 * HOUR);
    knd_store_get_stats(f->store, &after);
    assert_true(after.memory_bytes < before.memory_bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_standard_check_value),
        cmocka_unit_test(crc32c_hardware_and_table_agree_and_extend),
        cmocka_unit_test_setup_teardown(append_commit_read_round_trip_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(records_are_invisible_until_the_commit_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(sequence_numbers_increase_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(metadata_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(second_open_of_a_data_dir_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_keeps_every_complete_record, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_header_of_newest_segment_is_refused_zero_header_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(paced_fill_zeroes_the_whole_file, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_is_reported_and_never_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(a_dirty_segment_that_cannot_be_reopened_stays_active, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_appends_fail_up_front_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(sequence_number_for_ordering_is_exceeded, setup, teardown),
        cmocka_unit_test_setup_teardown(read_respects_limit_and_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(at_timestamp_and_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(segments_roll_over_and_index_files_are_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(large_record_of_1_mib, setup, teardown),
        cmocka_unit_test_setup_teardown(many_shards_in_one_append, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_drops_old_segments_and_hides_old_records, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_stream_removes_its_files, setup, teardown),
        cmocka_unit_test_setup_teardown(in_memory_round_trip_and_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
