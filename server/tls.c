/* knd_tls: see tls.h.
 *
 * Each connection's SSL object reads from one memory BIO (what the client sent, fed by knd_tls_feed) and writes to
 * another (what we must send, drained by knd_tls_take_output): OpenSSL never sees the socket, so a handshake is just
 * a sequence of feed/read/take_output steps driven by the loop's read callbacks, and never blocks it. A memory BIO
 * that runs dry answers "retry" (not end-of-file), which OpenSSL reports as SSL_ERROR_WANT_READ.
 *
 * OpenSSL's error queue is per thread and shared by every connection on it, so each call that can fail starts from
 * an empty queue and leaves it empty: a failure is turned into t->error at once. */
#include "tls.h"
#include "../lib/error.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ALPN wire format: length-prefixed names, in our order of preference. */
static const unsigned char alpn_offer[] = "\x02h2\x08http/1.1";
#define ALPN_OFFER_LEN (sizeof alpn_offer - 1)

struct knd_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct knd_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool failed;
    bool peer_closed;
    bool close_sent;
    bool plain_http;
    char error[200];
};

/* ---------------------------------------------------------------- the server's context */

/* Keys are loaded without a passphrase: a daemon must not stop to prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* The first protocol of ours the client also offers; without one the handshake goes on with no ALPN (a client
 * that sends neither h2 nor http/1.1 still gets a connection, and its first bytes decide). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *chosen = NULL;
    unsigned char chosen_len = 0;
    if (SSL_select_next_proto(&chosen, &chosen_len, alpn_offer, ALPN_OFFER_LEN, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    *outlen = chosen_len;
    return SSL_TLSEXT_ERR_OK;
}

/* OpenSSL's reasons for what is in the queue, oldest first ("No such file or directory: system lib"), which is then
 * emptied. The oldest is usually the cause, the newest what it broke. */
static void take_openssl_error(char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (unsigned long e; (e = ERR_get_error()) != 0;) {
        char code[128];
        const char *reason = ERR_reason_error_string(e);
        if (!reason) {
            ERR_error_string_n(e, code, sizeof code);
            reason = code;
        }
        if (strstr(out, reason))
            continue;
        int n = snprintf(out + len, cap - len, "%s%s", len ? ": " : "", reason);
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
    if (!out[0])
        snprintf(out, cap, "unknown TLS error");
    ERR_clear_error();
}

static kn_status ctx_fail(knd_tls_ctx *ctx, kn_error *err, const char *what, const char *file)
{
    char reason[200];
    take_openssl_error(reason, sizeof reason);
    knd_tls_ctx_destroy(ctx);
    return kn_error_set(err, KN_ERR_CONFIG, "%s '%s': %s", what, file, reason);
}

kn_status knd_tls_ctx_new(const char *cert_file, const char *key_file, knd_tls_ctx **out, kn_error *err)
{
    *out = NULL;
    if (!cert_file || !key_file)
        return kn_error_set(err, KN_ERR_INVALID_ARGUMENT, "TLS needs both a certificate file and a key file");
    ERR_clear_error();
    knd_tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return kn_error_set(err, KN_ERR_NO_MEMORY, "out of memory");
    ctx->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx->ssl_ctx)
        return ctx_fail(ctx, err, "cannot set up TLS for", cert_file);
    SSL_CTX *s = ctx->ssl_ctx;
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    /* Idle keep-alive connections are the common case: do not hold 34 KiB of record buffers for each. */
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(s, no_passphrase);
    SSL_CTX_set_alpn_select_cb(s, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(s, cert_file) != 1)
        return ctx_fail(ctx, err, "cannot load the TLS certificate chain from", cert_file);
    if (SSL_CTX_use_PrivateKey_file(s, key_file, SSL_FILETYPE_PEM) != 1)
        return ctx_fail(ctx, err, "cannot load the TLS private key (PEM, unencrypted) from", key_file);
    if (SSL_CTX_check_private_key(s) != 1)
        return ctx_fail(ctx, err, "the TLS private key does not match the certificate in", cert_file);
    *out = ctx;
    return KN_OK;
}

