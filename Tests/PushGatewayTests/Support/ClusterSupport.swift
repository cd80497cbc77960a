// Helpers for the cluster tests (SPEC §1 process model, §5 nodes): the master's worker processes, the nodes a
// gateway lists, which node (worker pid) holds a device, and stored-message collection across reconnects.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The live (not zombie) child processes of `parent`, from /proc/<pid>/stat, sorted.
func childPIDs(of parent: pid_t) -> [pid_t] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var children: [pid_t] = []
    for entry in entries {
        guard let pid = pid_t(entry),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] != "Z", fields[0] != "X", pid_t(fields[1]) == parent else { continue }
        children.append(pid)
    }
    return children.sorted()
}

/// The worker pid inside a node id (`<host>-<pid>-<random>`).
func pidOfNode(_ node: String) -> pid_t? {
    let parts = node.split(separator: "-")
    guard parts.count >= 3 else { return nil }
    return pid_t(parts[parts.count - 2])
}

extension GatewayProcess {
    /// The master's live worker processes (the gateway's pid is the master's: `sh` execs it).
    var workerPIDs: [pid_t] { childPIDs(of: pid) }

    /// GET /v1/nodes → `nodes`; throws unless 200 with a list.
    func nodeList() async throws -> [[String: Any]] {
        let response = try await http(HTTP.request("GET", "/v1/nodes"))
        guard response.status == 200, let nodes = response.json?["nodes"] as? [[String: Any]] else {
            throw TestError("GET /v1/nodes: \(response)")
        }
        return nodes
    }

    /// Waits (at most `timeout` s) until the master has `count` live workers and GET /v1/nodes lists `nodes`
    /// nodes (default `count`: every worker registered); returns the worker pids.
    @discardableResult
    func waitForWorkers(_ count: Int, nodes: Int? = nil, timeout: Double = 10) async throws -> [pid_t] {
        let wanted = nodes ?? count
        var listed: [[String: Any]] = []
        let ready = try await eventually(timeout: timeout) {
            guard workerPIDs.count == count else { return false }
            listed = (try? await nodeList()) ?? []
            return listed.count == wanted
        }
        guard ready else {
            throw TestError(
                "expected \(count) workers and \(wanted) nodes; workers \(workerPIDs), nodes \(listed); log:\n\(log.suffix(3000))")
        }
        return workerPIDs
    }

    /// POST /v1/push with `body` on a fresh connection; a failure (no answer) says which request and carries the
    /// gateway's log.
    func pushLogged(_ body: String) async throws -> HTTPResponse {
        do { return try await push(body) } catch {
            throw TestError("POST /v1/push \(body) on port \(httpPort): \(error); workers \(workerPIDs); log:\n\(log.suffix(4000))")
        }
    }

    /// key → node id of `user`'s devices, from GET /v1/users/{uid}.
    func deviceNodes(_ user: String) async throws -> [String: String] {
        let info: [String: Any]
        do { info = try await userInfo(user) } catch {
            throw TestError("GET /v1/users/\(user) on port \(httpPort): \(error); workers \(workerPIDs); log:\n\(log.suffix(3000))")
        }
        var nodes: [String: String] = [:]
        for device in (info["devices"] as? [[String: Any]]) ?? [] {
            if let key = device["key"] as? String, let node = device["node"] as? String { nodes[key] = node }
        }
        return nodes
    }

    /// Waits (at most `timeout` s) until GET /v1/users/{uid} lists all of `keys`; returns key → node.
    func waitForDevices(_ user: String, keys: [String], timeout: Double = 5) async throws -> [String: String] {
        var nodes: [String: String] = [:]
        let ok = try await eventually(timeout: timeout) {
            nodes = try await deviceNodes(user)
            return keys.allSatisfy { nodes[$0] != nil }
        }
        guard ok else { throw TestError("GET /v1/users/\(user) lists \(nodes), expected keys \(keys)") }
        return nodes
    }
}

