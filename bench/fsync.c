/* bench_fsync: what one durable group commit costs on a disk: pwrite of a block into a pre-allocated file followed by
 * fdatasync, repeated, with the median and 99th percentile latency. It tells whether the disk or the server limits a
 * durable kinesisd (issue 4 expects 0.15-0.25 ms here). The worst sync and the number over 20 ms tell whether the
 * disk itself stalls now and then (a shared VM disk does): every commit waits out such a stall, and wrk's latency
 * correction turns one 100 ms stall into a p99 of tens of milliseconds.
 *
 *   bench_fsync DIR [--count N] [--block BYTES]
 *
 * Makes a temporary file in DIR (removed at the end), 64 MiB pre-allocated. Prints
 * BENCH_RESULT {"count":N,"block":B,"p50_us":..,"p99_us":..,"mean_us":..,"max_us":..,"over_20ms":..}. Blocks
 * are written round the file, so N may exceed what it holds. Exit 1 on an I/O error, 2 on bad usage. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench_util.h"

#define FILE_BYTES (64L << 20)
#define MAX_BLOCK (1L << 20)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_fsync DIR [--count N] [--block BYTES]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc % 2 != 0)
        return usage();
    long count = 2000, block = 4096;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--count") == 0)
            count = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--block") == 0)
            block = strtol(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (count <= 0 || block <= 0 || block > MAX_BLOCK)
        return usage();
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_fsync.XXXXXX", argv[1]);
    int status = 1, fd = mkstemp(path);
    double *lat = calloc((size_t)count, sizeof *lat);
    char *buf = malloc((size_t)block);
    if (fd < 0 || !lat || !buf) {
        perror("bench_fsync");
        goto cleanup;
    }
    memset(buf, 0xA5, (size_t)block);
    if (posix_fallocate(fd, 0, FILE_BYTES) != 0 || fsync(fd) != 0) {
        perror("bench_fsync: fallocate");
        goto cleanup;
    }
    for (long i = 0; i < count; i++) {
        double t0 = bench_now_s() * 1e6;
        if (pwrite(fd, buf, (size_t)block, i % (FILE_BYTES / block) * block) != block || fdatasync(fd) != 0) {
            perror("bench_fsync: write");
            goto cleanup;
        }
        lat[i] = bench_now_s() * 1e6 - t0;
    }
    double sum = 0;
    long over = 0;
    for (long i = 0; i < count; i++) {
        sum += lat[i];
        over += lat[i] > 20000;
    }
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    printf("BENCH_RESULT {\"count\":%ld,\"block\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f,"
           "\"over_20ms\":%ld}\n",
           count, block, lat[count / 2], lat[count * 99 / 100], sum / (double)count, lat[count - 1], over);
    status = 0;
cleanup:
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(lat);
    free(buf);
    return status;
}
