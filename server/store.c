/* knd_store: streams (metadata in meta.c), one append-only segment log per shard, and one journal that makes commit
 * groups durable (formats in segment.c).
 *
 * Why one log per shard: reads are then sequential per shard, retention and DeleteStream reclaim space by deleting
 * files, and a shard's log needs no per-record index (only a sparse one, see below). Why a journal beside them: a
 * group of records touching N shards would otherwise need N fdatasyncs, and each costs ~45 us of CPU here whether
 * the syncs run in parallel or not (measured: 4 files synced per group by 4 threads 237 us of CPU per group, one
 * after the other 179 us; one journal file 45 us, 59 us with the 4 segment writes). So a group is written to the
 * segments without a sync and made durable by one journal record and one fdatasync.
 *
 * Commit path (group commit on one commit thread):
 *   knd_store_append (loop thread) assigns sequence numbers, encodes each record into its frame (checksum
 *   included) and queues one "pend" per shard touched, then marks the shard ready. An idle handle plans one job for
 *   every ready shard's queued pends (up to 16 MiB) and queues it for the store's commit thread, which writes each
 *   shard's pends with one pwritev at its log's end (no sync), then all of them as one journal record with one
 *   pwritev and one fdatasync. Back on the loop thread (uv_async) the records become visible (the segments' visible
 *   ends move) and each append's callback runs once all its pends are done. Appends arriving while a job is on disk
 *   form the next group, so the number of syncs adapts to the load: one record per sync when idle, dozens per sync
 *   at 64 connections, thousands with PutRecords. Nothing is readable before the sync of its journal record
 *   returned; that is the durability contract of store.h.
 *   Pipelining: the next group is planned while the previous job is in flight, at the segment ends and journal
 *   position that job will leave, and grows with every append until the commit thread takes it, which it does the
 *   moment the previous fdatasync returns. So the disk does not wait for the loop to notice a completion (the loop
 *   may be busy answering for a while), and under load the commit thread never sleeps between groups (no futex
 *   wake per group). Groups stay as large as before: a group still holds what arrived during one sync. Ordering is
 *   kept by the single commit thread: a job's writes start only after the previous job's fdatasync returned, and
 *   completions reach the loop in order. A pipelined job never starts a segment, checkpoints, or follows a failure
 *   (launch_pipelined lists what waits for the loop instead), and the commit thread cancels it when the job before
 *   it did not commit everything (its frames and journal record would sit behind bytes that are now zeros).
 *
 * Checkpoints: when a record does not fit in the rest of the journal, the job first syncs every segment written
 * since the last checkpoint (the "dirty" list), then starts a new epoch of the journal at its start (segment.c says
 * why that order makes every state a crash can leave recoverable). The journal starts at 4 MiB and grows at
 * checkpoints so that at least 8 records of the current size fit (up to 64 MiB), so checkpoints stay rare. A clean
 * close checkpoints too, so that it leaves nothing to replay. On open, after the segments are recovered, the
 * journal's records put back whatever a segment lost (frames past its recovered end), and a new epoch starts.
 *
 * Segments: each shard writes its highest-numbered segment; when a group does not fit, the job syncs and seals it and
 * starts the next (sizes start at 1 MiB and double up to segment_bytes, so idle shards stay small). A new segment
 * file is zero-filled before use (fdatasync then flushes data only) and synced with its first frames; when the
 * active segment is half full a "prep" job builds the next one in the background so that rolling over does not
 * stall commits. On open every recovered segment is sealed and the first commit starts a fresh one: no process ever
 * appends behind bytes a crash may have left past the recovered end (so recovery never has to rewrite a tail; it
 * only stops reading there).
 *
 * Memory is bounded independently of the data stored: per segment a ~200-byte summary; the active segment keeps a
 * sparse index (one entry per 64 KiB written, at most 24 KiB for a 64 MiB segment); sealed segments keep theirs in
 * <no>.idx on disk, read only when a reader seeks by sequence number or timestamp (readers that continue where
 * they stopped hit a small per-shard cursor cache instead). Open file descriptors are capped by an LRU cache (a
 * dirty segment's descriptor may be closed: its pages stay in the page cache and the checkpoint syncs them through
 * a reopened descriptor, which also reports a write-back error nobody has seen; one that was seen is not reported
 * again, hence seg_sync_err). The queue of appends waiting for
 * the disk is capped (256 MiB), as is --in-memory mode (memory_limit_bytes). GetRecords' read buffer is kept
 * between reads up to READ_BUF_KEEP.
 *
 * Threads: everything here runs on the loop thread except the commit thread (committer_main, job_work) and prep_work
 * on libuv's pool, which touch only the job's own fields, file descriptors pinned for them, and the immutable dir and
 * identity fields of logs. The loop changes a queued job only while it holds the committer's mutex and the commit
 * thread has not taken it (job->taken). */
#include "store.h"

#include "../lib/error.h"
#include "meta.h"
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FIRST_IX 1                             /* records start at 1: a shard's starting number uses 0 */
#define DEFAULT_SEGMENT_BYTES (64ull << 20)
#define MIN_SEGMENT_BYTES (1ull << 20)
#define SEGMENT_BYTES_FLOOR (16ull << 10)      /* smallest segment_bytes accepted (tests force rollovers) */
#define JOB_MAX_BYTES (16ull << 20)
#define PENDING_MAX_BYTES (256ull << 20)
#define JOURNAL_START_BYTES (4ull << 20)
#define JOURNAL_MAX_BYTES (64ull << 20)        /* growth stops here unless one record needs more */
#define JOURNAL_GROW_STEP (1ull << 20)
#define JOURNAL_EPOCH_RESTART (UINT64_C(1) << 63)
#define DEFAULT_MEMORY_LIMIT (1ull << 30)
#define FD_CACHE_MAX 256
#define READ_CHUNK (256u << 10)
#define READ_BUF_KEEP (16u << 20)              /* a larger read buffer is released before the next read */
#define CURSORS 4
#define IOV_SMALL 64                           /* pends per extent or journal record written without a malloc */
#define MS_PER_HOUR 3600000LL
#define MAX_SHARDS 100000u

typedef struct knd_shard_log shard_log;

/* One append's completion: fn runs when all its pends (one per shard touched) are done. */
typedef struct waiter {
    knd_commit_fn fn;
    void *ctx;
    uint32_t remaining;
    kn_status status;
    struct waiter *next_done;
} waiter;

/* The frames one append sends to one shard, queued until a job commits them. */
typedef struct pend {
    struct pend *next;
    waiter *w;
    uint64_t first_ix;
    size_t len;
    uint8_t buf[]; /* frames, back to back */
} pend;

typedef struct seg {
    shard_log *log;
    uint64_t no, base_ix, size;
    uint64_t end; /* visible end: just past the last committed frame */
    int64_t created_ms;
    uint64_t count, first_ix, last_ix;
    int64_t first_ms, last_ms;
    bool sealed;
    size_t dirty_pos;           /* 1 + its index in the store's dirty list: written without a sync since the last
                                 * checkpoint (0: clean) */
    knd_segment_idx_entry *idx; /* sparse index in memory: active disk segment, or any --in-memory segment */
    size_t idx_len, idx_cap;
    uint8_t *mem;               /* --in-memory: the segment's bytes */
    int fd;                     /* -1 when not open */
    uint32_t pins;              /* jobs using fd: the LRU must not close it, nor anyone free the segment */
    struct seg *lru_prev, *lru_next;
} seg;

/* Where a reader that stopped after record `after` continues. */
typedef struct cursor {
    bool valid;
    knd_seq after;
    uint64_t seg_no, off;
} cursor;

/* A run of pends written contiguously into one segment by a job. */
typedef struct extent {
    bool used;
    bool sync;                /* an existing segment that this job seals: fdatasync it after writing */
    seg *seg;                 /* existing segment, written at its end; NULL when the job creates segment `no` */
    seg *new_seg;             /* for a new segment: its record, allocated up front so completion cannot fail */
    uint64_t no, size, base_ix, off, len, zero_to;
    int64_t created_ms;
    int fd;                   /* existing segment's or spare's fd; -1: the worker creates the file */
    uint64_t fd_size;         /* bytes already zero-filled behind fd (spare) */
    pend *first, *last;
    uint32_t npend;
    int err;                  /* out: 0, an errno value, or ECANCELED when not attempted */
    const char *op;           /* out: what failed */
    bool created;             /* out: the worker created the file */
} extent;

/* One shard's part of a job. */
typedef struct shard_work {
    shard_log *log;
    extent ext[2];            /* [0]: the active segment; [1]: a new segment (synced with its first frames) */
} shard_work;

/* The journal record of a job, and the checkpoint before it. */
typedef struct journal_write {
    int fd;
    uint64_t epoch, no;       /* the record's epoch and number */
    uint64_t off, zero_to;    /* where it goes; bytes of a failed record to clear past it */
    bool checkpoint;          /* sync sync_fds, then start epoch `epoch` at the journal's start */
    uint64_t grow_from, grow_to; /* a checkpoint zero-fills [grow_from, grow_to) first: the journal grows */
    int *sync_fds;
    size_t nsync;
    int preset_err;           /* the job cannot commit (see preset_op): its appends fail */
    const char *preset_op;
    uint64_t len;             /* out: the record's size; 0 when no extent succeeded (nothing to log) */
    bool ok;                  /* out: the record is durable */
    bool clear_failed;        /* out: a failed record's bytes could not be zeroed */
    int err;                  /* out */
    const char *op;           /* out: what failed */
    uint32_t syncs;           /* out: fdatasync calls made by the job */
} journal_write;

typedef struct job {
    knd_store *st;
    uint64_t seq;             /* the store's job counter: tells a log whether it is in this job (pipe_seq) */
    shard_work *work;
    size_t nwork, work_cap;
    seg **sync_segs;          /* checkpoint: the dirty segments, pinned */
    journal_write j;
    uint64_t rec;             /* the journal record's planned size (its size once written, unless a part fails) */
    uint64_t bytes;           /* frame bytes taken, against JOB_MAX_BYTES */
    bool pipelined;           /* planned while the previous job was in flight, at the ends that job will leave */
    bool taken;               /* the committer started it (guarded by the committer's mutex) */
    struct job *lnext;        /* the loop's list of jobs in flight, oldest first */
    struct job *cnext;        /* the committer's queue, then its list of finished jobs */
} job;

/* The thread that runs commit jobs, one after the other, in the order the loop planned them. A job planned while
 * another is in flight waits in the queue and is taken the moment the previous one's fdatasync returns, without a
 * round trip through the loop; the loop can still add appends to it until then (see launch_pipelined). */
typedef struct committer {
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    uv_async_t async;         /* finished jobs go back to the loop through it */
    bool started;             /* thread, mutex, cond and async exist */
    bool stop, waiting;       /* guarded by mu */
    job *queue, *queue_tail;  /* guarded by mu */
    job *done, *done_tail;    /* guarded by mu */
    bool last_failed;         /* committer thread only: the previous job did not commit all it held */
} committer;

/* Background creation of the next segment file. */
typedef struct prep {
    uv_work_t req;
    shard_log *log;
    uint64_t no, size;
    int fd, err;
} prep;

struct knd_shard_log {
    knd_store *store;
    bool deleted;
    uint32_t stream_id, shard_index;
    int64_t created_ms;       /* the shard's creation time: part of its sequence numbers */
    char *dir;                /* NULL --in-memory; immutable once set (workers read it) */
    seg **segs;               /* ascending numbers; the last is the active one unless sealed */
    size_t nsegs, segs_cap;
    uint64_t next_seg_no, next_seg_size;
    uint64_t next_ix;         /* next seq_ix to assign */
    int64_t last_assigned_ms;
    uint64_t latest_ix;       /* just past the newest committed record */
    int64_t last_ms;          /* arrival of the newest committed record */
    bool any;                 /* a record was ever committed (or recovered) */
    uint64_t dirty_end;       /* active segment: bytes up to here past `end` may hold failed frames */
    pend *pend_head, **pend_tail;
    uint32_t busy;            /* jobs in flight that hold part of this log */
    bool roll_busy;           /* a job in flight starts a new segment here: nothing may be planned behind it */
    uint64_t wend;            /* busy and not roll_busy: the active segment's end once the jobs in flight are done */
    uint64_t pipe_seq;        /* seq of the last job this log was planned into; pipe_work is its index there */
    size_t pipe_work;
    prep *prep;
    int spare_fd;
    uint64_t spare_no, spare_size;
    bool force_roll, queued;
    shard_log *ready_next;
    pend *replay;             /* open only: frames the journal puts back */
    size_t replay_cap;
    cursor cur[CURSORS];
    unsigned cur_next;
};

/* A deleted stream whose logs still have jobs in flight; reaped when they finish. */
typedef struct doomed {
    struct doomed *next;
    char *dir;
    shard_log **logs;
    uint32_t n;
} doomed;

