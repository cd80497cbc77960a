/// What nodes tell each other over Redis pub/sub (SPEC §5): on a node's channel `pg:node:<id>`, stored
/// messages (published by `store.lua` as `<uid>\n<element>`), transient pushes and kicks; on `pg:topic:<name>`
/// and `pg:all`, topic and broadcast messages.
///
/// Messages other than stored ones start with byte 0x01 and a letter, then fields separated by `\n`, the payload
/// last. User ids, device keys, topics and node ids never hold control characters, so neither the 0x01 nor a
/// newline can appear inside a field.
///
/// A topic message or broadcast its sender delivers to its own members when it comes back on the sender's
/// subscription (per-topic order, README) carries a `serial` (> 0) the sender matches it by: written into the origin
/// field as `<node>:<serial>`. Node ids never hold a `:` (`Worker.makeNodeID`), so a node that does not know
/// serials reads `<node>:<serial>` as another node's id and delivers the message, and `serial` 0 writes the bare
/// node id, as before serials.
public enum NodeMessage: Equatable, Sendable {
    /// A stored message for a user with a session on the receiving node.
    case stored(NodeDelivery)
    /// A transient push to a user's devices (`device` nil: all of them) on the receiving node.
    case transient(user: String, device: String?, op: UInt32, payload: [UInt8])
    /// DISCONNECT and close a user's device on the receiving node.
    case kick(user: String, device: String)
    /// A message to a topic's members, from node `origin`: number `serial` of the messages it delivers to its own
    /// members when they come back, 0 for one it delivered to them itself.
    case topic(origin: String, serial: UInt64, topic: String, op: UInt32, payload: [UInt8])
    /// A message to every connection (`room` nil) or to one goim room, from node `origin`, `serial` as for topics.
    case broadcast(origin: String, serial: UInt64, room: String?, op: UInt32, payload: [UInt8])
    /// A goim push by device key (keys are unique across users in goim), from node `origin`, on `pg:all`.
    case keyed(origin: String, key: String, op: UInt32, payload: [UInt8])
    /// Another node now holds a session of `user` too (published by `session.lua` to the nodes that already held
    /// one): transient pushes to the user must go through Redis from here on.
    case presence(user: String)

    private static let marker: UInt8 = 0x01

    public init?(payload: [UInt8]) {
        guard payload.first == Self.marker else {
            guard let delivery = NodeDelivery(payload: payload) else { return nil }
            self = .stored(delivery)
            return
        }
        guard payload.count >= 2 else { return nil }
        let kind = payload[1]
        var fields = payload[2...].split(separator: UInt8(ascii: "\n"), maxSplits: Self.fieldCount(kind), omittingEmptySubsequences: false)
            .map { Array($0) }
        guard fields.first == [] else { return nil }  // the newline right after the kind letter
        fields.removeFirst()
        func text(_ index: Int) -> String { String(decoding: fields[index], as: UTF8.self) }
        func op(_ index: Int) -> UInt32? { UInt32(text(index)) }
        switch kind {
        case UInt8(ascii: "T") where fields.count == 4:
            guard let op = op(2) else { return nil }
            self = .transient(user: text(0), device: fields[1].isEmpty ? nil : text(1), op: op, payload: fields[3])
        case UInt8(ascii: "K") where fields.count == 2:
            self = .kick(user: text(0), device: text(1))
        case UInt8(ascii: "S") where fields.count == 1:
            self = .presence(user: text(0))
        case UInt8(ascii: "P") where fields.count == 4:
            guard let op = op(2) else { return nil }
            let (origin, serial) = Self.origin(text(0))
            self = .topic(origin: origin, serial: serial, topic: text(1), op: op, payload: fields[3])
        case UInt8(ascii: "B") where fields.count == 4:
            guard let op = op(2) else { return nil }
            let (origin, serial) = Self.origin(text(0))
            self = .broadcast(
                origin: origin, serial: serial, room: fields[1].isEmpty ? nil : text(1), op: op, payload: fields[3])
        case UInt8(ascii: "Y") where fields.count == 4:
            guard let op = op(2) else { return nil }
            self = .keyed(origin: text(0), key: text(1), op: op, payload: fields[3])
        default:
            return nil
        }
    }

    /// `<node>:<serial>` → (node, serial); a bare node id (or anything after a `:` that is no serial) → serial 0.
    private static func origin(_ field: String) -> (String, UInt64) {
        guard let colon = field.lastIndex(of: ":"), let serial = UInt64(field[field.index(after: colon)...]), serial > 0
        else { return (field, 0) }
        return (String(field[..<colon]), serial)
    }

    private static func originField(_ origin: String, _ serial: UInt64) -> String {
        serial == 0 ? origin : origin + ":" + String(serial)
    }

    /// Fields after the kind letter's newline, the payload last: the split stops there so the payload may hold
    /// newlines.
    private static func fieldCount(_ kind: UInt8) -> Int {
        switch kind {
        case UInt8(ascii: "K"): 2
        case UInt8(ascii: "S"): 1
        default: 4
        }
    }

    public var encoded: [UInt8] {
        func join(_ kind: Character, _ fields: [String], payload: [UInt8]?) -> [UInt8] {
            var bytes: [UInt8] = [Self.marker, kind.asciiValue!, UInt8(ascii: "\n")]
            bytes += Array(fields.joined(separator: "\n").utf8)
            if let payload {
                bytes.append(UInt8(ascii: "\n"))
                bytes += payload
            }
            return bytes
        }
        switch self {
        case .stored(let delivery): return delivery.encoded
        case .transient(let user, let device, let op, let payload):
            return join("T", [user, device ?? "", String(op)], payload: payload)
        case .kick(let user, let device):
            return join("K", [user, device], payload: nil)
        case .topic(let origin, let serial, let topic, let op, let payload):
            return join("P", [Self.originField(origin, serial), topic, String(op)], payload: payload)
        case .broadcast(let origin, let serial, let room, let op, let payload):
            return join("B", [Self.originField(origin, serial), room ?? "", String(op)], payload: payload)
        case .keyed(let origin, let key, let op, let payload):
            return join("Y", [origin, key, String(op)], payload: payload)
        case .presence(let user):
            return join("S", [user], payload: nil)
        }
    }
}