extension WireClient {
    /// Connects and sends AUTH the way a reconnecting client does: when the answer is DISCONNECT with
    /// `reconnect: true` instead of AUTH_REPLY, it waits `after_ms` (capped at `maxWait` s) and tries again, at
    /// most `attempts` times. Returns the client, the AUTH_REPLY's JSON and the DISCONNECT bodies met on the way.
    static func reconnecting(
        _ gateway: GatewayProcess, mid: MID, key: String, lastSeq: Int? = nil, attempts: Int = 4, maxWait: Double = 5
    ) async throws -> (client: WireClient, reply: [String: Any], refusals: [String]) {
        var refusals: [String] = []
        for _ in 0..<attempts {
            let client = try await WireClient.connect(gateway)
            try client.send(op: Op.auth, seq: 1, text: authBody(mid: mid, key: key, lastSeq: lastSeq))
            let frame = try await client.readFrame()
            if let frame, frame.op == Op.authReply, frame.seq == 1, let json = frame.json {
                return (client, json, refusals)
            }
            client.close()
            guard let frame, frame.op == Op.disconnect, let body = frame.json, body["reconnect"] as? Bool == true else {
                throw TestError("AUTH \(key): expected AUTH_REPLY (or DISCONNECT reconnect:true), got \(String(describing: frame))")
            }
            refusals.append(frame.text)
            try await pause(min(maxWait, (number(body["after_ms"]) ?? 0) / 1000))
        }
        throw TestError("AUTH \(key): refused \(attempts) times: \(refusals)")
    }

    /// Reads application frames until one with seq `last` arrives; returns them. Throws on a close, a non
    /// application frame, or a frame later than `timeout` s.
    func readStored(through last: Int, timeout: Double = 10) async throws -> [Frame] {
        var frames: [Frame] = []
        while frames.last.map({ Int($0.seq) }) != last {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed after \(frames.count) frames (seqs \(frames.map(\.seq))) waiting for seq \(last)")
            }
            guard frame.op >= 1000 else {
                throw TestError("expected stored messages up to seq \(last), got \(frame) after seqs \(frames.map(\.seq))")
            }
            frames.append(frame)
            if frames.count > last + 50 { throw TestError("runaway: \(frames.count) frames, seqs \(frames.map(\.seq))") }
        }
        return frames
    }
}

/// Checks that `seqs` is exactly `range`, in order (no gap, no duplicate, no reordering).
func expectSeqs(
    _ seqs: [Int], _ range: ClosedRange<Int>, _ who: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    if seqs != Array(range) {
        var problems: [String] = []
        let seen = Set(seqs)
        let missing = range.filter { !seen.contains($0) }
        if !missing.isEmpty { problems.append("missing \(missing.prefix(20))\(missing.count > 20 ? "…" : "")") }
        var counts: [Int: Int] = [:]
        seqs.forEach { counts[$0, default: 0] += 1 }
        let duplicates = counts.filter { $0.value > 1 }.keys.sorted()
        if !duplicates.isEmpty { problems.append("duplicated \(duplicates.prefix(20))") }
        let outOfOrder = zip(seqs, seqs.dropFirst()).filter { $0.0 >= $0.1 }.prefix(10).map { "\($0.0)→\($0.1)" }
        if !outOfOrder.isEmpty { problems.append("out of order \(outOfOrder)") }
        let extra = seqs.filter { !range.contains($0) }
        if !extra.isEmpty { problems.append("outside \(range): \(extra.prefix(20))") }
        Issue.record(
            "\(who): expected seqs \(range) in order; \(problems.joined(separator: "; ")); got \(seqs.count): \(seqs.prefix(60))\(seqs.count > 60 ? "…" : "")",
            sourceLocation: sourceLocation)
    }
}

/// Sends `bodies` as POST /v1/push over `connections` keep-alive connections to `port` (pipelined in bursts of
/// `burst`); body i goes on connection i % connections. Returns the responses indexed like `bodies` (nil where a
/// connection failed; the error text is in `errors`).
func pushConcurrently(
    port: UInt16, bodies: [String], connections: Int, burst: Int = 5, path: String = "/v1/push"
) async throws -> (responses: [HTTPResponse?], errors: [String]) {
    let parts = try await withThrowingTaskGroup(of: ([(Int, HTTPResponse)], String?).self) { group in
        for c in 0..<connections {
            let mine = Array(stride(from: c, to: bodies.count, by: connections))
            group.addTask {
                try await offload {
                    var out: [(Int, HTTPResponse)] = []
                    do {
                        let connection = try HTTPConnection(port: port)
                        defer { connection.close() }
                        for start in stride(from: 0, to: mine.count, by: burst) {
                            let slice = Array(mine[start..<min(start + burst, mine.count)])
                            try connection.send(slice.map { HTTP.request("POST", path, body: bodies[$0]) })
                            for index in slice {
                                guard let response = try connection.readResponseSync(timeout: 10) else {
                                    throw TestError("port \(port): closed before the answer to push \(index)")
                                }
                                out.append((index, response))
                            }
                        }
                        return (out, nil)
                    } catch {
                        return (out, "connection \(c) to port \(port): \(error)")
                    }
                }
            }
        }
        var all: [([(Int, HTTPResponse)], String?)] = []
        for try await part in group { all.append(part) }
        return all
    }
    var responses = [HTTPResponse?](repeating: nil, count: bodies.count)
    var errors: [String] = []
    for (answers, error) in parts {
        for (index, response) in answers { responses[index] = response }
        if let error { errors.append(error) }
    }
    return (responses, errors)
}

