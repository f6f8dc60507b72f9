/* Payloads (after the 14-byte header, before the 16-byte MAC):
 *   iterator:     shard index (u32 BE) | flags (u8, bit 0 = after) | sequence number (KND_SEQ_BYTES) | name length (u8)
 *                 | stream name
 *   list tokens:  next index (u32 BE) | name length (u8) | name */
#include "token.h"

#include "../lib/base64.h"
#include "../lib/crypto.h"

#include <string.h>

#define VERSION 1
#define HEADER_LEN 14
#define MAC_LEN 16
#define MAX_TOKEN (HEADER_LEN + 4 + 1 + KND_SEQ_BYTES + 1 + KND_TOKEN_NAME_MAX + MAC_LEN)
/* A future creation time beyond this means the token was not made here (clocks may step back a little). */
#define FUTURE_SLACK_MS 5000

bool knd_token_key_init(knd_token_key *k)
{
    return kn_crypto_random(k->key, sizeof k->key) && kn_crypto_random(k->epoch, sizeof k->epoch);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (56 - 8 * i));
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

/* Wraps payload in header and MAC and appends the base64 text to out. */
static kn_status seal(const knd_token_key *k, knd_token_kind kind, int64_t created_ms, const uint8_t *payload,
                      size_t payload_len, kn_buf *out)
{
    uint8_t raw[MAX_TOKEN];
    if (HEADER_LEN + payload_len + MAC_LEN > sizeof raw)
        return KN_ERR_INVALID_ARGUMENT;
    raw[0] = VERSION;
    raw[1] = (uint8_t)kind;
    memcpy(raw + 2, k->epoch, 4);
    put_i64(raw + 6, created_ms);
    memcpy(raw + HEADER_LEN, payload, payload_len);
    size_t body = HEADER_LEN + payload_len;
    uint8_t mac[KN_SHA256_LEN];
    kn_crypto_hmac_sha256(k->key, sizeof k->key, raw, body, mac);
    memcpy(raw + body, mac, MAC_LEN);
    return kn_base64_encode(raw, body + MAC_LEN, out);
}

/* Checks text and copies its payload into payload[cap]. created_ms is filled whenever the header could be read, so an
 * expired token can still say when it was made. */
static knd_token_result unseal(const knd_token_key *k, knd_token_kind kind, const char *text, size_t len,
                               int64_t now_ms, uint8_t *payload, size_t cap, size_t *payload_len, int64_t *created_ms)
{
    knd_token_result result = KND_TOKEN_INVALID;
    kn_buf raw;
    kn_buf_init(&raw, MAX_TOKEN);
    if (len > kn_base64_encoded_len(MAX_TOKEN) || kn_base64_decode(text, len, &raw) != KN_OK)
        goto cleanup;
    if (raw.len < HEADER_LEN + MAC_LEN || raw.data[0] != VERSION || raw.data[1] != (uint8_t)kind)
        goto cleanup;
    *created_ms = get_i64(raw.data + 6);
    if (memcmp(raw.data + 2, k->epoch, 4) != 0) {
        result = KND_TOKEN_EXPIRED;
        goto cleanup;
    }
    size_t body = raw.len - MAC_LEN;
    uint8_t mac[KN_SHA256_LEN];
    kn_crypto_hmac_sha256(k->key, sizeof k->key, raw.data, body, mac);
    if (!kn_crypto_equal_ct(mac, raw.data + body, MAC_LEN))
        goto cleanup;
    if (*created_ms > now_ms + FUTURE_SLACK_MS)
        goto cleanup;
    if (now_ms - *created_ms > KND_TOKEN_TTL_MS) {
        result = KND_TOKEN_EXPIRED;
        goto cleanup;
    }
    *payload_len = body - HEADER_LEN;
    if (*payload_len > cap)
        goto cleanup;
    memcpy(payload, raw.data + HEADER_LEN, *payload_len);
    result = KND_TOKEN_OK;
cleanup:
    kn_buf_cleanup(&raw);
    return result;
}

