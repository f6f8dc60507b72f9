/* kinesisd's record log format. All integers are little-endian.
 *
 * Layout: DATA_DIR/streams/<stream id, 8 hex digits>/<shard index, 6 digits>/ holds one shard's log as numbered
 * segment files <no, 16 hex digits>.seg (numbers increase; the highest is the active one, written at its end)
 * and, for sealed segments, a sidecar index <no>.idx.
 *
 * Segment file. A segment is created at its full size and filled with zeros before it is first used, so that
 * appending never changes the file's size or allocation and fdatasync flushes data only (measured here:
 * 137 us per sync instead of 171 us with fallocate's unwritten extents and 238 us when the file grows).
 *
 *   offset size  segment header (64 bytes)
 *   0      8     magic "KNDSEG\0\1"
 *   8      4     format version = 1
 *   12     4     shard index
 *   16     4     stream id
 *   20     4     0
 *   24     8     segment number (equals the file name's)
 *   32     8     base_ix: the shard's next seq_ix when the segment was started (every frame's ix >= base_ix)
 *   40     8     creation time, unix ms
 *   48     12    0
 *   60     4     CRC-32C of bytes 0..59
 *
 * Then frames, back to back from offset 64, each starting at a multiple of 8:
 *
 *   offset size  frame header (32 bytes)
 *   0      4     CRC-32C of the rest of the frame, bytes 4 .. frame end (header, key, data and padding)
 *   4      4     payload length = key_len + data_len (at most 16 MiB)
 *   8      8     seq_ix, the record's per-shard counter (see seqnum.c: the sequence number is derived from it, the
 *                arrival time and the shard's identity)
 *   16     8     arrival time, unix ms (non-decreasing along the log)
 *   24     2     key_len (partition key bytes, UTF-8)
 *   26     2     0
 *   28     4     frame magic "KREC"
 *   32     ...   partition key bytes, then data bytes, then zero padding to a multiple of 8
 *
 * The log ends at the first frame header that is all zeros (the pre-filled tail) or at the end of the file.
 *
 * Index file (sealed segments only; a cache of the segment's contents, never needed for correctness):
 *   0      8     magic "KNDIDX\0\1"
 *   8      8     segment number
 *   16     8     base_ix
 *   24     8     record count
 *   32     8     first seq_ix       40  8  last seq_ix
 *   48     8     first arrival ms   56  8  last arrival ms
 *   64     8     end: offset just past the last frame
 *   72     4     n, the number of entries
 *   76     4     CRC-32C of bytes 0..75 followed by the entries
 *   80     n*24  entries {seq_ix u64, arrival ms i64, frame offset u64}: the first frame at or past every 64 KiB
 *
 * Journal file DATA_DIR/journal: a write-ahead log of commit groups, so that a group touching N shards costs one
 * fdatasync instead of N. It is created zero-filled (4 MiB at first, grown at checkpoints) for the same reason as
 * segments, and reused from its start after every checkpoint.
 *
 *   offset size  journal header (64 bytes)
 *   0      8     magic "KNDJNL\0\1"
 *   8      4     format version = 1
 *   12     4     0
 *   16     8     epoch: only records of this epoch are valid; it increases at every checkpoint
 *   24     36    0
 *   60     4     CRC-32C of bytes 0..59
 *
 * Then records, back to back from offset 64 (each a multiple of 8 long), one per commit group:
 *
 *   offset size  record header (32 bytes)
 *   0      4     CRC-32C of bytes 4 .. record end (the rest of the header and the body)
 *   4      4     body length (a multiple of 8)
 *   8      8     epoch (equals the file header's)
 *   16     8     record number within the epoch: 0 at offset 64, then 1, 2, ... with no gap
 *   24     4     number of entries
 *   28     4     record magic "KJNL"
 *   32     ...   body: entries back to back, each
 *                  0  4  stream id
 *                  4  4  shard index
 *                  8  4  frames length (a multiple of 8)
 *                  12 4  0
 *                  16 .. frames, byte for byte as they are written to that shard's segment (see above)
 *
 * The journal ends at the first record that is not valid: bad magic or checksum, another epoch, a number out of
 * sequence, a length past the file's end, or a body whose entries and frames do not parse exactly.
 *
 * Durability and recovery (the commit path is in store.c):
 * - A commit group's frames are written at the end of each shard's active segment without a sync, then as one
 *   journal record with one pwritev + fdatasync; only then are the records acknowledged and readable. A group that
 *   starts a new segment writes and syncs that segment (and its directory) first, and syncs the segment it seals,
 *   so every segment but a shard's active one is complete on disk.
 * - Checkpoint: when the next record does not fit in the journal, every segment written since the last checkpoint
 *   is synced; then the header is rewritten with the next epoch and the record goes to offset 64, in the same
 *   fdatasync. The header is never written while a segment holds frames that are not synced, so a damaged header
 *   (a torn checkpoint) means the journal holds nothing that the segments lack: it is read as empty. A clean
 *   shutdown checkpoints, so it leaves nothing to replay.
 * - A new segment is created (zero-filled, synced, its directory synced) before frames go into it, and a segment
 *   receives frames only after every earlier segment's frames were synced, so after a crash only the highest-
 *   numbered segment of a shard can have a torn tail.
 * - On open, that segment is scanned from its start; the log is cut at the first frame that is all zeros (the clean
 *   end), not well-formed, failing its CRC, or breaking the order (ix strictly increasing, >= base_ix and < 2^63, arrival
 *   times non-decreasing). What the scan accepted is synced again (after a kill -9 it may exist only in the page
 *   cache) and the segment is sealed at the cut: new frames go to a new segment, so bytes a crash left past the cut
 *   are never followed by newer frames that could make them look like part of the log, and every later scan of the
 *   sealed segment stops at the same place.
 * - Then the journal is replayed: every frame of a valid record whose seq_ix is past its shard's recovered end (the
 *   cut lost it, e.g. to a power failure before the segment's pages reached the disk) is written, in journal order,
 *   to a new segment of its shard, which is synced; frames of streams that no longer exist are skipped. Then the
 *   journal starts a new epoch. Replaying is idempotent: seq_ix only grows along a shard, so a frame is written at
 *   most once whatever the journal repeats.
 * - A highest-numbered segment whose header is all zeros never held an acknowledged frame (its header is written
 *   and synced with its first frames); it is removed. A header that is neither valid nor zero is damage that no
 *   crash produces (the header is the first 64 bytes of the file's first write), so the store refuses to open
 *   rather than guess. Index files are rebuilt by a scan when missing or damaged.
 * - A failed write or sync is not acknowledged; its bytes (in segments and in the journal) are overwritten with zeros
 *   at once (or, if that fails too, by the next commit to that place), so they cannot resurface after a later crash.
 *   A failed journal record's number is reused by the next record, which is written at the same offset. */
