import COpenSSL
import Glibc

/// One `SSL_CTX` for the client side of TLS (the notifiers' connections to APNs and FCM): the peer's certificate is
/// verified against `caFile` (PEM, one or more CAs) or else the system's default trust store, TLS 1.2 at least, and
/// the application protocols offered in ALPN. Each connection's `TLSSession` checks the host name on its own (the
/// same context serves any host).
///
/// Modes as on the server side (`TLSContext`): partial writes, so the output queue's offset moves like a socket's,
/// and a write refused with WANT_WRITE may be retried from storage that moved.
public final class TLSClientContext {
    let pointer: OpaquePointer
    /// The protocols offered, in preference order (`h2`).
    public let alpn: [String]

    /// A client context trusting `caFile` (nil: the system's default trust store) and offering `alpn`.
    public init(caFile: String? = nil, alpn: [String] = []) throws(TLSSetupError) {
        ERR_clear_error()
        guard let pointer = SSL_CTX_new(TLS_client_method()) else {
            throw TLSSetupError(key: "tls", message: "cannot make a TLS client context: \(openSSLErrors())")
        }
        self.pointer = pointer
        self.alpn = alpn
        copenssl_ctx_set_client_options(pointer)
        _ = copenssl_ctx_set_min_proto_version(pointer, TLS1_2_VERSION)
        _ = copenssl_ctx_set_mode(pointer, copenssl_mode_partial_write | copenssl_mode_moving_write_buffer)
        _ = SSL_CTX_set_cipher_list(pointer, TLSContext.ciphers)
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(pointer, caFile, nil) == 1 else {
                throw TLSSetupError(key: "ca_file", message: "cannot use \(caFile): \(openSSLErrors())")
            }
        } else {
            guard SSL_CTX_set_default_verify_paths(pointer) == 1 else {
                throw TLSSetupError(key: "tls", message: "cannot load the system's CAs: \(openSSLErrors())")
            }
        }
        if !alpn.isEmpty {
            // The wire format: each protocol's length in one byte, then its name. 0 means success here.
            let wire = alpn.flatMap { [UInt8(truncatingIfNeeded: $0.utf8.count)] + Array($0.utf8) }
            guard SSL_CTX_set_alpn_protos(pointer, wire, UInt32(wire.count)) == 0 else {
                throw TLSSetupError(key: "alpn", message: "cannot offer \(alpn): \(openSSLErrors())")
            }
        }
    }

    deinit { SSL_CTX_free(pointer) }
}
