/* The metadata file, DATA_DIR/meta.json, one JSON object (numbers are integers; ms are unix milliseconds):
 *
 *   {"format": 1, "next_stream_id": N,
 *    "streams": [{"name": "...", "id": N, "status": "CREATING|ACTIVE|UPDATING|DELETING",
 *                 "mode": "PROVISIONED|ON_DEMAND", "created_ms": N, "status_until_ms": N,
 *                 "retention_hours": N, "max_record_size": N,
 *                 "shards": [{"index": N, "start_hash": "<decimal>", "end_hash": "<decimal>",
 *                             "parent": N, "adjacent_parent": N,        (-1 when none)
 *                             "starting_seq": "<decimal>", "closed": bool, "ending_seq": "<decimal>",
 *                             "created_ms": N}]}]}
 *
 * Replaced atomically: written to meta.json.tmp, fsync, rename over meta.json, fsync of the directory (the rename is
 * durable only once its directory is synced). A crash leaves either the old or the new file, and at worst a stale
 * meta.json.tmp, which the next save truncates. The record logs never depend on this file's timing: a stream whose
 * metadata is lost has its directory removed at the next start. */
#include "meta.h"

#include "../lib/error.h"
#include "../lib/json.h"
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_FORMAT 1
#define META_MAX_BYTES (256u << 20)

static const char *const status_names[] = {
    [KND_STREAM_CREATING] = "CREATING",
    [KND_STREAM_ACTIVE] = "ACTIVE",
    [KND_STREAM_UPDATING] = "UPDATING",
    [KND_STREAM_DELETING] = "DELETING",
};
static const char *const mode_names[] = {[KND_MODE_PROVISIONED] = "PROVISIONED", [KND_MODE_ON_DEMAND] = "ON_DEMAND"};

knd_stream *knd_meta_alloc_stream(uint32_t shard_count)
{
    knd_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->shards = calloc(shard_count ? shard_count : 1, sizeof *s->shards);
    if (!s->shards) {
        free(s);
        return NULL;
    }
    s->shard_count = shard_count;
    return s;
}

void knd_meta_free_stream(knd_stream *s)
{
    if (!s)
        return;
    free(s->shards);
    free(s);
}

static bool add_num(cJSON *o, const char *k, double v)
{
    return cJSON_AddNumberToObject(o, k, v) != NULL;
}

static bool add_u128(cJSON *o, const char *k, kn_u128 v)
{
    char buf[KN_U128_DEC_MAX];
    kn_hashkey_format(v, buf);
    return cJSON_AddStringToObject(o, k, buf) != NULL;
}

static bool add_seq(cJSON *o, const char *k, const knd_seq *v)
{
    char buf[KND_SEQ_DEC_MAX];
    knd_seq_format(v, buf);
    return cJSON_AddStringToObject(o, k, buf) != NULL;
}

static bool shard_to_json(cJSON *arr, const knd_shard *sh)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return false;
    }
    return add_num(o, "index", sh->index) && add_u128(o, "start_hash", sh->start_hash) &&
           add_u128(o, "end_hash", sh->end_hash) && add_num(o, "parent", (double)sh->parent) &&
           add_num(o, "adjacent_parent", (double)sh->adjacent_parent) &&
           add_seq(o, "starting_seq", &sh->starting_seq) && cJSON_AddBoolToObject(o, "closed", sh->closed) &&
           add_seq(o, "ending_seq", &sh->ending_seq) && add_num(o, "created_ms", (double)sh->created_ms);
}

static bool stream_to_json(cJSON *arr, const knd_stream *s)
{
    cJSON *o = cJSON_CreateObject(), *shards;
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return false;
    }
    if (!cJSON_AddStringToObject(o, "name", s->name) || !add_num(o, "id", s->id) ||
        !cJSON_AddStringToObject(o, "status", status_names[s->status]) ||
        !cJSON_AddStringToObject(o, "mode", mode_names[s->mode]) || !add_num(o, "created_ms", (double)s->created_ms) ||
        !add_num(o, "status_until_ms", (double)s->status_until_ms) ||
        !add_num(o, "retention_hours", s->retention_hours) || !add_num(o, "max_record_size", s->max_record_size) ||
        !(shards = cJSON_AddArrayToObject(o, "shards")))
        return false;
    for (uint32_t i = 0; i < s->shard_count; i++)
        if (!shard_to_json(shards, &s->shards[i]))
            return false;
    return true;
}

