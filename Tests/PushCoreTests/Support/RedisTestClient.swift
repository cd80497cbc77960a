@testable import PushCore

// A tiny blocking Redis client for the storage tests: a Glibc TCP socket, PushCore's own RESP encoder and
// decoder, and EVALSHA with the NOSCRIPT fallback the gateway uses. The server comes from PUSHGW_TEST_REDIS_URL
// (Scripts/test starts one); without it every Redis test fails with a message saying so, it never passes.
#if canImport(Glibc)
    import Glibc
#endif

/// A failure of the test's Redis connection itself (not of a script).
struct RedisTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One blocking connection to the test Redis; each test opens its own, so tests can run in parallel.
final class RedisTestClient {
    static let environmentVariable = "PUSHGW_TEST_REDIS_URL"

    private var fd: Int32
    private var decoder = RESPDecoder()

    /// Connects to the server named by `PUSHGW_TEST_REDIS_URL` (`redis://127.0.0.1:<port>`).
    convenience init() throws {
        guard let url = getenv(Self.environmentVariable).map({ String(cString: $0) }), !url.isEmpty else {
            throw RedisTestFailure(
                "\(Self.environmentVariable) is not set, so the Redis script tests cannot run. Run Scripts/test, or "
                    + "start a server (source Scripts/lib.sh; start_redis /tmp/r1 <port>) and export "
                    + "\(Self.environmentVariable)=redis://127.0.0.1:<port>")
        }
        let (host, port) = try Self.parse(url)
        try self.init(host: host, port: port)
    }

    init(host: String, port: UInt16, timeoutSeconds: Int = 5) throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw RedisTestFailure("socket(): errno \(errno)") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(port).bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            Glibc.close(s)
            throw RedisTestFailure("\(host) is not an IPv4 address")
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            Glibc.close(s)
            throw RedisTestFailure("connect to Redis at \(host):\(port): errno \(code); is redis-server running?")
        }
        fd = s
    }

    deinit { Glibc.close(fd) }

    /// `redis://host:port[/db]`, host an IPv4 address or `localhost`.
    static func parse(_ url: String) throws -> (String, UInt16) {
        guard url.hasPrefix("redis://") else { throw RedisTestFailure("\(environmentVariable)=\(url): not redis://") }
        let authority = url.dropFirst("redis://".count).split(separator: "/", maxSplits: 1).first ?? ""
        guard !authority.contains("@") else {
            throw RedisTestFailure("\(environmentVariable)=\(url): credentials are not supported by the test client")
        }
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw RedisTestFailure("\(environmentVariable)=\(url): expected redis://<host>:<port>")
        }
        let host = parts[0] == "localhost" ? "127.0.0.1" : String(parts[0])
        return (host, port)
    }

    /// Sends one command without waiting for its reply.
    func send(_ args: [[UInt8]]) throws {
        let bytes = RESP.encodeCommand(args)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw RedisTestFailure("send to Redis: errno \(errno)") }
            sent += n
        }
    }

    /// The next reply (or pushed pub/sub message), waiting up to the socket timeout.
    func receive() throws -> RedisValue {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let value = try decoder.next() { return value }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n == 0 { throw RedisTestFailure("Redis closed the connection") }
            guard n > 0 else { throw RedisTestFailure("no reply from Redis (errno \(errno))") }
            decoder.feed(chunk[..<n])
        }
    }

    func command(_ args: [[UInt8]]) throws -> RedisValue {
        try send(args)
        return try receive()
    }

    func command(_ args: String...) throws -> RedisValue {
        try command(args.map { Array($0.utf8) })
    }

    /// Runs a script call as the gateway does: EVALSHA, and on NOSCRIPT the full EVAL (which caches it again).
    func run<Call: ScriptCall>(_ call: Call) throws -> Call.Result {
        let reply = try command(call.evalsha)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            return try Call.decode(try command(call.eval))
        }
        return try Call.decode(reply)
    }
}
