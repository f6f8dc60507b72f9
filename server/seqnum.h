/* knd_seqnum: Kinesis sequence numbers. On the wire a sequence number is a decimal string of 56 digits in the layout
 * real AWS uses (see seqnum.c for the bit layout); inside kinesisd it is a fixed-size big-endian binary value, so
 * comparison is memcmp and the decimal form is derived only at the API edge. */
#ifndef KND_SEQNUM_H
#define KND_SEQNUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KND_SEQ_BYTES 24     /* 192 bits: enough for 56 decimal digits */
#define KND_SEQ_DEC_MAX 64   /* decimal form + NUL */

typedef struct knd_seq {
    uint8_t b[KND_SEQ_BYTES]; /* big-endian */
} knd_seq;

/* The components a sequence number is built from. */
typedef struct knd_seq_parts {
    uint64_t shard_create_ms; /* creation time of the shard (unix ms) */
    uint32_t shard_index;     /* the N of shardId-N */
    uint64_t seq_ix;          /* per-shard counter, strictly increasing */
    uint64_t time_ms;         /* arrival time (unix ms) */
} knd_seq_parts;

knd_seq knd_seq_make(const knd_seq_parts *p);
/* Decodes a number made by knd_seq_make; false when s does not have that layout. */
bool knd_seq_parts_of(const knd_seq *s, knd_seq_parts *p);
int knd_seq_cmp(const knd_seq *a, const knd_seq *b);
/* Decimal of at most 129 digits (SequenceNumber's pattern) → value; false when malformed or too large. */
bool knd_seq_parse(const char *s, size_t len, knd_seq *out);
/* Decimal form into out[KND_SEQ_DEC_MAX]; returns its length. */
size_t knd_seq_format(const knd_seq *s, char out[KND_SEQ_DEC_MAX]);

#endif