struct knd_store {
    uv_loop_t *loop;
    char *dir, *streams_dir; /* NULL --in-memory */
    int lock_fd;
    uint64_t segment_bytes, memory_limit, mem_used, pending_bytes;
    knd_stream **by_name;   /* sorted by name; streams are also linked by ->next in this order */
    size_t nstreams, by_name_cap;
    uint32_t next_stream_id;
    uv_idle_t idle;
    bool idle_started, closing;
    shard_log *ready;
    doomed *doomed;
    uint32_t in_flight;     /* jobs (on the committer) and preps (on the thread pool) */
    job *jobs, *jobs_tail;  /* the commits in flight (disk), oldest first: at most two */
    uint32_t njobs;
    uint64_t job_seq;
    bool pipe_drain;        /* a ready shard needs a job planned with nothing in flight: no new pipelined job */
    committer com;
    int jfd;                /* the journal; -1 --in-memory */
    uint64_t jsize, joff, jno, jepoch, jdirty_end;
    bool jforce_checkpoint; /* a checkpoint failed after it may have written the header: the next must redo it */
    int seg_sync_err;       /* an fdatasync of a segment holding acknowledged, unsynced frames failed (errno). Linux
                             * reports a write-back error once: a retried sync would succeed with those pages lost,
                             * and a checkpoint would then drop their only durable copy, the journal's. So nothing
                             * commits any more; a restart recovers them from the journal. */
    seg **dirty;            /* segments written without a sync since the last checkpoint */
    size_t ndirty, dirty_cap;
    seg *lru_head, *lru_tail;
    uint32_t open_fds;
    uint8_t *rbuf;          /* read buffer: the views knd_store_read returns point into it */
    size_t rbuf_cap, rbuf_len;
    size_t *roffs;
    size_t roffs_cap;
    knd_store_stats stats;
    char last_error[512];
};
static bool is_memory(const knd_store *st)
{
    return st->dir == NULL;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

static seg *active_seg(const shard_log *log)
{
    return log->nsegs ? log->segs[log->nsegs - 1] : NULL;
}

static knd_seq seq_of(const shard_log *log, uint64_t ix, int64_t ms)
{
    knd_seq_parts p = {(uint64_t)log->created_ms, log->shard_index, ix, ms < 0 ? 0 : (uint64_t)ms};
    return knd_seq_make(&p);
}

/* ---- file descriptor cache ---- */

static void lru_unlink(knd_store *st, seg *g)
{
    if (g->lru_prev)
        g->lru_prev->lru_next = g->lru_next;
    else
        st->lru_head = g->lru_next;
    if (g->lru_next)
        g->lru_next->lru_prev = g->lru_prev;
    else
        st->lru_tail = g->lru_prev;
    g->lru_prev = g->lru_next = NULL;
}

static void lru_push(knd_store *st, seg *g)
{
    g->lru_prev = NULL;
    g->lru_next = st->lru_head;
    if (st->lru_head)
        st->lru_head->lru_prev = g;
    else
        st->lru_tail = g;
    st->lru_head = g;
}

static void seg_close_fd(knd_store *st, seg *g)
{
    if (g->fd < 0)
        return;
    lru_unlink(st, g);
    close(g->fd);
    g->fd = -1;
    st->open_fds--;
}

static void seg_adopt_fd(knd_store *st, seg *g, int fd)
{
    g->fd = fd;
    lru_push(st, g);
    st->open_fds++;
    for (seg *v = st->lru_tail; v && st->open_fds > FD_CACHE_MAX;) {
        seg *prev = v->lru_prev;
        if (!v->pins && v != g) /* g's caller is about to use (and pin) it; the cap is exceeded while all are pinned */
            seg_close_fd(st, v);
        v = prev;
    }
}

static int seg_fd(knd_store *st, const shard_log *log, seg *g)
{
    if (g->fd >= 0) {
        lru_unlink(st, g);
        lru_push(st, g);
        return g->fd;
    }
    char path[4096];
    if (!knd_segment_path(path, sizeof path, log->dir, g->no, "seg"))
        return -1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        seg_adopt_fd(st, g, fd);
    return fd;
}

/* ---- segments in memory ---- */

static seg *seg_new(uint64_t no, uint64_t base_ix, uint64_t size, int64_t created_ms)
{
    seg *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->no = no;
    g->base_ix = base_ix;
    g->size = size;
    g->created_ms = created_ms;
    g->end = KND_SEGMENT_HEADER_BYTES;
    g->fd = -1;
    return g;
}

static void clear_dirty(knd_store *st, seg *g);

static void seg_free(knd_store *st, seg *g)
{
    if (!g)
        return;
    clear_dirty(st, g);
    seg_close_fd(st, g);
    if (g->mem)
        st->mem_used -= g->size;
    free(g->mem);
    free(g->idx);
    free(g);
    st->stats.segments--;
}

static bool log_reserve_seg(shard_log *log)
{
    if (log->nsegs < log->segs_cap)
        return true;
    size_t ncap = log->segs_cap ? log->segs_cap * 2 : 4;
    seg **ns = realloc(log->segs, ncap * sizeof *ns);
    if (!ns)
        return false;
    log->segs = ns;
    log->segs_cap = ncap;
    return true;
}

/* Appends g to the log; the caller reserved room with log_reserve_seg. */
static void log_push_seg(shard_log *log, seg *g)
{
    g->log = log;
    log->segs[log->nsegs++] = g;
    log->store->stats.segments++;
    if (g->no >= log->next_seg_no)
        log->next_seg_no = g->no + 1;
}

/* Records the committed frame at off. A sparse-index entry that cannot be allocated is skipped: the index only
 * shortens scans, lookups then start at the previous entry. */
static void seg_note_frame(seg *g, const knd_frame *f, uint64_t off, bool keep_idx)
{
    if (g->count == 0) {
        g->first_ix = f->ix;
        g->first_ms = f->arrival_ms;
    }
    g->count++;
    g->last_ix = f->ix;
    g->last_ms = f->arrival_ms;
    g->end = off + f->size;
    if (!keep_idx || (g->idx_len && off < g->idx[g->idx_len - 1].off + KND_SEGMENT_INDEX_INTERVAL))
        return;
    if (g->idx_len == g->idx_cap) {
        size_t ncap = g->idx_cap ? g->idx_cap * 2 : 8;
        knd_segment_idx_entry *ni = realloc(g->idx, ncap * sizeof *ni);
        if (!ni)
            return;
        g->idx = ni;
        g->idx_cap = ncap;
    }
    g->idx[g->idx_len++] = (knd_segment_idx_entry){f->ix, f->arrival_ms, off};
}

/* Makes a committed pend's frames (now at off in g) visible. */
static void log_apply_pend(shard_log *log, seg *g, uint64_t off, const pend *p, bool keep_idx)
{
    knd_frame f = {0};
    for (size_t pos = 0; pos < p->len; pos += f.size) {
        knd_segment_frame_parse(p->buf + pos, p->len - pos, &f); /* our own encoding (or checked): well-formed */
        seg_note_frame(g, &f, off + pos, keep_idx);
        log->store->stats.records++;
    }
    log->store->stats.bytes += p->len;
    if (g->count) {
        log->latest_ix = g->last_ix + 1;
        log->last_ms = g->last_ms;
        log->any = true;
    }
}

static knd_segment_summary seg_summary(const seg *g)
{
    return (knd_segment_summary){g->no, g->base_ix, g->count, g->first_ix, g->last_ix, g->first_ms, g->last_ms,
                                 g->end};
}

/* Seals a disk segment: its sparse index moves to <no>.idx. A failed index write only costs a scan later. */
static void seg_seal(shard_log *log, seg *g)
{
    char path[4096];
    g->sealed = true;
    if (!log->dir)
        return;
    knd_segment_summary sum = seg_summary(g);
    if (knd_segment_path(path, sizeof path, log->dir, g->no, "idx"))
        knd_segment_idx_write(path, &sum, g->idx, g->idx_len);
    free(g->idx);
    g->idx = NULL;
    g->idx_len = g->idx_cap = 0;
}

static void seg_remove_files(const shard_log *log, uint64_t no)
{
    char path[4096];
    if (knd_segment_path(path, sizeof path, log->dir, no, "seg"))
        unlink(path);
    if (knd_segment_path(path, sizeof path, log->dir, no, "idx"))
        unlink(path);
}

/* ---- completion bookkeeping ---- */

static void pend_finish(knd_store *st, pend *p, kn_status status, waiter **done)
{
    waiter *w = p->w;
    st->pending_bytes -= p->len;
    free(p);
    if (status != KN_OK && w->status == KN_OK)
        w->status = status;
    if (--w->remaining == 0) {
        w->next_done = *done;
        *done = w;
    }
}

/* Runs the callbacks of completed appends. Last, after the store is consistent: a callback may call back in. */
static void run_done(waiter *done)
{
    while (done) {
        waiter *next = done->next_done;
        done->fn(done->ctx, done->status);
        free(done);
        done = next;
    }
}

static void start_idle(knd_store *st);

/* Queues the log for the next launch. The idle handle starts even when the log was queued already: a log left
 * queued by a launch that could not take it must not wait for another shard's activity. */
static void mark_ready(shard_log *log)
{
    if (!log->queued) {
        log->queued = true;
        log->ready_next = log->store->ready;
        log->store->ready = log;
    }
    start_idle(log->store);
}

static void set_last_error(knd_store *st, const shard_log *log, const char *op, int e)
{
    snprintf(st->last_error, sizeof st->last_error, "%s for shardId-%012" PRIu32 " of stream id %" PRIu32 ": %s", op,
             log->shard_index, log->stream_id, strerror(e));
}


/* ---- segments written without a sync since the last checkpoint ---- */

/* False when the list cannot grow: the caller then syncs the segment itself. */
static bool mark_dirty(knd_store *st, seg *g)
{
    if (g->dirty_pos)
        return true;
    if (st->ndirty == st->dirty_cap) {
        size_t ncap = st->dirty_cap ? st->dirty_cap * 2 : 16;
        seg **nd = realloc(st->dirty, ncap * sizeof *nd);
        if (!nd)
            return false;
        st->dirty = nd;
        st->dirty_cap = ncap;
    }
    st->dirty[st->ndirty++] = g;
    g->dirty_pos = st->ndirty;
    return true;
}

static void clear_dirty(knd_store *st, seg *g)
{
    if (!g->dirty_pos)
        return;
    seg *last = st->dirty[--st->ndirty];
    st->dirty[g->dirty_pos - 1] = last;
    last->dirty_pos = g->dirty_pos;
    g->dirty_pos = 0;
}

/* ---- disk commit jobs: the worker's side ---- */

static int create_segment_file(const char *dir, extent *e)
{
    char path[4096];
    if (!knd_segment_path(path, sizeof path, dir, e->no, "seg"))
        return ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    e->fd = fd;
    e->fd_size = 0;
    e->created = true;
    return 0;
}

/* Undoes a failed extent so that none of its frames can be read back, even after a crash: a new segment file is
 * removed; frames written at an existing segment's end are overwritten with zeros (if that fails too, the next
 * commit zeroes them, see dirty_end). */
static void extent_undo(const char *dir, extent *e)
{
    if (!e->seg) {
        char path[4096];
        if (e->fd >= 0)
            close(e->fd);
        e->fd = -1;
        if (knd_segment_path(path, sizeof path, dir, e->no, "seg") && unlink(path) == 0)
            knd_segment_sync_dir(dir);
        return;
    }
    if (knd_segment_zero(e->fd, e->off, e->off + e->len) == 0)
        fdatasync(e->fd);
}

/* Worker thread. Reads only immutable fields of log (dir and identity). A new segment is synced with its first
 * frames, and so is a segment this job seals; frames appended to the active segment are made durable by the
 * journal record instead. */
static int extent_write(const shard_log *log, extent *e, uint32_t *syncs)
{
    uint8_t header[KND_SEGMENT_HEADER_BYTES];
    struct iovec small[IOV_SMALL];
    struct iovec *iov = e->npend + 1 <= IOV_SMALL ? small : malloc((e->npend + 1) * sizeof *iov);
    int n = 0, rc = 0;
    if (!iov) {
        e->op = "allocate";
        return ENOMEM;
    }
    if (!e->seg) {
        knd_segment_header h = {log->stream_id, log->shard_index, e->no, e->base_ix, e->created_ms};
        e->op = "create segment";
        if (e->fd < 0 && (rc = create_segment_file(log->dir, e)))
            goto cleanup;
        e->op = "fill segment";
        if (e->fd_size < e->size && (rc = knd_segment_zero(e->fd, e->fd_size, e->size)))
            goto cleanup;
        knd_segment_header_encode(&h, header);
        iov[n++] = (struct iovec){header, sizeof header};
    }
    pend *p = e->first;
    for (uint32_t i = 0; i < e->npend; i++, p = p->next)
        iov[n++] = (struct iovec){p->buf, p->len};
    e->op = "write";
    if ((rc = knd_segment_pwritev_all(e->fd, iov, n, e->seg ? e->off : 0)))
        goto cleanup;
    e->op = "clear failed frames";
    if (e->zero_to > e->off + e->len && (rc = knd_segment_zero(e->fd, e->off + e->len, e->zero_to)))
        goto cleanup;
    if (e->seg && !e->sync) {
        knd_segment_start_writeback(e->fd, e->off, e->len);
        goto cleanup;
    }
    e->op = "fdatasync";
    if (fdatasync(e->fd)) {
        rc = errno;
        goto cleanup;
    }
    (*syncs)++;
    e->op = "sync directory";
    if (e->created)
        rc = knd_segment_sync_dir(log->dir);
cleanup:
    if (iov != small)
        free(iov);
    return rc;
}

static void shard_work_write(shard_work *w, uint32_t *syncs)
{
    for (int k = 0; k < 2; k++) {
        extent *e = &w->ext[k];
        if (!e->used)
            continue;
        if (k == 1 && w->ext[0].used && w->ext[0].err) {
            e->err = ECANCELED; /* a segment receives frames only after the previous one's are synced */
            continue;
        }
        if ((e->err = extent_write(w->log, e, syncs)))
            extent_undo(w->log->dir, e);
    }
}

/* The checkpoint before a record that starts a new epoch: every segment written without a sync since the last
 * one is synced first, and only then may the header that invalidates the old epoch's records be written. */
static int journal_checkpoint(journal_write *jw)
{
    uint8_t header[KND_JOURNAL_HEADER_BYTES];
    int rc;
    jw->op = "sync segment";
    for (size_t i = 0; i < jw->nsync; i++) {
        if (fdatasync(jw->sync_fds[i]))
            return errno;
        jw->syncs++;
    }
    jw->op = "grow journal";
    if (jw->grow_to > jw->grow_from && (rc = knd_segment_zero(jw->fd, jw->grow_from, jw->grow_to)))
        return rc;
    knd_segment_journal_header_encode(jw->epoch, header);
    struct iovec iov = {header, sizeof header};
    jw->op = "write journal header";
    return knd_segment_pwritev_all(jw->fd, &iov, 1, 0);
}

/* Writes and syncs the job's journal record: one entry per pend of every extent that succeeded. */
static int journal_record_write(job *j, size_t npend)
{
    journal_write *jw = &j->j;
    uint8_t header[KND_JOURNAL_RECORD_HEADER_BYTES];
    struct iovec iov_small[2 * IOV_SMALL + 1];
    uint8_t entries_small[IOV_SMALL * KND_JOURNAL_ENTRY_HEADER_BYTES];
    bool small = npend <= IOV_SMALL;
    struct iovec *iov = small ? iov_small : malloc((2 * npend + 1) * sizeof *iov);
    uint8_t *entries = small ? entries_small : malloc(npend * KND_JOURNAL_ENTRY_HEADER_BYTES);
    int n = 1, rc = 0;
    jw->op = "allocate";
    if (!iov || !entries) {
        rc = ENOMEM;
        goto cleanup;
    }
    uint8_t *eh = entries;
    for (size_t i = 0; i < j->nwork; i++) {
        const shard_work *w = &j->work[i];
        for (int k = 0; k < 2; k++) {
            const extent *e = &w->ext[k];
            const pend *p = e->first;
            for (uint32_t m = 0; e->used && !e->err && m < e->npend; m++, p = p->next) {
                knd_segment_journal_entry_encode(eh, w->log->stream_id, w->log->shard_index, (uint32_t)p->len);
                iov[n++] = (struct iovec){eh, KND_JOURNAL_ENTRY_HEADER_BYTES};
                iov[n++] = (struct iovec){(void *)p->buf, p->len};
                eh += KND_JOURNAL_ENTRY_HEADER_BYTES;
            }
        }
    }
    knd_segment_journal_record_encode(header, jw->epoch, jw->no, (uint32_t)npend, iov + 1, n - 1);
    iov[0] = (struct iovec){header, sizeof header};
    jw->len = KND_JOURNAL_RECORD_HEADER_BYTES;
    for (int i = 1; i < n; i++)
        jw->len += iov[i].iov_len;
    jw->op = "write journal";
    if ((rc = knd_segment_pwritev_all(jw->fd, iov, n, jw->off)))
        goto cleanup;
    jw->op = "clear failed journal record";
    if (jw->zero_to > jw->off + jw->len && (rc = knd_segment_zero(jw->fd, jw->off + jw->len, jw->zero_to)))
        goto cleanup;
    jw->op = "sync journal";
    if (fdatasync(jw->fd)) {
        rc = errno;
        goto cleanup;
    }
    jw->syncs++;
cleanup:
    if (!small) {
        free(iov);
        free(entries);
    }
    return rc;
}

/* Worker thread: makes the frames that reached their segments durable with one journal record. When the journal
 * fails, every extent that succeeded is undone, so that nothing of the job can be read back. */
static void journal_commit(job *j)
{
    journal_write *jw = &j->j;
    size_t npend = 0;
    for (size_t i = 0; i < j->nwork; i++)
        for (int k = 0; k < 2; k++)
            if (j->work[i].ext[k].used && !j->work[i].ext[k].err)
                npend += j->work[i].ext[k].npend;
    if (npend == 0)
        return; /* nothing reached a segment (or only empty new segments, which are synced): nothing to log */
    if ((jw->err = jw->preset_err)) {
        jw->op = jw->preset_op;
    } else if (!(jw->checkpoint && (jw->err = journal_checkpoint(jw))) && !(jw->err = journal_record_write(j, npend))) {
        jw->ok = true;
        return;
    }
    if (jw->len && (knd_segment_zero(jw->fd, jw->off, jw->off + jw->len) || fdatasync(jw->fd)))
        jw->clear_failed = true;
    for (size_t i = 0; i < j->nwork; i++) {
        for (int k = 0; k < 2; k++) {
            extent *e = &j->work[i].ext[k];
            if (!e->used || e->err)
                continue;
            e->err = jw->err;
            e->op = jw->op;
            extent_undo(j->work[i].log->dir, e);
        }
    }
}

static void job_work(job *j)
{
    for (size_t i = 0; i < j->nwork; i++)
        shard_work_write(&j->work[i], &j->j.syncs);
    journal_commit(j);
}

/* A pipelined job whose predecessor failed is not attempted: its frames were placed behind frames that are now
 * zeros (a reader would stop at them, a recovery scan too), and its journal record behind a record that is not
 * valid (the journal scan stops there). Its appends fail; the loop re-plans what comes next from the visible ends. */
static void job_cancel(job *j)
{
    for (size_t i = 0; i < j->nwork; i++) {
        for (int k = 0; k < 2; k++) {
            extent *e = &j->work[i].ext[k];
            if (e->used) {
                e->err = ECANCELED;
                e->op = "commit after a failed commit";
            }
        }
    }
}

/* Whether anything the job held was not committed: a pipelined successor was placed behind all of it. */
static bool job_failed(const job *j)
{
    if (j->j.err)
        return true;
    for (size_t i = 0; i < j->nwork; i++)
        for (int k = 0; k < 2; k++)
            if (j->work[i].ext[k].used && j->work[i].ext[k].err)
                return true;
    return false;
}

/* The committer thread: jobs in queue order. Finished jobs go back to the loop in the same order. */
static void committer_main(void *arg)
{
    committer *c = arg;
    uv_mutex_lock(&c->mu);
    for (;;) {
        while (!c->queue && !c->stop) {
            c->waiting = true;
            uv_cond_wait(&c->cv, &c->mu);
            c->waiting = false;
        }
        if (!c->queue)
            break;
        job *j = c->queue;
        c->queue = j->cnext;
        if (!c->queue)
            c->queue_tail = NULL;
        j->cnext = NULL;
        j->taken = true;
        uv_mutex_unlock(&c->mu);
        if (j->pipelined && c->last_failed)
            job_cancel(j);
        else
            job_work(j);
        c->last_failed = job_failed(j);
        uv_mutex_lock(&c->mu);
        if (c->done_tail)
            c->done_tail->cnext = j;
        else
            c->done = j;
        c->done_tail = j;
        uv_mutex_unlock(&c->mu);
        uv_async_send(&c->async);
        uv_mutex_lock(&c->mu);
    }
    uv_mutex_unlock(&c->mu);
}

/* ---- disk commit jobs: the loop's side ---- */

static void job_free_unused_spare(shard_log *log, extent *e)
{
    if (e->fd < 0)
        return;
    if (!log->deleted && log->spare_fd < 0) { /* not attempted: the spare is still a clean, synced file */
        log->spare_fd = e->fd;
        log->spare_no = e->no;
        log->spare_size = e->fd_size;
    } else {
        close(e->fd);
    }
    e->fd = -1;
}

/* Applies a finished extent on the loop thread. Returns the status of its pends. */
static kn_status extent_done(shard_log *log, extent *e)
{
    knd_store *st = log->store;
    if (e->err) {
        st->stats.commit_failures++;
        if (e->err != ECANCELED)
            set_last_error(st, log, e->op, e->err);
        if (e->seg && e->sync && e->seg->dirty_pos && strcmp(e->op, "fdatasync") == 0 && !st->seg_sync_err)
            st->seg_sync_err = e->err;
        if (e->seg && e->off + e->len > log->dirty_end)
            log->dirty_end = e->off + e->len;
        if (!e->seg && e->err == ECANCELED)
            job_free_unused_spare(log, e);
        return KN_ERR_IO;
    }
    seg *g = e->seg;
    if (g && e->sync && !log->busy) /* a pipelined job still in flight may have written it since */
        clear_dirty(st, g);
    if (!g) {
        g = e->new_seg;
        e->new_seg = NULL;
        g->size = e->size;
        log_push_seg(log, g);
        if (log->nsegs >= 2 && !log->segs[log->nsegs - 2]->sealed)
            seg_seal(log, log->segs[log->nsegs - 2]);
        seg_adopt_fd(st, g, e->fd);
        uint64_t next = e->size * 2;
        log->next_seg_size = next < st->segment_bytes ? next : st->segment_bytes;
        log->force_roll = false;
    }
    uint64_t off = e->off;
    pend *p = e->first;
    for (uint32_t i = 0; i < e->npend; i++, p = p->next) {
        log_apply_pend(log, g, off, p, true);
        off += p->len;
    }
    log->dirty_end = g->end; /* past it everything this job touched is now zeros (zero_to) */
    return KN_OK;
}

/* Brings the journal's position forward after a job, or keeps it where it was when the record failed. */
static void journal_done(knd_store *st, job *j)
{
    journal_write *jw = &j->j;
    bool checkpointed = jw->checkpoint && jw->ok;
    st->stats.syncs += jw->syncs;
    for (size_t i = 0; i < jw->nsync; i++) {
        j->sync_segs[i]->pins--;
        if (checkpointed)
            clear_dirty(st, j->sync_segs[i]);
    }
    if (jw->err) {
        snprintf(st->last_error, sizeof st->last_error, "%s (commit journal): %s", jw->op, strerror(jw->err));
        if (jw->clear_failed && jw->off + jw->len > st->jdirty_end)
            st->jdirty_end = jw->off + jw->len;
        if (jw->checkpoint)
            st->jforce_checkpoint = true;
        if (jw->checkpoint && jw->op && strcmp(jw->op, "sync segment") == 0)
            st->seg_sync_err = jw->err;
        return;
    }
    if (!jw->ok)
        return;
    if (checkpointed) {
        st->jepoch = jw->epoch;
        if (jw->grow_to > st->jsize)
            st->jsize = jw->grow_to;
        st->jforce_checkpoint = false;
    }
    st->joff = jw->off + jw->len;
    st->jno = jw->no + 1;
    st->jdirty_end = 0; /* cleared by this record (zero_to), or of an older epoch */
}

static void maybe_prepare(shard_log *log);
static void reap_doomed(knd_store *st, waiter **done);
static void launch_disk(knd_store *st, waiter **done);

static void job_free(job *j)
{
    for (size_t i = 0; j->work && i < j->nwork; i++)
        free(j->work[i].ext[1].new_seg); /* set only when the new segment was not made */
    free(j->work);
    free(j->sync_segs);
    free(j->j.sync_fds);
    free(j);
}

/* Loop thread: applies a job the committer finished (the oldest in flight). */
static void job_done(job *j)
{
    knd_store *st = j->st;
    waiter *done = NULL;
    st->in_flight--;
    st->jobs = j->lnext;
    if (!st->jobs)
        st->jobs_tail = NULL;
    if (--st->njobs == 0)
        uv_unref((uv_handle_t *)&st->com.async); /* an idle store does not keep the loop running */
    journal_done(st, j);
    for (size_t i = 0; i < j->nwork; i++) {
        shard_work *w = &j->work[i];
        shard_log *log = w->log;
        kn_status result[2] = {KN_OK, KN_OK};
        log->busy--;
        if (w->ext[1].used)
            log->roll_busy = false; /* only a job planned with nothing in flight starts a segment */
        if (w->ext[0].used)
            w->ext[0].seg->pins--;
        for (int k = 0; k < 2; k++)
            if (w->ext[k].used)
                result[k] = extent_done(log, &w->ext[k]);
        for (int k = 0; k < 2; k++) {
            pend *p = w->ext[k].first;
            for (uint32_t m = 0; m < w->ext[k].npend; m++) {
                pend *next = p->next;
                pend_finish(st, p, result[k], &done);
                p = next;
            }
        }
        if (!log->deleted) {
            maybe_prepare(log);
            if (log->pend_head || log->force_roll)
                mark_ready(log);
        }
    }
    st->stats.commits++;
    st->stats.pipelined += j->pipelined;
    job_free(j);
    reap_doomed(st, &done);
    /* The next group (what queued while this one was on disk) goes first: its I/O then overlaps the callbacks,
     * which send this group's answers. */
    launch_disk(st, &done);
    if (st->ready)
        start_idle(st);
    run_done(done);
}

static void on_jobs_done(uv_async_t *h)
{
    knd_store *st = h->data;
    committer *c = &st->com;
    uv_mutex_lock(&c->mu);
    job *list = c->done;
    c->done = c->done_tail = NULL;
    uv_mutex_unlock(&c->mu);
    while (list) {
        job *j = list;
        list = j->cnext;
        job_done(j);
    }
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

/* Takes pends from the head of the queue into e while they fit in [pos, limit) and the job's byte budget. The
 * extent's pends stay chained by ->next (an extent that grows later is relinked to its new pends). */
static void extent_take(shard_log *log, extent *e, uint64_t *pos, uint64_t limit, uint64_t *budget)
{
    while (log->pend_head && *pos + log->pend_head->len <= limit &&
           (*budget == 0 || *budget + log->pend_head->len <= JOB_MAX_BYTES)) {
        pend *p = log->pend_head;
        log->pend_head = p->next;
        if (!log->pend_head)
            log->pend_tail = &log->pend_head;
        if (e->last)
            e->last->next = p;
        else
            e->first = p;
        e->last = p;
        e->npend++;
        e->len += p->len;
        *pos += p->len;
        *budget += p->len;
    }
}

/* Sets up ext[1], a new segment for what is left in the queue (or an empty one for a forced roll). False when the
 * next segment's file is being prepared right now: the prep job's completion re-queues the shard. */
static bool plan_new_segment(shard_log *log, extent *e, int64_t now_ms)
{
    if (log->prep || !log_reserve_seg(log))
        return false;
    uint64_t need = KND_SEGMENT_HEADER_BYTES + (log->pend_head ? log->pend_head->len : 0);
    uint64_t base_ix = log->pend_head ? log->pend_head->first_ix : log->next_ix;
    if (!(e->new_seg = seg_new(log->next_seg_no, base_ix, 0, now_ms)))
        return false;
    e->used = true;
    e->no = log->next_seg_no;
    e->size = log->next_seg_size > need ? log->next_seg_size : round_up(need, 4096);
    e->base_ix = base_ix;
    e->created_ms = now_ms;
    e->off = KND_SEGMENT_HEADER_BYTES;
    e->fd = -1;
    if (log->spare_fd >= 0 && log->spare_no == e->no) {
        e->fd = log->spare_fd;
        e->fd_size = log->spare_size;
        if (e->size < log->spare_size)
            e->size = log->spare_size;
    } else if (log->spare_fd >= 0) {
        close(log->spare_fd);
        seg_remove_files(log, log->spare_no);
    }
    log->spare_fd = -1;
    return true;
}

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Points e at the end of the active segment g (fd open) without frames, for clearing or syncing it. */
static void extent_at_end(extent *e, seg *g, const shard_log *log, int fd)
{
    *e = (extent){.used = true, .seg = g, .off = g->end, .zero_to = log->dirty_end, .fd = fd};
    g->pins++;
}

/* Fails the log's queued appends (they are not acknowledged, nothing of them was written). */
static void log_fail_queued(knd_store *st, shard_log *log, waiter **done)
{
    while (log->pend_head) {
        pend *p = log->pend_head;
        log->pend_head = p->next;
        pend_finish(st, p, KN_ERR_IO, done);
    }
    log->pend_tail = &log->pend_head;
}

/* Plans one shard's part of a job into w: its queued pends at the end of the active segment (ext[0]) and, when they
 * do not fit there, in a new segment (ext[1]). False when the shard has nothing the job can take now. */
static bool plan_log(knd_store *st, shard_log *log, shard_work *w, uint64_t *budget, waiter **done)
{
    seg *act = active_seg(log);
    uint64_t pos;
    *w = (shard_work){.log = log};
    if (!log->pend_head && !log->force_roll)
        return false;
    if (act && !act->sealed && !log->force_roll) {
        int fd = seg_fd(st, log, act);
        if (fd < 0 && (act->dirty_pos || log->dirty_end > act->end)) {
            /* The active segment cannot be reopened (e.g. EMFILE) but holds frames not yet synced, or failed ones
             * past its end: it must not be sealed, because recovery scans only a shard's highest segment and the
             * journal replays only frames past the recovered end, so frames a power failure took from a segment
             * below the highest would never come back. The shard's queued appends fail; later ones retry it. */
            set_last_error(st, log, "reopen segment", errno);
            st->stats.commit_failures++;
            log_fail_queued(st, log, done);
            return false;
        }
        if (fd < 0) { /* synced and clean: it can be sealed as it is, and the shard continues in a new segment */
            set_last_error(st, log, "reopen segment", errno);
            seg_seal(log, act);
        } else {
            extent *e = &w->ext[0];
            pos = act->end;
            extent_take(log, e, &pos, act->size, budget);
            if (e->npend) {
                extent taken = *e;
                extent_at_end(e, act, log, fd);
                e->first = taken.first;
                e->last = taken.last;
                e->npend = taken.npend;
                e->len = taken.len;
            }
        }
    }
    /* A new segment when there is none to write, or when the queue's head did not fit (rather than the budget) */
    bool head_fits_budget = log->pend_head && (*budget == 0 || *budget + log->pend_head->len <= JOB_MAX_BYTES);
    bool roll = !act || act->sealed || log->force_roll || head_fits_budget;
    if (roll && (log->pend_head || log->force_roll) && plan_new_segment(log, &w->ext[1], now_wall_ms())) {
        pos = KND_SEGMENT_HEADER_BYTES;
        extent_take(log, &w->ext[1], &pos, w->ext[1].size, budget);
    }
    if (!w->ext[0].used && !w->ext[1].used)
        return false;
    if (w->ext[1].used && !w->ext[0].used && act && !act->sealed && (act->dirty_pos || log->dirty_end > act->end)) {
        /* The segment being sealed holds unsynced frames, or failed frames past its end: sync (and clear) it
         * first, in the same job. A sealed segment is never written again, must be complete on disk, and a scan
         * rebuilding its index must stop at its end. */
        int fd = seg_fd(st, log, act);
        if (fd >= 0)
            extent_at_end(&w->ext[0], act, log, fd);
    }
    if (w->ext[1].used && w->ext[0].used)
        w->ext[0].sync = true;
    else if (w->ext[0].used && !mark_dirty(st, act))
        w->ext[0].sync = true; /* cannot be listed for the next checkpoint: make it durable now */
    log->roll_busy = w->ext[1].used;
    if (!w->ext[1].used)
        log->wend = w->ext[0].off + w->ext[0].len;
    return true;
}

/* Sets up the job's checkpoint: the record goes to the journal's start in a new epoch, after every dirty segment is
 * synced; the journal grows so that at least 8 records of this size fit. */
static void plan_checkpoint(knd_store *st, job *j, uint64_t rec)
{
    journal_write *jw = &j->j;
    uint64_t want = round_up(KND_JOURNAL_HEADER_BYTES + 8 * rec, JOURNAL_GROW_STEP);
    if (want > JOURNAL_MAX_BYTES)
        want = JOURNAL_MAX_BYTES;
    if (want < round_up(KND_JOURNAL_HEADER_BYTES + rec, JOURNAL_GROW_STEP))
        want = round_up(KND_JOURNAL_HEADER_BYTES + rec, JOURNAL_GROW_STEP);
    jw->checkpoint = true;
    jw->epoch = st->jepoch + 1;
    jw->no = 0;
    jw->off = KND_JOURNAL_HEADER_BYTES;
    jw->grow_from = st->jsize;
    jw->grow_to = want > st->jsize ? want : st->jsize;
    if (st->ndirty == 0)
        return;
    j->sync_segs = malloc(st->ndirty * sizeof *j->sync_segs);
    jw->sync_fds = malloc(st->ndirty * sizeof *jw->sync_fds);
    if (!j->sync_segs || !jw->sync_fds) {
        jw->preset_err = ENOMEM;
        jw->preset_op = "prepare the journal checkpoint";
        return;
    }
    for (size_t i = 0; i < st->ndirty; i++) {
        seg *g = st->dirty[i];
        int fd = seg_fd(st, g->log, g);
        if (fd < 0) {
            jw->preset_err = errno;
            jw->preset_op = "prepare the journal checkpoint";
            return;
        }
        g->pins++;
        j->sync_segs[jw->nsync] = g;
        jw->sync_fds[jw->nsync++] = fd;
    }
}

/* Where the job's journal record goes: after the previous one, or at the start of a new epoch. */
static void plan_journal(knd_store *st, job *j)
{
    journal_write *jw = &j->j;
    uint64_t rec = KND_JOURNAL_RECORD_HEADER_BYTES;
    for (size_t i = 0; i < j->nwork; i++)
        for (int k = 0; k < 2; k++)
            rec += j->work[i].ext[k].npend * (uint64_t)KND_JOURNAL_ENTRY_HEADER_BYTES + j->work[i].ext[k].len;
    jw->fd = st->jfd;
    j->rec = rec;
    if (st->seg_sync_err) {
        jw->preset_err = st->seg_sync_err;
        jw->preset_op = "commit after a failed segment fdatasync (restart kinesisd)";
        return;
    }
    if (st->jforce_checkpoint || st->joff + rec > st->jsize) {
        plan_checkpoint(st, j, rec);
        return;
    }
    jw->epoch = st->jepoch;
    jw->no = st->jno;
    jw->off = st->joff;
    jw->zero_to = st->jdirty_end;
}

static job *job_new(knd_store *st, size_t cap)
{
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->work = calloc(cap ? cap : 1, sizeof *j->work))) {
        free(j);
        return NULL;
    }
    j->st = st;
    j->seq = ++st->job_seq;
    j->work_cap = cap ? cap : 1;
    return j;
}

