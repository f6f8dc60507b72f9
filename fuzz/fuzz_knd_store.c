/* Fuzz target: kinesisd's storage recovery (server/store.h knd_store_open over a data directory, server/segment.c's
 * scan), with a segment file (or the metadata file) made from the input.
 *
 * Once per process a template data directory is made with the real store: stream "s" with one shard and a few
 * records. Each input then rebuilds a work directory (in /dev/shm when it exists, so syncs are cheap) from the
 * template with one file replaced:
 *   flags bits 0-1 (the segment file of shard 0):
 *     0: the input is the whole file;
 *     1: the template's segment header, then the input as frames;
 *     2: the same with every frame the input spells out given a correct CRC-32C, so the order rules and the reader
 *        are fuzzed too and not only the checksum (frames a crash cannot produce: they must not crash the store
 *        either, and must not make it hand out sequence numbers that go backwards);
 *     3: the template's header and frames cut at an offset the first two input bytes give, then the rest of the
 *        input: a torn tail after good records.
 *   bit 2: zero-fill the file to the next 4 KiB past its content (the pre-allocated tail of a real segment).
 *   bit 4: the input replaces meta.json instead, and the segment file is the template's.
 * Properties: knd_store_open never crashes; when it refuses, it says why. When it opens, shard 0 reads back exactly the
 * records a reference scan written here from the format in segment.c accepts (well-formed frames with good
 * checksums, seq_ix strictly increasing from base_ix, arrival times non-decreasing, stopping at zeros or the first
 * damage), byte for byte and with increasing sequence numbers; a new append is acknowledged and reads back after
 * them with a greater sequence number; and a second open finds the same records again. */
#include "fuzz_util.h"

#include "crc32c.h"
#include "segment.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_MS 1764100000000LL /* the template's records arrive from here, one per second */
#define NOW_MS (T_MS + 3600000LL)
#define TEMPLATE_RECORDS 3
#define MAX_READ 10000
#define MAX_FILES 16

/* ---- the template, held in memory as (relative path, content) pairs ---- */

typedef struct tfile {
    char rel[256];
    uint8_t *data;
    size_t len;
    bool is_dir;
} tfile;

typedef struct template {
    char root[200];         /* parent of the template and work directories */
    char work[256];
    tfile files[MAX_FILES];
    size_t nfiles;
    size_t seg_file, meta_file; /* indexes into files */
    size_t frames_end;      /* the template segment's bytes that hold its records */
} template;

