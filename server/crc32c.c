/* CRC-32C, bitwise-reflected, initial value and final xor 0xFFFFFFFF (RFC 3720 appendix B.4).
 * The implementation is picked once (pthread_once, so worker threads may checksum too). */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "extend_table's slicing reads 8 input bytes as a little-endian word"
#endif

static uint32_t table[8][256];

/* Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes. */
static void table_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
}

static uint32_t extend_table(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc; /* little-endian: the CRC's low byte lines up with the first input byte */
        crc = table[7][v & 0xFF] ^ table[6][(v >> 8) & 0xFF] ^ table[5][(v >> 16) & 0xFF] ^
              table[4][(v >> 24) & 0xFF] ^ table[3][(v >> 32) & 0xFF] ^ table[2][(v >> 40) & 0xFF] ^
              table[1][(v >> 48) & 0xFF] ^ table[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t extend_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

static uint32_t (*extend_impl)(uint32_t, const uint8_t *, size_t);
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    table_init();
    extend_impl = extend_table;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        extend_impl = extend_sse42;
#endif
}

uint32_t knd_crc32c_extend(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
    return ~extend_impl(~crc, p, n);
}

uint32_t knd_crc32c_extend_portable(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&init_once, init);
    return ~extend_table(~crc, p, n);
}

uint32_t knd_crc32c_compute(const void *p, size_t n)
{
    return knd_crc32c_extend(0, p, n);
}
