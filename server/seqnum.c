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

/* Big-endian 64-bit loads and stores, written so that compilers emit one bswap: readers make and format a number
 * per record returned. */
static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static limbs from_seq(const knd_seq *s)
{
    return (limbs){{load_be64(s->b + 16), load_be64(s->b + 8), load_be64(s->b)}};
}

static knd_seq to_seq(const limbs *v)
{
    knd_seq s;
    store_be64(s.b, v->l[2]);
    store_be64(s.b + 8, v->l[1]);
    store_be64(s.b + 16, v->l[0]);
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

/* (hi * 2^64 + lo) / d for hi < d, so that the quotient fits in 64 bits; *rem gets the remainder. On x86-64 this is
 * one divq: the compiler turns a 128-bit division into a call to the generic __udivmodti4, which cost more than
 * everything else in formatting a number. */
static inline uint64_t div_128_64(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    uint64_t q, r;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(d));
    *rem = r;
    return q;
#else
    unsigned __int128 n = (unsigned __int128)hi << 64 | lo;
    *rem = (uint64_t)(n % d);
    return (uint64_t)(n / d);
#endif
}

/* v /= d, returns the remainder. A limb below d with no remainder above it needs no division: a 56-digit number
 * takes 3 divisions in all instead of 9. */
static uint64_t divmod(limbs *v, uint64_t d)
{
    uint64_t rem = 0;
    for (int i = 2; i >= 0; i--) {
        if (rem == 0 && v->l[i] < d) {
            rem = v->l[i];
            v->l[i] = 0;
        } else {
            v->l[i] = div_128_64(rem, v->l[i], d, &rem);
        }
    }
    return rem;
}

#define CHUNK 10000000000000000000u /* 10^19: the largest power of 10 in 64 bits */
#define CHUNK_DIGITS 19

static const char k_pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";

/* Writes v < 100000 as exactly 5 digits. */
static void put_5(char *out, uint32_t v)
{
    uint32_t hi = v / 1000, lo = v - hi * 1000, mid = lo / 10;
    memcpy(out, k_pairs + 2 * hi, 2);
    memcpy(out + 2, k_pairs + 2 * mid, 2);
    out[4] = (char)('0' + lo - mid * 10);
}

/* Writes v < 10^19 as exactly 19 digits: split into groups of 4, 5, 5 and 5 digits whose conversions do not depend
 * on each other (the CPU runs them side by side, where digit-by-digit division is one long chain). */
static void put_chunk(char *out, uint64_t v)
{
    uint64_t hi = v / 10000000000u, lo = v - hi * 10000000000u; /* < 10^9, < 10^10 */
    uint32_t a = (uint32_t)(hi / 100000), b = (uint32_t)(hi % 100000);
    uint32_t c = (uint32_t)(lo / 100000), d = (uint32_t)(lo % 100000);
    memcpy(out, k_pairs + 2 * (a / 100), 2);
    memcpy(out + 2, k_pairs + 2 * (a % 100), 2);
    put_5(out + 4, b);
    put_5(out + 9, c);
    put_5(out + 14, d);
}

/* The value in base 10^19 (at most 4 chunks for 192 bits), then each chunk as digits; only the most significant
 * chunk loses its leading zeros. */
size_t knd_seq_format(const knd_seq *s, char out[KND_SEQ_DEC_MAX])
{
    limbs v = from_seq(s);
    uint64_t chunk[4];
    int n = 0;
    do
        chunk[n++] = divmod(&v, CHUNK);
    while (v.l[0] || v.l[1] || v.l[2]);
    char top[CHUNK_DIGITS];
    put_chunk(top, chunk[n - 1]);
    size_t skip = 0;
    while (skip < CHUNK_DIGITS - 1 && top[skip] == '0')
        skip++;
    size_t len = CHUNK_DIGITS - skip;
    memcpy(out, top + skip, len);
    for (int i = n - 2; i >= 0; i--, len += CHUNK_DIGITS)
        put_chunk(out + len, chunk[i]);
    out[len] = '\0';
    return len;
}