/* Hands a planned job to the committer (it runs after every job queued before it). */
static void job_submit(knd_store *st, job *j)
{
    committer *c = &st->com;
    if (st->njobs++ == 0)
        uv_ref((uv_handle_t *)&c->async);
    st->in_flight++;
    if (st->jobs_tail)
        st->jobs_tail->lnext = j;
    else
        st->jobs = j;
    st->jobs_tail = j;
    uv_mutex_lock(&c->mu);
    if (c->queue)
        c->queue_tail->cnext = j;
    else
        c->queue = j;
    c->queue_tail = j;
    if (c->waiting)
        uv_cond_signal(&c->cv);
    uv_mutex_unlock(&c->mu);
}

static void requeue_ready(knd_store *st, shard_log *log)
{
    log->queued = true;
    log->ready_next = st->ready;
    st->ready = log;
}

/* Takes the ready list for one pass: the caller walks it with next_ready. */
static shard_log *take_ready(knd_store *st)
{
    shard_log *list = st->ready;
    st->ready = NULL;
    return list;
}

/* The next log of a list take_ready gave, no longer queued; deleted logs are passed over. NULL at the end. */
static shard_log *next_ready(shard_log **list)
{
    while (*list) {
        shard_log *log = *list;
        *list = log->ready_next;
        log->queued = false;
        if (!log->deleted)
            return log;
    }
    return NULL;
}

