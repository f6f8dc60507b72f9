/* kn_hashkey: Kinesis's 128-bit hash key space. A record's hash key is the MD5 of its partition key's UTF-8 bytes
 * read as a big-endian unsigned integer, or its ExplicitHashKey; shards own contiguous ranges of that space. */
#ifndef KN_HASHKEY_H
#define KN_HASHKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 kn_u128;

#define KN_U128_DEC_MAX 40 /* 39 digits + NUL */

/* Parses a decimal of the form 0|[1-9][0-9]{0,38} that is < 2^128. False on anything else. */
bool kn_hashkey_parse(const char *s, size_t len, kn_u128 *out);
/* Writes v in decimal into out[KN_U128_DEC_MAX]; returns the length. */
size_t kn_hashkey_format(kn_u128 v, char out[KN_U128_DEC_MAX]);
/* MD5 of the partition key's bytes, big-endian. */
kn_u128 kn_hashkey_of_partition_key(const char *key, size_t len);
/* The range shard i of n owns when a stream is created with n shards, as AWS splits it: shard i starts at
 * i * floor(2^128 / n) and the last shard ends at 2^128 - 1. */
void kn_hashkey_shard_range(unsigned i, unsigned n, kn_u128 *start, kn_u128 *end);

#endif
