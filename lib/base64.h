/* kn_base64: standard base64 (RFC 4648 section 4 alphabet, '=' padding). */
#ifndef KN_BASE64_H
#define KN_BASE64_H

#include "buf.h"

/* Appends the padded encoding of data to out. KN_ERR_NO_MEMORY at out's cap (out unchanged). */
kn_status kn_base64_encode(const void *data, size_t len, kn_buf *out);
/* Appends the decoding of text to out. Accepts padded and unpadded input; rejects characters outside the alphabet
 * (whitespace included), misplaced or excess padding and impossible lengths (1 mod 4 characters of data) with
 * KN_ERR_INVALID_ARGUMENT, and out's cap with KN_ERR_NO_MEMORY; on any error out is left unchanged. Unused low bits
 * in the last character are ignored, as most decoders do. */
kn_status kn_base64_decode(const char *text, size_t len, kn_buf *out);
/* Decodes text when it is canonical base64, the only form AWS's deserialiser accepts for a blob: a multiple of 4
 * characters, all from the alphabet except at most two '=' ending the last quantum, and zero bits where padding drops
 * them. out has room for len / 4 * 3 bytes (the caller's); *out_len gets the decoded length. False when text is not
 * canonical (out's content and *out_len are then undefined). */
bool kn_base64_decode_canonical(const char *text, size_t len, uint8_t *out, size_t *out_len);
/* Length of the decoding of a valid encoded text of len bytes (an upper bound for invalid text). */
size_t kn_base64_decoded_len(const char *text, size_t len);
/* Length of the padded encoding of len bytes. */
size_t kn_base64_encoded_len(size_t len);

#endif
