// TLS for the integration tests: a test CA, an intermediate and server certificates for 127.0.0.1 and localhost,
// made with the `openssl` CLI in a temporary directory; and a blocking OpenSSL client over a `TestSocket` that
// verifies the gateway's chain against that CA.
import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A root CA, an intermediate CA under it, and server certificates under the intermediate, in one temporary
/// directory for the whole test run. Clients trust the root only, so a server that does not send the intermediate
/// (a chain file not read as a chain) fails verification.
final class TestCertificates: @unchecked Sendable {
    let directory: URL
    /// The root CA certificate: what clients trust.
    let caFile: String
    /// The first server certificate: the leaf then the intermediate, and the leaf's key.
    let chainFile: String
    let keyFile: String
    /// The first leaf's serial number (each leaf made here has its own).
    let serial = 1001

    private static let made = Result { try TestCertificates() }

    /// The run's certificates, made on first use.
    static func shared() throws -> TestCertificates { try made.get() }

    private init() throws {
        let name = "pushgw-tls-" + UUID().uuidString.prefix(8).lowercased()
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        caFile = directory.appendingPathComponent("ca.pem").path
        chainFile = directory.appendingPathComponent("chain-\(serial).pem").path
        keyFile = directory.appendingPathComponent("key-\(serial).pem").path
        try Self.run(
            """
            key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc "$@"; }
            key -x509 -keyout ca.key -out ca.pem -days 3 -subj "/CN=pushgw test root" \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
            key -keyout int.key -out int.csr -subj "/CN=pushgw test intermediate"
            printf 'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > int.ext
            openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 3 -extfile int.ext -out int.pem
            """, in: directory)
        _ = try makeLeaf(serial: serial)
    }

    /// A new server certificate for 127.0.0.1 and localhost under the intermediate: its chain file (leaf, then
    /// intermediate) and key file.
    func makeLeaf(serial: Int) throws -> (chain: String, key: String) {
        try Self.run(
            """
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout key-\(serial).pem \
                -out leaf-\(serial).csr -subj "/CN=localhost"
            printf 'basicConstraints=CA:FALSE\\nsubjectAltName=IP:127.0.0.1,DNS:localhost\\n' > leaf.ext
            printf 'extendedKeyUsage=serverAuth\\n' >> leaf.ext
            openssl x509 -req -in leaf-\(serial).csr -CA int.pem -CAkey int.key -set_serial \(serial) -days 3 \
                -extfile leaf.ext -out leaf-\(serial).pem
            cat leaf-\(serial).pem int.pem > chain-\(serial).pem
            """, in: directory)
        return (directory.appendingPathComponent("chain-\(serial).pem").path,
                directory.appendingPathComponent("key-\(serial).pem").path)
    }

    private static func run(_ script: String, in directory: URL) throws {
        let log = directory.appendingPathComponent("openssl.log").path
        let child = try ChildProcess(
            argv: ["/bin/sh", "-ec", "cd \"$1\" && eval \"$2\"", "sh", directory.path, script],
            environment: ["PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"],
            stdoutPath: log, stderrPath: log)
        let exited = child.waitForExit(timeout: 30)
        let state = child.exitState
        child.killGroup()
        guard exited, state == .exited(0) else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestError("openssl failed (\(state)) making test certificates:\n\(text.suffix(2000))")
        }
    }
}

/// The tests' client `SSL_CTX`: trusts the test root CA only and verifies the peer.
final class TLSClientContext: @unchecked Sendable {
    let pointer: OpaquePointer

    /// `maxVersion`: the newest protocol offered (`TLS1_2_VERSION` to test the TLS 1.2 path).
    init(maxVersion: Int32? = nil) throws {
        // OpenSSL writes with write(2), not send(2) with MSG_NOSIGNAL: a write to a connection the gateway closed
        // must fail, not kill the test runner.
        signal(SIGPIPE, SIG_IGN)
        guard let pointer = SSL_CTX_new(TLS_client_method()) else { throw TestError("SSL_CTX_new failed") }
        self.pointer = pointer
        let certificates = try TestCertificates.shared()
        guard SSL_CTX_load_verify_locations(pointer, certificates.caFile, nil) == 1 else {
            throw TestError("cannot load the test CA")
        }
        // No client session cache: a test holds the session it resumes itself (with a cache, OpenSSL marks a TLS 1.3
        // session spent once its connection got a newer ticket).
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
        if let maxVersion { _ = SSL_CTX_ctrl(pointer, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(maxVersion), nil) }
    }

    deinit { SSL_CTX_free(pointer) }

    private static let standard = Result { try TLSClientContext() }

    /// The usual client: any version the server offers.
    static func shared() throws -> TLSClientContext { try standard.get() }
}

/// A TLS session a client got, to resume on a later connection.
final class TLSClientSession: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_SESSION_free(pointer) }

    /// The session ticket the gateway sealed it in (empty when it sent none).
    var ticket: [UInt8] {
        var bytes: UnsafePointer<UInt8>?
        var length = 0
        SSL_SESSION_get0_ticket(pointer, &bytes, &length)
        return bytes.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
    }
}

