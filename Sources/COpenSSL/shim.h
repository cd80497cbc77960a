// OpenSSL: HMAC for device tokens and webhooks, constant-time compare, random bytes, TLS for the client listeners,
// and the private keys (PEM) and signatures of the notification providers' JWTs (ES256 for APNs, RS256 for FCM).
#ifndef PUSHGW_COPENSSL_SHIM_H
#define PUSHGW_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

// TLS: what ssl.h spells as macros (Swift imports neither function-like macros nor SSL_OP_BIT constants).

static inline long copenssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline int copenssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long copenssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline int copenssl_ctx_set_app_data(SSL_CTX *ctx, void *data) { return SSL_CTX_set_app_data(ctx, data); }
static inline void *copenssl_ctx_get_app_data(const SSL_CTX *ctx) { return SSL_CTX_get_app_data(ctx); }

static const long copenssl_mode_release_buffers = SSL_MODE_RELEASE_BUFFERS;
static const long copenssl_mode_partial_write = SSL_MODE_ENABLE_PARTIAL_WRITE;
static const long copenssl_mode_moving_write_buffer = SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
static const long copenssl_sess_cache_off = SSL_SESS_CACHE_OFF;

// The server's options: no compression (CRIME), no renegotiation (a client-driven CPU sink), the server's cipher
// order, and a peer that closes TCP without close_notify read as a plain end of stream (phones do that all the
// time; the pushgw protocol frames its own messages, so a truncation cannot pass for a whole one).
static inline void copenssl_ctx_set_server_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
                                 | SSL_OP_IGNORE_UNEXPECTED_EOF);
}
static inline void copenssl_ctx_set_no_ticket(SSL_CTX *ctx) { SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); }

// A client's options: no compression (CRIME), no renegotiation, and a server that closes TCP without close_notify read
// as a plain end of stream (HTTP/2 frames its own messages, so a truncation cannot pass for a whole one).
static inline void copenssl_ctx_set_client_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
}
// SNI: the server name a client asks for (a macro over SSL_ctrl).
static inline int copenssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

// Session tickets: keys of our own (shared by the workers of one instance) through this callback type.
typedef int (*copenssl_ticket_key_cb)(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cipher,
                                      EVP_MAC_CTX *mac, int enc);

// Sets up one ticket's cipher (AES-256-CBC) and MAC (HMAC-SHA256), as OpenSSL's own ticket keys do; a new ticket
// gets a random IV. Returns 1, or 0 on failure.
static inline int copenssl_ticket_init(EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, const unsigned char *aes_key,
                                       const unsigned char *hmac_key, unsigned char *iv, int enc) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)hmac_key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(mac, params)) return 0;
    if (enc) {
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return 0;
        return EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes_key, iv);
    }
    return EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes_key, iv);
}

#endif
