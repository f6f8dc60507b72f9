/* Kinesis sequence numbers, in the "version 2" layout real AWS returns (decoded by mhart/kinesalite,
 * db/index.js parseSequence/stringifySequence). The number is 188 bits, written as 47 hex digits, and prints as
 * 56 decimal digits (it lies in [2^185, 1.5 * 2^185)). From the most significant end:
 *
 *   hex digits  bits       field
 *   1           187..184   2            layout version
 *   9           183..148   shard creation time, unix seconds
 *   1           147..144   shard index, low 4 bits
 *   16          143..80    seq_ix: the shard's counter (top bit 0, so < 2^63)
 *   2           79..72     0            (AWS: meaning unknown; kinesalite writes 00)
 *   9           71..36     arrival time, unix seconds
 *   8           35..4      shard index
 *   1           3..0       2            layout version again
 *
 * Within one shard everything above seq_ix is constant, so ordering by number is ordering by seq_ix: a strictly
 * increasing seq_ix gives strictly increasing numbers whatever the clock does. The shard index in the low bits keeps
 * numbers unique across the shards of a stream. Times are stored to the second, as AWS does.
 *
 * knd_seq holds the number in 192 bits, big-endian; here we work on three 64-bit limbs (l[0] least significant). */
#include "seqnum.h"

#include <string.h>

typedef struct limbs {
    uint64_t l[3];
} limbs;

static limbs from_seq(const knd_seq *s)
{
    limbs v = {{0, 0, 0}};
    for (int i = 0; i < KND_SEQ_BYTES; i++)
        v.l[2 - i / 8] = v.l[2 - i / 8] << 8 | s->b[i];
    return v;
}

static knd_seq to_seq(const limbs *v)
{
    knd_seq s;
    for (int i = 0; i < KND_SEQ_BYTES; i++)
        s.b[i] = (uint8_t)(v->l[2 - i / 8] >> (56 - 8 * (i % 8)));
    return s;
}

#define TIME_MAX_S ((UINT64_C(1) << 36) - 1)
#define MASK(bits) ((UINT64_C(1) << (bits)) - 1)

static uint64_t secs_of(uint64_t ms)
{
    uint64_t s = ms / 1000;
    return s > TIME_MAX_S ? TIME_MAX_S : s;
}

/* Field placement, by limb: l[0] = bits 0..63, l[1] = bits 64..127, l[2] = bits 128..191 (see the table above).
 * Written as shifts rather than a generic bit setter because readers make one number per record returned. */
knd_seq knd_seq_make(const knd_seq_parts *p)
{
    uint64_t t = secs_of(p->time_ms), c = secs_of(p->shard_create_ms), ix = p->seq_ix & INT64_MAX;
    limbs v;
    v.l[0] = 2 | (uint64_t)p->shard_index << 4 | t << 36;                 /* version, shard, time bits 0..27 */
    v.l[1] = t >> 28 | (ix & MASK(48)) << 16;                              /* time bits 28..35, byte1 = 0, ix */
    v.l[2] = ix >> 48 | (uint64_t)(p->shard_index & 0xF) << 16 | c << 20 | UINT64_C(2) << 56;
    return to_seq(&v);
}

bool knd_seq_parts_of(const knd_seq *s, knd_seq_parts *p)
{
    limbs v = from_seq(s);
    if ((v.l[2] >> 56) != 2 || (v.l[0] & 0xF) != 2)
        return false;
    uint64_t shard = (v.l[0] >> 4) & MASK(32);
    uint64_t ix = v.l[1] >> 16 | (v.l[2] & MASK(16)) << 48;
    if (ix > INT64_MAX || ((v.l[2] >> 16) & 0xF) != (shard & 0xF))
        return false;
    p->shard_create_ms = ((v.l[2] >> 20) & MASK(36)) * 1000;
    p->shard_index = (uint32_t)shard;
    p->seq_ix = ix;
    p->time_ms = (v.l[0] >> 36 | (v.l[1] & 0xFF) << 28) * 1000;
    return true;
}

int knd_seq_cmp(const knd_seq *a, const knd_seq *b)
{
    return memcmp(a->b, b->b, KND_SEQ_BYTES);
}

/* v = v * 10 + d; false on overflow past 192 bits. */
static bool mul10_add(limbs *v, unsigned d)
{
    unsigned __int128 carry = d;
    for (int i = 0; i < 3; i++) {
        unsigned __int128 t = (unsigned __int128)v->l[i] * 10 + carry;
        v->l[i] = (uint64_t)t;
        carry = t >> 64;
    }
    return carry == 0;
}

bool knd_seq_parse(const char *s, size_t len, knd_seq *out)
{
    if (len == 0 || len > 129 || (len > 1 && s[0] == '0'))
        return false;
    limbs v = {{0, 0, 0}};
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || !mul10_add(&v, (unsigned)(s[i] - '0')))
            return false;
    }
    *out = to_seq(&v);
    return true;
}

/* v /= d, returns the remainder. */
static uint64_t divmod(limbs *v, uint64_t d)
{
    unsigned __int128 rem = 0;
    for (int i = 2; i >= 0; i--) {
        unsigned __int128 cur = rem << 64 | v->l[i];
        v->l[i] = (uint64_t)(cur / d);
        rem = cur % d;
    }
    return (uint64_t)rem;
}

size_t knd_seq_format(const knd_seq *s, char out[KND_SEQ_DEC_MAX])
{
    limbs v = from_seq(s);
    char rev[KND_SEQ_DEC_MAX];
    size_t n = 0;
    do {
        uint64_t chunk = divmod(&v, 10000000000000000000u); /* 10^19: the largest power of 10 in 64 bits */
        bool more = v.l[0] || v.l[1] || v.l[2];
        for (int i = 0; i < 19 && (more || chunk); i++) {
            rev[n++] = (char)('0' + chunk % 10);
            chunk /= 10;
        }
        if (!more)
            break;
    } while (true);
    if (n == 0)
        rev[n++] = '0';
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    out[n] = '\0';
    return n;
}
