/* knd_tls: TLS for kinesisd's connections (OpenSSL 3), done entirely in memory so that the event loop (knd_http on
 * libuv) keeps owning the sockets. Ciphertext read from a socket goes in with knd_tls_feed; plaintext comes out of
 * knd_tls_read; plaintext to send goes in with knd_tls_write; the ciphertext to put on the wire (handshake messages,
 * records, alerts, close_notify) comes out of knd_tls_take_output. Nothing here blocks or touches a socket.
 *
 * ALPN: the server offers "h2" and "http/1.1", preferring h2; a client that offers neither (or no ALPN at all) is
 * served without it, and the caller decides the protocol from the first bytes as on a plain connection.
 *
 * Threading: a knd_tls_ctx may be shared by connections on one thread; each knd_tls is used by one thread. */
#ifndef KND_TLS_H
#define KND_TLS_H

#include <kinesis/kinesis.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The server's certificate, key and settings. */
typedef struct knd_tls_ctx knd_tls_ctx;

/* Loads a PEM certificate chain (the server's certificate first, then intermediates) and its PEM private key
 * (unencrypted: kinesisd never prompts for a passphrase). TLS 1.2 is the minimum. *out is released with
 * knd_tls_ctx_destroy. On failure *out is NULL and err names the file and OpenSSL's reason (never key material). */
kn_status knd_tls_ctx_new(const char *cert_file, const char *key_file, knd_tls_ctx **out, kn_error *err);
void knd_tls_ctx_destroy(knd_tls_ctx *ctx);

/* One connection's TLS state, server side. */
typedef struct knd_tls knd_tls;

typedef enum knd_tls_alpn {
    KND_TLS_ALPN_NONE = 0, /* handshake not done, or the client negotiated no protocol we offer */
    KND_TLS_ALPN_H2,
    KND_TLS_ALPN_HTTP11,
} knd_tls_alpn;

typedef enum knd_tls_result {
    KND_TLS_DATA,   /* plaintext was read */
    KND_TLS_WANT,   /* nothing more until more ciphertext is fed (the handshake may still be running) */
    KND_TLS_CLOSED, /* the client sent close_notify: no more plaintext will come */
    KND_TLS_FAILED, /* handshake or record error: see knd_tls_error; take the output (it may hold an alert), then
                       close without close_notify */
} knd_tls_result;

/* A connection that uses ctx (which must outlive it); NULL when out of memory. Released with knd_tls_destroy. */
knd_tls *knd_tls_new(knd_tls_ctx *ctx);
void knd_tls_destroy(knd_tls *t);

/* Hands over ciphertext received from the client (copied). False when out of memory. */
bool knd_tls_feed(knd_tls *t, const void *data, size_t len);

/* Advances the handshake and reads up to cap bytes of plaintext into buf (*n bytes). Call until it returns
 * something other than KND_TLS_DATA; afterwards there may be output to take (handshake replies, session tickets). */
knd_tls_result knd_tls_read(knd_tls *t, uint8_t *buf, size_t cap, size_t *n);

bool knd_tls_handshake_done(const knd_tls *t);
knd_tls_alpn knd_tls_negotiated(const knd_tls *t);

/* Encrypts len bytes of plaintext (the handshake must be done) into the output. False on failure (out of memory or
 * a broken session): the connection cannot go on. */
bool knd_tls_write(knd_tls *t, const void *data, size_t len);

/* Queues close_notify (once; nothing after a failure or before the handshake is done). */
void knd_tls_close_notify(knd_tls *t);

/* The ciphertext waiting to be sent, as one malloc'd buffer the caller owns and frees; NULL (and *len 0) when there
 * is none or memory ran out (then the output stays queued). */
uint8_t *knd_tls_take_output(knd_tls *t, size_t *len);

/* Why the last KND_TLS_FAILED happened (OpenSSL's reason, e.g. "wrong version number"); "" when none. Valid until
 * the next call on t. For debug logs: it never holds key material or plaintext. */
const char *knd_tls_error(const knd_tls *t);

/* Whether the failure was a plain-text HTTP request (a client given http:// for an https port): the caller may
 * answer it in plain text instead of with the alert, so the client learns why. */
bool knd_tls_failed_on_plain_http(const knd_tls *t);

#endif
