import COpenSSL
import Foundation
import Testing

@testable import PushPosix

/// A self-signed certificate and key made with the `openssl` CLI, once for the suite.
private let certificate: Result<(cert: String, key: String), any Error> = Result {
    let directory = NSTemporaryDirectory() + "pushgw-ticket-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-days", "1",
        "-subj", "/CN=localhost", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
    ]
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw SystemError(call: "openssl req", errno: 0) }
    return (directory + "/cert.pem", directory + "/key.pem")
}

/// One handshake between a client and `server` over a BIO pair in memory; returns whether the client's session
/// was resumed and the session it holds at the end (with the ticket the server sent).
private func handshake(_ server: TLSContext, client: OpaquePointer, resuming session: OpaquePointer?) -> (
    resumed: Bool, session: OpaquePointer?
) {
    let serverSSL = SSL_new(server.pointer)!
    let clientSSL = SSL_new(client)!
    defer {
        SSL_free(serverSSL)
        SSL_free(clientSSL)
    }
    var serverBIO: OpaquePointer?
    var clientBIO: OpaquePointer?
    BIO_new_bio_pair(&serverBIO, 0, &clientBIO, 0)
    SSL_set_bio(serverSSL, serverBIO, serverBIO)
    SSL_set_bio(clientSSL, clientBIO, clientBIO)
    SSL_set_accept_state(serverSSL)
    SSL_set_connect_state(clientSSL)
    if let session { SSL_set_session(clientSSL, session) }
    var byte: UInt8 = 1
    for _ in 0..<20 {
        _ = SSL_do_handshake(clientSSL)
        _ = SSL_do_handshake(serverSSL)
    }
    // TLS 1.3 sends the ticket after the handshake: a byte of application data carries the client past it.
    _ = SSL_write(serverSSL, &byte, 1)
    _ = SSL_read(clientSSL, &byte, 1)
    _ = SSL_shutdown(clientSSL)
    return (SSL_session_reused(clientSSL) == 1, SSL_get1_session(clientSSL))
}

/// The ticket a client session holds (empty when the server sent none).
private func ticket(_ session: OpaquePointer) -> [UInt8] {
    var bytes: UnsafePointer<UInt8>?
    var length = 0
    SSL_SESSION_get0_ticket(session, &bytes, &length)
    return bytes.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
}

@Suite struct TLSTicketKeyTests {
    /// Tickets sealed with the current key open after a rotation (the previous key is kept) and not once the key is
    /// gone; a context that never heard from the master seals with a key of its own.
    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func rotation(version: Int32) throws {
        let files = try certificate.get()
        let server = try TLSContext(
            certificateChain: files.cert, privateKey: files.key, minVersion: .v1_2, handshakeTimeout: 10)
        let client = try #require(SSL_CTX_new(TLS_client_method()))
        defer { SSL_CTX_free(client) }
        _ = SSL_CTX_ctrl(client, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(version), nil)
        #expect(server.ticketKeys.count == 1, "a key of its own before the master's")

        let first = TLSTicketKey.random()
        server.setTicketKeys([first])
        let fresh = handshake(server, client: client, resuming: nil)
        #expect(!fresh.resumed)
        let session = try #require(fresh.session)
        defer { SSL_SESSION_free(session) }

        let again = handshake(server, client: client, resuming: session)
        #expect(again.resumed, "the current key opens it")
        again.session.map(SSL_SESSION_free)
        server.setTicketKeys([TLSTicketKey.random(), first])
        let rotated = handshake(server, client: client, resuming: session)
        #expect(rotated.resumed, "the previous key still opens it after a rotation")
        rotated.session.map(SSL_SESSION_free)
        server.setTicketKeys([TLSTicketKey.random()])
        let expired = handshake(server, client: client, resuming: session)
        #expect(!expired.resumed, "a full handshake once its key is gone")
        expired.session.map(SSL_SESSION_free)
        server.setTicketKeys([])
        #expect(server.ticketKeys.count == 1, "an empty list keeps the keys")
    }

    /// A resumed connection gets a new ticket, as a full handshake does, and the next reconnect resumes with it: a
    /// client that uses each ticket once (RFC 8446 advises it for TLS 1.3) resumes on every reconnect, not every
    /// other one. OpenSSL renews only when the ticket callback asks it to.
    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func resumedConnectionGetsNewTicket(version: Int32) throws {
        let files = try certificate.get()
        let server = try TLSContext(
            certificateChain: files.cert, privateKey: files.key, minVersion: .v1_2, handshakeTimeout: 10)
        let client = try #require(SSL_CTX_new(TLS_client_method()))
        defer { SSL_CTX_free(client) }
        _ = SSL_CTX_ctrl(client, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(version), nil)

        let fresh = handshake(server, client: client, resuming: nil)
        var session = try #require(fresh.session)
        #expect(!ticket(session).isEmpty)
        for reconnect in 1...3 {
            let resumed = handshake(server, client: client, resuming: session)
            let newer = try #require(resumed.session)
            #expect(resumed.resumed, "reconnect \(reconnect) resumes with the newest ticket")
            #expect(!ticket(newer).isEmpty && ticket(newer) != ticket(session), "reconnect \(reconnect): a new ticket")
            SSL_SESSION_free(session)
            session = newer
        }
        SSL_SESSION_free(session)
    }

    /// A key is 80 bytes: name, AES key, HMAC key.
    @Test func keyLength() {
        #expect(TLSTicketKey(bytes: [UInt8](repeating: 1, count: 79)) == nil)
        #expect(TLSTicketKey(bytes: [UInt8](repeating: 1, count: 80)) != nil)
        #expect(TLSTicketKey.random() != TLSTicketKey.random())
    }
}