/* Whether the append p, written at pos, fits in the active segment act, and its journal entry in the journal after
 * what j already records there. */
static inline bool pend_fits(const knd_store *st, const job *j, const seg *act, uint64_t pos, const pend *p)
{
    return pos + p->len <= act->size && j->j.off + j->rec + KND_JOURNAL_ENTRY_HEADER_BYTES + p->len <= st->jsize;
}

/* Plans the log's queued appends into the pipelined job j, behind what the jobs in flight write to its active
 * segment, as many as fit. True when what is left needs a job planned with nothing in flight (a new segment, a
 * checkpoint, failed frames to clear): then no further pipelined job may start, or a steady stream of appends to
 * other shards would keep this one waiting. */
static bool pipe_plan_log(knd_store *st, job *j, shard_log *log)
{
    seg *act = active_seg(log);
    if (log->roll_busy || !log->pend_head)
        return false; /* the job in flight that starts its segment ends by itself */
    if (log->force_roll || !act || act->sealed || log->dirty_end > act->end)
        return true;
    bool joined = log->pipe_seq == j->seq;
    extent *e = joined ? &j->work[log->pipe_work].ext[0] : NULL;
    uint64_t pos = e ? e->off + e->len : log->busy ? log->wend : act->end;
    pend *p = log->pend_head;
    if (!pend_fits(st, j, act, pos, p))
        return true;
    if (j->bytes + p->len > JOB_MAX_BYTES)
        return false; /* the next pipelined job takes it */
    if (!joined) {
        if (j->nwork == j->work_cap) {
            shard_work *nw = realloc(j->work, 2 * j->work_cap * sizeof *nw);
            if (!nw)
                return false;
            j->work = nw;
            j->work_cap *= 2;
        }
        int fd = seg_fd(st, log, act);
        if (fd < 0)
            return true; /* launch_disk deals with it */
        shard_work *w = &j->work[j->nwork];
        *w = (shard_work){.log = log};
        e = &w->ext[0];
        extent_at_end(e, act, log, fd);
        e->off = pos;
        e->zero_to = 0;
        if (!mark_dirty(st, act))
            e->sync = true;
        log->busy++;
        log->pipe_seq = j->seq;
        log->pipe_work = j->nwork++;
    }
    while ((p = log->pend_head) && pend_fits(st, j, act, pos, p) && j->bytes + p->len <= JOB_MAX_BYTES) {
        uint64_t budget = j->bytes;
        extent_take(log, e, &pos, pos + p->len, &budget); /* exactly p */
        j->bytes = budget;
        j->rec += KND_JOURNAL_ENTRY_HEADER_BYTES + p->len;
    }
    log->wend = pos;
    return log->pend_head && !pend_fits(st, j, act, pos, log->pend_head);
}

/* Pipelining: while a job is in flight, the ready shards are planned into the next one at the ends the jobs in flight
 * will leave, and the committer takes it the moment the previous fdatasync returns, without waiting for the loop to
 * see that completion; until then, later appends join it. Groups stay as large as with one job at a time (what
 * arrives during a sync), but the disk no longer idles while the loop is busy answering. Only what needs no decision
 * that depends on how the jobs in flight end goes in: appends that fit in their shard's active segment, of a shard
 * that no job in flight starts a segment for and that has no failed frames to clear, in a journal record that fits
 * behind the previous one without a checkpoint. The rest waits until nothing is in flight (launch_disk), and so that
 * it does not wait for long, no new pipelined job starts meanwhile (pipe_drain). If the previous job fails, the
 * committer cancels this one (job_cancel). At most two jobs are in flight. */
static void launch_pipelined(knd_store *st)
{
    committer *c = &st->com;
    job *prev = st->jobs_tail, *j = NULL;
    bool locked = false;
    if (st->jforce_checkpoint || st->jdirty_end || st->seg_sync_err)
        return;
    if (prev->pipelined) {
        uv_mutex_lock(&c->mu);
        if (!prev->taken) {
            j = prev;
            locked = true;
        } else {
            uv_mutex_unlock(&c->mu);
        }
    }
    if (!j) {
        /* Not behind a job that writes no journal record to follow, nor behind a checkpoint: its completion takes
         * the segments it synced off the dirty list, which must not happen to one this job writes. */
        if (st->njobs >= 2 || st->pipe_drain || prev->rec <= KND_JOURNAL_RECORD_HEADER_BYTES || prev->j.checkpoint)
            return;
        if (!(j = job_new(st, 4)))
            return;
        j->pipelined = true;
        j->rec = KND_JOURNAL_RECORD_HEADER_BYTES;
        j->j.fd = st->jfd;
        j->j.epoch = prev->j.epoch;
        j->j.no = prev->j.no + 1;
        j->j.off = prev->j.off + prev->rec;
    }
    shard_log *list = take_ready(st), *log;
    while ((log = next_ready(&list))) {
        if (pipe_plan_log(st, j, log))
            st->pipe_drain = true;
        if (log->pend_head || log->force_roll)
            requeue_ready(st, log);
    }
    if (locked)
        uv_mutex_unlock(&c->mu);
    else if (j->nwork == 0)
        job_free(j);
    else
        job_submit(st, j);
}

/* Launches one job for the ready shards when none is in flight. Otherwise the ready shards go into a pipelined
 * job (launch_pipelined). */
static void launch_disk(knd_store *st, waiter **done)
{
    if (!st->ready)
        return;
    if (st->njobs) {
        launch_pipelined(st);
        return;
    }
    size_t n = 0;
    for (const shard_log *l = st->ready; l; l = l->ready_next)
        n++;
    job *j = job_new(st, n);
    if (!j)
        return; /* retried when the next append or completion marks a shard ready */
    st->pipe_drain = false;
    shard_log *list = take_ready(st), *log;
    while ((log = next_ready(&list))) {
        if (j->bytes < JOB_MAX_BYTES && plan_log(st, log, &j->work[j->nwork], &j->bytes, done)) {
            log->busy++;
            log->pipe_seq = j->seq;
            log->pipe_work = j->nwork;
            j->nwork++;
        } else if ((log->pend_head || log->force_roll) && !log->prep) {
            requeue_ready(st, log); /* over the budget: the next job takes it */
        }
    }
    if (j->nwork == 0) {
        job_free(j);
        return;
    }
    plan_journal(st, j);
    job_submit(st, j);
}

/* ---- background creation of the next segment ---- */

static void prep_work(uv_work_t *req)
{
    prep *p = req->data;
    char path[4096];
    if (!knd_segment_path(path, sizeof path, p->log->dir, p->no, "seg")) {
        p->err = ENAMETOOLONG;
        return;
    }
    p->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (p->fd < 0) {
        p->err = errno;
        return;
    }
    if ((p->err = knd_segment_fill_paced(p->fd, p->size)) == 0 && fdatasync(p->fd))
        p->err = errno;
    if (!p->err)
        p->err = knd_segment_sync_dir(p->log->dir);
    if (p->err) {
        close(p->fd);
        p->fd = -1;
        unlink(path); /* a full disk must not keep a half-made spare */
    }
}