static template g_t;

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_root(void)
{
    rm_tree(g_t.root);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static size_t template_base_len;

static int collect(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    const char *rel = path + template_base_len;
    if (*rel == '/')
        rel++;
    if (!*rel || strcmp(rel, "LOCK") == 0)
        return 0;
    if (g_t.nfiles == MAX_FILES)
        abort();
    tfile *f = &g_t.files[g_t.nfiles];
    snprintf(f->rel, sizeof f->rel, "%s", rel);
    f->is_dir = type == FTW_D;
    if (!f->is_dir)
        f->data = read_whole(path, &f->len);
    size_t n = strlen(rel);
    if (n > 4 && strcmp(rel + n - 4, ".seg") == 0)
        g_t.seg_file = g_t.nfiles;
    if (strcmp(rel, "meta.json") == 0)
        g_t.meta_file = g_t.nfiles;
    g_t.nfiles++;
    return 0;
}

static void on_commit(void *ctx, kn_status status)
{
    *(kn_status *)ctx = status;
}

/* Appends one record and waits for its commit; returns the commit's status (or the up-front failure). */
static kn_status append_one(uv_loop_t *loop, knd_store *st, knd_stream *s, const char *key, const char *data,
                            int64_t now_ms, knd_seq *seq)
{
    knd_record_in rec = {(const uint8_t *)data, strlen(data), key, strlen(key)};
    uint32_t shard = 0;
    kn_status done = (kn_status)-1;
    kn_error err = {0};
    kn_status rc = knd_store_append(st, s, &rec, &shard, NULL, 1, now_ms, seq, on_commit, &done, &err);
    if (rc != KN_OK)
        return rc;
    while (done == (kn_status)-1 && uv_run(loop, UV_RUN_ONCE))
        ;
    KN_FUZZ_CHECK(done != (kn_status)-1);
    return done;
}

/* Work directories of earlier runs that died (a crash skips atexit) are removed when their process is gone. */
static void remove_stale_roots(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid;
        char path[512];
        if (sscanf(e->d_name, "kn-fuzz-store-%d", &pid) != 1 || pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        rm_tree(path);
    }
    closedir(d);
}

static void make_template(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    remove_stale_roots(base);
    snprintf(g_t.root, sizeof g_t.root, "%s/kn-fuzz-store-%d", base, (int)getpid());
    snprintf(g_t.work, sizeof g_t.work, "%s/work", g_t.root);
    char tdir[256];
    snprintf(tdir, sizeof tdir, "%s/template", g_t.root);
    rm_tree(g_t.root);
    if (mkdir(g_t.root, 0700) != 0)
        abort();
    atexit(remove_root);

    uv_loop_t loop;
    uv_loop_init(&loop);
    knd_store_options so = {.data_dir = tdir, .loop = &loop};
    knd_store *st;
    knd_stream *s;
    kn_error err = {0};
    if (knd_store_open(&so, &st, &err) != KN_OK ||
        knd_store_create_stream(st, "s", 1, KND_MODE_PROVISIONED, T_MS, T_MS, &s, &err) != KN_OK)
        abort();
    static const char *const keys[TEMPLATE_RECORDS] = {"a", "partition-key-b", "\xc3\xa9"};
    static const char *const data[TEMPLATE_RECORDS] = {"first", "", "third record, longer than the others"};
    for (int i = 0; i < TEMPLATE_RECORDS; i++) {
        knd_seq seq;
        if (append_one(&loop, st, s, keys[i], data[i], T_MS + 1000 * i, &seq) != KN_OK)
            abort();
    }
    knd_store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    template_base_len = strlen(tdir);
    g_t.seg_file = g_t.meta_file = SIZE_MAX;
    nftw(tdir, collect, 16, FTW_PHYS);
    if (g_t.seg_file == SIZE_MAX || g_t.meta_file == SIZE_MAX)
        abort();
}

/* ---- a reference scan, from the format description in segment.c ---- */

typedef struct ref_record {
    uint64_t ix;
    int64_t arrival_ms;
    const uint8_t *key, *data;
    size_t key_len, data_len;
} ref_record;

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static bool zeros(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The frame at off of a file of len bytes: its total size, or 0 when it is not a well-formed whole frame (its
 * checksum is not looked at). */
static size_t ref_frame_size(const uint8_t *file, size_t len, size_t off)
{
    if (len - off < 32 || zeros(file + off, 32))
        return 0;
    const uint8_t *h = file + off;
    uint64_t payload = le(h + 4, 4), key_len = le(h + 24, 2);
    if (memcmp(h + 28, "KREC", 4) != 0 || h[26] || h[27] || payload > (16u << 20) || key_len > payload)
        return 0;
    size_t size = (size_t)((32 + payload + 7) & ~(uint64_t)7);
    return size <= len - off ? size : 0;
}

/* The records recovery must keep: from offset 64 until zeros, damage, a bad checksum or broken order (seq_ix
 * strictly increasing from base_ix and below 2^63, arrival times non-decreasing). */
static size_t ref_scan(const uint8_t *file, size_t len, uint64_t base_ix, ref_record *out, size_t cap)
{
    size_t n = 0;
    for (size_t off = 64; off < len && n < cap;) {
        size_t size = ref_frame_size(file, len, off);
        if (size == 0)
            break;
        const uint8_t *h = file + off;
        ref_record r = {.ix = le(h + 8, 8), .arrival_ms = (int64_t)le(h + 16, 8), .key_len = le(h + 24, 2)};
        r.data_len = le(h + 4, 4) - r.key_len;
        r.key = h + 32;
        r.data = h + 32 + r.key_len;
        /* seqnum.c: a seq_ix has its top bit clear, so no sequence number is ever made from a larger one. */
        bool ordered = r.ix <= INT64_MAX &&
                       (n ? r.ix > out[n - 1].ix && r.arrival_ms >= out[n - 1].arrival_ms : r.ix >= base_ix);
        if (!ordered || le(h, 4) != knd_crc32c_compute(h + 4, size - 4))
            break;
        out[n++] = r;
        off += size;
    }
    return n;
}

/* Mode 2: gives every frame the input spells out, from offset 64 on, its correct checksum. */
static void fix_checksums(uint8_t *file, size_t len)
{
    for (size_t off = 64; off < len;) {
        size_t size = ref_frame_size(file, len, off);
        if (size == 0)
            return;
        uint32_t crc = knd_crc32c_compute(file + off + 4, size - 4);
        for (int i = 0; i < 4; i++)
            file[off + i] = (uint8_t)(crc >> (8 * i));
        off += size;
    }
}

/* ---- one input ---- */

static void write_file(const char *rel, const uint8_t *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_t.work, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t)len))
        abort();
    close(fd);
}

