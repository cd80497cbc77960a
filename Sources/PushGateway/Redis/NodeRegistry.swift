import Logging
import PushCore
import PushPosix

/// This node's entry in `pg:nodes` (SPEC §5: node id → address, connection count, updated-at, and its group,
/// `server.group`, for the route rules), refreshed every couple of seconds; entries not refreshed for
/// `staleAfter` belong to dead nodes and are ignored and pruned. An entry without `group` (written by an older
/// pushgw) is in `default`.
final class NodeRegistry {
    /// One live node as `pg:nodes` describes it.
    struct Node {
        let id: String
        let address: String
        /// The WebSocket listener's address ("" when it has none).
        let webSocketAddress: String
        /// The TLS and WebSocket-over-TLS listeners' addresses (`server.tls`, `server.wss`; "" when off).
        var tlsAddress = ""
        var wssAddress = ""
        /// `server.group`.
        let group: String
        let connections: Int
        let updatedAt: UInt64
    }

    static let refreshSeconds = 2.0
    static let staleAfter: UInt64 = 10

    private let scripts: ScriptRunner
    /// This node's id, its field in `pg:nodes`.
    private let node: String
    private let address: String
    private let webSocketAddress: String
    private let tlsAddress: String
    private let wssAddress: String
    private let group: String
    private let connections: () -> Int
    /// This node's member counts per group (`t:<topic>`, `r:<room>`), published for cross-node counts.
    private let groupCounts: () -> [(String, Int)]
    private var timer: LoopTimer!

    init(
        loop: EventLoop, scripts: ScriptRunner, node: String, address: String, webSocketAddress: String,
        tlsAddress: String = "", wssAddress: String = "", group: String = RouteRules.defaultGroup,
        connections: @escaping () -> Int,
        groupCounts: @escaping () -> [(String, Int)]
    ) {
        self.scripts = scripts
        self.node = node
        self.address = address
        self.webSocketAddress = webSocketAddress
        self.tlsAddress = tlsAddress
        self.wssAddress = wssAddress
        self.group = group
        self.connections = connections
        self.groupCounts = groupCounts
        timer = LoopTimer(loop: loop) { [unowned self] in self.refresh() }
    }

    func start() {
        timer.start(after: 0.05, repeat: Self.refreshSeconds)
    }

    /// Removes this node's entry (a clean stop).
    func stop() {
        timer.stop()
        scripts.command(["HDEL", RedisKeys.nodes, node])
        scripts.command(["DEL", RedisKeys.counts(node)])
    }

    private func refresh() {
        guard scripts.isAvailable else { return }
        var value = JSONWriter()
        value.object {
            $0.field("addr", address)
            if !webSocketAddress.isEmpty { $0.field("ws", webSocketAddress) }
            if !tlsAddress.isEmpty { $0.field("tls", tlsAddress) }
            if !wssAddress.isEmpty { $0.field("wss", wssAddress) }
            $0.field("group", group)
            $0.field("conns", connections())
            $0.field("at", Posix.wallSeconds())
        }
        scripts.command(["HSET", RedisKeys.nodes, node, value.string])
        // `pg:counts:<node>`: rewritten with each refresh, and expiring with the node.
        let key = RedisKeys.counts(node)
        scripts.command(["DEL", key])
        let counts = groupCounts()
        if !counts.isEmpty {
            scripts.command(["HSET", key] + counts.flatMap { [$0.0, String($0.1)] })
            scripts.command(["EXPIRE", key, String(Self.staleAfter)])
        }
    }

    /// The members of group `field` (`t:<topic>` or `r:<room>`) across the live nodes; `local` is this node's
    /// own count, which is fresher than what it last wrote.
    func groupCount(_ field: String, local: Int, _ done: @escaping (Result<Int, StoreFailure>) -> Void) {
        groupCounts([(field, local)]) { done($0.map { $0[0] }) }
    }

