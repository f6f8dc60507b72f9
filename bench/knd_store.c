/* bench_knd_store: kinesisd's storage engine alone, without HTTP. A closed loop of C concurrent writers (like C
 * client connections) each appends a batch of B records of S bytes to a stream of K shards (records spread over
 * the shards by a hash of their number) and appends again as soon as its commit callback reports the batch
 * durable, until N records are stored; then one reader drains every shard with GetRecords-sized reads.
 *
 *   bench_knd_store [-n records] [-c writers] [-b batch] [-s bytes] [-k shards] [-r per_turn] [-d dir | -m]
 *
 * -r N lets at most N writers append per turn of the event loop (0, the default: all at once), the others waiting
 * for the next turn; that models a server whose requests trickle in while a commit is on disk (pipelined commits).
 *
 * Prints records/s, commits and fdatasyncs per second, the average group size, the drain rate, and the process's
 * peak and current RSS. Defaults: -n 1000000 -c 64 -b 1 -s 100 -k 4, data in a fresh temporary directory. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "bench_util.h"

typedef struct bench {
    uv_loop_t loop;
    knd_store *store;
    knd_stream *stream;
    long total, issued, committed;
    int batch, size, shards, inflight, per_turn;
    struct writer **waiting;   /* -r: writers due to append, in order */
    int nwaiting;
    uv_idle_t turn;
    knd_record_in *recs;
    uint8_t *data;
    int failures;
} bench;

typedef struct writer {
    bench *b;
    knd_seq seqs[500];
    uint32_t shard[500];
} writer;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long rss_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n))
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

static void issue(writer *w);

static void on_turn(uv_idle_t *h)
{
    bench *b = h->data;
    int n = b->nwaiting < b->per_turn ? b->nwaiting : b->per_turn;
    for (int i = 0; i < n; i++)
        issue(b->waiting[i]);
    memmove(b->waiting, b->waiting + n, (size_t)(b->nwaiting - n) * sizeof *b->waiting);
    b->nwaiting -= n;
    if (!b->nwaiting)
        uv_idle_stop(h);
}

static void on_commit(void *ctx, kn_status status)
{
    writer *w = ctx;
    bench *b = w->b;
    b->inflight--;
    if (status != KN_OK)
        b->failures++;
    else
        b->committed += b->batch;
    if (!b->per_turn) {
        issue(w);
        return;
    }
    if (b->nwaiting++ == 0)
        uv_idle_start(&b->turn, on_turn);
    b->waiting[b->nwaiting - 1] = w;
}