/* Reads "length (u8) | name" at p into name[KND_TOKEN_NAME_MAX + 1]; false unless it fills the rest exactly. */
static bool get_name(const uint8_t *p, size_t avail, char *name)
{
    if (avail < 1 || p[0] == 0 || p[0] > KND_TOKEN_NAME_MAX || (size_t)p[0] + 1 != avail)
        return false;
    memcpy(name, p + 1, p[0]);
    name[p[0]] = '\0';
    return true;
}

static size_t put_name(uint8_t *p, const char *name)
{
    size_t n = strlen(name);
    p[0] = (uint8_t)n;
    memcpy(p + 1, name, n);
    return n + 1;
}

kn_status knd_token_encode_iterator(const knd_token_key *k, const knd_iterator *it, kn_buf *out)
{
    size_t n = strlen(it->stream);
    if (n == 0 || n > KND_TOKEN_NAME_MAX)
        return KN_ERR_INVALID_ARGUMENT;
    uint8_t p[4 + 1 + KND_SEQ_BYTES + 1 + KND_TOKEN_NAME_MAX];
    put_u32(p, it->shard_index);
    p[4] = it->after ? 1 : 0;
    memcpy(p + 5, it->seq.b, KND_SEQ_BYTES);
    size_t len = 5 + KND_SEQ_BYTES + put_name(p + 5 + KND_SEQ_BYTES, it->stream);
    return seal(k, KND_TOKEN_ITERATOR, it->created_ms, p, len, out);
}

knd_token_result knd_token_decode_iterator(const knd_token_key *k, const char *text, size_t len, int64_t now_ms,
                                           knd_iterator *it)
{
    uint8_t p[MAX_TOKEN];
    size_t n = 0;
    *it = (knd_iterator){0};
    knd_token_result r = unseal(k, KND_TOKEN_ITERATOR, text, len, now_ms, p, sizeof p, &n, &it->created_ms);
    if (r != KND_TOKEN_OK)
        return r;
    if (n < 5 + KND_SEQ_BYTES || p[4] > 1 || !get_name(p + 5 + KND_SEQ_BYTES, n - 5 - KND_SEQ_BYTES, it->stream))
        return KND_TOKEN_INVALID;
    it->shard_index = get_u32(p);
    it->after = p[4] == 1;
    memcpy(it->seq.b, p + 5, KND_SEQ_BYTES);
    return KND_TOKEN_OK;
}

kn_status knd_token_encode_list(const knd_token_key *k, knd_token_kind kind, const knd_list_token *t, kn_buf *out)
{
    size_t n = strlen(t->name);
    if (n == 0 || n > KND_TOKEN_NAME_MAX || kind == KND_TOKEN_ITERATOR)
        return KN_ERR_INVALID_ARGUMENT;
    uint8_t p[4 + 1 + KND_TOKEN_NAME_MAX];
    put_u32(p, t->next_index);
    size_t len = 4 + put_name(p + 4, t->name);
    return seal(k, kind, t->created_ms, p, len, out);
}

knd_token_result knd_token_decode_list(const knd_token_key *k, knd_token_kind kind, const char *text, size_t len,
                                       int64_t now_ms, knd_list_token *t)
{
    uint8_t p[MAX_TOKEN];
    size_t n = 0;
    *t = (knd_list_token){0};
    if (kind == KND_TOKEN_ITERATOR)
        return KND_TOKEN_INVALID;
    knd_token_result r = unseal(k, kind, text, len, now_ms, p, sizeof p, &n, &t->created_ms);
    if (r != KND_TOKEN_OK)
        return r;
    if (n < 4 || !get_name(p + 4, n - 4, t->name))
        return KND_TOKEN_INVALID;
    t->next_index = get_u32(p);
    return KND_TOKEN_OK;
}
