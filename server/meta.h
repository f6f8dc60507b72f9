/* knd_meta: kinesisd's metadata file DATA_DIR/meta.json: the streams and their shards (never records: those live in
 * the segment logs, see segment.c). It is small and replaced whole and atomically on every change. */
#ifndef KND_META_H
#define KND_META_H

#include "store.h"

/* Writes the streams of the list starting at first (linked by ->next) and next_stream_id durably: temp file, fsync,
 * rename over meta.json, fsync of the directory. On failure the previous file is intact. */
kn_status knd_meta_save(const char *data_dir, uint32_t next_stream_id, const knd_stream *first, kn_error *err);

/* Reads meta.json. *first gets the streams in file order linked by ->next (NULL when there is no file yet), each
 * allocated with its shards array; the caller frees each with knd_meta_free_stream. Shard log pointers are NULL. */
kn_status knd_meta_load(const char *data_dir, uint32_t *next_stream_id, knd_stream **first, kn_error *err);

/* Frees a stream made by knd_meta_load or knd_meta_alloc_stream (its shards array too, not their logs). NULL is
 * allowed. */
void knd_meta_free_stream(knd_stream *s);
/* A zeroed stream with a zeroed array of shard_count shards, or NULL when out of memory. */
knd_stream *knd_meta_alloc_stream(uint32_t shard_count);

#endif