void knd_tls_ctx_destroy(knd_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* ---------------------------------------------------------------- one connection */

knd_tls *knd_tls_new(knd_tls_ctx *ctx)
{
    knd_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "wait for more", not end of stream */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void knd_tls_destroy(knd_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

bool knd_tls_feed(knd_tls *t, const void *data, size_t len)
{
    size_t written = 0;
    if (len == 0)
        return true;
    bool ok = BIO_write_ex(t->rbio, data, len, &written) == 1 && written == len;
    ERR_clear_error();
    return ok;
}

static knd_tls_result fail(knd_tls *t)
{
    unsigned long e = ERR_peek_last_error();
    t->plain_http = ERR_GET_LIB(e) == ERR_LIB_SSL &&
                    (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST);
    t->failed = true;
    take_openssl_error(t->error, sizeof t->error);
    return KND_TLS_FAILED;
}

/* What a failed SSL_do_handshake / SSL_read_ex means. */
static knd_tls_result classify(knd_tls *t, int rc)
{
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* a memory BIO never fills, so this does not happen; waiting is still right */
        ERR_clear_error();
        return KND_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        t->peer_closed = true;
        ERR_clear_error();
        return KND_TLS_CLOSED;
    default:
        return fail(t);
    }
}

knd_tls_result knd_tls_read(knd_tls *t, uint8_t *buf, size_t cap, size_t *n)
{
    *n = 0;
    if (t->failed)
        return KND_TLS_FAILED;
    if (t->peer_closed)
        return KND_TLS_CLOSED;
    ERR_clear_error();
    if (!SSL_is_init_finished(t->ssl)) {
        int rc = SSL_do_handshake(t->ssl);
        if (rc != 1)
            return classify(t, rc);
    }
    size_t got = 0;
    int rc = SSL_read_ex(t->ssl, buf, cap, &got);
    if (rc == 1) {
        *n = got;
        return KND_TLS_DATA;
    }
    return classify(t, rc);
}

bool knd_tls_handshake_done(const knd_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

knd_tls_alpn knd_tls_negotiated(const knd_tls *t)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    if (len == 2 && memcmp(p, "h2", 2) == 0)
        return KND_TLS_ALPN_H2;
    if (len == 8 && memcmp(p, "http/1.1", 8) == 0)
        return KND_TLS_ALPN_HTTP11;
    return KND_TLS_ALPN_NONE;
}

bool knd_tls_write(knd_tls *t, const void *data, size_t len)
{
    if (t->failed || !SSL_is_init_finished(t->ssl))
        return false;
    if (len == 0)
        return true;
    ERR_clear_error();
    size_t written = 0;
    if (SSL_write_ex(t->ssl, data, len, &written) != 1 || written != len) {
        fail(t);
        return false;
    }
    return true;
}

void knd_tls_close_notify(knd_tls *t)
{
    if (t->failed || t->close_sent || !SSL_is_init_finished(t->ssl))
        return;
    t->close_sent = true;
    SSL_shutdown(t->ssl); /* 0: ours is queued; the client's may never come, and we do not wait for it */
    ERR_clear_error();
}

uint8_t *knd_tls_take_output(knd_tls *t, size_t *len)
{
    *len = 0;
    size_t pending = BIO_ctrl_pending(t->wbio);
    if (pending == 0)
        return NULL;
    uint8_t *out = malloc(pending);
    if (!out)
        return NULL;
    size_t got = 0;
    if (BIO_read_ex(t->wbio, out, pending, &got) != 1 || got == 0) {
        ERR_clear_error();
        free(out);
        return NULL;
    }
    *len = got;
    return out;
}

const char *knd_tls_error(const knd_tls *t)
{
    return t->error;
}

bool knd_tls_failed_on_plain_http(const knd_tls *t)
{
    return t->failed && t->plain_http;
}