static void build_work_dir(const uint8_t *seg, size_t seg_len, const uint8_t *meta, size_t meta_len)
{
    rm_tree(g_t.work);
    if (mkdir(g_t.work, 0700) != 0)
        abort();
    for (size_t i = 0; i < g_t.nfiles; i++) {
        const tfile *f = &g_t.files[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", g_t.work, f->rel);
        if (f->is_dir) {
            if (mkdir(path, 0700) != 0)
                abort();
        } else if (i == g_t.seg_file) {
            write_file(f->rel, seg, seg_len);
        } else if (i == g_t.meta_file) {
            write_file(f->rel, meta, meta_len);
        } else {
            write_file(f->rel, f->data, f->len);
        }
    }
}

/* Shard 0 of s, read from the start at NOW_MS; the views are copied out, since they live only until the next call. */
typedef struct read_result {
    size_t n;
    knd_record_out rec[MAX_READ];
    uint8_t *copy[MAX_READ];
} read_result;

static void read_all(knd_store *st, knd_stream *s, read_result *r)
{
    knd_seq from = {{0}};
    int64_t latest = 0;
    kn_error err = {0};
    r->n = 0;
    KN_FUZZ_CHECK(knd_store_read(st, s, 0, &from, false, MAX_READ, SIZE_MAX, NOW_MS, r->rec, &r->n, &latest, &err) ==
                  KN_OK);
    for (size_t i = 0; i < r->n; i++) {
        knd_record_out *o = &r->rec[i];
        r->copy[i] = malloc(o->partition_key_len + o->data_len + 1);
        if (!r->copy[i])
            abort();
        memcpy(r->copy[i], o->partition_key, o->partition_key_len);
        memcpy(r->copy[i] + o->partition_key_len, o->data, o->data_len);
        o->partition_key = (const char *)r->copy[i];
        o->data = r->copy[i] + o->partition_key_len;
        if (i > 0)
            KN_FUZZ_CHECK(knd_seq_cmp(&r->rec[i - 1].seq, &o->seq) < 0);
    }
}

static void read_free(read_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->copy[i]);
    r->n = 0;
}

static bool same_record(const knd_record_out *o, const ref_record *e)
{
    return o->arrival_ms == e->arrival_ms && o->partition_key_len == e->key_len && o->data_len == e->data_len &&
           memcmp(o->partition_key, e->key, e->key_len) == 0 && memcmp(o->data, e->data, e->data_len) == 0;
}

static bool same_reads(const read_result *a, const read_result *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const knd_record_out *x = &a->rec[i], *y = &b->rec[i];
        ref_record as_ref = {0, y->arrival_ms, (const uint8_t *)y->partition_key, y->data, y->partition_key_len,
                             y->data_len};
        if (knd_seq_cmp(&x->seq, &y->seq) != 0 || !same_record(x, &as_ref))
            return false;
    }
    return true;
}

/* The records kept must be exactly those the reference accepts that retention still shows. */
static void check_kept(const read_result *r, const uint8_t *seg, size_t seg_len)
{
    static ref_record expect[MAX_READ];
    knd_segment_header h;
    if (seg_len < 64 || !knd_segment_header_decode(seg, &h)) {
        KN_FUZZ_CHECK(r->n == 0); /* opened without this segment: only a zero or short header is dropped */
        return;
    }
    size_t n = ref_scan(seg, seg_len, h.base_ix, expect, MAX_READ);
    int64_t cutoff = NOW_MS - 24 * 3600000LL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (expect[i].arrival_ms < cutoff)
            continue;
        KN_FUZZ_CHECK(k < r->n && same_record(&r->rec[k], &expect[i]));
        k++;
    }
    KN_FUZZ_CHECK(k == r->n);
}

