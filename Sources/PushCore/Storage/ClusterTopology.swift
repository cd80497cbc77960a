/// What a Redis Cluster client needs to know about the cluster (SPEC §9), read from its replies: which master
/// serves each slot (`CLUSTER SLOTS`), and where a master sends a command for a slot it does not serve (`MOVED`,
/// `ASK`) or asks it to be sent again (`TRYAGAIN`, `CLUSTERDOWN`). Plain values, so the client's decisions are
/// tested without sockets (the client itself sits on the loop, in PushPosix).

/// A cluster node's client address.
public struct ClusterNode: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, `[v6]:port` or `v6:port` (as Redis writes it in MOVED and in `CLUSTER NODES`); nil otherwise.
    /// An empty host (Redis 7 writes `:port` when the node does not know its own address) stays empty: the caller
    /// takes the host it asked.
    public init?(address: Substring) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]),
            port > 0
        else { return nil }
        var host = address[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.init(host: String(host), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The slot map: the master of every slot, and its replicas.
public struct ClusterSlotMap: Equatable, Sendable {
    /// The masters, in the order `CLUSTER SLOTS` first names them.
    public private(set) var masters: [ClusterNode] = []
    /// The replicas of each master, as the same reply lists them.
    public private(set) var replicas: [ClusterNode: [ClusterNode]] = [:]
    /// For each slot, the index of its master in `masters`; -1 where no master serves it.
    private var owners = [Int16](repeating: -1, count: RedisSlot.count)

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        /// The reply is not what `CLUSTER SLOTS` answers; `detail` says where.
        case malformed(String)
        /// Redis answered an error (e.g. `ERR This instance has cluster support disabled`).
        case error(String)

        public var description: String {
            switch self {
            case .malformed(let detail): "CLUSTER SLOTS: unexpected reply: \(detail)"
            case .error(let message): "CLUSTER SLOTS: \(message)"
            }
        }
    }

    /// An empty map: no slot is served.
    public init() {}

    /// Reads a `CLUSTER SLOTS` reply: entries `[start, end, [host, port, id…], [replica host, port, id…]…]`. A node
    /// whose host is empty (or `?`) gets `askedHost`, the host of the node the command was sent to.
    public init(slotsReply reply: RedisValue, askedHost: String) throws(ParseError) {
        if case .error(let message) = reply { throw .error(message) }
        guard case .array(let entries) = reply else { throw .malformed("not an array") }
        func node(_ value: RedisValue, _ entry: Int) throws(ParseError) -> ClusterNode {
            guard case .array(let fields) = value, fields.count >= 2, case .string(let hostBytes) = fields[0],
                case .integer(let port) = fields[1], let port16 = UInt16(exactly: port), port16 > 0
            else { throw .malformed("entry \(entry): a node is not [host, port, …]") }
            let host = String(decoding: hostBytes, as: UTF8.self)
            return ClusterNode(host: host.isEmpty || host == "?" ? askedHost : host, port: port16)
        }
        for (number, entry) in entries.enumerated() {
            guard case .array(let fields) = entry, fields.count >= 3, case .integer(let start) = fields[0],
                case .integer(let end) = fields[1], 0 <= start, start <= end, end < RedisSlot.count
            else { throw .malformed("entry \(number): not [start, end, master, …] with 0 ≤ start ≤ end < 16384") }
            let master = try node(fields[2], number)
            var followers: [ClusterNode] = []
            for field in fields[3...] { followers.append(try node(field, number)) }
            let index = masterIndex(master)
            for replica in followers where !(replicas[master] ?? []).contains(replica) {
                replicas[master, default: []].append(replica)
            }
            for slot in Int(start)...Int(end) { owners[slot] = Int16(index) }
        }
    }

    /// The master serving `slot`, nil when none does.
    public func master(of slot: UInt16) -> ClusterNode? {
        let index = owners[Int(slot) & (RedisSlot.count - 1)]
        return index < 0 ? nil : masters[Int(index)]
    }

    /// The master serving `key`'s slot.
    public func master(ofKey key: String) -> ClusterNode? { master(of: RedisSlot.of(key: key)) }

    /// Slots no master serves (0 in a healthy cluster).
    public var unservedSlots: Int { owners.reduce(0) { $0 + ($1 < 0 ? 1 : 0) } }

    /// The map after a `MOVED`: `slot` is served by `node` from now on (until the next full refresh).
    public mutating func move(slot: UInt16, to node: ClusterNode) {
        owners[Int(slot) & (RedisSlot.count - 1)] = Int16(masterIndex(node))
    }

    /// `node`'s index in `masters`, appended if it is new.
    private mutating func masterIndex(_ node: ClusterNode) -> Int {
        if let known = masters.firstIndex(of: node) { return known }
        masters.append(node)
        return masters.count - 1
    }
}

/// What a cluster node's error reply asks of the client.
public enum ClusterRedirect: Equatable, Sendable {
    /// `MOVED <slot> <address>`: the slot lives there now; send this command and all later ones for the slot there
    /// (and refresh the map).
    case moved(slot: UInt16, to: ClusterNode)
    /// `ASK <slot> <address>`: the slot is being migrated; send this one command there, after `ASKING`.
    case ask(slot: UInt16, to: ClusterNode)
    /// `TRYAGAIN` (a multi-key command during a migration) or `CLUSTERDOWN` (the cluster cannot serve, e.g. during
    /// a failover): send the same command again after a pause.
    case retry

    /// Reads an error reply's text; nil for an error that is not about the cluster (the command's own failure).
    /// An empty host in the address (`:6380`) becomes `askedHost`.
    public init?(error: String, askedHost: String) {
        if error.hasPrefix("TRYAGAIN") || error.hasPrefix("CLUSTERDOWN") {
            self = .retry
            return
        }
        let parts = error.split(separator: " ")
        guard parts.count == 3, let slot = UInt16(parts[1]), Int(slot) < RedisSlot.count,
            var node = ClusterNode(address: parts[2])
        else { return nil }
        if node.host.isEmpty { node.host = askedHost }
        switch parts[0] {
        case "MOVED": self = .moved(slot: slot, to: node)
        case "ASK": self = .ask(slot: slot, to: node)
        default: return nil
        }
    }
}

/// `redis.cluster`: the seed nodes, `host:port` separated by commas (SPEC §9).
public enum ClusterSeeds {
    /// The seeds of `text`, or the first entry that is not `host:port` with a port from 1 to 65535.
    public static func parse(_ text: String) -> Result<[ClusterNode], ClusterSeedError> {
        var seeds: [ClusterNode] = []
        for entry in text.split(separator: ",") {
            let trimmed = entry.trimmingSpaces
            guard let node = ClusterNode(address: trimmed), !node.host.isEmpty else {
                return .failure(ClusterSeedError(entry: String(trimmed)))
            }
            if !seeds.contains(node) { seeds.append(node) }
        }
        return seeds.isEmpty ? .failure(ClusterSeedError(entry: "")) : .success(seeds)
    }
}

/// An entry of `redis.cluster` that is not `host:port`.
public struct ClusterSeedError: Error, Equatable, Sendable {
    public var entry: String
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
