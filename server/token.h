/* knd_token: the opaque strings kinesisd hands to clients and later takes back: shard iterators (GetShardIterator,
 * GetRecords' NextShardIterator) and pagination tokens (ListStreams, ListShards). They must be tamper-evident (a
 * client must not read another position or stream by editing one) and expire like AWS's (5 minutes).
 *
 * Format (bytes, then standard padded base64 on the wire):
 *   0      version = 1
 *   1      kind (KND_TOKEN_ITERATOR, KND_TOKEN_LIST_STREAMS, KND_TOKEN_LIST_SHARDS)
 *   2..5   key epoch: 4 random bytes drawn with the key
 *   6..13  creation time, Unix ms, big-endian
 *   14..   payload (kind-specific, see token.c)
 *   last16 HMAC-SHA256 over everything before it, truncated to 16 bytes
 *
 * The HMAC key is random per process (kn_crypto_random) and never stored: a restart invalidates every outstanding
 * token. A token whose epoch is not the current process's is answered as expired rather than invalid, so clients
 * recover the way they recover from AWS's expiry (by asking for a new iterator from their checkpoint) instead of
 * failing. */
#ifndef KND_TOKEN_H
#define KND_TOKEN_H

#include "../lib/buf.h"
#include "seqnum.h"

#include <stdbool.h>
#include <stdint.h>

#define KND_TOKEN_TTL_MS 300000 /* AWS's iterator and NextToken lifetime */
#define KND_TOKEN_NAME_MAX 128

typedef struct knd_token_key {
    uint8_t key[32];
    uint8_t epoch[4];
} knd_token_key;

/* Draws a new random key and epoch. False when the system's random source fails. */
bool knd_token_key_init(knd_token_key *k);

typedef enum knd_token_result {
    KND_TOKEN_OK,
    KND_TOKEN_INVALID, /* not a token of this kind, or tampered with */
    KND_TOKEN_EXPIRED, /* older than KND_TOKEN_TTL_MS, or issued by an earlier process */
} knd_token_result;

/* A position in a shard: records with sequence number >= seq (> seq when after). */
typedef struct knd_iterator {
    char stream[KND_TOKEN_NAME_MAX + 1];
    uint32_t shard_index;
    knd_seq seq;
    bool after;
    int64_t created_ms; /* on decode: when the iterator was issued (also filled for KND_TOKEN_EXPIRED) */
} knd_iterator;

/* Appends the iterator's text to out. it->stream must be 1..128 bytes. */
kn_status knd_token_encode_iterator(const knd_token_key *k, const knd_iterator *it, kn_buf *out);
knd_token_result knd_token_decode_iterator(const knd_token_key *k, const char *text, size_t len, int64_t now_ms,
                                           knd_iterator *it);

/* Where a listing resumes: after stream `name` (ListStreams), or at shard `next_index` of stream `name`
 * (ListShards). */
typedef struct knd_list_token {
    char name[KND_TOKEN_NAME_MAX + 1];
    uint32_t next_index;
    int64_t created_ms;
} knd_list_token;

typedef enum knd_token_kind {
    KND_TOKEN_ITERATOR = 1,
    KND_TOKEN_LIST_STREAMS = 2,
    KND_TOKEN_LIST_SHARDS = 3,
} knd_token_kind;

/* kind is KND_TOKEN_LIST_STREAMS or KND_TOKEN_LIST_SHARDS; a token of one kind never decodes as the other. */
kn_status knd_token_encode_list(const knd_token_key *k, knd_token_kind kind, const knd_list_token *t, kn_buf *out);
knd_token_result knd_token_decode_list(const knd_token_key *k, knd_token_kind kind, const char *text, size_t len,
                                       int64_t now_ms, knd_list_token *t);

#endif
