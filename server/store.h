/* knd_store: kinesisd's state: streams, shards and their records, durable on disk (or in memory with --in-memory).
 *
 * Threading: every function here runs on the server's event-loop thread. Durable work (write + fdatasync) runs on the
 * store's own commit thread (creating spare segment files on libuv's thread pool) and reports back on the loop
 * through the commit callback.
 *
 * Durability contract: a record is acknowledged (its commit callback reports success) only after it is on stable
 * storage; it becomes readable (knd_store_read) at the same moment, never before, so a reader can never see a record
 * that a crash could take back. Appends arriving while a commit is in flight are grouped into the next commit. */
#ifndef KND_STORE_H
#define KND_STORE_H

#include "../lib/hashkey.h"
#include "seqnum.h"
#include <kinesis/kinesis.h>
#include <uv.h>

typedef enum knd_stream_status {
    KND_STREAM_CREATING,
    KND_STREAM_ACTIVE,
    KND_STREAM_UPDATING,
    KND_STREAM_DELETING,
} knd_stream_status;

typedef enum knd_stream_mode { KND_MODE_PROVISIONED, KND_MODE_ON_DEMAND } knd_stream_mode;

typedef struct knd_shard {
    uint32_t index;                /* shardId-%012u */
    kn_u128 start_hash, end_hash;  /* inclusive */
    int64_t parent, adjacent_parent; /* shard indexes, -1 when none */
    knd_seq starting_seq;
    bool closed;                   /* set when split/merged; ending_seq is then valid */
    knd_seq ending_seq;
    int64_t created_ms;
    struct knd_shard_log *log;     /* private to store.c */
} knd_shard;

typedef struct knd_stream {
    char name[129];
    uint32_t id;                   /* internal, stable across restarts */
    knd_stream_status status;
    knd_stream_mode mode;
    int64_t created_ms;
    int64_t status_until_ms;       /* when CREATING/DELETING/UPDATING ends */
    uint32_t retention_hours;      /* 24 by default */
    uint32_t max_record_size;      /* bytes of data + partition key; 1 MiB by default */
    uint32_t shard_count;          /* all shards, open and closed */
    knd_shard *shards;
    struct knd_stream *next;       /* store's list, private */
} knd_stream;

typedef struct knd_store_options {
    const char *data_dir;          /* NULL for --in-memory */
    uv_loop_t *loop;
    uint64_t segment_bytes;        /* largest log segment file (they start at 1 MiB and double); 0 = 64 MiB */
    uint64_t memory_limit_bytes;   /* --in-memory only: records held at most; 0 = 1 GiB. Appends past it fail with
                                    * KN_ERR_NO_MEMORY until retention frees space or streams are deleted */
} knd_store_options;

typedef struct knd_store knd_store;

/* Opens (creating if needed) the data directory and recovers it: a torn tail is cut at the last complete record.
 * The directory is locked (flock) against a second kinesisd. On success *out is a store the caller releases with
 * knd_store_close. */
kn_status knd_store_open(const knd_store_options *opts, knd_store **out, kn_error *err);
/* Flushes: commits everything appended so far and waits for it by running the loop, so commit callbacks run during
 * this call (whoever they notify must still be alive); then releases everything. Call it when the loop is not
 * running (not from inside a loop callback: libuv's uv_run is not reentrant). NULL is allowed. */
void knd_store_close(knd_store *store);

/* Lookups return pointers owned by the store, valid until the stream is deleted. */
knd_stream *knd_store_find(knd_store *store, const char *name, size_t len);
/* Streams in name order, for ListStreams; calls fn until it returns false. */
void knd_store_each(knd_store *store, bool (*fn)(void *ctx, knd_stream *s), void *ctx);
size_t knd_store_stream_count(const knd_store *store);

/* Creates a stream of shard_count shards splitting the hash space as AWS does (kn_hashkey_shard_range), durably.
 * KN_ERR_INVALID_ARGUMENT if the name exists. */
kn_status knd_store_create_stream(knd_store *store, const char *name, uint32_t shard_count, knd_stream_mode mode,
                                  int64_t now_ms, int64_t ready_at_ms, knd_stream **out, kn_error *err);
/* Persists a changed stream's metadata (status, retention, ...). */
kn_status knd_store_save_stream(knd_store *store, knd_stream *s, kn_error *err);
/* Removes the stream and its records (the stream pointer dies). */
kn_status knd_store_delete_stream(knd_store *store, knd_stream *s, kn_error *err);

/* One record to append. The views must stay valid until knd_store_append returns (it copies them). */
typedef struct knd_record_in {
    const uint8_t *data;
    size_t data_len;
    const char *partition_key;
    size_t partition_key_len;
} knd_record_in;

