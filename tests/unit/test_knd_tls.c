/* knd_tls: the server side in memory against an OpenSSL client in memory, bytes shuttled between them by the test.
 * The certificates are made here (a self-signed P-256 certificate for 127.0.0.1, which the client trusts), written
 * to a temporary folder that the group teardown removes. */
#include "../../server/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct files {
    char dir[64];
    char cert[128], key[128], other_key[128], encrypted_key[128], garbage[128];
    X509 *x509;
} files;

static files F;

/* ---------------------------------------------------------------- certificates */

static void write_pem(const char *path, int (*write)(FILE *, void *), void *obj)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(write(f, obj), 1);
    assert_int_equal(fclose(f), 0);
}

static int write_cert(FILE *f, void *x)
{
    return PEM_write_X509(f, x);
}

static int write_key(FILE *f, void *k)
{
    return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}

static int write_encrypted_key(FILE *f, void *k)
{
    return PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(), (unsigned char *)"pass", 4, NULL, NULL);
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    assert_non_null(san);
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static int setup_files(void **state)
{
    (void)state;
    snprintf(F.dir, sizeof F.dir, "/tmp/kn-tls-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(F.cert, sizeof F.cert, "%s/cert.pem", F.dir);
    snprintf(F.key, sizeof F.key, "%s/key.pem", F.dir);
    snprintf(F.other_key, sizeof F.other_key, "%s/other.pem", F.dir);
    snprintf(F.encrypted_key, sizeof F.encrypted_key, "%s/encrypted.pem", F.dir);
    snprintf(F.garbage, sizeof F.garbage, "%s/garbage.pem", F.dir);
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    assert_non_null(key);
    assert_non_null(other);
    F.x509 = self_signed(key);
    write_pem(F.cert, write_cert, F.x509);
    write_pem(F.key, write_key, key);
    write_pem(F.other_key, write_key, other);
    write_pem(F.encrypted_key, write_encrypted_key, key);
    FILE *g = fopen(F.garbage, "w");
    assert_non_null(g);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", g);
    fclose(g);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    return 0;
}

static int teardown_files(void **state)
{
    (void)state;
    const char *paths[] = {F.cert, F.key, F.other_key, F.encrypted_key, F.garbage};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        unlink(paths[i]);
    rmdir(F.dir);
    X509_free(F.x509);
    return 0;
}

/* ---------------------------------------------------------------- a client and a server, in memory */

typedef struct pair {
    knd_tls_ctx *server_ctx;
    knd_tls *server;
    SSL_CTX *client_ctx;
    SSL *client;
    BIO *client_in, *client_out; /* owned by client */
    uint8_t received[65536];     /* plaintext the server read */
    size_t received_len;
    knd_tls_result last;
} pair;

/* A client that trusts our certificate and offers alpn (wire format; NULL: no ALPN). */
static pair *pair_new(const unsigned char *alpn, size_t alpn_len)
{
    pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    kn_error err = {0};
    assert_int_equal(knd_tls_ctx_new(F.cert, F.key, &p->server_ctx, &err), KN_OK);
    p->server = knd_tls_new(p->server_ctx);
    assert_non_null(p->server);
    p->client_ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->client_ctx);
    SSL_CTX_set_verify(p->client_ctx, SSL_VERIFY_PEER, NULL);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(p->client_ctx), F.x509), 1);
    p->client = SSL_new(p->client_ctx);
    assert_non_null(p->client);
    assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->client), "127.0.0.1"), 1);
    if (alpn)
        assert_int_equal(SSL_set_alpn_protos(p->client, alpn, (unsigned)alpn_len), 0);
    p->client_in = BIO_new(BIO_s_mem());
    p->client_out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->client_in, -1);
    SSL_set_bio(p->client, p->client_in, p->client_out);
    SSL_set_connect_state(p->client);
    return p;
}

static void pair_free(pair *p)
{
    SSL_free(p->client);
    SSL_CTX_free(p->client_ctx);
    knd_tls_destroy(p->server);
    knd_tls_ctx_destroy(p->server_ctx);
    free(p);
}

/* Moves the server's output to the client. */
static void to_client(pair *p)
{
    size_t len = 0;
    uint8_t *out = knd_tls_take_output(p->server, &len);
    if (out)
        assert_int_equal(BIO_write(p->client_in, out, (int)len), (int)len);
    free(out);
}

/* Moves the client's output to the server. */
static void to_server(pair *p)
{
    char buf[4096];
    int n;
    while ((n = BIO_read(p->client_out, buf, sizeof buf)) > 0)
        assert_true(knd_tls_feed(p->server, buf, (size_t)n));
}