#include "segment.h"

#include "crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static const uint8_t SEG_MAGIC[8] = {'K', 'N', 'D', 'S', 'E', 'G', 0, 1};
static const uint8_t IDX_MAGIC[8] = {'K', 'N', 'D', 'I', 'D', 'X', 0, 1};
static const uint8_t FRAME_MAGIC[4] = {'K', 'R', 'E', 'C'};
#define SEG_VERSION 1u
#define IDX_HEADER_BYTES 80u
#define IDX_ENTRY_BYTES 24u
#define SCAN_WINDOW (1u << 20)
#define FILL_STEP (256u << 10) /* about 1 ms of this disk's writes: what a commit may wait behind */
#define WRITEBACK_WINDOW (256u << 10)

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

void knd_segment_header_encode(const knd_segment_header *h, uint8_t out[KND_SEGMENT_HEADER_BYTES])
{
    memset(out, 0, KND_SEGMENT_HEADER_BYTES);
    memcpy(out, SEG_MAGIC, 8);
    put32(out + 8, SEG_VERSION);
    put32(out + 12, h->shard_index);
    put32(out + 16, h->stream_id);
    put64(out + 24, h->no);
    put64(out + 32, h->base_ix);
    put64(out + 40, (uint64_t)h->created_ms);
    put32(out + 60, knd_crc32c_compute(out, 60));
}