static void prep_done(uv_work_t *req, int status)
{
    (void)status;
    prep *p = req->data;
    shard_log *log = p->log;
    knd_store *st = log->store;
    waiter *done = NULL;
    st->in_flight--;
    log->prep = NULL;
    if (p->fd >= 0) {
        if (log->deleted || log->spare_fd >= 0 || log->next_seg_no != p->no) {
            close(p->fd);
        } else {
            log->spare_fd = p->fd;
            log->spare_no = p->no;
            log->spare_size = p->size;
        }
    }
    free(p);
    if (log->deleted)
        reap_doomed(st, &done);
    else if (log->pend_head || log->force_roll)
        mark_ready(log);
    run_done(done);
}

static void maybe_prepare(shard_log *log)
{
    knd_store *st = log->store;
    seg *act = active_seg(log);
    if (is_memory(st) || st->closing || log->deleted || log->prep || log->spare_fd >= 0 || !act || act->sealed ||
        act->end < act->size / 2)
        return;
    prep *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->req.data = p;
    p->log = log;
    p->no = log->next_seg_no;
    p->size = log->next_seg_size;
    p->fd = -1;
    log->prep = p;
    st->in_flight++;
    uv_queue_work(st->loop, &p->req, prep_work, prep_done);
}

/* ---- --in-memory commits: synchronous, in the idle callback ---- */

static void launch_memory(shard_log *log, waiter **done)
{
    knd_store *st = log->store;
    if (log->pend_head)
        st->stats.commits++;
    while (log->pend_head) {
        pend *p = log->pend_head;
        seg *act = active_seg(log);
        kn_status status = KN_OK;
        if (!act || act->sealed || act->end + p->len > act->size) {
            uint64_t size = KND_SEGMENT_HEADER_BYTES + p->len;
            if (size < log->next_seg_size)
                size = log->next_seg_size;
            seg *g = seg_new(log->next_seg_no, p->first_ix, size, now_wall_ms());
            if (!g || !(g->mem = malloc(size)) || !log_reserve_seg(log)) {
                if (g)
                    free(g->mem);
                free(g);
                g = NULL;
                status = KN_ERR_IO;
                snprintf(st->last_error, sizeof st->last_error, "out of memory adding an in-memory segment");
            } else {
                log_push_seg(log, g);
                st->mem_used += size;
                if (act)
                    act->sealed = true;
            }
            act = g;
        }
        log->pend_head = p->next;
        if (!log->pend_head)
            log->pend_tail = &log->pend_head;
        if (act) {
            uint64_t off = act->end;
            memcpy(act->mem + off, p->buf, p->len);
            log_apply_pend(log, act, off, p, true);
        }
        pend_finish(st, p, status, done);
    }
}

static void on_idle(uv_idle_t *h)
{
    knd_store *st = h->data;
    waiter *done = NULL;
    uv_idle_stop(h);
    st->idle_started = false;
    if (is_memory(st)) {
        shard_log *list = take_ready(st), *log;
        while ((log = next_ready(&list)))
            launch_memory(log, &done);
    } else {
        launch_disk(st, &done);
    }
    reap_doomed(st, &done);
    run_done(done);
}

static void start_idle(knd_store *st)
{
    if (st->idle_started)
        return;
    st->idle_started = true;
    uv_idle_start(&st->idle, on_idle);
}

/* ---- logs and deleted streams ---- */

static shard_log *log_new(knd_store *st, const knd_stream *s, const knd_shard *sh)
{
    shard_log *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    log->store = st;
    log->stream_id = s->id;
    log->shard_index = sh->index;
    log->created_ms = sh->created_ms;
    log->next_ix = log->latest_ix = FIRST_IX;
    log->next_seg_no = 1;
    /* Disk segments start small and double (see extent_done); memory segments stay at this size. */
    log->next_seg_size = MIN_SEGMENT_BYTES < st->segment_bytes ? MIN_SEGMENT_BYTES : st->segment_bytes;
    log->spare_fd = -1;
    log->pend_tail = &log->pend_head;
    if (st->dir && !(log->dir = str_printf("%s/%08" PRIx32 "/%06" PRIu32, st->streams_dir, s->id, sh->index))) {
        free(log);
        return NULL;
    }
    return log;
}

/* Frees an idle log (no job, prep or queue membership); fails any appends still queued. */
static void log_free(knd_store *st, shard_log *log, waiter **done)
{
    if (!log)
        return;
    if (log->pend_head)
        snprintf(st->last_error, sizeof st->last_error, "records for a deleted stream or a closing store dropped");
    log_fail_queued(st, log, done);
    for (size_t i = 0; i < log->nsegs; i++)
        seg_free(st, log->segs[i]);
    if (log->spare_fd >= 0) { /* an unused spare holds no data: do not leave it behind */
        close(log->spare_fd);
        seg_remove_files(log, log->spare_no);
    }
    free(log->segs);
    free(log->replay);
    free(log->dir);
    free(log);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether a job uses one of the log's segments (a checkpoint may sync segments of logs it does not write). */
static bool log_pinned(const shard_log *log)
{
    for (size_t i = 0; i < log->nsegs; i++)
        if (log->segs[i]->pins)
            return true;
    return false;
}

static void reap_doomed(knd_store *st, waiter **done)
{
    for (doomed **pp = &st->doomed; *pp;) {
        doomed *d = *pp;
        bool busy = false;
        for (uint32_t i = 0; i < d->n; i++)
            busy |= d->logs[i] && (d->logs[i]->busy || d->logs[i]->prep || d->logs[i]->queued || log_pinned(d->logs[i]));
        if (busy) {
            pp = &d->next;
            continue;
        }
        for (uint32_t i = 0; i < d->n; i++)
            log_free(st, d->logs[i], done);
        if (d->dir) {
            rm_tree(d->dir);
            knd_segment_sync_dir(st->streams_dir);
        }
        *pp = d->next;
        free(d->dir);
        free(d->logs);
        free(d);
    }
}

/* ---- reading ---- */

typedef struct reader {
    knd_store *st;
    shard_log *log;
    size_t si;             /* index in log->segs */
    uint64_t off;          /* next frame's offset in that segment */
    const seg *wseg;       /* disk: the window of st->rbuf holding [wstart, wstart + wlen) of wseg */
    uint64_t wstart;
    size_t wbuf, wlen;
    bool wkeep;            /* a returned record lies in the window: a new window must not overwrite it */
} reader;

static kn_status reader_load(reader *r, seg *g, uint64_t off, size_t n, size_t *at, kn_error *err)
{
    knd_store *st = r->st;
    if (r->wseg == g && off >= r->wstart && off + n <= r->wstart + r->wlen) {
        *at = r->wbuf + (size_t)(off - r->wstart);
        return KN_OK;
    }
    size_t base = (r->wseg && !r->wkeep) ? r->wbuf : st->rbuf_len;
    size_t want = n > READ_CHUNK ? n : READ_CHUNK;
    if (want > g->end - off)
        want = (size_t)(g->end - off);
    if (base + want > st->rbuf_cap) {
        size_t ncap = st->rbuf_cap ? st->rbuf_cap : READ_CHUNK;
        while (ncap < base + want)
            ncap *= 2;
        uint8_t *nb = realloc(st->rbuf, ncap);
        if (!nb)
            return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory reading records");
        st->rbuf = nb;
        st->rbuf_cap = ncap;
    }
    int fd = seg_fd(st, r->log, g);
    if (fd < 0)
        return kn_error_set(err, KN_ERR_IO, "cannot open segment %" PRIu64 ": %s", g->no, strerror(errno));
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(fd, st->rbuf + base + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return kn_error_set(err, KN_ERR_IO, "cannot read segment %" PRIu64 ": %s", g->no,
                                k < 0 ? strerror(errno) : "file too short");
        got += (size_t)k;
    }
    r->wseg = g;
    r->wstart = off;
    r->wbuf = base;
    r->wlen = got;
    r->wkeep = false;
    st->rbuf_len = base + got;
    *at = base;
    return KN_OK;
}

/* The next committed frame. *p points at it (for disk segments inside st->rbuf at offset *at, valid until the next
 * reader call; *at is SIZE_MAX for memory segments, whose bytes do not move). f->size == 0 at the end. */
static kn_status reader_next(reader *r, knd_frame *f, const uint8_t **p, size_t *at, kn_error *err)
{
    kn_status rc;
    for (;;) {
        if (r->si >= r->log->nsegs) {
            f->size = 0;
            return KN_OK;
        }
        seg *g = r->log->segs[r->si];
        if (r->off < KND_SEGMENT_HEADER_BYTES)
            r->off = KND_SEGMENT_HEADER_BYTES;
        if (r->off >= g->end) {
            r->si++;
            r->off = KND_SEGMENT_HEADER_BYTES;
            continue;
        }
        *at = SIZE_MAX;
        if (g->mem) {
            *p = g->mem + r->off;
        } else {
            if ((rc = reader_load(r, g, r->off, KND_FRAME_HEADER_BYTES, at, err)))
                return rc;
            *p = r->st->rbuf + *at;
        }
        if (knd_segment_frame_parse(*p, g->end - r->off, f) != KND_FRAME_OK)
            goto corrupt;
        if (!g->mem) {
            if ((rc = reader_load(r, g, r->off, f->size, at, err)))
                return rc;
            *p = r->st->rbuf + *at;
        }
        if (!knd_segment_frame_verify(*p, f))
            goto corrupt;
        r->off += f->size;
        return KN_OK;
    corrupt:
        return kn_error_set(err, KN_ERR_IO, "damaged record in segment %" PRIu64 " of shardId-%012" PRIu32
                            " at offset %" PRIu64, g->no, r->log->shard_index, r->off);
    }
}

/* The seq_ix from which a read for *from must look: 0 when from is below every number of the shard, UINT64_MAX
 * when above. Numbers of one shard share their top 48 bits (version, creation time, shard nibble: see seqnum.c);
 * the 64 bits below are the seq_ix. */
static uint64_t target_ix(const shard_log *log, const knd_seq *from)
{
    knd_seq lo = seq_of(log, 0, 0);
    int c = memcmp(from->b, lo.b, 6);
    if (c != 0)
        return c < 0 ? 0 : UINT64_MAX;
    uint64_t ix = 0;
    for (int i = 6; i < 14; i++)
        ix = ix << 8 | from->b[i];
    return ix;
}

/* The sparse index of g: in memory, or read from its .idx file (*owned then gets the array to free). */
static const knd_segment_idx_entry *seg_index(const shard_log *log, const seg *g, size_t *n,
                                              knd_segment_idx_entry **owned)
{
    char path[4096];
    knd_segment_summary sum;
    *owned = NULL;
    *n = g->idx_len;
    if (g->idx || !log->dir)
        return g->idx;
    *n = 0;
    if (!knd_segment_path(path, sizeof path, log->dir, g->no, "idx") ||
        knd_segment_idx_read(path, g->no, &sum, owned, n))
        return NULL; /* no index: the caller scans from the segment's start */
    return *owned;
}

/* Offset in g of a frame at or before the first one whose key (ix or arrival time) reaches v. */
static uint64_t seg_seek(const shard_log *log, const seg *g, uint64_t v, bool by_time)
{
    knd_segment_idx_entry *owned;
    size_t n, lo = 0;
    const knd_segment_idx_entry *idx = seg_index(log, g, &n, &owned);
    size_t hi = n;
    while (lo < hi) { /* first entry whose key is >= v (by time) or > v (by ix) */
        size_t mid = (lo + hi) / 2;
        bool before = by_time ? idx[mid].arrival_ms < (int64_t)v : idx[mid].ix <= v;
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t off = lo ? idx[lo - 1].off : KND_SEGMENT_HEADER_BYTES;
    free(owned);
    return off;
}

static bool find_seg_no(const shard_log *log, uint64_t no, size_t *si)
{
    size_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->segs[mid]->no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    *si = lo;
    return lo < log->nsegs && log->segs[lo]->no == no;
}

/* Positions r at or before the first record with number >= *from (> with after). */
static void reader_seek(reader *r, const knd_seq *from, bool after)
{
    shard_log *log = r->log;
    for (int i = 0; after && i < CURSORS; i++) {
        const cursor *c = &log->cur[i];
        size_t si;
        if (c->valid && knd_seq_cmp(&c->after, from) == 0 && find_seg_no(log, c->seg_no, &si)) {
            r->si = si;
            r->off = c->off;
            return;
        }
    }
    uint64_t t = target_ix(log, from);
    r->off = KND_SEGMENT_HEADER_BYTES;
    if (t == UINT64_MAX) {
        r->si = log->nsegs;
        return;
    }
    size_t lo = 0, hi = log->nsegs; /* the last segment whose base_ix <= t: every ix in a segment is below the
                                      * next segment's base_ix */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->segs[mid]->base_ix <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    r->si = lo ? lo - 1 : 0;
    if (r->si < log->nsegs)
        r->off = seg_seek(log, log->segs[r->si], t, false);
}

static void cursor_save(shard_log *log, const knd_seq *after, uint64_t seg_no, uint64_t off)
{
    for (int i = 0; i < CURSORS; i++) {
        cursor *c = &log->cur[i];
        if (c->valid && c->seg_no == seg_no && c->off == off)
            return;
    }
    log->cur[log->cur_next] = (cursor){true, *after, seg_no, off};
    log->cur_next = (log->cur_next + 1) % CURSORS;
}

static shard_log *shard_log_of(const knd_stream *s, uint32_t shard_index)
{
    return s && shard_index < s->shard_count ? s->shards[shard_index].log : NULL;
}

static void read_buffers_reset(knd_store *st)
{
    if (st->rbuf_cap > READ_BUF_KEEP) { /* a large read's buffer goes back to the system */
        free(st->rbuf);
        st->rbuf = NULL;
        st->rbuf_cap = 0;
    }
    st->rbuf_len = 0;
}

kn_status knd_store_read(knd_store *store, knd_stream *s, uint32_t shard_index, const knd_seq *from, bool after,
                         size_t limit, size_t max_bytes, int64_t now_ms, knd_record_out *out, size_t *count,
                         int64_t *latest_ms, kn_error *err)
{
    shard_log *log = shard_log_of(s, shard_index);
    *count = 0;
    *latest_ms = 0;
    if (!log)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "no shard %" PRIu32, shard_index);
    *latest_ms = log->any ? log->last_ms : 0;
    if (limit == 0)
        return KN_OK;
    read_buffers_reset(store);
    if (store->roffs_cap < limit) {
        size_t *no = realloc(store->roffs, limit * sizeof *no);
        if (!no)
            return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory reading records");
        store->roffs = no;
        store->roffs_cap = limit;
    }
    int64_t cutoff = now_ms - (int64_t)s->retention_hours * MS_PER_HOUR;
    reader r = {.st = store, .log = log};
    reader_seek(&r, from, after);
    bool started = false;
    size_t n = 0, used = 0;
    knd_seq last = {{0}};
    uint64_t last_no = 0, last_off = 0;
    while (n < limit) {
        knd_frame f;
        const uint8_t *p;
        size_t at;
        kn_status rc = reader_next(&r, &f, &p, &at, err);
        if (rc)
            return rc;
        if (f.size == 0)
            break;
        if (f.arrival_ms < cutoff)
            continue;
        knd_seq sq = seq_of(log, f.ix, f.arrival_ms);
        if (!started) {
            int c = knd_seq_cmp(&sq, from);
            if (c < 0 || (c == 0 && after))
                continue;
            started = true;
        }
        size_t bytes = (size_t)f.key_len + f.data_len;
        if (n > 0 && used + bytes > max_bytes)
            break;
        const uint8_t *key = p + KND_FRAME_HEADER_BYTES;
        out[n] = (knd_record_out){sq, f.arrival_ms, key + f.key_len, f.data_len, (const char *)key, f.key_len};
        store->roffs[n] = at;
        r.wkeep = true;
        used += bytes;
        n++;
        last = sq;
        last_no = log->segs[r.si]->no; /* the frame just read is in segs[r.si]; r.off is just past it */
        last_off = r.off;
    }
    for (size_t i = 0; i < n; i++) { /* disk views were offsets into rbuf, which may have moved while reading */
        if (store->roffs[i] == SIZE_MAX)
            continue;
        const uint8_t *key = store->rbuf + store->roffs[i] + KND_FRAME_HEADER_BYTES;
        out[i].partition_key = (const char *)key;
        out[i].data = key + out[i].partition_key_len;
    }
    if (n)
        cursor_save(log, &last, last_no, last_off);
    *count = n;
    return KN_OK;
}

knd_seq knd_store_latest(knd_store *store, knd_stream *s, uint32_t shard_index)
{
    (void)store;
    shard_log *log = shard_log_of(s, shard_index);
    knd_seq zero = {{0}};
    return log ? seq_of(log, log->latest_ix, 0) : zero;
}

knd_seq knd_store_at_timestamp(knd_store *store, knd_stream *s, uint32_t shard_index, int64_t ts_ms)
{
    shard_log *log = shard_log_of(s, shard_index);
    if (!log)
        return knd_store_latest(store, s, shard_index);
    size_t si = 0;
    while (si < log->nsegs && (log->segs[si]->count == 0 || log->segs[si]->last_ms < ts_ms))
        si++;
    if (si < log->nsegs) {
        read_buffers_reset(store);
        reader r = {.st = store, .log = log, .si = si};
        r.off = seg_seek(log, log->segs[si], ts_ms < 0 ? 0 : (uint64_t)ts_ms, true);
        for (;;) {
            knd_frame f;
            const uint8_t *p;
            size_t at;
            if (reader_next(&r, &f, &p, &at, NULL) || f.size == 0)
                break; /* unreadable: LATEST is the safe answer, the read would fail the same way */
            if (f.arrival_ms >= ts_ms)
                return seq_of(log, f.ix, f.arrival_ms);
        }
    }
    return knd_store_latest(store, s, shard_index);
}

/* ---- retention ---- */

static void log_drop_front(knd_store *st, shard_log *log, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (log->dir)
            seg_remove_files(log, log->segs[i]->no);
        seg_free(st, log->segs[i]);
    }
    memmove(log->segs, log->segs + n, (log->nsegs - n) * sizeof *log->segs);
    log->nsegs -= n;
}

