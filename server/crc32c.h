/* knd_crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of kinesisd's storage format.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both give identical results. */
#ifndef KND_CRC32C_H
#define KND_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of n bytes at p (the standard value: "123456789" gives 0xE3069283). */
uint32_t knd_crc32c_compute(const void *p, size_t n);
/* Continues crc (a previous result) over n more bytes, so computing over pieces equals computing over the whole. */
uint32_t knd_crc32c_extend(uint32_t crc, const void *p, size_t n);
/* The table implementation, whatever the CPU: lets the tests check it against the hardware path. */
uint32_t knd_crc32c_extend_portable(uint32_t crc, const void *p, size_t n);

#endif