/// Several gateways (`pushgw serve`, one master each) on different ports sharing one redis-server, or one Redis
/// Cluster of their own: standing in for gateways on different hosts.
final class SharedRedisCluster: @unchecked Sendable {
    let directory: URL
    /// The redis-server (``TestStorage/server``).
    let redis: RedisServer!
    /// The Redis Cluster (``TestStorage/cluster``).
    let redisCluster: RedisCluster?
    let gateways: [GatewayProcess]

    private init(directory: URL, redis: RedisServer?, redisCluster: RedisCluster?, gateways: [GatewayProcess]) {
        self.directory = directory
        self.redis = redis
        self.redisCluster = redisCluster
        self.gateways = gateways
    }

    /// Starts a redis-server (or a Redis Cluster), then `instances` gateways on it (each with `overrides`), then
    /// waits until every gateway lists all the nodes (`instances × workers`) in GET /v1/nodes.
    static func start(
        instances: Int = 2, _ overrides: [String: String] = [:], storage: TestStorage = .server
    ) async throws -> SharedRedisCluster {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("pushgw-it-redis-" + UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var redis: RedisServer?
        var redisCluster: RedisCluster?
        var gateways: [GatewayProcess] = []
        do {
            let choice: RedisChoice
            switch storage {
            case .server:
                let server = try await RedisServer.start(in: directory)
                redis = server
                choice = .shared(server)
            case .cluster:
                let cluster = try await RedisCluster.start(in: directory)
                redisCluster = cluster
                choice = .redisCluster(seeds: cluster.seeds)
            }
            for _ in 0..<instances { gateways.append(try await GatewayProcess.start(overrides, redis: choice)) }
            let workers = Int(overrides["PUSHGW_SERVER_WORKERS"] ?? "1") ?? 1
            for gateway in gateways { try await gateway.waitForWorkers(workers, nodes: workers * instances) }
        } catch {
            gateways.forEach { $0.stop() }
            redis?.stop()
            redisCluster?.stop()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        return SharedRedisCluster(directory: directory, redis: redis, redisCluster: redisCluster, gateways: gateways)
    }

    /// Stops the gateways, then the Redis.
    func stop() {
        gateways.forEach { $0.stop() }
        redis?.stop()
        redisCluster?.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A value shared with blocking worker threads, behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    var current: Value { lock.withLock { value } }

    func update<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}

/// The JSON body of a DISCONNECT frame, if `frame` is one.
func disconnectBody(_ frame: Frame?) -> [String: Any]? {
    guard let frame, frame.op == Op.disconnect else { return nil }
    return frame.json
}

/// EVALSHA calls the Redis server has run so far (`INFO commandstats`).
func evalshaCalls(_ redis: RedisServer) throws -> Int {
    let text = try redisCall(redis, ["INFO", "commandstats"])
    guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:calls=") })
    else { return 0 }
    return Int(line.dropFirst("cmdstat_evalsha:calls=".count).prefix { $0.isNumber }) ?? 0
}

/// One command over a raw RESP connection; the reply's text: an integer's or a simple string's line, or a bulk
/// string's contents.
func redisCall(_ redis: RedisServer, _ args: [String]) throws -> String { try redisCall(port: redis.port, args) }

/// ``redisCall(_:_:)`` to the server on 127.0.0.1:`port`.
func redisCall(port: UInt16, _ args: [String]) throws -> String {
    let socket = try TestSocket(port: port)
    defer { socket.close() }
    var request = "*\(args.count)\r\n"
    for arg in args { request += "$\(arg.utf8.count)\r\n\(arg)\r\n" }
    try socket.sendAll(Array(request.utf8))
    let deadline = Date().addingTimeInterval(5)
    while true {
        let text = String(decoding: socket.inbound, as: UTF8.self)
        if let end = text.range(of: "\r\n") {
            let first = text[..<end.lowerBound]
            guard first.hasPrefix("$"), let length = Int(first.dropFirst()) else { return String(first.dropFirst()) }
            let body = Array(socket.inbound.dropFirst(first.utf8.count + 2))
            if body.count >= length { return String(decoding: body.prefix(length), as: UTF8.self) }
        }
        guard try socket.fill(until: deadline) == .data else { throw TestError("no reply from Redis to \(args)") }
    }
}