bool knd_segment_header_decode(const uint8_t in[KND_SEGMENT_HEADER_BYTES], knd_segment_header *h)
{
    if (memcmp(in, SEG_MAGIC, 8) != 0 || get32(in + 8) != SEG_VERSION ||
        get32(in + 60) != knd_crc32c_compute(in, 60))
        return false;
    h->shard_index = get32(in + 12);
    h->stream_id = get32(in + 16);
    h->no = get64(in + 24);
    h->base_ix = get64(in + 32);
    h->created_ms = (int64_t)get64(in + 40);
    return true;
}

size_t knd_segment_frame_size(size_t key_len, size_t data_len)
{
    return (KND_FRAME_HEADER_BYTES + key_len + data_len + 7) & ~(size_t)7;
}

void knd_segment_frame_encode(uint8_t *out, uint64_t ix, int64_t arrival_ms, const char *key, size_t key_len,
                              const uint8_t *data, size_t data_len)
{
    size_t payload = key_len + data_len, size = knd_segment_frame_size(key_len, data_len);
    put32(out + 4, (uint32_t)payload);
    put64(out + 8, ix);
    put64(out + 16, (uint64_t)arrival_ms);
    out[24] = (uint8_t)key_len;
    out[25] = (uint8_t)(key_len >> 8);
    out[26] = out[27] = 0;
    memcpy(out + 28, FRAME_MAGIC, 4);
    if (key_len)
        memcpy(out + KND_FRAME_HEADER_BYTES, key, key_len);
    if (data_len)
        memcpy(out + KND_FRAME_HEADER_BYTES + key_len, data, data_len);
    memset(out + KND_FRAME_HEADER_BYTES + payload, 0, size - KND_FRAME_HEADER_BYTES - payload);
    put32(out, knd_crc32c_compute(out + 4, size - 4));
}

knd_frame_status knd_segment_frame_parse(const uint8_t hdr[KND_FRAME_HEADER_BYTES], uint64_t room, knd_frame *f)
{
    if (all_zero(hdr, KND_FRAME_HEADER_BYTES))
        return KND_FRAME_END;
    uint32_t payload = get32(hdr + 4);
    uint32_t key_len = (uint32_t)hdr[24] | (uint32_t)hdr[25] << 8;
    if (memcmp(hdr + 28, FRAME_MAGIC, 4) != 0 || hdr[26] || hdr[27] || payload > KND_FRAME_MAX_PAYLOAD ||
        key_len > payload)
        return KND_FRAME_BAD;
    f->ix = get64(hdr + 8);
    f->arrival_ms = (int64_t)get64(hdr + 16);
    f->key_len = key_len;
    f->data_len = payload - key_len;
    f->size = knd_segment_frame_size(key_len, f->data_len);
    return f->size <= room ? KND_FRAME_OK : KND_FRAME_BAD;
}

bool knd_segment_frame_verify(const uint8_t *p, const knd_frame *f)
{
    return get32(p) == knd_crc32c_compute(p + 4, f->size - 4);
}