static void issue(writer *w)
{
    bench *b = w->b;
    if (b->issued >= b->total)
        return;
    for (int i = 0; i < b->batch; i++) /* a cheap mix: consecutive records go to different shards */
        w->shard[i] = (uint32_t)((uint64_t)(b->issued + i) * 2654435761u % (uint64_t)b->shards);
    kn_error err = {0};
    if (knd_store_append(b->store, b->stream, b->recs, w->shard, NULL, (size_t)b->batch, wall_ms(), w->seqs,
                         on_commit, w, &err) != KN_OK) {
        fprintf(stderr, "append: %s\n", err.message);
        exit(1);
    }
    b->issued += b->batch;
    b->inflight++;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static double drain(bench *b, long *count)
{
    size_t limit = 10000;
    knd_record_out *out = calloc(limit, sizeof *out);
    double t0 = bench_now_s();
    *count = 0;
    for (int k = 0; k < b->shards; k++) {
        knd_seq from = {{0}};
        bool after = false;
        for (;;) {
            size_t n = 0;
            int64_t latest;
            kn_error err = {0};
            if (knd_store_read(b->store, b->stream, (uint32_t)k, &from, after, limit, 10u << 20, wall_ms(), out, &n,
                               &latest, &err) != KN_OK) {
                fprintf(stderr, "read: %s\n", err.message);
                exit(1);
            }
            if (n == 0)
                break;
            *count += (long)n;
            from = out[n - 1].seq;
            after = true;
        }
    }
    free(out);
    return bench_now_s() - t0;
}

int main(int argc, char **argv)
{
    bench b = {.total = 1000000, .batch = 1, .size = 100, .shards = 4};
    int writers = 64, opt;
    bool memory = false;
    char dir[256] = "";
    while ((opt = getopt(argc, argv, "n:c:b:s:k:r:d:m")) != -1) {
        switch (opt) {
        case 'n': b.total = atol(optarg); break;
        case 'c': writers = atoi(optarg); break;
        case 'b': b.batch = atoi(optarg); break;
        case 's': b.size = atoi(optarg); break;
        case 'k': b.shards = atoi(optarg); break;
        case 'r': b.per_turn = atoi(optarg); break;
        case 'd': snprintf(dir, sizeof dir, "%s", optarg); break;
        case 'm': memory = true; break;
        default:
            fprintf(stderr, "usage: %s [-n records] [-c writers] [-b batch] [-s bytes] [-k shards] [-r per_turn] "
                    "[-d dir | -m]\n", argv[0]);
            return 2;
        }
    }
    if (b.batch < 1 || b.batch > 500 || writers < 1 || b.shards < 1 || b.size < 0 || b.per_turn < 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    bool own_dir = !memory && !dir[0];
    if (own_dir) {
        snprintf(dir, sizeof dir, "/tmp/bench_knd_store.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    b.data = malloc((size_t)b.size + 1);
    memset(b.data, 'x', (size_t)b.size);
    b.recs = calloc((size_t)b.batch, sizeof *b.recs);
    for (int i = 0; i < b.batch; i++)
        b.recs[i] = (knd_record_in){b.data, (size_t)b.size, "partition-key", 13};
    uv_loop_init(&b.loop);
    knd_store_options o = {memory ? NULL : dir, &b.loop, 0, 4ull << 30};
    kn_error err = {0};
    if (knd_store_open(&o, &b.store, &err) != KN_OK ||
        knd_store_create_stream(b.store, "bench", (uint32_t)b.shards, KND_MODE_PROVISIONED, wall_ms(), 0, &b.stream,
                                &err) != KN_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    writer *w = calloc((size_t)writers, sizeof *w);
    b.waiting = calloc((size_t)writers, sizeof *b.waiting);
    uv_idle_init(&b.loop, &b.turn);
    b.turn.data = &b;
    double t0 = bench_now_s();
    for (int i = 0; i < writers; i++) {
        w[i].b = &b;
        issue(&w[i]);
    }
    while (b.inflight || b.nwaiting)
        uv_run(&b.loop, UV_RUN_ONCE);
    double secs = bench_now_s() - t0;
    knd_store_stats st;
    knd_store_get_stats(b.store, &st);
    long read_count;
    double read_secs = drain(&b, &read_count);
    printf("mode=%s records=%ld size=%d writers=%d batch=%d shards=%d\n", memory ? "in-memory" : "disk",
           b.committed, b.size, writers, b.batch, b.shards);
    printf("append: %.0f records/s (%.2f s), %.0f commits/s (%.0f%% pipelined), %.0f fdatasync/s, "
           "%.1f records per commit, failures %d\n",
           (double)b.committed / secs, secs, (double)st.commits / secs,
           st.commits ? 100.0 * (double)st.pipelined / (double)st.commits : 0.0, (double)st.syncs / secs,
           st.commits ? (double)st.records / (double)st.commits : 0.0, b.failures);
    printf("drain:  %.0f records/s (%ld records, %.2f s)\n", (double)read_count / read_secs, read_count, read_secs);
    printf("rss:    %ld kB now, %ld kB peak, %llu segments\n", rss_kb("VmRSS:"), rss_kb("VmHWM:"),
           (unsigned long long)st.segments);
    knd_store_close(b.store);
    uv_close((uv_handle_t *)&b.turn, NULL);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    free(b.waiting);
    if (own_dir)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(w);
    free(b.recs);
    free(b.data);
    return b.failures ? 1 : 0;
}
