import PushCore
import PushPosix

/// SUB and UNSUB `{"topics":[…]}` (SPEC §2): the connection joins or leaves topics; the node listens on a topic's
/// channel while it has a member here.
extension ConnectionServer {
    /// Most topics one connection may join.
    static let maxTopics = 64

    func subscribe(_ connection: ClientConnection, _ names: [String], sequence: UInt32) {
        guard let joined = join(connection, topics: names) else {
            // Not fatal: the connection stays up.
            connection.send(ProtocolError.badBody(.sub, "at most \(Self.maxTopics) topics per connection").frame(op: .sub, sequence: sequence))
            return
        }
        connection.send(Self.topicsReply(.subReply, joined, sequence: sequence))
    }

    func unsubscribe(_ connection: ClientConnection, _ names: [String], sequence: UInt32) {
        connection.send(Self.topicsReply(.unsubReply, leave(connection, topics: names), sequence: sequence))
    }

    /// The topics `connection` joined with SUB.
    func topics(of connection: ClientConnection) -> [String] { topicsOf[ObjectIdentifier(connection)] ?? [] }

    /// Leaves every topic: the connection is closing.
    func leaveAllTopics(_ connection: ClientConnection) {
        _ = leave(connection, topics: topics(of: connection))
    }

    /// Joins `names`; returns the connection's topics among them (nil when past `maxTopics`).
    private func join(_ connection: ClientConnection, topics names: [String]) -> [String]? {
        let id = ObjectIdentifier(connection)
        let joined = topicsOf[id] ?? []
        let new = Array(Set(names).subtracting(joined)).sorted()
        guard joined.count + new.count <= Self.maxTopics else { return nil }
        for topic in new where topics.join(connection, topic) { store.subscribe(topic: topic) }
        let now = joined + new
        if !now.isEmpty { topicsOf[id] = now }
        return names.filter { now.contains($0) }
    }

    /// Leaves `names`; returns those that were left.
    private func leave(_ connection: ClientConnection, topics names: [String]) -> [String] {
        let id = ObjectIdentifier(connection)
        let joined = topicsOf[id] ?? []
        let left = names.filter { joined.contains($0) }
        for topic in Set(left) where topics.leave(connection, topic) { store.unsubscribe(topic: topic) }
        let remaining = joined.filter { !left.contains($0) }
        topicsOf[id] = remaining.isEmpty ? nil : remaining
        return left
    }

    private static func topicsReply(_ operation: Operation, _ names: [String], sequence: UInt32) -> Frame {
        var body = JSONWriter()
        body.object {
            $0.key("topics")
            $0.array { writer in names.forEach { writer.value($0) } }
        }
        return Frame(operation, sequence: sequence, body: body.bytes)
    }
}
