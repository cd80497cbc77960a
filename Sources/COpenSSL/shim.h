// OpenSSL: HMAC for device tokens, constant-time compare, random bytes, TLS later.
#ifndef PUSHGW_COPENSSL_SHIM_H
#define PUSHGW_COPENSSL_SHIM_H

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/err.h>

#endif