static void check_store(const uint8_t *seg, size_t seg_len, bool meta_fuzzed)
{
    static read_result before, after, again;
    uv_loop_t loop;
    uv_loop_init(&loop);
    knd_store_options so = {.data_dir = g_t.work, .loop = &loop};
    knd_store *st = NULL;
    kn_error err = {0};
    kn_status rc = knd_store_open(&so, &st, &err);
    if (rc != KN_OK) {
        KN_FUZZ_CHECK(err.message[0] != '\0');
        goto cleanup;
    }
    knd_stream *s = knd_store_find(st, "s", 1);
    KN_FUZZ_CHECK(s || meta_fuzzed);
    if (!s || s->shard_count == 0 || s->shards[0].closed)
        goto close_store;
    read_all(st, s, &before);
    if (!meta_fuzzed)
        check_kept(&before, seg, seg_len);

    knd_seq seq;
    if (append_one(&loop, st, s, "after-recovery", "new", NOW_MS, &seq) == KN_OK) {
        read_all(st, s, &after);
        KN_FUZZ_CHECK(after.n == before.n + 1);
        KN_FUZZ_CHECK(knd_seq_cmp(&after.rec[after.n - 1].seq, &seq) == 0);
        KN_FUZZ_CHECK(before.n == 0 || knd_seq_cmp(&before.rec[before.n - 1].seq, &seq) < 0);
    } else {
        read_all(st, s, &after);
    }
    knd_store_close(st);
    st = NULL;

    /* Recovery is repeatable: a second open finds what the first left. */
    rc = knd_store_open(&so, &st, &err);
    KN_FUZZ_CHECK(rc == KN_OK);
    s = knd_store_find(st, "s", 1);
    KN_FUZZ_CHECK(s != NULL);
    read_all(st, s, &again);
    KN_FUZZ_CHECK(same_reads(&after, &again));
close_store:
    knd_store_close(st);
cleanup:
    read_free(&before);
    read_free(&after);
    read_free(&again);
    uv_run(&loop, UV_RUN_DEFAULT);
    KN_FUZZ_CHECK(uv_loop_close(&loop) == 0);
}

/* The segment file of one input (malloc'd), per the modes in the header comment. */
static uint8_t *make_segment(uint8_t flags, const uint8_t *in, size_t n, size_t *len)
{
    const tfile *tf = &g_t.files[g_t.seg_file];
    size_t cap = 64 + n + g_t.frames_end + 8192;
    uint8_t *seg = calloc(1, cap);
    if (!seg)
        abort();
    size_t used = 0;
    switch (flags & 3) {
    case 0:
        memcpy(seg, in, n);
        used = n;
        break;
    case 1:
    case 2:
        memcpy(seg, tf->data, 64);
        memcpy(seg + 64, in, n);
        used = 64 + n;
        if ((flags & 3) == 2)
            fix_checksums(seg, used);
        break;
    default: {
        size_t cut = n >= 2 ? (in[0] | (size_t)in[1] << 8) % (g_t.frames_end + 1) : g_t.frames_end;
        size_t rest = n >= 2 ? n - 2 : 0;
        memcpy(seg, tf->data, cut);
        memcpy(seg + cut, in + (n - rest), rest);
        used = cut + rest;
    }
    }
    if (flags & 4)
        used = (used + 4096) & ~(size_t)4095; /* calloc'd: the tail is zeros */
    *len = used;
    return seg;
}

static void fuzz_knd_store(const uint8_t *data, size_t size)
{
    if (g_t.nfiles == 0) {
        make_template();
        const tfile *tf = &g_t.files[g_t.seg_file];
        knd_segment_header h;
        static ref_record recs[TEMPLATE_RECORDS + 1];
        if (tf->len < 64 || !knd_segment_header_decode(tf->data, &h) ||
            ref_scan(tf->data, tf->len, h.base_ix, recs, TEMPLATE_RECORDS + 1) != TEMPLATE_RECORDS)
            abort(); /* the reference disagrees with the real store on its own output */
        const ref_record *last = &recs[TEMPLATE_RECORDS - 1];
        g_t.frames_end = (size_t)(last->data + last->data_len - tf->data + 7) & ~(size_t)7;
    }
    if (size == 0)
        return;
    uint8_t flags = data[0];
    const tfile *meta = &g_t.files[g_t.meta_file];
    if (flags & 16) {
        const tfile *tf = &g_t.files[g_t.seg_file];
        build_work_dir(tf->data, tf->len, data + 1, size - 1);
        check_store(tf->data, tf->len, true);
        return;
    }
    size_t seg_len;
    uint8_t *seg = make_segment(flags, data + 1, size - 1, &seg_len);
    build_work_dir(seg, seg_len, meta->data, meta->len);
    check_store(seg, seg_len, false);
    free(seg);
}

KN_FUZZ_ENTRY(fuzz_knd_store)