static char *render(uint32_t next_stream_id, const knd_stream *first)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject(), *arr;
    if (!root || !add_num(root, "format", META_FORMAT) || !add_num(root, "next_stream_id", next_stream_id) ||
        !(arr = cJSON_AddArrayToObject(root, "streams")))
        goto cleanup;
    for (const knd_stream *s = first; s; s = s->next)
        if (!stream_to_json(arr, s))
            goto cleanup;
    text = cJSON_PrintUnformatted(root);
cleanup:
    cJSON_Delete(root);
    return text;
}

static int write_file_synced(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;
    if (fd < 0)
        return errno;
    while (len && !rc) {
        ssize_t w = write(fd, text, len);
        if (w < 0 && errno != EINTR)
            rc = errno;
        else if (w > 0) {
            text += w;
            len -= (size_t)w;
        }
    }
    if (!rc && fsync(fd))
        rc = errno;
    close(fd);
    return rc;
}

kn_status knd_meta_save(const char *data_dir, uint32_t next_stream_id, const knd_stream *first, kn_error *err)
{
    char path[4096], tmp[4096];
    kn_status st = KN_OK;
    char *text = render(next_stream_id, first);
    int rc;
    if (!text)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory writing stream metadata");
    if ((size_t)snprintf(path, sizeof path, "%s/meta.json", data_dir) >= sizeof path ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/meta.json.tmp", data_dir) >= sizeof tmp) {
        st = kn_error_set(err, KN_ERR_IO, "data directory path too long");
        goto cleanup;
    }
    if ((rc = write_file_synced(tmp, text, strlen(text))) || (rename(tmp, path) ? (rc = errno) : 0) ||
        (rc = knd_segment_sync_dir(data_dir))) {
        st = kn_error_set(err, KN_ERR_IO, "cannot write %s: %s", path, strerror(rc));
        goto cleanup;
    }
cleanup:
    free(text);
    return st;
}

/* An integer member within [lo, hi]; false when absent, not a number, fractional or out of range. */
static bool get_int(const cJSON *o, const char *k, double lo, double hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi || floor(v->valuedouble) != v->valuedouble)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static bool get_enum(const cJSON *o, const char *k, const char *const *names, size_t n, int *out)
{
    const char *v = kn_json_string(o, k);
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return true;
        }
    return false;
}

static bool get_u128(const cJSON *o, const char *k, kn_u128 *out)
{
    const char *v = kn_json_string(o, k);
    return v && kn_hashkey_parse(v, strlen(v), out);
}

static bool get_seq(const cJSON *o, const char *k, knd_seq *out)
{
    const char *v = kn_json_string(o, k);
    return v && knd_seq_parse(v, strlen(v), out);
}

#define MS_MAX 9007199254740991.0 /* 2^53 - 1: the integers a JSON number holds exactly */

static bool shard_from_json(const cJSON *o, knd_shard *sh)
{
    int64_t index, parent, adj, created;
    const cJSON *closed = cJSON_GetObjectItemCaseSensitive(o, "closed");
    if (!get_int(o, "index", 0, UINT32_MAX, &index) || !get_int(o, "parent", -1, UINT32_MAX, &parent) ||
        !get_int(o, "adjacent_parent", -1, UINT32_MAX, &adj) || !get_int(o, "created_ms", 0, MS_MAX, &created) ||
        !get_u128(o, "start_hash", &sh->start_hash) || !get_u128(o, "end_hash", &sh->end_hash) ||
        !get_seq(o, "starting_seq", &sh->starting_seq) || !get_seq(o, "ending_seq", &sh->ending_seq) ||
        !cJSON_IsBool(closed))
        return false;
    sh->index = (uint32_t)index;
    sh->parent = parent;
    sh->adjacent_parent = adj;
    sh->created_ms = created;
    sh->closed = cJSON_IsTrue(closed);
    return true;
}

