import COpenSSL
import Glibc
import PushCore

/// A TLS context that could not be made: the setting at fault (`tls.cert`, `tls.key`) and why, in OpenSSL's words.
public struct TLSSetupError: Error, CustomStringConvertible {
    /// The configuration key the failure is about.
    public let key: String
    public let message: String

    public var description: String { "\(key): \(message)" }
}

/// One `SSL_CTX` for every TLS listener of a worker (SPEC §8): the certificate chain and key, the protocol floor,
/// and what keeps an idle connection small and a reconnect cheap.
///
/// - Buffers: `SSL_MODE_RELEASE_BUFFERS` frees a connection's read and write buffers (about 34 KB) whenever they are
///   empty, so an idle connection holds only the SSL object and its keys.
/// - Writes: `SSL_MODE_ENABLE_PARTIAL_WRITE` lets `SSL_write` return after each record, so the output queue's offset
///   moves like a socket's, and `SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER` lets a write refused with WANT_WRITE be
///   retried from the queue after appends moved its storage (the bytes are the same, only their address changed).
/// - Resumption: stateless tickets only (no per-process session cache), sealed with keys every worker of the instance
///   shares (`setTicketKeys`, from the master), so a phone resumes on whichever worker its reconnect lands.
public final class TLSContext {
    let pointer: OpaquePointer
    /// Ticks a connection has to finish its TLS handshake (`limits.handshake_timeout`): counted from the accept, so
    /// the time spent in TLS comes out of the same budget as the protocol's own handshake.
    public let handshakeTicks: UInt32
    /// The keys tickets are sealed with: the first seals new tickets, every one opens them.
    public private(set) var ticketKeys: [TLSTicketKey]

    /// TLS 1.2's ciphers: Mozilla's "intermediate" list without DHE (forward secret AEAD ciphers only). TLS 1.3's
    /// are OpenSSL's defaults.
    static let ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    /// Loads `certificateChain` (PEM: the leaf, then any intermediates) and `privateKey` (PEM), and checks that they
    /// belong together. The files are read now: a reload that gives new files makes a new context.
    public init(
        certificateChain: String, privateKey: String, minVersion: TLSVersion, handshakeTimeout: Double
    ) throws(TLSSetupError) {
        ERR_clear_error()
        guard let pointer = SSL_CTX_new(TLS_server_method()) else {
            throw TLSSetupError(key: "tls", message: "cannot make a TLS context: \(openSSLErrors())")
        }
        self.pointer = pointer
        handshakeTicks = EventLoop.ticks(handshakeTimeout)
        ticketKeys = [TLSTicketKey.random()]
        let version = minVersion == .v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION
        copenssl_ctx_set_server_options(pointer)
        _ = copenssl_ctx_set_min_proto_version(pointer, version)
        _ = copenssl_ctx_set_mode(
            pointer, copenssl_mode_release_buffers | copenssl_mode_partial_write | copenssl_mode_moving_write_buffer)
        _ = SSL_CTX_set_cipher_list(pointer, Self.ciphers)
        _ = copenssl_ctx_set_session_cache_mode(pointer, copenssl_sess_cache_off)
        // One TLS 1.3 ticket per connection (OpenSSL sends two): a phone resumes once per reconnect, and gets a new
        // ticket on the resumed connection.
        _ = SSL_CTX_set_num_tickets(pointer, 1)
        _ = SSL_CTX_set_timeout(pointer, Int(TLSTicketKey.rotationSeconds))
        _ = copenssl_ctx_set_app_data(pointer, Unmanaged.passUnretained(self).toOpaque())
        _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(pointer, tlsTicketKeyCallback)

        guard SSL_CTX_use_certificate_chain_file(pointer, certificateChain) == 1 else {
            throw TLSSetupError(key: "tls.cert", message: "cannot use \(certificateChain): \(openSSLErrors())")
        }
        guard SSL_CTX_use_PrivateKey_file(pointer, privateKey, SSL_FILETYPE_PEM) == 1,
            SSL_CTX_check_private_key(pointer) == 1
        else {
            throw TLSSetupError(
                key: "tls.key",
                message: "cannot use \(privateKey) with the certificate of tls.cert: \(openSSLErrors())")
        }
    }

    /// The context the configuration asks for.
    public convenience init(_ config: GatewayConfiguration) throws(TLSSetupError) {
        guard let cert = config.tls.cert, let key = config.tls.key else {
            throw TLSSetupError(key: "tls.cert", message: "tls.cert and tls.key must be set for a TLS listener")
        }
        try self.init(
            certificateChain: cert, privateKey: key, minVersion: config.tls.minVersion,
            handshakeTimeout: config.limits.handshakeTimeout)
    }

    deinit { SSL_CTX_free(pointer) }

