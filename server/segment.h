/* knd_segment: the on-disk format of kinesisd's record log (specified byte by byte at the top of segment.c):
 * segment files of framed records, their sidecar index files, the journal that makes commit groups durable with one
 * fdatasync, and the scans that recover segments and the journal after a crash.
 * Everything here is plain file I/O with no shared state, so it is safe to call from libuv's worker threads. */
#ifndef KND_SEGMENT_H
#define KND_SEGMENT_H

#include <kinesis/kinesis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KND_SEGMENT_HEADER_BYTES 64
#define KND_FRAME_HEADER_BYTES 32
#define KND_FRAME_MAX_PAYLOAD (16u << 20)      /* partition key + data; AWS's largest record is 10 MiB */
#define KND_FRAME_MAX_KEY 0xFFFFu
#define KND_SEGMENT_INDEX_INTERVAL (64u << 10) /* one sparse index entry per this many bytes of frames */

typedef struct knd_segment_header {
    uint32_t stream_id;
    uint32_t shard_index;
    uint64_t no;         /* the segment's number, also its file name */
    uint64_t base_ix;    /* the shard's next seq_ix when the segment was started: every frame's ix is >= it */
    int64_t created_ms;
} knd_segment_header;

void knd_segment_header_encode(const knd_segment_header *h, uint8_t out[KND_SEGMENT_HEADER_BYTES]);
/* False when the header is not one knd_segment_header_encode wrote (bad magic, version or checksum). */
bool knd_segment_header_decode(const uint8_t in[KND_SEGMENT_HEADER_BYTES], knd_segment_header *h);

/* A frame's total size on disk (header, key, data, padding to 8 bytes). */
size_t knd_segment_frame_size(size_t key_len, size_t data_len);
/* Writes one complete frame, checksum included, into out[knd_segment_frame_size(key_len, data_len)]. */
void knd_segment_frame_encode(uint8_t *out, uint64_t ix, int64_t arrival_ms, const char *key, size_t key_len,
                              const uint8_t *data, size_t data_len);

typedef struct knd_frame {
    uint64_t ix;
    int64_t arrival_ms;
    uint32_t key_len, data_len;
    size_t size;         /* knd_segment_frame_size of the above */
} knd_frame;

typedef enum knd_frame_status {
    KND_FRAME_OK,
    KND_FRAME_END,       /* 32 zero bytes: the pre-allocated tail, i.e. the clean end of the log */
    KND_FRAME_BAD,       /* anything else that is not a well-formed header */
} knd_frame_status;

/* Parses a frame header. room = bytes from the frame's start to the end of the segment file; a frame that would
 * not fit is KND_FRAME_BAD. Does not check the checksum (the payload may not be at hand yet). */
knd_frame_status knd_segment_frame_parse(const uint8_t hdr[KND_FRAME_HEADER_BYTES], uint64_t room, knd_frame *f);
/* True when the complete frame at p (f from knd_segment_frame_parse) has a good checksum. */
bool knd_segment_frame_verify(const uint8_t *p, const knd_frame *f);

/* Sparse index: the first frame at or past every KND_SEGMENT_INDEX_INTERVAL bytes of a segment. */
typedef struct knd_segment_idx_entry {
    uint64_t ix;
    int64_t arrival_ms;
    uint64_t off;
} knd_segment_idx_entry;

/* What a segment holds. first_/last_ fields are meaningful only when count > 0. */
typedef struct knd_segment_summary {
    uint64_t no, base_ix;
    uint64_t count, first_ix, last_ix;
    int64_t first_ms, last_ms;
    uint64_t end;        /* offset just past the last frame */
} knd_segment_summary;

/* File name of segment `no` in dir with extension ext ("seg" or "idx"); false when it does not fit in cap. */
bool knd_segment_path(char *out, size_t cap, const char *dir, uint64_t no, const char *ext);

/* Writes a sealed segment's index file (not synced: it can always be rebuilt from the segment). Returns 0 or an
 * errno value. */
int knd_segment_idx_write(const char *path, const knd_segment_summary *sum, const knd_segment_idx_entry *entries,
                          size_t n);
/* Reads an index file. *entries (may be NULL to skip them) gets a malloc'd array the caller frees. Returns 0, an
 * errno value, or EILSEQ when the file is damaged or not for segment `no`. */
int knd_segment_idx_read(const char *path, uint64_t no, knd_segment_summary *sum, knd_segment_idx_entry **entries,
                         size_t *n);

