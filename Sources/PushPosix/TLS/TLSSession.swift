import COpenSSL
import Glibc
import PushCore

/// One connection's TLS: an SSL object over the connection's non-blocking descriptor, driven by the loop's events.
/// `SocketConnection` reads, writes and half-closes through it when the connection was accepted on a TLS
/// listener; nothing above the socket half knows. A client session (`ClientSocket`'s, for the HTTP/2 client) is the
/// same object made with `init(client:fd:host:)`.
///
/// Every SSL call that cannot go on says what it waits for (WANT_READ, WANT_WRITE): kept per direction here, so the
/// connection watches the right readiness (a write that needs the peer's bytes first watches `.read`, a read that
/// must send first watches `.write`).
final class TLSSession {
    let ssl: OpaquePointer
    /// A server session's context, kept while the session lives: the ticket callback finds it through the `SSL_CTX`.
    /// Nil for a client session (its `SSL_CTX` has no callbacks; the SSL object holds a reference to it).
    let context: TLSContext?
    /// The handshake is done: application data flows.
    private(set) var established = false
    /// What the handshake waits for.
    private(set) var handshakeWaits = IOEvents.read
    /// What the last read that found nothing waits for.
    private(set) var readWaits = IOEvents.read
    /// What the last write that could not go on waits for.
    private(set) var writeWaits = IOEvents.write

    /// The most plaintext a record carries (2^14): a read goes on into the buffer while that much room is left, so
    /// no record is ever left half read inside OpenSSL, where the loop's readiness events cannot see it.
    static let maxRecord = 16 * 1024

    /// A server-side session on `fd`, or nil when OpenSSL cannot make one (out of memory).
    init?(context: TLSContext, fd: Int32) {
        guard let ssl = SSL_new(context.pointer) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.context = context
    }

    /// A client session on `fd` (connected, or connecting: the handshake waits for it) that verifies the peer's
    /// certificate for `host`, and asks for it by SNI when it is a name (RFC 6066 has no SNI for an address literal),
    /// or nil when OpenSSL cannot make one.
    init?(client context: TLSClientContext, fd: Int32, host: String) {
        guard let ssl = SSL_new(context.pointer) else { return nil }
        let isAddress = Posix.ipv4(host) != nil || host.contains(":")
        let param = SSL_get0_param(ssl)
        let named =
            isAddress
            ? X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1
            : X509_VERIFY_PARAM_set1_host(param, host, 0) == 1 && copenssl_set_tlsext_host_name(ssl, host) == 1
        guard named, SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_connect_state(ssl)
        self.ssl = ssl
        self.context = nil
    }

    deinit { SSL_free(ssl) }

    /// The application protocol the server chose in ALPN (`h2`), empty when it chose none.
    var alpnSelected: [UInt8] {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(length)))
    }

    /// Why the peer's certificate was refused, in OpenSSL's words; nil when it verified (or was not checked yet).
    var verificationFailure: String? {
        let result = SSL_get_verify_result(ssl)
        guard result != X509_V_OK else { return nil }
        return String(cString: X509_verify_cert_error_string(result))
    }

    /// How a TLS call failed.
    enum Failure: Error {
        /// The peer closed (TCP end of stream) before the handshake was done.
        case closed
        /// A system call failed (reset by peer, …).
        case system(Int32)
        /// TLS itself failed: a bad record, a handshake alert, no protocol in common; OpenSSL's words.
        case tls(String)

        /// How the connection's close is counted.
        func reason(duringHandshake: Bool) -> CloseReason {
            switch self {
            case .closed: .peerClosed
            case .system: .ioError
            case .tls: duringHandshake ? .tlsHandshakeFailed : .ioError
            }
        }
    }

    /// No handshake message processed yet: the next step reads the ClientHello and answers it, the costly one
    /// (key exchange and signature; the client's Finished afterwards costs little).
    var awaitsClientHello: Bool { context != nil && SSL_in_before(ssl) == 1 }

    /// Drives the handshake on; true once it is done, false while it waits for `handshakeWaits`.
    func handshake() throws(Failure) -> Bool {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            established = true
            return true
        }
        guard let waits = try wait(result) else { throw .closed }
        handshakeWaits = waits
        return false
    }

    /// What a read found.
    enum Read {
        /// `count` bytes (> 0) at the buffer's start; `more`: there may be more to read now (the buffer filled up).
        case data(Int, more: Bool)
        /// Nothing until `readWaits`.
        case wouldBlock
        /// The peer closed: close_notify, or the TCP end of stream.
        case end
    }

    /// Decrypts into `buffer`, record after record, until the socket has nothing more, the room left could not take
    /// a whole record, or the peer closed (a close after data is reported by the next call).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Read {
        var count = 0
        while true {
            ERR_clear_error()
            let result = SSL_read(ssl, buffer.baseAddress! + count, Int32(clamping: buffer.count - count))
            if result > 0 {
                count += Int(result)
                if buffer.count - count < Self.maxRecord { return .data(count, more: true) }
                continue
            }
            let waits: IOEvents?
            do {
                waits = try wait(result)
            } catch {
                if count > 0 { return .data(count, more: true) }  // the failure comes back at the next read
                throw error
            }
            guard let waits else {
                if count > 0 { return .data(count, more: true) }
                // The peer's close_notify is answered with ours (best effort, the connection closes now), so a
                // client that shuts down both ways sees a clean end rather than a truncation.
                _ = SSL_shutdown(ssl)
                return .end
            }
            readWaits = waits
            return count > 0 ? .data(count, more: false) : .wouldBlock
        }
    }

    /// Plaintext OpenSSL has decrypted and not handed out yet (only when a read's buffer had less room than a
    /// record): the socket is not readable for it, so the connection asks the loop to call it again.
    var hasBufferedInput: Bool { SSL_pending(ssl) > 0 }

    /// Encrypts and sends from `buffer`: one record at most per call (partial writes), `.wouldBlock` until
    /// `writeWaits`. A retry after `.wouldBlock` must offer the same bytes again (more may follow them).
    func write(from buffer: UnsafeRawBufferPointer) throws(Failure) -> IOResult<Int> {
        ERR_clear_error()
        let result = SSL_write(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if result > 0 { return .done(Int(result)) }
        guard let waits = try wait(result) else { throw .system(EPIPE) }
        writeWaits = waits
        return .wouldBlock
    }

    /// Sends close_notify, once the last output is written: true when it went out (or cannot), false while it
    /// waits for `writeWaits`.
    func shutdown() -> Bool {
        ERR_clear_error()
        let result = SSL_shutdown(ssl)
        if result >= 0 { return true }
        guard let waits = try? wait(result) else { return true }
        writeWaits = waits
        return waits != .write
    }

    /// What a call that returned `result` (≤ 0) waits for; nil when the peer closed; throws a real failure.
    private func wait(_ result: Int32) throws(Failure) -> IOEvents? {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ: return .read
        case SSL_ERROR_WANT_WRITE: return .write
        case SSL_ERROR_ZERO_RETURN: return nil
        case SSL_ERROR_SYSCALL:
            let error = errno
            let reasons = ERR_peek_error() == 0 ? nil : openSSLErrors()
            if let reasons { throw .tls(reasons) }
            // No reason queued and no errno: the peer closed the TCP connection.
            if error == 0 || result == 0 { return nil }
            throw .system(error)
        default:
            throw .tls(openSSLErrors())
        }
    }
}