static knd_stream *stream_from_json(const cJSON *o)
{
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(o, "shards");
    const char *name = kn_json_string(o, "name");
    int64_t id, created, until, retention, max_record;
    int status, mode;
    if (!cJSON_IsArray(shards) || !name || strlen(name) == 0 || strlen(name) >= sizeof ((knd_stream *)0)->name ||
        !get_int(o, "id", 1, UINT32_MAX, &id) || !get_int(o, "created_ms", 0, MS_MAX, &created) ||
        !get_int(o, "status_until_ms", 0, MS_MAX, &until) ||
        !get_int(o, "retention_hours", 1, UINT32_MAX, &retention) ||
        !get_int(o, "max_record_size", 1, KND_FRAME_MAX_PAYLOAD, &max_record) ||
        !get_enum(o, "status", status_names, 4, &status) || !get_enum(o, "mode", mode_names, 2, &mode))
        return NULL;
    knd_stream *s = knd_meta_alloc_stream((uint32_t)cJSON_GetArraySize(shards));
    if (!s)
        return NULL;
    strcpy(s->name, name);
    s->id = (uint32_t)id;
    s->status = (knd_stream_status)status;
    s->mode = (knd_stream_mode)mode;
    s->created_ms = created;
    s->status_until_ms = until;
    s->retention_hours = (uint32_t)retention;
    s->max_record_size = (uint32_t)max_record;
    uint32_t i = 0;
    const cJSON *sh;
    cJSON_ArrayForEach(sh, shards)
    {
        if (!shard_from_json(sh, &s->shards[i]) || s->shards[i].index != i) {
            knd_meta_free_stream(s);
            return NULL;
        }
        i++;
    }
    return s;
}

static int read_file(const char *path, char **text, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    struct stat st;
    *text = NULL;
    if (fd < 0)
        return errno;
    if (fstat(fd, &st)) {
        rc = errno;
        goto cleanup;
    }
    if (st.st_size > META_MAX_BYTES) {
        rc = EFBIG;
        goto cleanup;
    }
    if (!(*text = malloc((size_t)st.st_size + 1))) {
        rc = ENOMEM;
        goto cleanup;
    }
    *len = 0;
    while (*len < (size_t)st.st_size) {
        ssize_t r = read(fd, *text + *len, (size_t)st.st_size - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? errno : EIO;
            goto cleanup;
        }
        *len += (size_t)r;
    }
cleanup:
    if (rc) {
        free(*text);
        *text = NULL;
    }
    close(fd);
    return rc;
}

kn_status knd_meta_load(const char *data_dir, uint32_t *next_stream_id, knd_stream **first, kn_error *err)
{
    char path[4096], *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    kn_status st = KN_OK;
    knd_stream **tail = first;
    int64_t fmt, next_id;
    *first = NULL;
    *next_stream_id = 1;
    if ((size_t)snprintf(path, sizeof path, "%s/meta.json", data_dir) >= sizeof path)
        return kn_error_set(err, KN_ERR_IO, "data directory path too long");
    int rc = read_file(path, &text, &len);
    if (rc == ENOENT)
        return KN_OK;
    if (rc)
        return kn_error_set(err, KN_ERR_IO, "cannot read %s: %s", path, strerror(rc));
    root = kn_json_parse(text, len);
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(root, "streams"), *o;
    if (!root || !get_int(root, "format", META_FORMAT, META_FORMAT, &fmt) ||
        !get_int(root, "next_stream_id", 1, UINT32_MAX, &next_id) || !cJSON_IsArray(streams)) {
        st = kn_error_set(err, KN_ERR_IO, "%s is damaged or of an unknown format", path);
        goto cleanup;
    }
    *next_stream_id = (uint32_t)next_id;
    int i = 0;
    cJSON_ArrayForEach(o, streams)
    {
        if (!(*tail = stream_from_json(o))) {
            st = kn_error_set(err, KN_ERR_IO, "%s: stream %d is damaged", path, i);
            goto cleanup;
        }
        tail = &(*tail)->next;
        i++;
    }
cleanup:
    if (st != KN_OK) {
        while (*first) {
            knd_stream *next = (*first)->next;
            knd_meta_free_stream(*first);
            *first = next;
        }
    }
    cJSON_Delete(root);
    free(text);
    return st;
}
