// A blocking loopback TCP socket shared by the wire and HTTP test clients, plus the helpers that run blocking
// calls off Swift's cooperative thread pool (a blocked pool thread would stop other tests from running).
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}

/// Runs `work` on a thread of its own and awaits its result, so blocking socket calls do not block the
/// cooperative pool that Swift Testing runs tests on.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try work() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Sleeps without holding a thread.
func pause(_ seconds: Double) async throws {
    try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
}

/// Polls `condition` every 50 ms until it is true or `timeout` passes; returns whether it became true.
func eventually(timeout: Double = 5, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try await pause(0.05)
    }
}

/// Parses a JSON object.
func jsonObject(_ bytes: [UInt8]) -> [String: Any]? {
    try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? [String: Any]
}

/// A JSON number (or bool) as a Double.
func number(_ value: Any?) -> Double? {
    if let n = value as? NSNumber { return n.doubleValue }
    if let i = value as? Int { return Double(i) }
    if let d = value as? Double { return d }
    return nil
}

/// A Swift string as a JSON string literal.
func jsonQuote(_ string: String) -> String {
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// A connected, blocking TCP socket to 127.0.0.1 with bounded send/receive timeouts and an input buffer.
final class TestSocket: @unchecked Sendable {
    private(set) var fd: Int32
    /// Bytes received and not yet consumed.
    var inbound: [UInt8] = []
    /// Whether the peer reset the connection (as opposed to a clean FIN).
    private(set) var sawReset = false
    /// The OpenSSL client session once `startTLS` ran (TLSSupport.swift): sends and reads then go through it.
    var tls: OpaquePointer?

    enum FillResult { case data, eof, timedOut }

    /// Connects to 127.0.0.1:`port`, from `source` (another loopback address, `127.0.0.2`…) when given.
    /// `receiveBufferSize` is set before connecting so it bounds the TCP window.
    init(port: UInt16, timeout: Double = 5, receiveBufferSize: Int32? = nil, source: String? = nil) throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw TestError("socket(): \(errnoText())") }
        if let source { try Self.bind(s, to: source) }
        if var size = receiveBufferSize {
            setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // On Linux SO_SNDTIMEO also bounds connect().
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(port).bigEndian
        addr.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let text = errnoText()
            Glibc.close(s)
            throw TestError("connect to 127.0.0.1:\(port): \(text)")
        }
        fd = s
    }

    deinit { close() }

    /// Binds `s` to `address`, any port: the source address of the connection it then makes.
    private static func bind(_ s: Int32, to address: String) throws {
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr = in_addr(s_addr: inet_addr(address))
        let rc = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let text = errnoText()
            Glibc.close(s)
            throw TestError("bind to \(address): \(text)")
        }
    }

    func close() {
        if let tls {
            tlsFree(tls)
            self.tls = nil
        }
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
    func sendAll(_ bytes: [UInt8]) throws {
        guard fd >= 0 else { throw TestError("send on a closed socket") }
        if let tls { return try tlsSendAll(tls, bytes) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestError("send: \(errnoText())")
            }
            offset += n
        }
    }

    /// Whether data (or EOF) is ready to read within `timeout` seconds.
    func isReadable(timeout: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, Int32(max(0, timeout * 1000))) > 0
    }

    /// Reads once into `inbound`, waiting at most until `deadline`. A reset counts as EOF (see `sawReset`).
    func fill(until deadline: Date) throws -> FillResult {
        guard fd >= 0 else { return .eof }
        if let tls { return try tlsFill(tls, until: deadline) }
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return .timedOut }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if r < 0 {
                if errno == EINTR { continue }
                throw TestError("poll: \(errnoText())")
            }
            if r == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                inbound.append(contentsOf: chunk[0..<n])
                return .data
            }
            if n == 0 { return .eof }
            if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
            if errno == ECONNRESET {
                sawReset = true
                return .eof
            }
            throw TestError("recv: \(errnoText())")
        }
    }

    func markReset() { sawReset = true }

    /// Removes and returns the first `count` buffered bytes.
    func consume(_ count: Int) -> [UInt8] {
        let out = Array(inbound[0..<count])
        inbound.removeFirst(count)
        return out
    }
}

/// A free loopback TCP port: bind 127.0.0.1:0, read the port, close.
func freeLoopbackPort() throws -> UInt16 {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { throw TestError("socket(): \(errnoText())") }
    defer { Glibc.close(s) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else { throw TestError("bind: \(errnoText())") }
    var bound = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc2 = withUnsafeMutablePointer(to: &bound) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &length) }
    }
    guard rc2 == 0 else { throw TestError("getsockname: \(errnoText())") }
    return UInt16(bigEndian: bound.sin_port)
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` right now. A connection to itself (Linux's TCP
/// simultaneous open, when the kernel picks `port` as the source port too) does not count.
func portAccepts(_ port: UInt16) -> Bool {
    guard let s = try? TestSocket(port: port, timeout: 1) else { return false }
    defer { s.close() }
    var local = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &local) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s.fd, $0, &length) }
    }
    return rc == 0 && UInt16(bigEndian: local.sin_port) != port
}