bool knd_segment_path(char *out, size_t cap, const char *dir, uint64_t no, const char *ext)
{
    int n = snprintf(out, cap, "%s/%016llx.%s", dir, (unsigned long long)no, ext);
    return n > 0 && (size_t)n < cap;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Reads up to n bytes; *got < n only at the end of the file. */
static int read_all(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, p + *got, n - *got, (off_t)(off + *got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int knd_segment_pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    while (iovcnt > 0) {
        int batch = iovcnt < IOV_MAX ? iovcnt : IOV_MAX;
        ssize_t w = pwritev(fd, iov, batch, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        off += (uint64_t)w;
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0 && left) { /* a short write ended inside this element: resume from there */
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int knd_segment_zero(int fd, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[64 << 10];
    while (from < to) {
        size_t n = to - from < sizeof zeros ? (size_t)(to - from) : sizeof zeros;
        int rc = write_all(fd, zeros, n, from);
        if (rc)
            return rc;
        from += n;
    }
    return 0;
}

int knd_segment_fill_paced(int fd, uint64_t size)
{
    const unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    for (uint64_t off = 0; off < size; off += FILL_STEP) {
        uint64_t n = size - off < FILL_STEP ? size - off : FILL_STEP;
        int rc = knd_segment_zero(fd, off, off + n);
        if (rc)
            return rc;
        if (sync_file_range(fd, (off_t)off, (off_t)n, flags))
            return errno;
    }
    return 0;
}

void knd_segment_start_writeback(int fd, uint64_t off, uint64_t len)
{
    uint64_t first = off / WRITEBACK_WINDOW, end = (off + len) / WRITEBACK_WINDOW;
    if (end > first) /* best effort: an error here is found again by the checkpoint's fdatasync */
        (void)sync_file_range(fd, (off_t)(first * WRITEBACK_WINDOW), (off_t)((end - first) * WRITEBACK_WINDOW),
                              SYNC_FILE_RANGE_WRITE);
}

int knd_segment_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    return rc;
}

int knd_segment_idx_write(const char *path, const knd_segment_summary *sum, const knd_segment_idx_entry *entries,
                          size_t n)
{
    size_t size = IDX_HEADER_BYTES + n * IDX_ENTRY_BYTES;
    uint8_t *buf = calloc(1, size);
    int rc = 0, fd = -1;
    if (!buf)
        return ENOMEM;
    memcpy(buf, IDX_MAGIC, 8);
    put64(buf + 8, sum->no);
    put64(buf + 16, sum->base_ix);
    put64(buf + 24, sum->count);
    put64(buf + 32, sum->first_ix);
    put64(buf + 40, sum->last_ix);
    put64(buf + 48, (uint64_t)sum->first_ms);
    put64(buf + 56, (uint64_t)sum->last_ms);
    put64(buf + 64, sum->end);
    put32(buf + 72, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = buf + IDX_HEADER_BYTES + i * IDX_ENTRY_BYTES;
        put64(e, entries[i].ix);
        put64(e + 8, (uint64_t)entries[i].arrival_ms);
        put64(e + 16, entries[i].off);
    }
    uint32_t crc = knd_crc32c_extend(knd_crc32c_compute(buf, 76), buf + IDX_HEADER_BYTES, size - IDX_HEADER_BYTES);
    put32(buf + 76, crc);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = errno;
        goto cleanup;
    }
    rc = write_all(fd, buf, size, 0);
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int knd_segment_idx_read(const char *path, uint64_t no, knd_segment_summary *sum, knd_segment_idx_entry **entries,
                         size_t *n)
{
    uint8_t *buf = NULL;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    size_t got = 0;
    if (fd < 0)
        return errno;
    if (fstat(fd, &st)) {
        rc = errno;
        goto cleanup;
    }
    if (st.st_size < IDX_HEADER_BYTES || st.st_size > (64 << 20)) {
        rc = EILSEQ;
        goto cleanup;
    }
    if (!(buf = malloc((size_t)st.st_size))) {
        rc = ENOMEM;
        goto cleanup;
    }
    if ((rc = read_all(fd, buf, (size_t)st.st_size, 0, &got)))
        goto cleanup;
    uint32_t count = get32(buf + 72);
    if (got != (size_t)st.st_size || memcmp(buf, IDX_MAGIC, 8) != 0 || get64(buf + 8) != no ||
        got != IDX_HEADER_BYTES + (size_t)count * IDX_ENTRY_BYTES ||
        get32(buf + 76) !=
            knd_crc32c_extend(knd_crc32c_compute(buf, 76), buf + IDX_HEADER_BYTES, got - IDX_HEADER_BYTES)) {
        rc = EILSEQ;
        goto cleanup;
    }
    *sum = (knd_segment_summary){
        .no = no,
        .base_ix = get64(buf + 16),
        .count = get64(buf + 24),
        .first_ix = get64(buf + 32),
        .last_ix = get64(buf + 40),
        .first_ms = (int64_t)get64(buf + 48),
        .last_ms = (int64_t)get64(buf + 56),
        .end = get64(buf + 64),
    };
    if (entries) {
        *entries = malloc(count ? count * sizeof **entries : 1);
        if (!*entries) {
            rc = ENOMEM;
            goto cleanup;
        }
        for (uint32_t i = 0; i < count; i++) {
            const uint8_t *e = buf + IDX_HEADER_BYTES + (size_t)i * IDX_ENTRY_BYTES;
            (*entries)[i] = (knd_segment_idx_entry){get64(e), (int64_t)get64(e + 8), get64(e + 16)};
        }
        *n = count;
    }
cleanup:
    free(buf);
    close(fd);
    return rc;
}

/* A read window over a file, refilled as the scan moves forward. */
typedef struct window {
    int fd;
    uint64_t file_size;
    uint8_t *buf;
    size_t cap;
    uint64_t start; /* file offset of buf[0] */
    size_t len;
} window;

/* An empty window over the whole of fd, as its size is now. Returns 0 or an errno value. */
static int window_open(window *w, int fd)
{
    struct stat st;
    if (fstat(fd, &st))
        return errno;
    *w = (window){.fd = fd, .file_size = (uint64_t)st.st_size};
    return 0;
}

/* Points *p at [off, off+n) of the file; returns 0, an errno value, or -1 when the file ends before off+n. */
static int window_get(window *w, uint64_t off, size_t n, const uint8_t **p)
{
    if (off >= w->start && off + n <= w->start + w->len) {
        *p = w->buf + (off - w->start);
        return 0;
    }
    if (off + n > w->file_size)
        return -1;
    size_t want = n > SCAN_WINDOW ? n : SCAN_WINDOW;
    if (want > w->file_size - off)
        want = (size_t)(w->file_size - off);
    if (want > w->cap) {
        uint8_t *nb = realloc(w->buf, want);
        if (!nb)
            return ENOMEM;
        w->buf = nb;
        w->cap = want;
    }
    size_t got;
    int rc = read_all(w->fd, w->buf, want, off, &got);
    w->start = off;
    w->len = rc ? 0 : got;
    if (rc)
        return rc;
    if (got < n)
        return -1;
    *p = w->buf;
    return 0;
}

/* Adds the frame at off to the summary and, when it starts a new index interval, to the sparse index. */
static int scan_add(knd_segment_scan *out, size_t *cap, const knd_frame *f, uint64_t off)
{
    knd_segment_summary *s = &out->sum;
    if (s->count == 0) {
        s->first_ix = f->ix;
        s->first_ms = f->arrival_ms;
    }
    s->count++;
    s->last_ix = f->ix;
    s->last_ms = f->arrival_ms;
    s->end = off + f->size;
    if (out->n_entries && off < out->entries[out->n_entries - 1].off + KND_SEGMENT_INDEX_INTERVAL)
        return 0;
    if (out->n_entries == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        knd_segment_idx_entry *ne = realloc(out->entries, ncap * sizeof *ne);
        if (!ne)
            return ENOMEM;
        out->entries = ne;
        *cap = ncap;
    }
    out->entries[out->n_entries++] = (knd_segment_idx_entry){f->ix, f->arrival_ms, off};
    return 0;
}

/* Checks the frame at off: well-formed, whole, checksum good, in order after the previous one. */
static int scan_frame(window *w, const knd_segment_scan *out, uint64_t off, knd_frame *f, knd_frame_status *st)
{
    const uint8_t *p;
    int rc = window_get(w, off, KND_FRAME_HEADER_BYTES, &p);
    if (rc < 0) { /* no room for a header: zeros are the clean end of a full file, anything else is damage */
        *st = KND_FRAME_END;
        size_t left = (size_t)(w->file_size - off);
        if (left && (rc = window_get(w, off, left, &p)) == 0 && !all_zero(p, left))
            *st = KND_FRAME_BAD;
        return rc < 0 ? 0 : rc;
    }
    if (rc)
        return rc;
    *st = knd_segment_frame_parse(p, w->file_size - off, f);
    if (*st != KND_FRAME_OK)
        return 0;
    if ((rc = window_get(w, off, f->size, &p))) {
        *st = KND_FRAME_BAD;
        return rc < 0 ? 0 : rc;
    }
    const knd_segment_summary *s = &out->sum;
    /* seq_ix lives in 63 bits of the sequence number (seqnum.c); a frame past that could only be corruption with a
     * valid CRC, and keeping it would wrap the shard's counter and make the next sequence number go backwards. */
    bool ordered = f->ix <= INT64_MAX &&
                   (s->count ? f->ix > s->last_ix && f->arrival_ms >= s->last_ms : f->ix >= out->header.base_ix);
    if (!ordered || !knd_segment_frame_verify(p, f))
        *st = KND_FRAME_BAD;
    return 0;
}

int knd_segment_scan_fd(int fd, knd_segment_scan *out)
{
    memset(out, 0, sizeof *out);
    window w = {0};
    int rc = window_open(&w, fd);
    if (rc)
        return rc;
    const uint8_t *p;
    size_t cap = 0;
    out->file_size = w.file_size;
    rc = window_get(&w, 0, KND_SEGMENT_HEADER_BYTES, &p);
    if (rc) {
        out->header_zero = true; /* shorter than a header: a creation that never completed */
        rc = rc < 0 ? 0 : rc;
        goto cleanup;
    }
    if (!knd_segment_header_decode(p, &out->header)) {
        out->header_zero = all_zero(p, KND_SEGMENT_HEADER_BYTES);
        goto cleanup;
    }
    out->header_ok = true;
    out->sum.no = out->header.no;
    out->sum.base_ix = out->header.base_ix;
    out->sum.end = KND_SEGMENT_HEADER_BYTES;
    for (uint64_t off = KND_SEGMENT_HEADER_BYTES;;) {
        knd_frame f;
        knd_frame_status fs;
        if ((rc = scan_frame(&w, out, off, &f, &fs)))
            goto cleanup;
        if (fs != KND_FRAME_OK) {
            out->torn = fs == KND_FRAME_BAD;
            break;
        }
        if ((rc = scan_add(out, &cap, &f, off)))
            goto cleanup;
        off += f.size;
    }
cleanup:
    free(w.buf);
    if (rc) {
        free(out->entries);
        out->entries = NULL;
        out->n_entries = 0;
    }
    return rc;
}

/* ---- journal ---- */

static const uint8_t JNL_MAGIC[8] = {'K', 'N', 'D', 'J', 'N', 'L', 0, 1};
static const uint8_t JREC_MAGIC[4] = {'K', 'J', 'N', 'L'};
#define JNL_VERSION 1u

void knd_segment_journal_header_encode(uint64_t epoch, uint8_t out[KND_JOURNAL_HEADER_BYTES])
{
    memset(out, 0, KND_JOURNAL_HEADER_BYTES);
    memcpy(out, JNL_MAGIC, 8);
    put32(out + 8, JNL_VERSION);
    put64(out + 16, epoch);
    put32(out + 60, knd_crc32c_compute(out, 60));
}

bool knd_segment_journal_header_decode(const uint8_t in[KND_JOURNAL_HEADER_BYTES], uint64_t *epoch)
{
    if (memcmp(in, JNL_MAGIC, 8) != 0 || get32(in + 8) != JNL_VERSION ||
        get32(in + 60) != knd_crc32c_compute(in, 60))
        return false;
    *epoch = get64(in + 16);
    return true;
}

void knd_segment_journal_entry_encode(uint8_t out[KND_JOURNAL_ENTRY_HEADER_BYTES], uint32_t stream_id,
                                      uint32_t shard_index, uint32_t frames_len)
{
    put32(out, stream_id);
    put32(out + 4, shard_index);
    put32(out + 8, frames_len);
    put32(out + 12, 0);
}

void knd_segment_journal_record_encode(uint8_t out[KND_JOURNAL_RECORD_HEADER_BYTES], uint64_t epoch, uint64_t no,
                                       uint32_t entries, const struct iovec *body, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += body[i].iov_len;
    put32(out + 4, (uint32_t)len);
    put64(out + 8, epoch);
    put64(out + 16, no);
    put32(out + 24, entries);
    memcpy(out + 28, JREC_MAGIC, 4);
    uint32_t crc = knd_crc32c_compute(out + 4, KND_JOURNAL_RECORD_HEADER_BYTES - 4);
    for (int i = 0; i < n; i++)
        crc = knd_crc32c_extend(crc, body[i].iov_base, body[i].iov_len);
    put32(out, crc);
}

/* True when body[0..len) is exactly `entries` entries whose frames all parse and pass their checksums. */
static bool journal_body_ok(const uint8_t *body, size_t len, uint32_t entries)
{
    size_t pos = 0;
    for (uint32_t e = 0; e < entries; e++) {
        if (len - pos < KND_JOURNAL_ENTRY_HEADER_BYTES)
            return false;
        size_t flen = get32(body + pos + 8);
        pos += KND_JOURNAL_ENTRY_HEADER_BYTES;
        if (flen % 8 || flen > len - pos || get32(body + pos - 4) != 0)
            return false;
        for (size_t fpos = 0; fpos < flen;) {
            knd_frame f;
            if (flen - fpos < KND_FRAME_HEADER_BYTES ||
                knd_segment_frame_parse(body + pos + fpos, flen - fpos, &f) != KND_FRAME_OK ||
                !knd_segment_frame_verify(body + pos + fpos, &f))
                return false;
            fpos += f.size;
        }
        pos += flen;
    }
    return pos == len;
}

/* Calls fn for every entry of a record body that journal_body_ok accepted. */
static bool journal_body_each(const uint8_t *body, size_t len, knd_journal_entry_fn fn, void *ctx)
{
    for (size_t pos = 0; pos < len;) {
        const uint8_t *e = body + pos;
        size_t flen = get32(e + 8);
        if (!fn(ctx, get32(e), get32(e + 4), e + KND_JOURNAL_ENTRY_HEADER_BYTES, flen))
            return false;
        pos += KND_JOURNAL_ENTRY_HEADER_BYTES + flen;
    }
    return true;
}

/* Reads the record at off: 1 when it is a valid record of epoch/no (its body then at *body), 0 when it is not,
 * or an errno value (negated). *rec_epoch gets the epoch of a record with a good checksum (0 otherwise). */
static int journal_record_at(window *w, uint64_t off, uint64_t epoch, uint64_t no, const uint8_t **body,
                             size_t *body_len, uint32_t *entries, uint64_t *rec_epoch)
{
    const uint8_t *p;
    *rec_epoch = 0;
    int rc = window_get(w, off, KND_JOURNAL_RECORD_HEADER_BYTES, &p);
    if (rc)
        return rc < 0 ? 0 : -rc;
    size_t len = get32(p + 4);
    if (memcmp(p + 28, JREC_MAGIC, 4) != 0 || len % 8 ||
        len > w->file_size - off - KND_JOURNAL_RECORD_HEADER_BYTES)
        return 0;
    if ((rc = window_get(w, off, KND_JOURNAL_RECORD_HEADER_BYTES + len, &p)))
        return rc < 0 ? 0 : -rc;
    if (get32(p) != knd_crc32c_compute(p + 4, KND_JOURNAL_RECORD_HEADER_BYTES - 4 + len))
        return 0;
    *rec_epoch = get64(p + 8);
    *entries = get32(p + 24);
    *body = p + KND_JOURNAL_RECORD_HEADER_BYTES;
    *body_len = len;
    return *rec_epoch == epoch && get64(p + 16) == no && journal_body_ok(*body, len, *entries);
}

int knd_segment_journal_scan(int fd, knd_journal_scan *out, knd_journal_entry_fn fn, void *ctx)
{
    memset(out, 0, sizeof *out);
    window w = {0};
    int rc = window_open(&w, fd);
    if (rc)
        return rc;
    const uint8_t *p;
    out->file_size = w.file_size;
    out->end = KND_JOURNAL_HEADER_BYTES;
    if ((rc = window_get(&w, 0, KND_JOURNAL_HEADER_BYTES, &p)) != 0) {
        rc = rc < 0 ? 0 : rc; /* shorter than a header: a creation that never completed, nothing to read */
        goto cleanup;
    }
    out->header_ok = knd_segment_journal_header_decode(p, &out->epoch);
    out->max_epoch = out->header_ok ? out->epoch : 0;
    for (uint64_t off = KND_JOURNAL_HEADER_BYTES, no = 0;; no++) {
        const uint8_t *body = NULL;
        size_t len = 0;
        uint32_t entries = 0;
        uint64_t rec_epoch;
        int valid = journal_record_at(&w, off, out->epoch, no, &body, &len, &entries, &rec_epoch);
        if (no == 0 && rec_epoch > out->max_epoch)
            out->max_epoch = rec_epoch;
        if (valid < 0) {
            rc = -valid;
            break;
        }
        if (!valid || !out->header_ok)
            break;
        if (!journal_body_each(body, len, fn, ctx)) {
            rc = ECANCELED;
            break;
        }
        out->records++;
        off += KND_JOURNAL_RECORD_HEADER_BYTES + len;
        out->end = off;
    }
cleanup:
    free(w.buf);
    return rc;
}