    /// Loads the certificate chain and key again from the same files (a renewal: SIGHUP with an unchanged
    /// configuration). Connections open already keep the certificate they were made with (each SSL object holds
    /// its own copy); new ones get the new one. The files are checked in a context of their own first, so files
    /// that cannot be used leave this one as it was.
    public func reloadCertificate(_ config: GatewayConfiguration) throws(TLSSetupError) {
        _ = try TLSContext(config)
        guard let cert = config.tls.cert, let key = config.tls.key else { return }
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(pointer, cert) == 1,
            SSL_CTX_use_PrivateKey_file(pointer, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(pointer) == 1
        else {
            throw TLSSetupError(key: "tls.cert", message: "cannot reload \(cert): \(openSSLErrors())")
        }
    }

    /// Replaces the ticket keys (the master's, shared by every worker): `keys[0]` seals new tickets, each opens them.
    public func setTicketKeys(_ keys: [TLSTicketKey]) {
        guard !keys.isEmpty else { return }
        ticketKeys = keys
    }

    /// Seals (`encrypt`) or opens a ticket for OpenSSL: 1 sealed, 2 opened (OpenSSL then issues a fresh ticket),
    /// 0 no key for it (a full handshake), -1 failure. A ticket that opens is always renewed, with whichever key:
    /// OpenSSL sends a resumed connection a new ticket only when told to (1 would resume without one, in TLS 1.3 as
    /// in 1.2), and a client that uses each ticket once, as RFC 8446 advises, would pay a full handshake at every
    /// other reconnect.
    fileprivate func ticketKey(
        name: UnsafeMutablePointer<UInt8>, iv: UnsafeMutablePointer<UInt8>, cipher: OpaquePointer?, mac: OpaquePointer?,
        encrypt: Bool
    ) -> Int32 {
        if encrypt {
            let key = ticketKeys[0]
            key.bytes.withUnsafeBufferPointer { name.update(from: $0.baseAddress!, count: TLSTicketKey.nameLength) }
            return key.initialize(cipher, mac, iv: iv, encrypt: true) ? 1 : -1
        }
        let wanted = UnsafeBufferPointer(start: name, count: TLSTicketKey.nameLength)
        let index = ticketKeys.firstIndex { $0.bytes.prefix(TLSTicketKey.nameLength).elementsEqual(wanted) }
        guard let index else { return 0 }
        guard ticketKeys[index].initialize(cipher, mac, iv: iv, encrypt: false) else { return -1 }
        return 2
    }
}

/// One session ticket key: a 16-byte name that tickets carry, an AES-256 key and an HMAC-SHA256 key.
public struct TLSTicketKey: Equatable, Sendable {
    static let nameLength = 16
    /// name (16), then the AES key (32), then the HMAC key (32).
    public static let length = 80
    /// How often the master makes a new key; the previous one still opens tickets for as long again, and a ticket
    /// lives this long.
    public static let rotationSeconds = 12.0 * 3600

    public let bytes: [UInt8]

    /// A key from its 80 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.length else { return nil }
        self.bytes = bytes
    }

    /// A new key from OpenSSL's random generator.
    public static func random() -> TLSTicketKey {
        var bytes = [UInt8](repeating: 0, count: length)
        // RAND_bytes fails only when the system has no entropy source at all: nothing could run securely then.
        guard RAND_bytes(&bytes, Int32(length)) == 1 else { fatalError("RAND_bytes failed: \(openSSLErrors())") }
        return TLSTicketKey(bytes: bytes)!
    }

    fileprivate func initialize(
        _ cipher: OpaquePointer?, _ mac: OpaquePointer?, iv: UnsafeMutablePointer<UInt8>, encrypt: Bool
    ) -> Bool {
        bytes.withUnsafeBufferPointer { key in
            copenssl_ticket_init(cipher, mac, key.baseAddress! + 16, key.baseAddress! + 48, iv, encrypt ? 1 : 0) == 1
        }
    }
}

/// OpenSSL's ticket callback: the context comes back from the `SSL_CTX`'s app data.
private func tlsTicketKeyCallback(
    _ ssl: OpaquePointer?, _ name: UnsafeMutablePointer<UInt8>?, _ iv: UnsafeMutablePointer<UInt8>?,
    _ cipher: OpaquePointer?, _ mac: OpaquePointer?, _ encrypt: Int32
) -> Int32 {
    guard let ssl, let name, let iv, let data = copenssl_ctx_get_app_data(SSL_get_SSL_CTX(ssl)) else { return -1 }
    return Unmanaged<TLSContext>.fromOpaque(data).takeUnretainedValue().ticketKey(
        name: name, iv: iv, cipher: cipher, mac: mac, encrypt: encrypt == 1)
}

/// OpenSSL's reasons for the last failures on this thread, oldest first; the queue is emptied.
func openSSLErrors() -> String {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        guard code != 0 else { break }
        // A failed system call (a file that cannot be opened) is queued as its errno with the top bit set.
        let reason =
            code & 0x8000_0000 != 0
            ? String(cString: strerror(Int32(code & 0x7fff_ffff)))
            : ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(String(code, radix: 16))"
        if !reasons.contains(reason) { reasons.append(reason) }
    }
    return reasons.isEmpty ? "no reason given" : reasons.joined(separator: "; ")
}