/* Lets the server read everything it was given; keeps its plaintext in p->received. */
static void server_reads(pair *p)
{
    for (;;) {
        size_t n = 0;
        uint8_t buf[16384];
        p->last = knd_tls_read(p->server, buf, sizeof buf, &n);
        if (p->last != KND_TLS_DATA)
            break;
        assert_true(p->received_len + n <= sizeof p->received);
        memcpy(p->received + p->received_len, buf, n);
        p->received_len += n;
    }
}

/* Runs both sides until the handshake is over (or fails). */
static void handshake(pair *p)
{
    for (int i = 0; i < 10 && !(SSL_is_init_finished(p->client) && knd_tls_handshake_done(p->server)); i++) {
        SSL_do_handshake(p->client);
        to_server(p);
        server_reads(p);
        if (p->last == KND_TLS_FAILED)
            return;
        to_client(p);
    }
}

/* The client's plaintext, as much as is there, NUL-terminated. */
static int client_reads(pair *p, char *buf, size_t cap)
{
    to_client(p);
    size_t n = 0;
    int rc = SSL_read_ex(p->client, buf, cap - 1, &n);
    buf[rc == 1 ? n : 0] = '\0';
    return rc == 1 ? (int)n : -SSL_get_error(p->client, rc);
}

static const unsigned char ALPN_BOTH[] = "\x08http/1.1\x02h2";
static const unsigned char ALPN_H1[] = "\x08http/1.1";
static const unsigned char ALPN_OTHER[] = "\x06spdy/3";

/* ---------------------------------------------------------------- tests */

static void test_alpn_prefers_h2_when_the_client_offers_both(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_BOTH, sizeof ALPN_BOTH - 1);
    handshake(p);
    assert_true(knd_tls_handshake_done(p->server));
    assert_int_equal(SSL_get_verify_result(p->client), X509_V_OK);
    assert_int_equal(knd_tls_negotiated(p->server), KND_TLS_ALPN_H2);
    pair_free(p);
}

static void test_alpn_http11_only(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_H1, sizeof ALPN_H1 - 1);
    handshake(p);
    assert_int_equal(knd_tls_negotiated(p->server), KND_TLS_ALPN_HTTP11);
    pair_free(p);
}

static void test_no_alpn_still_connects(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, 0);
    handshake(p);
    assert_true(knd_tls_handshake_done(p->server));
    assert_int_equal(knd_tls_negotiated(p->server), KND_TLS_ALPN_NONE);
    pair_free(p);
}

static void test_unknown_alpn_still_connects_without_a_protocol(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_OTHER, sizeof ALPN_OTHER - 1);
    handshake(p);
    assert_true(knd_tls_handshake_done(p->server));
    assert_int_equal(knd_tls_negotiated(p->server), KND_TLS_ALPN_NONE);
    pair_free(p);
}

static void test_data_flows_both_ways(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_H1, sizeof ALPN_H1 - 1);
    handshake(p);
    size_t written = 0;
    static const char request[] = "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    assert_int_equal(SSL_write_ex(p->client, request, sizeof request - 1, &written), 1);
    to_server(p);
    server_reads(p);
    assert_int_equal(p->last, KND_TLS_WANT);
    assert_int_equal(p->received_len, sizeof request - 1);
    assert_memory_equal(p->received, request, sizeof request - 1);
    assert_true(knd_tls_write(p->server, "HTTP/1.1 200 OK\r\n\r\n", 19));
    char buf[256];
    assert_int_equal(client_reads(p, buf, sizeof buf), 19);
    assert_string_equal(buf, "HTTP/1.1 200 OK\r\n\r\n");
    pair_free(p);
}

static void test_large_plaintext_arrives_whole(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_H1, sizeof ALPN_H1 - 1);
    handshake(p);
    static uint8_t big[60000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    size_t written = 0;
    assert_int_equal(SSL_write_ex(p->client, big, sizeof big, &written), 1);
    to_server(p);
    server_reads(p);
    assert_int_equal(p->received_len, sizeof big);
    assert_memory_equal(p->received, big, sizeof big);
    pair_free(p);
}

static void test_client_close_notify_reads_as_closed(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_H1, sizeof ALPN_H1 - 1);
    handshake(p);
    SSL_shutdown(p->client);
    to_server(p);
    server_reads(p);
    assert_int_equal(p->last, KND_TLS_CLOSED);
    pair_free(p);
}

static void test_server_close_notify_ends_the_client_cleanly(void **state)
{
    (void)state;
    pair *p = pair_new(ALPN_H1, sizeof ALPN_H1 - 1);
    handshake(p);
    knd_tls_close_notify(p->server);
    char buf[64];
    assert_int_equal(client_reads(p, buf, sizeof buf), -SSL_ERROR_ZERO_RETURN);
    pair_free(p);
}

