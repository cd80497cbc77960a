// The admin socket from a test: a blocking Unix-socket client written from SPEC §6 and the README (lines in,
// reply lines ending with "."), `pushgw ctl` as a child process, and readers for `stats` and `/metrics`.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking connection to a gateway's admin socket.
final class AdminClient: @unchecked Sendable {
    private var fd: Int32
    private var inbound: [UInt8] = []

    init(path: String, timeout: Double = 5) throws {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw TestError("socket(AF_UNIX): \(errnoText())") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw TestError("path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let text = errnoText()
            Glibc.close(s)
            throw TestError("connect \(path): \(text)")
        }
        fd = s
    }

    deinit { close() }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestError("send on the admin socket: \(errnoText())") }
            offset += n
        }
    }

    /// The next line, nil at end of stream; throws when nothing comes within the socket's timeout.
    func readLine() throws -> String? {
        while true {
            if let newline = inbound.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: inbound[..<newline], as: UTF8.self)
                inbound.removeFirst(newline + 1)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                inbound += chunk[..<n]
            } else if n == 0 {
                return nil
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                throw TestError("no line from the admin socket in time; buffered: \(inbound.count) bytes")
            } else {
                return nil
            }
        }
    }

    /// The lines of one reply, without the closing ".".
    func readReply() throws -> [String] {
        var lines: [String] = []
        while true {
            guard let line = try readLine() else { throw TestError("admin socket closed mid-reply after \(lines)") }
            if line == "." { return lines }
            lines.append(line)
        }
    }

    /// Whether the gateway closes this connection within the socket's timeout.
    func readUntilClosed() -> Bool {
        while true {
            do {
                guard try readLine() != nil else { return true }
            } catch {
                return false
            }
        }
    }
}

/// How one `pushgw ctl` run ended.
struct CtlResult: Sendable, CustomStringConvertible {
    let state: ExitState
    let stdout: String
    let stderr: String

    var description: String { "\(state)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
}

/// Runs `pushgw ctl <arguments>` with `environment` added to ours (PUSHGW_* removed first) and waits up to
/// `timeout` seconds; a run still going then is interrupted with SIGINT, as a person would stop `tail`.
func runCtl(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 10) async throws -> CtlResult
{
    let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
        "pushgw-ctl-" + UUID().uuidString.prefix(8))
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PUSHGW_") }
    for (key, value) in environment { env[key] = value }
    let out = dir.appendingPathComponent("out").path
    let err = dir.appendingPathComponent("err").path
    let child = try ChildProcess(
        argv: [GatewayProcess.binaryPath, "ctl"] + arguments, environment: env.map { "\($0.key)=\($0.value)" },
        stdoutPath: out, stderrPath: err)
    _ = try await eventually(timeout: timeout) { !child.isRunning }
    if child.isRunning {
        child.signal(SIGINT)
        _ = try await eventually(timeout: 3) { !child.isRunning }
    }
    let state = child.exitState
    child.killGroup()
    return CtlResult(
        state: state, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
}

extension GatewayProcess {
    /// Where the test environment puts the admin socket (`PUSHGW_SERVER_ADMIN_SOCKET`).
    var adminSocketPath: String { directory.appendingPathComponent("pushgw.sock").path }

    /// Opens an admin connection.
    func adminClient(timeout: Double = 5) async throws -> AdminClient {
        let path = adminSocketPath
        return try await offload { try AdminClient(path: path, timeout: timeout) }
    }

    /// Sends one command on a fresh admin connection and returns its reply lines.
    func admin(_ command: String) async throws -> [String] {
        let client = try await adminClient()
        defer { client.close() }
        return try await offload {
            try client.send(command + "\n")
            return try client.readReply()
        }
    }

    /// `stats` as a dictionary of its `name value` lines, and its `worker …` lines as dictionaries of their
    /// `key=value` fields (plus `index`).
    func stats() async throws -> (values: [String: String], workers: [[String: String]]) {
        var values: [String: String] = [:]
        var workers: [[String: String]] = []
        for line in try await admin("stats") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "worker" {
                var fields: [String: String] = [:]
                let words = parts[1].split(separator: " ")
                fields["index"] = words.first.map(String.init)
                for word in words.dropFirst() {
                    let pair = word.split(separator: "=", maxSplits: 1).map(String.init)
                    if pair.count == 2 { fields[pair[0]] = pair[1] }
                }
                workers.append(fields)
            } else {
                values[parts[0]] = parts[1]
            }
        }
        return (values, workers)
    }

    /// `GET /metrics`.
    func metrics() async throws -> HTTPResponse {
        try await http(HTTP.request("GET", "/metrics"))
    }
}

/// The value of the sample `series` (name with its labels, exactly as written) in Prometheus text.
func metricValue(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// A gateway with two workers, so that figures and commands have to cross the control pipes, once both
/// workers have reported with Redis up (the harness waits for one worker's /healthz only).
func startTwoWorkers(_ overrides: [String: String] = [:]) async throws -> GatewayProcess {
    let gateway = try await GatewayProcess.start(overrides.merging(["PUSHGW_SERVER_WORKERS": "2"]) { $1 })
    var workers: [[String: String]] = []
    let ready = try await eventually(timeout: 5) {
        workers = try await gateway.stats().workers
        return workers.count == 2 && workers.allSatisfy { $0["redis"] == "up" }
    }
    guard ready else {
        gateway.stop()
        throw TestError("two workers with Redis up not reported within 5 s: \(workers)")
    }
    return gateway
}

/// Authenticated clients, the gateway's view of which is checked.
func connectClients(_ gateway: GatewayProcess, users: [String]) async throws -> [WireClient] {
    var clients: [WireClient] = []
    for (index, user) in users.enumerated() {
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: .string(user), key: "key-\(index)")
        clients.append(client)
    }
    return clients
}