extension TestSocket {
    /// Runs the client side of the TLS handshake on this connected socket (blocking); throws unless it completes
    /// and the gateway's chain verifies against the test CA for `host` (an IP address or a DNS name). `resuming`
    /// offers a session from an earlier connection.
    func startTLS(
        _ context: TLSClientContext? = nil, host: String = "127.0.0.1", resuming session: TLSClientSession? = nil
    ) throws {
        let context = try context ?? TLSClientContext.shared()
        guard let ssl = SSL_new(context.pointer) else { throw TestError("SSL_new failed") }
        tls = ssl
        if host.first?.isNumber == true {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            SSL_set1_host(ssl, host)
        }
        if let session { SSL_set_session(ssl, session.pointer) }
        SSL_set_fd(ssl, fd)
        ERR_clear_error()
        let result = SSL_connect(ssl)
        guard result == 1 else {
            let verify = SSL_get_verify_result(ssl)
            let reason = ERR_peek_error() == 0 ? "error \(SSL_get_error(ssl, result)), \(errnoText())" : tlsErrors()
            let verifyText =
                verify == X509_V_OK ? "" : ", certificate: \(String(cString: X509_verify_cert_error_string(verify)))"
            throw TestError("TLS handshake failed: \(reason)\(verifyText)")
        }
    }

    /// Sends the ClientHello without waiting for an answer (a non-blocking `SSL_connect`), so that many can be
    /// made to wait at the gateway at once; ``finishTLS()`` completes the handshake.
    func sendClientHello(_ context: TLSClientContext? = nil) throws {
        let context = try context ?? TLSClientContext.shared()
        guard let ssl = SSL_new(context.pointer) else { throw TestError("SSL_new failed") }
        tls = ssl
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1")
        SSL_set_fd(ssl, fd)
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        ERR_clear_error()
        let result = SSL_connect(ssl)
        guard result != 1, SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ else {
            throw TestError("SSL_connect did not stop for the ServerHello: \(result), \(tlsErrors())")
        }
    }

    /// Completes a handshake started by ``sendClientHello(_:)`` (blocking).
    func finishTLS() throws {
        guard let ssl = tls else { throw TestError("no handshake started") }
        ERR_clear_error()
        let result = SSL_connect(ssl)
        guard result == 1 else { throw TestError("TLS handshake failed: \(SSL_get_error(ssl, result)), \(tlsErrors())") }
    }

    /// Connects to 127.0.0.1:`port` and runs the TLS handshake.
    static func tls(
        port: UInt16, context: TLSClientContext? = nil, host: String = "127.0.0.1", resuming: TLSClientSession? = nil
    ) throws -> TestSocket {
        let socket = try TestSocket(port: port)
        try socket.startTLS(context, host: host, resuming: resuming)
        return socket
    }

    /// The protocol in use: `TLSv1.3`, `TLSv1.2`.
    var tlsVersion: String? { tls.map { String(cString: SSL_get_version($0)) } }

    /// Whether the handshake resumed the offered session (no full handshake).
    var tlsResumed: Bool { tls.map { SSL_session_reused($0) == 1 } ?? false }

    /// The session to resume later (TLS 1.3 sends it after the handshake: read something first).
    var tlsSession: TLSClientSession? { tls.flatMap { SSL_get1_session($0) }.map(TLSClientSession.init) }

    /// The serial number of the gateway's certificate.
    var peerSerial: Int? {
        guard let ssl = tls, let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return ASN1_INTEGER_get(X509_get0_serialNumber(certificate))
    }

    /// `sendAll` over TLS.
    func tlsSendAll(_ ssl: OpaquePointer, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32(bytes.count - offset)) }
            guard n > 0 else {
                throw TestError("SSL_write: error \(SSL_get_error(ssl, n)) \(tlsErrors()) \(errnoText())")
            }
            offset += Int(n)
        }
    }

    /// `fill` over TLS: decrypted bytes into `inbound`, waiting at most until `deadline` (a record already read whole
    /// by OpenSSL is taken without waiting).
    func tlsFill(_ ssl: OpaquePointer, until deadline: Date) throws -> FillResult {
        while true {
            if SSL_pending(ssl) == 0 {
                let remaining = deadline.timeIntervalSinceNow
                if remaining <= 0 { return .timedOut }
                guard isReadable(timeout: min(remaining, 60)) else { continue }
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            ERR_clear_error()
            let n = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 {
                inbound.append(contentsOf: chunk[0..<Int(n)])
                return .data
            }
            let error = SSL_get_error(ssl, n)
            let code = errno
            switch error {
            case SSL_ERROR_ZERO_RETURN: return .eof
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: continue  // a record not whole yet, or a ticket
            case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
                if code == ECONNRESET { markReset() }
                if code == EAGAIN || code == EINTR { continue }
                return .eof
            default:
                throw TestError("SSL_read: error \(error) \(tlsErrors())")
            }
        }
    }

    /// close_notify, then the SSL object goes: a session closed without close_notify could not be resumed.
    func tlsFree(_ ssl: OpaquePointer) {
        _ = SSL_shutdown(ssl)
        SSL_free(ssl)
    }

    /// Sends close_notify (the gateway reads it as the end of the stream).
    func sendCloseNotify() {
        if let tls { _ = SSL_shutdown(tls) }
    }
}

/// OpenSSL's reasons for the last failures of this thread.
func tlsErrors() -> String {
    var reasons: [String] = []
    while case let code = ERR_get_error(), code != 0 {
        reasons.append(ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)")
    }
    return reasons.joined(separator: "; ")
}