/* Called on the loop thread once the append is durable (status KN_OK) or failed (KN_ERR_IO, e.g. disk full or the
 * stream was deleted meanwhile: the append is not acknowledged; knd_store_last_error says why). Records of a failed
 * append are never readable, with one exception: an append spanning several shards commits per shard, so when
 * one shard's commit fails, its records in other shards may already be durable and readable (as after a crash
 * between the sync and the acknowledgement; clients retrying get at-least-once, as with AWS). */
typedef void (*knd_commit_fn)(void *ctx, kn_status status);

/* Appends records to shards of stream s: rec[i] goes to shard shard_index[i]. Assigns each a sequence number (out
 * in seqs[i], strictly increasing per shard; greater than *min_seq[i] when min_seq and min_seq[i] are non-NULL, for
 * SequenceNumberForOrdering) and arrival time now_ms (raised to the shard's previous arrival time if the clock went
 * back, so arrival times never decrease along a shard). fn runs exactly once, later, on the loop thread, unless this
 * call fails up front (then it never runs). Up-front failures: KN_ERR_INVALID_ARGUMENT for n == 0, a bad or
 * closed shard index, a key over 65535 bytes or key + data over 16 MiB, or a min_seq no number of this shard can
 * exceed (it is from a later-created shard or at the counter's end); KN_ERR_NO_MEMORY when the write queue
 * (256 MiB of records waiting for the disk) or the --in-memory limit is full; KN_ERR_IO while closing. */
kn_status knd_store_append(knd_store *store, knd_stream *s, const knd_record_in *rec, const uint32_t *shard_index,
                           const knd_seq *const *min_seq, size_t n, int64_t now_ms, knd_seq *seqs, knd_commit_fn fn,
                           void *ctx, kn_error *err);

/* A record read back. Views are valid until the next call into the store. */
typedef struct knd_record_out {
    knd_seq seq;
    int64_t arrival_ms;
    const uint8_t *data;
    size_t data_len;
    const char *partition_key;
    size_t partition_key_len;
} knd_record_out;

/* Where to start reading a shard. */
typedef enum knd_start {
    KND_START_TRIM_HORIZON,
    KND_START_LATEST,        /* after the last record committed when the position was made */
    KND_START_AT_SEQ,
    KND_START_AFTER_SEQ,
    KND_START_AT_TIMESTAMP,
} knd_start;

/* Reads up to `limit` records and at most max_bytes of data from shard shard_index of s, from the first record with
 * sequence number >= *from (or > when after is true). Records past the retention period are skipped. *count gets
 * the number read; *latest_ms the arrival time of the shard's newest committed record (0 when empty), for
 * MillisBehindLatest.
 * max_bytes counts data + partition key bytes; the first record is returned even when it alone exceeds max_bytes,
 * so a reader always makes progress. A *from that is not of this shard's layout reads from the start when it is
 * smaller than all of the shard's numbers and returns nothing when larger. KN_ERR_IO when a record on disk fails its
 * checksum or cannot be read. out must hold `limit` records. */
kn_status knd_store_read(knd_store *store, knd_stream *s, uint32_t shard_index, const knd_seq *from, bool after,
                         size_t limit, size_t max_bytes, int64_t now_ms, knd_record_out *out, size_t *count,
                         int64_t *latest_ms, kn_error *err);

/* The sequence number just past the last committed record of a shard (LATEST), and the first record at or after a
 * timestamp (AT_TIMESTAMP; the LATEST position when none). */
knd_seq knd_store_latest(knd_store *store, knd_stream *s, uint32_t shard_index);
knd_seq knd_store_at_timestamp(knd_store *store, knd_stream *s, uint32_t shard_index, int64_t ts_ms);

/* Drops records older than each stream's retention and reclaims their space (whole segments). Call it now and
 * then (e.g. every minute): between calls, expired records are already invisible to reads. */
void knd_store_expire(knd_store *store, int64_t now_ms);

typedef struct knd_store_stats {
    uint64_t commits;          /* group commits completed (disk: each ends with one journal fdatasync) */
    uint64_t pipelined;        /* of them, planned while the previous one was in flight (disk) */
    uint64_t syncs;            /* fdatasync calls by commits (the journal's and segment files') */
    uint64_t records;          /* records committed since open */
    uint64_t bytes;            /* frame bytes committed since open */
    uint64_t commit_failures;  /* commits that failed (their appends got KN_ERR_IO) */
    uint64_t segments;         /* segments held now (files, or memory blocks with --in-memory) */
    uint64_t torn_tails;       /* shards whose recovery at open cut the log at a damaged record */
    uint64_t pending_bytes;    /* appended, not yet committed */
    uint64_t memory_bytes;     /* --in-memory: bytes of segments held */
} knd_store_stats;

void knd_store_get_stats(const knd_store *store, knd_store_stats *out);
/* The most recent commit failure as an English sentence ("" when none); valid until the next call into the store.
 * For the server's log: it names the stream, shard and system error, never record contents. */
const char *knd_store_last_error(const knd_store *store);

#endif
