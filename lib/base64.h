/* kn_base64: standard base64 (RFC 4648 alphabet). */
#ifndef KN_BASE64_H
#define KN_BASE64_H

#include "buf.h"

/* Appends the padded encoding of data to out. */
kn_status kn_base64_encode(const void *data, size_t len, kn_buf *out);
/* Appends the decoding of text to out. Accepts padded and unpadded input; rejects characters outside the alphabet,
 * misplaced padding and impossible lengths with KN_ERR_INVALID_ARGUMENT (out is left unchanged). */
kn_status kn_base64_decode(const char *text, size_t len, kn_buf *out);
/* Length of the decoding of a valid encoded text of len bytes (an upper bound for invalid text). */
size_t kn_base64_decoded_len(const char *text, size_t len);

#endif