static void log_expire(knd_store *st, shard_log *log, int64_t cutoff)
{
    size_t n = 0;
    while (n + 1 < log->nsegs && !log->segs[n]->pins &&
           (log->segs[n]->count == 0 || log->segs[n]->last_ms < cutoff))
        n++;
    seg *last = active_seg(log);
    bool last_expired = last && n + 1 == log->nsegs && last->count && last->last_ms < cutoff;
    if (last_expired && is_memory(st))
        n++; /* nothing to remember on disk: the counters live in the log */
    if (n)
        log_drop_front(st, log, n);
    if (last_expired && !is_memory(st) && !log->busy && !log->pend_head) {
        /* The newest segment still carries the shard's counter across restarts: replace it with a fresh, empty
         * one (its header keeps the counter), and the next expiry removes the old one. */
        log->force_roll = true;
        log->next_seg_size = MIN_SEGMENT_BYTES < st->segment_bytes ? MIN_SEGMENT_BYTES : st->segment_bytes;
        mark_ready(log);
    }
}

void knd_store_expire(knd_store *store, int64_t now_ms)
{
    for (size_t i = 0; i < store->nstreams; i++) {
        knd_stream *s = store->by_name[i];
        int64_t cutoff = now_ms - (int64_t)s->retention_hours * MS_PER_HOUR;
        for (uint32_t k = 0; k < s->shard_count; k++)
            log_expire(store, s->shards[k].log, cutoff);
    }
}

/* ---- streams ---- */

static int name_cmp(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Index of the first stream whose name is >= (name, len). */
static size_t name_pos(const knd_store *st, const char *name, size_t len)
{
    size_t lo = 0, hi = st->nstreams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (name_cmp(st->by_name[mid]->name, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void relink(knd_store *st)
{
    for (size_t i = 0; i < st->nstreams; i++)
        st->by_name[i]->next = i + 1 < st->nstreams ? st->by_name[i + 1] : NULL;
}

static knd_stream *first_stream(const knd_store *st)
{
    return st->nstreams ? st->by_name[0] : NULL;
}

static bool stream_insert(knd_store *st, knd_stream *s)
{
    if (st->nstreams == st->by_name_cap) {
        size_t ncap = st->by_name_cap ? st->by_name_cap * 2 : 16;
        knd_stream **nb = realloc(st->by_name, ncap * sizeof *nb);
        if (!nb)
            return false;
        st->by_name = nb;
        st->by_name_cap = ncap;
    }
    size_t pos = name_pos(st, s->name, strlen(s->name));
    memmove(st->by_name + pos + 1, st->by_name + pos, (st->nstreams - pos) * sizeof *st->by_name);
    st->by_name[pos] = s;
    st->nstreams++;
    relink(st);
    return true;
}

static void stream_remove_at(knd_store *st, size_t pos)
{
    memmove(st->by_name + pos, st->by_name + pos + 1, (st->nstreams - pos - 1) * sizeof *st->by_name);
    st->nstreams--;
    relink(st);
}

knd_stream *knd_store_find(knd_store *store, const char *name, size_t len)
{
    size_t pos = name_pos(store, name, len);
    if (pos < store->nstreams && name_cmp(store->by_name[pos]->name, name, len) == 0)
        return store->by_name[pos];
    return NULL;
}

void knd_store_each(knd_store *store, bool (*fn)(void *ctx, knd_stream *s), void *ctx)
{
    for (knd_stream *s = first_stream(store); s; s = s->next)
        if (!fn(ctx, s))
            break;
}

size_t knd_store_stream_count(const knd_store *store)
{
    return store->nstreams;
}

static char *stream_dir(const knd_store *st, uint32_t id)
{
    return str_printf("%s/%08" PRIx32, st->streams_dir, id);
}

/* Creates the stream's directory and one per shard, durably (the entries' parents are synced). */
static kn_status make_stream_dirs(knd_store *st, const knd_stream *s, kn_error *err)
{
    char *dir = stream_dir(st, s->id);
    kn_status rc = KN_OK;
    if (!dir)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    if (mkdir(dir, 0755) && errno != EEXIST) {
        rc = kn_error_set(err, KN_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    for (uint32_t i = 0; i < s->shard_count; i++) {
        if (mkdir(s->shards[i].log->dir, 0755) && errno != EEXIST) {
            rc = kn_error_set(err, KN_ERR_IO, "cannot create %s: %s", s->shards[i].log->dir, strerror(errno));
            goto cleanup;
        }
    }
    int e = knd_segment_sync_dir(dir);
    if (!e)
        e = knd_segment_sync_dir(st->streams_dir);
    if (e)
        rc = kn_error_set(err, KN_ERR_IO, "cannot sync %s: %s", dir, strerror(e));
cleanup:
    free(dir);
    return rc;
}

/* Frees a stream that is not (or no longer) in the store, with its idle logs. */
static void stream_free(knd_store *st, knd_stream *s)
{
    waiter *done = NULL;
    if (!s)
        return;
    for (uint32_t i = 0; i < s->shard_count; i++)
        log_free(st, s->shards[i].log, &done);
    run_done(done);
    knd_meta_free_stream(s);
}

static kn_status save_meta(knd_store *st, kn_error *err)
{
    return st->dir ? knd_meta_save(st->dir, st->next_stream_id, first_stream(st), err) : KN_OK;
}

kn_status knd_store_create_stream(knd_store *store, const char *name, uint32_t shard_count, knd_stream_mode mode,
                                  int64_t now_ms, int64_t ready_at_ms, knd_stream **out, kn_error *err)
{
    size_t len = strlen(name);
    kn_status rc = KN_OK;
    knd_stream *s = NULL;
    if (len == 0 || len >= sizeof s->name)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "stream name must be 1 to 128 characters");
    if (knd_store_find(store, name, len))
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "stream %s already exists", name);
    if (shard_count == 0 || shard_count > MAX_SHARDS)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "shard count must be 1 to %u", MAX_SHARDS);
    if (store->closing)
        return kn_error_set(err, KN_ERR_IO, "the store is closing");
    if (!(s = knd_meta_alloc_stream(shard_count)))
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    memcpy(s->name, name, len + 1);
    s->id = store->next_stream_id;
    s->status = ready_at_ms > now_ms ? KND_STREAM_CREATING : KND_STREAM_ACTIVE;
    s->mode = mode;
    s->created_ms = now_ms;
    s->status_until_ms = ready_at_ms;
    s->retention_hours = 24;
    s->max_record_size = 1u << 20;
    for (uint32_t i = 0; i < shard_count; i++) {
        knd_shard *sh = &s->shards[i];
        sh->index = i;
        kn_hashkey_shard_range(i, shard_count, &sh->start_hash, &sh->end_hash);
        sh->parent = sh->adjacent_parent = -1;
        sh->created_ms = now_ms;
        knd_seq_parts p = {(uint64_t)now_ms, i, 0, (uint64_t)now_ms};
        sh->starting_seq = knd_seq_make(&p);
        if (!(sh->log = log_new(store, s, sh))) {
            rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
            goto fail;
        }
    }
    if (store->dir && (rc = make_stream_dirs(store, s, err)))
        goto fail;
    if (!stream_insert(store, s)) {
        rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    store->next_stream_id++;
    if ((rc = save_meta(store, err))) {
        store->next_stream_id--;
        stream_remove_at(store, name_pos(store, name, len));
        goto fail;
    }
    *out = s;
    return KN_OK;
fail:
    if (store->dir) {
        char *dir = stream_dir(store, s->id);
        if (dir)
            rm_tree(dir);
        free(dir);
    }
    stream_free(store, s);
    return rc;
}

kn_status knd_store_save_stream(knd_store *store, knd_stream *s, kn_error *err)
{
    (void)s; /* the file holds every stream */
    return save_meta(store, err);
}

kn_status knd_store_delete_stream(knd_store *store, knd_stream *s, kn_error *err)
{
    size_t pos = name_pos(store, s->name, strlen(s->name));
    if (pos >= store->nstreams || store->by_name[pos] != s)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "stream %s is not in the store", s->name);
    doomed *d = calloc(1, sizeof *d);
    if (!d || !(d->logs = calloc(s->shard_count, sizeof *d->logs)) ||
        (store->dir && !(d->dir = stream_dir(store, s->id)))) {
        if (d)
            free(d->logs);
        free(d);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    }
    stream_remove_at(store, pos);
    kn_status rc = save_meta(store, err);
    if (rc) {
        stream_insert(store, s); /* cannot fail: the array had room for it a moment ago */
        free(d->dir);
        free(d->logs);
        free(d);
        return rc;
    }
    d->n = s->shard_count;
    for (uint32_t i = 0; i < s->shard_count; i++) {
        d->logs[i] = s->shards[i].log;
        d->logs[i]->deleted = true;
    }
    d->next = store->doomed;
    store->doomed = d;
    knd_meta_free_stream(s);
    start_idle(store);
    return KN_OK;
}

/* ---- appending ---- */

typedef struct rec_ref {
    uint32_t shard;
    uint32_t i;
} rec_ref;

/* Sorts refs[0..n) by shard, keeping call order within a shard: a stable LSD radix sort on the shard index, one byte
 * per pass, skipping the bytes that are the same in every ref (a stream of fewer than 256 shards takes one pass).
 * tmp holds n refs. qsort's comparisons and merge buffer showed in PutRecords profiles. */
static void sort_refs(rec_ref *refs, rec_ref *tmp, size_t n)
{
    uint32_t diff = 0;
    for (size_t i = 1; i < n; i++)
        diff |= refs[i].shard ^ refs[0].shard;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t start[257] = {0};
        if (!((diff >> shift) & 0xFF))
            continue;
        for (size_t i = 0; i < n; i++)
            start[((refs[i].shard >> shift) & 0xFF) + 1]++;
        for (int b = 0; b < 256; b++)
            start[b + 1] += start[b];
        for (size_t i = 0; i < n; i++)
            tmp[start[(refs[i].shard >> shift) & 0xFF]++] = refs[i];
        memcpy(refs, tmp, n * sizeof *refs);
    }
}

/* The smallest seq_ix that makes a number of this shard greater than *min (SequenceNumberForOrdering). */
static kn_status ordering_floor(const shard_log *log, const knd_seq *min, size_t n, uint64_t *min_ix, kn_error *err)
{
    uint64_t t = target_ix(log, min);
    if (t >= (uint64_t)INT64_MAX - n)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT,
                            "no sequence number of shardId-%012" PRIu32 " can be greater than the one given",
                            log->shard_index);
    *min_ix = t + 1;
    return KN_OK;
}

/* Checks every record before anything changes, so that a failed call leaves no trace. */
static kn_status append_check(knd_store *st, const knd_stream *s, const knd_record_in *rec,
                              const uint32_t *shard_index, const knd_seq *const *min_seq, size_t n,
                              uint64_t *min_ix, size_t *total, kn_error *err)
{
    *total = 0;
    if (n == 0 || n > UINT32_MAX)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "no records to append");
    if (st->closing)
        return kn_error_set(err, KN_ERR_IO, "the store is closing");
    for (size_t i = 0; i < n; i++) {
        shard_log *log = shard_log_of(s, shard_index[i]);
        if (!log || s->shards[shard_index[i]].closed)
            return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "record %zu: no open shard %" PRIu32, i,
                                shard_index[i]);
        if (rec[i].partition_key_len > KND_FRAME_MAX_KEY ||
            rec[i].data_len > KND_FRAME_MAX_PAYLOAD - rec[i].partition_key_len)
            return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "record %zu is too large", i);
        min_ix[i] = 0;
        if (min_seq && min_seq[i]) {
            kn_status rc = ordering_floor(log, min_seq[i], n, &min_ix[i], err);
            if (rc)
                return rc;
        }
        if (log->next_ix >= (uint64_t)INT64_MAX - n)
            return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "shard %" PRIu32 " ran out of sequence numbers",
                                shard_index[i]);
        *total += knd_segment_frame_size(rec[i].partition_key_len, rec[i].data_len);
    }
    if (st->pending_bytes + *total > PENDING_MAX_BYTES)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "the write queue is full (%llu MiB waiting for the disk)",
                            (unsigned long long)(st->pending_bytes >> 20));
    if (is_memory(st) && st->mem_used + st->pending_bytes + *total > st->memory_limit)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "the in-memory store is full (limit %llu MiB)",
                            (unsigned long long)(st->memory_limit >> 20));
    return KN_OK;
}

