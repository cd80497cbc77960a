import ArgumentParser
import Glibc
import PushPosix

/// Where the gateway listens.
struct TargetOptions: ParsableArguments {
    @Option(help: "Gateway address (IPv4; the bench is for loopback).")
    var host = "127.0.0.1"
    @Option(help: "Gateway client TCP port (server.tcp).")
    var tcpPort = 3101
    @Option(help: "Gateway HTTP API port (server.http).")
    var httpPort = 3111

    func validate() throws {
        guard Posix.ipv4(host) != nil else { throw ValidationError("--host must be an IPv4 address") }
    }
}

/// How the client connections are opened and held.
struct ClientOptions: ParsableArguments {
    @Option(help: "Receiver processes (default: as many as --per-process needs).")
    var processes: Int?
    @Option(help: "Most connections per receiver process (a process may hold at most 20,000 files).")
    var perProcess = 18_000
    @Option(help: "Source addresses to spread connections over, from --first-source on (default: one per 12,000).")
    var sources: Int?
    @Option(help: "The first source address; the next ones count up its last number.")
    var firstSource = "127.0.0.2"
    /// Each AUTH is a Redis script at the gateway: the number in flight is the Redis queue a connect storm builds.
    @Option(
        help: "Connections between connect() and AUTH_REPLY at once, over all processes (default 2000; replay: all).")
    var inFlight: Int?
    @Option(help: "New connections per second over all processes (0: as fast as --in-flight allows).")
    var connectRate = 0.0
    @Option(help: "Seconds between two heartbeats of a connection.")
    var heartbeat = 30.0
    @Option(help: "User ids are <prefix><n>, device keys k<n>.")
    var userPrefix = "u"
    @Option(help: "Seconds allowed for every connection to authenticate (default: 120, or N / 2000 when longer).")
    var connectTimeout: Double?

    func validate() throws {
        guard perProcess >= 1, perProcess <= 19_000 else { throw ValidationError("--per-process must be 1…19000") }
        guard (inFlight ?? 1) >= 1 else { throw ValidationError("--in-flight must be at least 1") }
        guard Posix.ipv4(firstSource) != nil else { throw ValidationError("--first-source must be an IPv4 address") }
    }

    /// The connect timeout for `count` connections: generous enough for about 2,000 connects a second.
    func connectTimeout(for count: Int) -> Double { connectTimeout ?? max(120, Double(count) / 2000) }

    /// Receiver processes for `count` connections.
    func processCount(for count: Int) -> Int {
        max(processes ?? 1, (count + perProcess - 1) / perProcess, 1)
    }

    /// The source addresses for `count` connections. Each has about 28,000 ephemeral ports towards one
    /// destination, but connect() takes the even half first (Linux ≥ 4.6 leaves odd ones to bind()) and, once
    /// those are gone, searches ever longer for a free odd one: connect rates collapse past about 14,000
    /// connections per address. So: at most 12,000 each.
    func sourceAddresses(for count: Int) throws -> [String] {
        let wanted = max(1, sources ?? (count + 11_999) / 12_000)
        let parts = firstSource.split(separator: ".").compactMap { Int($0) }
        guard parts.count == 4, parts[3] + wanted - 1 <= 254 else {
            throw BenchError("\(wanted) source addresses from \(firstSource) do not fit in its /24")
        }
        return (0..<wanted).map { "\(parts[0]).\(parts[1]).\(parts[2]).\(parts[3] + $0)" }
    }
}

/// Where results go and what else to watch.
struct ReportOptions: ParsableArguments {
    @Option(help: "Also write the results as JSON to this file.")
    var json: String?
    @Option(help: "The gateway's master pid: report CPU and memory of it and its workers.")
    var gatewayPid: Int32?
    @Option(help: "redis-server's pid: report its CPU (repeated: the sum, e.g. every node of a Redis Cluster).")
    var redisPid: [Int32] = []
}

/// Today's date and time in UTC, ISO 8601, for result files.
func utcTimestamp() -> String {
    let parts = Posix.calendarTime(utc: true)
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}