/* The result of scanning a segment file from its start. */
typedef struct knd_segment_scan {
    bool header_ok;      /* false: the header is zero or damaged, nothing else is filled */
    bool header_zero;    /* the header is all zeros (a pre-allocated spare, or a creation a crash interrupted) */
    knd_segment_header header;
    knd_segment_summary sum;
    knd_segment_idx_entry *entries; /* malloc'd sparse index; the caller frees */
    size_t n_entries;
    bool torn;           /* the scan stopped at a damaged frame, not at zeros or the end of the file */
    uint64_t file_size;
} knd_segment_scan;

/* Scans the frames of a segment: stops at the first frame that is zero (clean end), damaged, fails its checksum,
 * or does not continue the order (ix strictly increasing from the header's base_ix, arrival times non-decreasing).
 * Returns 0 or an errno value; on success the caller frees out->entries. */
int knd_segment_scan_fd(int fd, knd_segment_scan *out);

/* Writes zeros over [from, to) of fd. Returns 0 or an errno value. */
int knd_segment_zero(int fd, uint64_t from, uint64_t to);
/* Zero-fills [0, size) of a file being prepared off the commit path, a step at a time, each step written to the disk
 * (sync_file_range) before the next is queued: so a commit's small journal write and flush wait behind at most one
 * step, not behind a whole 64 MiB segment (measured: commits behind an unpaced prepare took 67-73 ms).
 * The caller still fdatasyncs (file size, device cache). Returns 0 or an errno value. */
int knd_segment_fill_paced(int fd, uint64_t size);
/* Starts write-out (without waiting) of every whole 256 KiB-aligned window of fd that a write of [off, off + len) has
 * just completed. Frames appended without a sync otherwise stay dirty until the next checkpoint, which then writes
 * them all while every commit waits (measured: 4-8 ms per 4 MiB journal on a quiet disk, more on a slow one);
 * started early, they go out between commits and the checkpoint's fdatasync finds little left. It neither waits nor
 * collects a write-back error: the checkpoint's fdatasync must still be the one to see it. */
void knd_segment_start_writeback(int fd, uint64_t off, uint64_t len);
/* pwrite of the whole iovec array at off, continuing after short writes. Returns 0 or an errno value. */
struct iovec;
int knd_segment_pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off);
/* fsync of a directory, so entries created or removed in it are durable. Returns 0 or an errno value. */
int knd_segment_sync_dir(const char *dir);

/* ---- the journal: one record per commit group, holding the group's frames for every shard it touched ---- */

#define KND_JOURNAL_HEADER_BYTES 64
#define KND_JOURNAL_RECORD_HEADER_BYTES 32
#define KND_JOURNAL_ENTRY_HEADER_BYTES 16

void knd_segment_journal_header_encode(uint64_t epoch, uint8_t out[KND_JOURNAL_HEADER_BYTES]);
/* False when the header is not one knd_segment_journal_header_encode wrote. */
bool knd_segment_journal_header_decode(const uint8_t in[KND_JOURNAL_HEADER_BYTES], uint64_t *epoch);
/* The header of one entry: frames_len bytes of frames (a multiple of 8) of one shard follow it. */
void knd_segment_journal_entry_encode(uint8_t out[KND_JOURNAL_ENTRY_HEADER_BYTES], uint32_t stream_id,
                                      uint32_t shard_index, uint32_t frames_len);
/* Fills a record's header for the body iov[0..n) (its entries, back to back), checksum included. The body's length
 * must be a multiple of 8 and below 4 GiB. */
void knd_segment_journal_record_encode(uint8_t out[KND_JOURNAL_RECORD_HEADER_BYTES], uint64_t epoch, uint64_t no,
                                       uint32_t entries, const struct iovec *body, int n);

/* Called for each entry of each valid record, in journal order; frames (len bytes) are well-formed frames with good
 * checksums, valid only during the call. Returning false stops the scan (knd_segment_journal_scan returns
 * ECANCELED). */
typedef bool (*knd_journal_entry_fn)(void *ctx, uint32_t stream_id, uint32_t shard_index, const uint8_t *frames,
                                     size_t len);

typedef struct knd_journal_scan {
    bool header_ok;      /* false: the header is zero or damaged, so no record is valid */
    uint64_t epoch;      /* the header's epoch */
    uint64_t max_epoch;  /* the largest epoch in the header or in a record with a good checksum at the first
                          * position: a new epoch must exceed it */
    uint64_t records;    /* valid records */
    uint64_t end;        /* offset just past the last valid record */
    uint64_t file_size;
} knd_journal_scan;

/* Reads the journal in fd from its start: the records of the header's epoch numbered 0, 1, 2, ... up to the first
 * one that is torn, of another epoch, out of sequence or malformed. Returns 0 or an errno value. */
int knd_segment_journal_scan(int fd, knd_journal_scan *out, knd_journal_entry_fn fn, void *ctx);

#endif