/* Assigns numbers to the records of one shard (refs[0..k), in call order) and encodes them into p. */
static void append_group(shard_log *log, pend *p, const knd_record_in *rec, const rec_ref *refs, size_t k,
                         const uint64_t *min_ix, int64_t now_ms, knd_seq *seqs)
{
    size_t pos = 0;
    for (size_t j = 0; j < k; j++) {
        uint32_t i = refs[j].i;
        uint64_t ix = log->next_ix > min_ix[i] ? log->next_ix : min_ix[i];
        int64_t ms = now_ms > log->last_assigned_ms ? now_ms : log->last_assigned_ms;
        log->next_ix = ix + 1;
        log->last_assigned_ms = ms;
        if (j == 0)
            p->first_ix = ix;
        knd_segment_frame_encode(p->buf + pos, ix, ms, rec[i].partition_key, rec[i].partition_key_len,
                                 rec[i].data, rec[i].data_len);
        pos += knd_segment_frame_size(rec[i].partition_key_len, rec[i].data_len);
        seqs[i] = seq_of(log, ix, ms);
    }
    p->len = pos;
}

kn_status knd_store_append(knd_store *store, knd_stream *s, const knd_record_in *rec, const uint32_t *shard_index,
                           const knd_seq *const *min_seq, size_t n, int64_t now_ms, knd_seq *seqs, knd_commit_fn fn,
                           void *ctx, kn_error *err)
{
    rec_ref refs_small[32], *refs = refs_small; /* n refs, then n for sorting */
    uint64_t min_small[16], *min_ix = min_small;
    pend *pends_small[16], **pends = pends_small;
    waiter *w = NULL;
    size_t total, groups = 0;
    kn_status rc = KN_OK;
    if (n > 16 && (!(refs = malloc(2 * n * sizeof *refs)) || !(min_ix = malloc(n * sizeof *min_ix)) ||
                   !(pends = calloc(n, sizeof *pends)))) {
        rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
        goto cleanup;
    }
    if ((rc = append_check(store, s, rec, shard_index, min_seq, n, min_ix, &total, err)))
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        refs[i] = (rec_ref){shard_index[i], (uint32_t)i};
    sort_refs(refs, refs + n, n);
    /* Allocate everything first: after the first number is assigned nothing may fail. */
    for (size_t a = 0, b; a < n; a = b) {
        size_t bytes = 0;
        for (b = a; b < n && refs[b].shard == refs[a].shard; b++)
            bytes += knd_segment_frame_size(rec[refs[b].i].partition_key_len, rec[refs[b].i].data_len);
        if (!(pends[groups++] = malloc(sizeof(pend) + bytes))) {
            rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
            goto cleanup;
        }
    }
    if (!(w = malloc(sizeof *w))) {
        rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
        goto cleanup;
    }
    *w = (waiter){fn, ctx, (uint32_t)groups, KN_OK, NULL};
    for (size_t a = 0, b, g = 0; a < n; a = b, g++) {
        for (b = a; b < n && refs[b].shard == refs[a].shard; b++)
            ;
        shard_log *log = s->shards[refs[a].shard].log;
        pend *p = pends[g];
        pends[g] = NULL;
        p->next = NULL;
        p->w = w;
        append_group(log, p, rec, refs + a, b - a, min_ix, now_ms, seqs);
        *log->pend_tail = p;
        log->pend_tail = &p->next;
        store->pending_bytes += p->len;
        mark_ready(log);
    }
    w = NULL;
cleanup:
    for (size_t g = 0; g < groups; g++)
        free(pends[g]);
    free(w);
    if (refs != refs_small)
        free(refs);
    if (min_ix != min_small)
        free(min_ix);
    if (pends != pends_small)
        free(pends);
    return rc;
}

/* ---- opening and recovery ---- */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Segment numbers of the .seg files in dir, ascending; *nos is malloc'd. */
static int list_segments(const char *dir, uint64_t **nos, size_t *n)
{
    DIR *d = opendir(dir);
    size_t cap = 0;
    *nos = NULL;
    *n = 0;
    if (!d)
        return errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".seg") != 0)
            continue;
        uint64_t no = strtoull(de->d_name, &end, 16);
        if (end != de->d_name + 16)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nn = realloc(*nos, cap * sizeof *nn);
            if (!nn) {
                closedir(d);
                return ENOMEM;
            }
            *nos = nn;
        }
        (*nos)[(*n)++] = no;
    }
    closedir(d);
    if (*n > 1)
        qsort(*nos, *n, sizeof **nos, u64_cmp);
    return 0;
}

static seg *seg_from_summary(const knd_segment_summary *sum)
{
    seg *g = seg_new(sum->no, sum->base_ix, sum->end, 0);
    if (!g)
        return NULL;
    g->end = sum->end;
    g->count = sum->count;
    g->first_ix = sum->first_ix;
    g->last_ix = sum->last_ix;
    g->first_ms = sum->first_ms;
    g->last_ms = sum->last_ms;
    g->sealed = true;
    return g;
}

/* Scans segment `no` (the highest one with a good header when last is true). */
static kn_status recover_scan(knd_store *st, shard_log *log, uint64_t no, bool last, knd_segment_scan *sc,
                              kn_error *err)
{
    char path[4096];
    if (!knd_segment_path(path, sizeof path, log->dir, no, "seg"))
        return kn_error_set(err, KN_ERR_IO, "path too long in %s", log->dir);
    int fd = open(path, O_RDWR | O_CLOEXEC), rc;
    if (fd < 0)
        return kn_error_set(err, KN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if ((rc = knd_segment_scan_fd(fd, sc))) {
        close(fd);
        return kn_error_set(err, KN_ERR_IO, "cannot read %s: %s", path, strerror(rc));
    }
    bool mine = sc->header_ok && sc->header.no == no && sc->header.stream_id == log->stream_id &&
                sc->header.shard_index == log->shard_index;
    if (sc->header_ok && !mine) {
        close(fd);
        return kn_error_set(err, KN_ERR_IO, "%s belongs to another shard or segment", path);
    }
    /* What recovery accepts becomes durable now: after a kill -9 the kernel may still hold unsynced frames that
     * the scan accepted; a later power loss must not take them back. */
    if (last && sc->header_ok && fdatasync(fd)) {
        rc = errno;
        close(fd);
        return kn_error_set(err, KN_ERR_IO, "cannot sync %s: %s", path, strerror(rc));
    }
    close(fd);
    if (sc->torn)
        st->stats.torn_tails++;
    return KN_OK;
}

static kn_status recover_sealed(knd_store *st, shard_log *log, uint64_t no, kn_error *err)
{
    char path[4096];
    knd_segment_summary sum;
    knd_segment_scan sc;
    kn_status rc;
    if (!knd_segment_path(path, sizeof path, log->dir, no, "idx"))
        return kn_error_set(err, KN_ERR_IO, "path too long in %s", log->dir);
    if (knd_segment_idx_read(path, no, &sum, NULL, NULL) != 0) {
        if ((rc = recover_scan(st, log, no, false, &sc, err)))
            return rc;
        if (!sc.header_ok) {
            free(sc.entries);
            return kn_error_set(err, KN_ERR_IO, "segment %" PRIu64 " in %s is damaged", no, log->dir);
        }
        sum = sc.sum;
        knd_segment_idx_write(path, &sum, sc.entries, sc.n_entries);
        free(sc.entries);
    }
    seg *g = seg_from_summary(&sum);
    if (!g || !log_reserve_seg(log)) {
        free(g);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    }
    log_push_seg(log, g);
    return KN_OK;
}

/* Rebuilds a shard's log from its directory. Every segment comes back sealed: the first commit starts a new one. */
static kn_status log_recover(knd_store *st, shard_log *log, kn_error *err)
{
    uint64_t *nos = NULL;
    size_t n = 0, top;
    knd_segment_scan sc = {0};
    kn_status rc = KN_OK;
    if (mkdir(log->dir, 0755) && errno == ENOENT) { /* the stream's directory is missing too */
        char *parent = stream_dir(st, log->stream_id);
        if (parent)
            mkdir(parent, 0755);
        free(parent);
        mkdir(log->dir, 0755);
    }
    int e = list_segments(log->dir, &nos, &n);
    if (e)
        return kn_error_set(err, KN_ERR_IO, "cannot list %s: %s", log->dir, strerror(e));
    for (top = n; top > 0; top--) { /* the highest segment with a good header; above it only failed creations */
        if ((rc = recover_scan(st, log, nos[top - 1], true, &sc, err)))
            goto cleanup;
        if (sc.header_ok)
            break;
        if (!sc.header_zero) {
            rc = kn_error_set(err, KN_ERR_IO, "segment %" PRIu64 " in %s has a damaged header", nos[top - 1],
                              log->dir);
            goto cleanup;
        }
        seg_remove_files(log, nos[top - 1]);
        if (nos[top - 1] >= log->next_seg_no)
            log->next_seg_no = nos[top - 1] + 1;
    }
    for (size_t i = 0; i + 1 < top; i++)
        if ((rc = recover_sealed(st, log, nos[i], err)))
            goto cleanup;
    if (top) {
        char path[4096];
        seg *g = seg_from_summary(&sc.sum);
        if (!g || !log_reserve_seg(log)) {
            free(g);
            rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
            goto cleanup;
        }
        log_push_seg(log, g);
        if (knd_segment_path(path, sizeof path, log->dir, g->no, "idx"))
            knd_segment_idx_write(path, &sc.sum, sc.entries, sc.n_entries);
        uint64_t next = sc.header.base_ix;
        if (g->count && g->last_ix + 1 > next)
            next = g->last_ix + 1;
        /* next_seg_size stays at its small start: the first commit creates its segment inline, and from the
         * second on a spare is prepared in the background. */
        log->next_ix = log->latest_ix = next > FIRST_IX ? next : FIRST_IX;
    }
    for (size_t i = log->nsegs; i > 0; i--) {
        const seg *g = log->segs[i - 1];
        if (g->count) {
            log->any = true;
            log->last_ms = log->last_assigned_ms = g->last_ms;
            break;
        }
    }
cleanup:
    free(sc.entries);
    free(nos);
    return rc;
}

/* Removes stream directories that no stream in the metadata owns (a crash between creating a stream's directory
 * and writing the metadata, or between a deletion's metadata write and the files' removal). */
static void remove_orphans(knd_store *st)
{
    DIR *d = opendir(st->streams_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strlen(de->d_name) != 8)
            continue;
        unsigned long id = strtoul(de->d_name, &end, 16);
        bool owned = false;
        for (size_t i = 0; *end == '\0' && i < st->nstreams && !owned; i++)
            owned = st->by_name[i]->id == id;
        if (*end == '\0' && !owned) {
            char *dir = stream_dir(st, (uint32_t)id);
            if (dir)
                rm_tree(dir);
            free(dir);
        }
    }
    closedir(d);
}

static kn_status open_dirs(knd_store *st, const char *data_dir, kn_error *err)
{
    if (!(st->dir = strdup(data_dir)) || !(st->streams_dir = str_printf("%s/streams", data_dir)))
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    if (mkdir(st->dir, 0755) && errno != EEXIST)
        return kn_error_set(err, KN_ERR_IO, "cannot create data directory %s: %s", st->dir, strerror(errno));
    if (mkdir(st->streams_dir, 0755) && errno != EEXIST)
        return kn_error_set(err, KN_ERR_IO, "cannot create %s: %s", st->streams_dir, strerror(errno));
    char *lock = str_printf("%s/LOCK", st->dir);
    if (!lock)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    st->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lock);
    if (st->lock_fd < 0)
        return kn_error_set(err, KN_ERR_IO, "cannot open %s/LOCK: %s", st->dir, strerror(errno));
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB))
        return kn_error_set(err, KN_ERR_IO, "data directory %s is in use by another kinesisd", st->dir);
    return KN_OK;
}

static kn_status load_streams(knd_store *st, kn_error *err)
{
    knd_stream *list = NULL;
    kn_status rc = knd_meta_load(st->dir, &st->next_stream_id, &list, err);
    if (rc)
        return rc;
    while (list) {
        knd_stream *s = list;
        list = s->next;
        s->next = NULL;
        for (uint32_t i = 0; i < s->shard_count && !rc; i++) {
            if (!(s->shards[i].log = log_new(st, s, &s->shards[i])))
                rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
            else
                rc = log_recover(st, s->shards[i].log, err);
        }
        if (!rc && s->id >= st->next_stream_id)
            st->next_stream_id = s->id + 1;
        if (rc || !stream_insert(st, s)) {
            stream_free(st, s);
            while (list) {
                knd_stream *next = list->next;
                knd_meta_free_stream(list);
                list = next;
            }
            return rc ? rc : kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
        }
    }
    remove_orphans(st);
    return KN_OK;
}

