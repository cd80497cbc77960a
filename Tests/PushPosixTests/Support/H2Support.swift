// What the HTTP/2 client tests run against: test CAs and server certificates made with the `openssl` CLI, and the
// Python HTTP/2 server of Tests/Fakes/h2_echo_server.py (h2 over ssl) as a child process.
import Foundation
import Glibc
import PushPosix

struct H2TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Two CAs, each with a server certificate for 127.0.0.1 and localhost, in one temporary directory for the run, as
/// the integration tests' `TestCertificates` makes them (EC P-256 keys, `openssl req` and `openssl x509`). Clients
/// trust `caFile`; the `other` certificate is signed by a CA they do not know.
final class H2Certificates: Sendable {
    let directory: String
    /// The CA clients trust.
    let caFile: String
    /// The server certificate under `caFile` and its key.
    let certFile: String
    let keyFile: String
    /// A server certificate for the same names under another CA, and its key.
    let otherCertFile: String
    let otherKeyFile: String

    private static let made = Result { try H2Certificates() }

    static func shared() throws -> H2Certificates { try made.get() }

    private init() throws {
        directory = NSTemporaryDirectory() + "pushgw-h2-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        caFile = directory + "/ca.pem"
        certFile = directory + "/leaf.pem"
        keyFile = directory + "/leaf.key"
        otherCertFile = directory + "/other-leaf.pem"
        otherKeyFile = directory + "/other-leaf.key"
        let script = """
            key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc "$@"; }
            printf 'basicConstraints=CA:FALSE\\nsubjectAltName=IP:127.0.0.1,DNS:localhost\\n' > leaf.ext
            printf 'extendedKeyUsage=serverAuth\\n' >> leaf.ext
            for name in ca other-ca; do
                key -x509 -keyout $name.key -out $name.pem -days 3 -subj "/CN=pushgw h2 test $name" \\
                    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
            done
            key -keyout leaf.key -out leaf.csr -subj /CN=localhost
            openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 11 -days 3 -extfile leaf.ext \\
                -out leaf.pem
            key -keyout other-leaf.key -out other-leaf.csr -subj /CN=localhost
            openssl x509 -req -in other-leaf.csr -CA other-ca.pem -CAkey other-ca.key -set_serial 12 -days 3 \\
                -extfile leaf.ext -out other-leaf.pem
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-ec", script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw H2TestError("openssl failed making the test certificates") }
    }
}

/// The Python HTTP/2 echo server, started with `arguments` (its options, see the script) and TLS with the trusted
/// certificate unless given `--plain` or a `certificate` of its own. Stopped (SIGKILL) when it goes.
final class H2Server {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fakes/h2_echo_server.py").path

    let process = Process()
    let port: UInt16

    /// Starts the server (on `port`, 0 for any) and waits, at most 10 s, for the port it prints once listening.
    init(_ arguments: [String] = [], port: UInt16 = 0, certificate: (cert: String, key: String)? = nil) throws {
        var arguments = arguments + ["--port", String(port)]
        if !arguments.contains("--plain") {
            let certificates = try H2Certificates.shared()
            let files = certificate ?? (certificates.certFile, certificates.keyFile)
            arguments += ["--cert", files.cert, "--key", files.key]
        }
        // Debian's python3 (python3-h2 is a Debian package; a python3 earlier on PATH may lack it).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let fd = output.fileHandleForReading.fileDescriptor
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(10)
        while !line.contains(UInt8(ascii: "\n")), Date() < deadline {
            var poller = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            guard Posix.poll(&poller, seconds: 0.1) > 0 else { continue }
            var byte: UInt8 = 0
            guard Glibc.read(fd, &byte, 1) == 1 else { break }
            line.append(byte)
        }
        guard let port = UInt16(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            process.terminate()
            throw H2TestError("the h2 echo server did not print its port: \(String(decoding: line, as: UTF8.self))")
        }
        self.port = port
    }

    deinit { kill() }

    /// SIGKILL, then waits for the exit: its sockets are closed by the kernel, with no goodbye.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// Runs `loop` until `done()` holds (checked every 10 ms), or `seconds` at most; whether it held.
@discardableResult func runLoop(_ loop: EventLoop, atMost seconds: Double, until done: @escaping () -> Bool) -> Bool {
    let check = LoopTimer(loop: loop) { if done() { loop.stop() } }
    check.start(after: 0.01, repeat: 0.01)
    let limit = LoopTimer(loop: loop) { loop.stop() }
    limit.start(after: seconds)
    loop.run()
    return done()
}

/// The JSON body of an echo (or /stats) response.
func json(_ response: HTTP2Response) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
}