static void test_plain_http_is_recognised(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, 0);
    static const char request[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    assert_true(knd_tls_feed(p->server, request, sizeof request - 1));
    server_reads(p);
    assert_int_equal(p->last, KND_TLS_FAILED);
    assert_true(knd_tls_failed_on_plain_http(p->server));
    assert_non_null(strstr(knd_tls_error(p->server), "http request"));
    pair_free(p);
}

static void test_garbage_fails_with_an_alert(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, 0);
    static const uint8_t garbage[] = {0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_true(knd_tls_feed(p->server, garbage, sizeof garbage));
    server_reads(p);
    assert_int_equal(p->last, KND_TLS_FAILED);
    assert_false(knd_tls_failed_on_plain_http(p->server));
    assert_string_not_equal(knd_tls_error(p->server), "");
    size_t len = 0;
    uint8_t *alert = knd_tls_take_output(p->server, &len);
    assert_non_null(alert);
    assert_int_equal(alert[0], 0x15); /* TLS record type: alert */
    free(alert);
    assert_int_equal(ERR_peek_error(), 0); /* the thread's error queue is left empty for other connections */
    pair_free(p);
}

static void test_untrusting_client_fails_the_handshake(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, 0);
    X509_STORE *empty = X509_STORE_new();
    SSL_CTX_set_cert_store(p->client_ctx, empty); /* the client no longer trusts our certificate */
    handshake(p);
    assert_false(SSL_is_init_finished(p->client));
    to_server(p); /* the client's "unknown CA" alert */
    server_reads(p);
    assert_int_equal(p->last, KND_TLS_FAILED);
    assert_non_null(strstr(knd_tls_error(p->server), "unknown ca"));
    pair_free(p);
}

static void test_write_before_the_handshake_is_refused(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, 0);
    assert_false(knd_tls_write(p->server, "x", 1));
    size_t len = 0;
    assert_null(knd_tls_take_output(p->server, &len));
    assert_int_equal(len, 0);
    knd_tls_close_notify(p->server); /* nothing to close yet */
    assert_null(knd_tls_take_output(p->server, &len));
    pair_free(p);
}

static void expect_ctx_error(const char *cert, const char *key, const char *named)
{
    static int not_a_context;
    knd_tls_ctx *ctx = (knd_tls_ctx *)&not_a_context; /* must come back NULL */
    kn_error err = {0};
    assert_int_equal(knd_tls_ctx_new(cert, key, &ctx, &err), KN_ERR_CONFIG);
    assert_null(ctx);
    assert_non_null(strstr(err.message, named));
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_missing_certificate_file_is_named(void **state)
{
    (void)state;
    expect_ctx_error("/nonexistent/cert.pem", F.key, "/nonexistent/cert.pem");
}

static void test_unreadable_certificate_is_named(void **state)
{
    (void)state;
    expect_ctx_error(F.garbage, F.key, F.garbage);
}

static void test_missing_key_file_is_named(void **state)
{
    (void)state;
    expect_ctx_error(F.cert, "/nonexistent/key.pem", "/nonexistent/key.pem");
}

static void test_key_that_does_not_match_is_refused(void **state)
{
    (void)state;
    expect_ctx_error(F.cert, F.other_key, F.other_key);
    expect_ctx_error(F.cert, F.other_key, "mismatch");
}

static void test_encrypted_key_is_refused_without_prompting(void **state)
{
    (void)state;
    expect_ctx_error(F.cert, F.encrypted_key, F.encrypted_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpn_prefers_h2_when_the_client_offers_both),
        cmocka_unit_test(test_alpn_http11_only),
        cmocka_unit_test(test_no_alpn_still_connects),
        cmocka_unit_test(test_unknown_alpn_still_connects_without_a_protocol),
        cmocka_unit_test(test_data_flows_both_ways),
        cmocka_unit_test(test_large_plaintext_arrives_whole),
        cmocka_unit_test(test_client_close_notify_reads_as_closed),
        cmocka_unit_test(test_server_close_notify_ends_the_client_cleanly),
        cmocka_unit_test(test_plain_http_is_recognised),
        cmocka_unit_test(test_garbage_fails_with_an_alert),
        cmocka_unit_test(test_untrusting_client_fails_the_handshake),
        cmocka_unit_test(test_write_before_the_handshake_is_refused),
        cmocka_unit_test(test_missing_certificate_file_is_named),
        cmocka_unit_test(test_unreadable_certificate_is_named),
        cmocka_unit_test(test_missing_key_file_is_named),
        cmocka_unit_test(test_key_that_does_not_match_is_refused),
        cmocka_unit_test(test_encrypted_key_is_refused_without_prompting),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