/* ---- the journal at open and at close ---- */

typedef struct replay {
    knd_stream **by_id;   /* the streams, by id */
    size_t n;
    bool out_of_memory;
} replay;

static int stream_id_cmp(const void *a, const void *b)
{
    uint32_t x = (*(knd_stream *const *)a)->id, y = (*(knd_stream *const *)b)->id;
    return (x > y) - (x < y);
}

static shard_log *replay_log(const replay *r, uint32_t stream_id, uint32_t shard_index)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->by_id[mid]->id < stream_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == r->n || r->by_id[lo]->id != stream_id || shard_index >= r->by_id[lo]->shard_count)
        return NULL;
    return r->by_id[lo]->shards[shard_index].log;
}

/* Appends one frame to the log's replay buffer. */
static bool replay_keep(shard_log *log, const uint8_t *frame, const knd_frame *f)
{
    size_t have = log->replay ? log->replay->len : 0;
    if (have + f->size > log->replay_cap) {
        size_t cap = log->replay_cap ? log->replay_cap : 4096;
        while (cap < have + f->size)
            cap *= 2;
        pend *p = realloc(log->replay, sizeof *p + cap);
        if (!p)
            return false;
        if (!log->replay)
            *p = (pend){.first_ix = f->ix};
        log->replay = p;
        log->replay_cap = cap;
    }
    memcpy(log->replay->buf + have, frame, f->size);
    log->replay->len = have + f->size;
    log->next_ix = f->ix + 1;
    log->last_assigned_ms = f->arrival_ms;
    return true;
}

/* Keeps the frames of one journal entry that its shard's recovered log lacks: those past its end, in order (seq_ix
 * increasing, arrival times not decreasing), which also makes replaying idempotent. */
static bool replay_entry(void *ctx, uint32_t stream_id, uint32_t shard_index, const uint8_t *frames, size_t len)
{
    replay *r = ctx;
    shard_log *log = replay_log(r, stream_id, shard_index);
    knd_frame f = {0};
    if (!log)
        return true; /* the stream was deleted since: its records went with it */
    for (size_t pos = 0; pos < len; pos += f.size) {
        knd_segment_frame_parse(frames + pos, len - pos, &f); /* the scan checked every frame */
        if (f.ix < log->next_ix || f.ix > INT64_MAX || f.arrival_ms < log->last_assigned_ms)
            continue;
        if (!replay_keep(log, frames + pos, &f)) {
            r->out_of_memory = true;
            return false;
        }
    }
    return true;
}

/* Writes a shard's replayed frames to a new segment, synced with its directory, and makes them readable. */
static kn_status replay_write(shard_log *log, int64_t now_ms, kn_error *err)
{
    pend *p = log->replay;
    extent e = {0};
    uint32_t syncs = 0;
    kn_status rc = KN_OK;
    log->replay = NULL;
    log->replay_cap = 0;
    p->next = NULL;
    p->w = NULL;
    if (!log_reserve_seg(log) || !(e.new_seg = seg_new(log->next_seg_no, p->first_ix, 0, now_ms))) {
        rc = kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
        goto cleanup;
    }
    uint64_t need = round_up(KND_SEGMENT_HEADER_BYTES + p->len, 4096);
    e = (extent){.used = true, .new_seg = e.new_seg, .no = log->next_seg_no, .base_ix = p->first_ix,
                 .created_ms = now_ms, .off = KND_SEGMENT_HEADER_BYTES, .fd = -1, .first = p, .npend = 1,
                 .len = p->len, .size = log->next_seg_size > need ? log->next_seg_size : need};
    int e_rc = extent_write(log, &e, &syncs);
    if (e_rc) {
        extent_undo(log->dir, &e);
        rc = kn_error_set(err, KN_ERR_IO, "cannot replay the journal into %s: %s: %s", log->dir, e.op,
                          strerror(e_rc));
        goto cleanup;
    }
    log->store->stats.syncs += syncs;
    extent_done(log, &e);
cleanup:
    free(e.new_seg); /* NULL once the segment is the log's */
    free(p);
    return rc;
}

static kn_status journal_replay(knd_store *st, knd_journal_scan *sc, kn_error *err)
{
    replay r = {.n = st->nstreams};
    kn_status rc = KN_OK;
    if (!(r.by_id = malloc((r.n ? r.n : 1) * sizeof *r.by_id)))
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    if (r.n)
        memcpy(r.by_id, st->by_name, r.n * sizeof *r.by_id);
    qsort(r.by_id, r.n, sizeof *r.by_id, stream_id_cmp);
    int e = knd_segment_journal_scan(st->jfd, sc, replay_entry, &r);
    if (e) {
        rc = r.out_of_memory ? kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory replaying the journal")
                             : kn_error_set(err, KN_ERR_IO, "cannot read the journal in %s: %s", st->dir, strerror(e));
        goto cleanup;
    }
    int64_t now = now_wall_ms();
    for (size_t i = 0; i < st->nstreams && !rc; i++)
        for (uint32_t k = 0; k < st->by_name[i]->shard_count && !rc; k++)
            if (st->by_name[i]->shards[k].log->replay)
                rc = replay_write(st->by_name[i]->shards[k].log, now, err);
cleanup:
    free(r.by_id);
    return rc;
}

/* Opens (creating it if needed) and replays the journal, then starts a new epoch: by then every frame it held is in
 * a synced segment (recovery synced each shard's newest segment, the replay synced the new ones). */
static kn_status journal_open(knd_store *st, kn_error *err)
{
    char *path = str_printf("%s/journal", st->dir);
    uint8_t header[KND_JOURNAL_HEADER_BYTES];
    knd_journal_scan sc;
    kn_status rc = KN_OK;
    int e = 0;
    if (!path)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    if ((st->jfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        rc = kn_error_set(err, KN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if ((rc = journal_replay(st, &sc, err)))
        goto cleanup;
    st->jsize = sc.file_size;
    if (st->jsize < JOURNAL_START_BYTES) { /* new, or its creation was cut short */
        if ((e = knd_segment_zero(st->jfd, 0, JOURNAL_START_BYTES)))
            goto io_error;
        st->jsize = JOURNAL_START_BYTES;
    }
    /* Epochs only grow, and no store checkpoints 2^63 times: an epoch this high comes from a damaged or crafted
     * journal, and its successor could wrap to one that old records carry. Everything the journal held is in synced
     * segments by now, so it is cleared and numbering starts again. */
    uint64_t epoch = sc.max_epoch + 1;
    if (sc.max_epoch >= JOURNAL_EPOCH_RESTART) {
        if ((e = knd_segment_zero(st->jfd, 0, st->jsize)))
            goto io_error;
        epoch = 1;
    }
    knd_segment_journal_header_encode(epoch, header);
    struct iovec iov = {header, sizeof header};
    if ((e = knd_segment_pwritev_all(st->jfd, &iov, 1, 0)) || (fdatasync(st->jfd) && (e = errno)) ||
        (sc.file_size < JOURNAL_START_BYTES && (e = knd_segment_sync_dir(st->dir))))
        goto io_error;
    st->jepoch = epoch;
    st->joff = KND_JOURNAL_HEADER_BYTES;
    st->jno = 0;
    goto cleanup;
io_error:
    rc = kn_error_set(err, KN_ERR_IO, "cannot prepare %s: %s", path, strerror(e));
cleanup:
    free(path);
    return rc;
}

/* The checkpoint of a clean close: every dirty segment synced, then a new epoch, so that the next open has nothing
 * to replay. Blocking: close only. When a step fails the journal stays as it is, and the next open replays it. */
static void journal_close(knd_store *st)
{
    uint8_t header[KND_JOURNAL_HEADER_BYTES];
    if (st->jfd < 0 || st->seg_sync_err)
        return;
    for (size_t i = 0; i < st->ndirty; i++) {
        seg *g = st->dirty[i];
        int fd = seg_fd(st, g->log, g);
        if (fd < 0 || fdatasync(fd))
            return;
    }
    knd_segment_journal_header_encode(st->jepoch + 1, header);
    struct iovec iov = {header, sizeof header};
    if (knd_segment_pwritev_all(st->jfd, &iov, 1, 0) || fdatasync(st->jfd))
        return;
    st->jepoch++;
    while (st->ndirty)
        clear_dirty(st, st->dirty[st->ndirty - 1]);
}

static void store_free(knd_store *st)
{
    waiter *done = NULL;
    while (st->nstreams) {
        knd_stream *s = st->by_name[st->nstreams - 1];
        st->nstreams--;
        for (uint32_t i = 0; i < s->shard_count; i++)
            log_free(st, s->shards[i].log, &done);
        knd_meta_free_stream(s);
    }
    while (st->doomed) {
        doomed *d = st->doomed;
        st->doomed = d->next;
        for (uint32_t i = 0; i < d->n; i++)
            log_free(st, d->logs[i], &done);
        free(d->dir);
        free(d->logs);
        free(d);
    }
    run_done(done);
    if (st->jfd >= 0)
        close(st->jfd);
    free(st->dirty);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st->by_name);
    free(st->rbuf);
    free(st->roffs);
    free(st->dir);
    free(st->streams_dir);
    free(st);
}

static void on_handle_closed(uv_handle_t *h)
{
    *(bool *)h->data = true;
}

static kn_status committer_start(knd_store *st, kn_error *err)
{
    committer *c = &st->com;
    if (uv_mutex_init(&c->mu))
        return kn_error_set(err, KN_ERR_NO_MEMORY, "cannot create the commit thread's mutex");
    if (uv_cond_init(&c->cv)) {
        uv_mutex_destroy(&c->mu);
        return kn_error_set(err, KN_ERR_NO_MEMORY, "cannot create the commit thread's condition variable");
    }
    int e = uv_async_init(st->loop, &c->async, on_jobs_done);
    if (!e && (e = uv_thread_create(&c->thread, committer_main, c))) {
        bool closed = false; /* the handle lives in st: it must be closed before st is freed */
        c->async.data = &closed;
        uv_close((uv_handle_t *)&c->async, on_handle_closed);
        while (!closed)
            uv_run(st->loop, UV_RUN_NOWAIT);
    }
    if (e) {
        uv_cond_destroy(&c->cv);
        uv_mutex_destroy(&c->mu);
        return kn_error_set(err, KN_ERR_IO, "cannot start the commit thread: %s", uv_strerror(e));
    }
    c->async.data = st;
    uv_unref((uv_handle_t *)&c->async); /* referenced only while jobs are in flight */
    c->started = true;
    return KN_OK;
}

/* Ends the commit thread once no job is in flight; runs the loop until its handle is closed. */
static void committer_stop(knd_store *st)
{
    committer *c = &st->com;
    bool closed = false;
    if (!c->started)
        return;
    uv_mutex_lock(&c->mu);
    c->stop = true;
    uv_cond_signal(&c->cv);
    uv_mutex_unlock(&c->mu);
    uv_thread_join(&c->thread);
    c->async.data = &closed;
    uv_close((uv_handle_t *)&c->async, on_handle_closed);
    while (!closed)
        uv_run(st->loop, UV_RUN_NOWAIT);
    uv_cond_destroy(&c->cv);
    uv_mutex_destroy(&c->mu);
    c->started = false;
}

kn_status knd_store_open(const knd_store_options *opts, knd_store **out, kn_error *err)
{
    kn_status rc;
    if (!opts || !opts->loop)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "knd_store_open needs a loop");
    knd_store *st = calloc(1, sizeof *st);
    if (!st)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    st->loop = opts->loop;
    st->lock_fd = -1;
    st->jfd = -1;
    st->next_stream_id = 1;
    st->segment_bytes = opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT_BYTES;
    if (st->segment_bytes < SEGMENT_BYTES_FLOOR)
        st->segment_bytes = SEGMENT_BYTES_FLOOR;
    st->memory_limit = opts->memory_limit_bytes ? opts->memory_limit_bytes : DEFAULT_MEMORY_LIMIT;
    if (opts->data_dir && ((rc = open_dirs(st, opts->data_dir, err)) || (rc = load_streams(st, err)) ||
                           (rc = journal_open(st, err)))) {
        store_free(st);
        return rc;
    }
    if (opts->data_dir && (rc = committer_start(st, err))) {
        store_free(st);
        return rc;
    }
    uv_idle_init(st->loop, &st->idle); /* last: once initialised, the handle must be closed through the loop */
    st->idle.data = st;
    *out = st;
    return KN_OK;
}

/* Clears failed frames left past the active segment's end when clearing them already failed twice (at the
 * failure and at no later commit), so that the next open cannot take them for records. Blocking: close only. */
static void log_clear_dirty(knd_store *st, shard_log *log)
{
    seg *act = active_seg(log);
    if (!act || act->sealed || act->mem || log->dirty_end <= act->end)
        return;
    int fd = seg_fd(st, log, act);
    if (fd >= 0 && knd_segment_zero(fd, act->end, log->dirty_end) == 0 && fdatasync(fd) == 0)
        log->dirty_end = act->end;
}

void knd_store_close(knd_store *store)
{
    if (!store)
        return;
    store->closing = true;
    while (store->in_flight || store->ready || store->doomed)
        uv_run(store->loop, UV_RUN_ONCE);
    for (size_t i = 0; i < store->nstreams; i++)
        for (uint32_t k = 0; k < store->by_name[i]->shard_count; k++)
            log_clear_dirty(store, store->by_name[i]->shards[k].log);
    journal_close(store);
    committer_stop(store);
    bool closed = false;
    uv_idle_stop(&store->idle);
    store->idle.data = &closed;
    uv_close((uv_handle_t *)&store->idle, on_handle_closed);
    while (!closed)
        uv_run(store->loop, UV_RUN_NOWAIT);
    store_free(store);
}

void knd_store_get_stats(const knd_store *store, knd_store_stats *out)
{
    *out = store->stats;
    out->pending_bytes = store->pending_bytes;
    out->memory_bytes = store->mem_used;
}

const char *knd_store_last_error(const knd_store *store)
{
    return store->last_error;
}