    /// The members of each group across the live nodes, in the order asked: the node list is read once, then
    /// one HMGET of every asked field per other node.
    func groupCounts(_ groups: [(field: String, local: Int)], _ done: @escaping (Result<[Int], StoreFailure>) -> Void) {
        guard !groups.isEmpty else { return done(.success([])) }
        fetch { [scripts, node] result in
            switch result {
            case .failure(let error): done(.failure(error))
            case .success(let nodes):
                let others = nodes.filter { $0.id != node }
                var totals = groups.map(\.local)
                var remaining = others.count
                guard remaining > 0 else { return done(.success(totals)) }
                let fields = groups.map { Array($0.field.utf8) }
                for other in others {
                    scripts.send([Array("HMGET".utf8), Array(RedisKeys.counts(other.id).utf8)] + fields) { reply in
                        if case .success(.array(let values)) = reply {
                            for (index, value) in values.prefix(totals.count).enumerated() {
                                if case .string(let bytes) = value { totals[index] += Int(String(decoding: bytes, as: UTF8.self)) ?? 0 }
                            }
                        }
                        remaining -= 1
                        if remaining == 0 { done(.success(totals)) }
                    }
                }
            }
        }
    }

    /// Every group whose field starts with `prefix` (`r:live://`) and its members across the live nodes: this
    /// node's from `local`, which is fresher than what it last wrote, the others' from one HGETALL of their
    /// `pg:counts:<node>` each. It reads every group of every node: for queries such as goim's online/top, not for
    /// a hot path.
    func groupCounts(
        prefix: String, local: [(field: String, count: Int)], _ done: @escaping (Result<[String: Int], StoreFailure>) -> Void
    ) {
        fetch { [scripts, node] result in
            switch result {
            case .failure(let error): done(.failure(error))
            case .success(let nodes):
                var totals: [String: Int] = [:]
                for (field, count) in local where field.hasPrefix(prefix) { totals[field, default: 0] += count }
                let others = nodes.filter { $0.id != node }
                var remaining = others.count
                guard remaining > 0 else { return done(.success(totals)) }
                var failure: StoreFailure?
                for other in others {
                    scripts.send([Array("HGETALL".utf8), Array(RedisKeys.counts(other.id).utf8)]) { reply in
                        switch reply {
                        case .success(.array(let values)):
                            for index in stride(from: 0, to: values.count - 1, by: 2) {
                                guard case .string(let fieldBytes) = values[index], case .string(let countBytes) = values[index + 1]
                                else { continue }
                                let field = String(decoding: fieldBytes, as: UTF8.self)
                                guard field.hasPrefix(prefix), let count = Int(String(decoding: countBytes, as: UTF8.self))
                                else { continue }
                                totals[field, default: 0] += count
                            }
                        case .failure(let error): failure = .unavailable(error)
                        default: break
                        }
                        remaining -= 1
                        if remaining == 0 { done(failure.map { .failure($0) } ?? .success(totals)) }
                    }
                }
            }
        }
    }

    /// The live nodes, least loaded first; stale entries are pruned on the way.
    func fetch(_ done: @escaping (Result<[Node], StoreFailure>) -> Void) {
        scripts.send([Array("HGETALL".utf8), Array(RedisKeys.nodes.utf8)]) { [scripts] result in
            guard case .success(.array(let fields)) = result else {
                if case .failure(let error) = result { return done(.failure(.unavailable(error))) }
                return done(.success([]))
            }
            let now = Posix.wallSeconds()
            var nodes: [Node] = []
            var stale: [String] = []
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                guard case .string(let idBytes) = fields[index], case .string(let valueBytes) = fields[index + 1] else { continue }
                let id = String(decoding: idBytes, as: UTF8.self)
                guard let json = try? JSONParser.parse(valueBytes), let at = json["at"]?.int64Value,
                    now <= UInt64(max(0, at)) + Self.staleAfter
                else {
                    stale.append(id)
                    continue
                }
                var node = Node(
                    id: id, address: json["addr"]?.stringValue ?? "", webSocketAddress: json["ws"]?.stringValue ?? "",
                    group: json["group"]?.stringValue ?? RouteRules.defaultGroup,
                    connections: Int(json["conns"]?.int64Value ?? 0), updatedAt: UInt64(at))
                node.tlsAddress = json["tls"]?.stringValue ?? ""
                node.wssAddress = json["wss"]?.stringValue ?? ""
                nodes.append(node)
            }
            if !stale.isEmpty { scripts.command(["HDEL", RedisKeys.nodes] + stale) }
            done(.success(nodes.sorted { ($0.connections, $0.id) < ($1.connections, $1.id) }))
        }
    }
}
