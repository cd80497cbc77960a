/// One client connection's protocol state (SPEC §2): handshake → authenticating → online → closing. It decides
/// what each incoming frame means, its body parsed, and returns an action; the connection server does the I/O.
/// It is a value stored inline in each connection, so it is kept small.
public struct ClientSession: Sendable {
    public enum State: UInt8, Sendable {
        /// Waiting for AUTH.
        case handshake
        /// AUTH was accepted here and waits for Redis (the session script): frames that follow are held.
        case authenticating
        /// Authenticated.
        case online
        /// A fatal error or DISCONNECT was sent; input is ignored.
        case closing
    }

    /// What the connection server should do with a frame.
    public enum Action: Equatable, Sendable {
        /// Nothing to answer.
        case none
        /// Send this frame back.
        case reply(Frame)
        /// AUTH arrived: check it, call `authenticating(…)`, then `authenticated()` and answer with AUTH_REPLY.
        case authenticate(AuthRequest, sequence: UInt32)
        /// A frame that came while AUTH waits for Redis: hold it, and give it to `receive` again once online.
        case hold(Frame)
        /// HEARTBEAT: answer HEARTBEAT_REPLY with the online count of `room`.
        case heartbeat(sequence: UInt32)
        /// CHANGE_ROOM was applied: move the connection between room counts and send `reply`.
        case roomChanged(from: String?, to: String?, reply: Frame)
        /// ACK `{"seq":N}`: the device has everything up to `seq`.
        case ack(UInt64)
        /// SYNC `{"after":N,"limit":L}`: answer SYNC_REPLY with up to `limit` (at least 1) stored messages after
        /// `after`.
        case sync(after: UInt64, limit: Int, sequence: UInt32)
        /// READ `{"seq":N}`: the user read up to `seq`; answer READ_REPLY with the unread count.
        case read(UInt64, sequence: UInt32)
        /// SUB `{"topics":[…]}`: join `topics` (valid names, as given), answer SUB_REPLY.
        case join([String], sequence: UInt32)
        /// UNSUB `{"topics":[…]}`: leave `topics`, answer UNSUB_REPLY.
        case leave([String], sequence: UInt32)
        /// Send ERROR; when `error.isFatal`, close after it.
        case fail(ProtocolError, operation: Operation, sequence: UInt32)
    }

    // Declared widest first: a connection holds one of these, and a 1-byte field in front would cost 7 bytes of
    // padding per connection.
    public private(set) var user = ""
    public private(set) var key = ""
    public private(set) var platform = ""
    public private(set) var room: String?
    /// Accepted application operations, sorted; empty accepts all.
    public private(set) var accepts: [UInt32] = []
    public private(set) var state: State = .handshake

    public init() {}

    /// Interprets one frame from the client.
    public mutating func receive(_ frame: Frame) -> Action {
        switch state {
        case .closing:
            return .none
        case .handshake:
            guard frame.operation == .auth else {
                return fail(.authRequired(got: frame.operation), frame)
            }
            do {
                return .authenticate(try AuthRequest(body: frame.body), sequence: frame.sequence)
            } catch {
                return fail(error, frame)
            }
        case .authenticating:
            return .hold(frame)
        case .online:
            return receiveOnline(frame)
        }
    }

    /// AUTH was accepted as `user` on device `key` and waits for Redis: the session counts as this user's (it is
    /// indexed, and gets pushes) while frames from the client are held.
    public mutating func authenticating(_ request: AuthRequest, key: String) {
        state = .authenticating
        user = request.user
        self.key = key
        platform = request.platform
        room = request.room
        accepts = Self.normalized(request.accepts)
    }

    /// Redis answered the AUTH: the session is online and held frames can be received.
    public mutating func authenticated() {
        if state == .authenticating { state = .online }
    }

    /// Whether AUTH is waiting for Redis.
    public var isAuthenticating: Bool { state == .authenticating }

    /// Stops interpreting input: an ERROR or DISCONNECT is on its way and the connection will close.
    public mutating func closing() {
        state = .closing
    }

    /// Whether an application message with `operation` is delivered to this connection.
    public func accepts(_ operation: Operation) -> Bool {
        !operation.isApplication || accepts.isEmpty || Self.contains(accepts, operation.rawValue)
    }

    private mutating func receiveOnline(_ frame: Frame) -> Action {
        switch frame.operation {
        case .heartbeat:
            return .heartbeat(sequence: frame.sequence)
        case .auth:
            return fail(.alreadyAuthenticated, frame)
        case .subOps, .unsubOps:
            guard let ops = Self.parseOperationList(frame.body) else {
                return fail(.badBody(frame.operation, "expected operation numbers like \"1000,1001\""), frame)
            }
            if frame.operation == .subOps {
                let merged = Self.normalized(accepts + ops)
                guard merged.count <= AuthRequest.maxAccepts else {
                    return fail(.badBody(frame.operation, "more than \(AuthRequest.maxAccepts) operations"), frame)
                }
                accepts = merged
            } else {
                accepts.removeAll { ops.contains($0) }
            }
            let reply: Operation = frame.operation == .subOps ? .subOpsReply : .unsubOpsReply
            return .reply(Frame(reply, sequence: frame.sequence, body: frame.body))
        case .changeRoom:
            guard let value = Self.changeRoomTarget(frame.body) else {
                return fail(.badBody(frame.operation, "expected {\"room_id\":\"…\"} or a bare room id"), frame)
            }
            let newRoom = value.flatMap { $0.isEmpty ? nil : $0 }
            guard newRoom.map(AuthRequest.isValidIdentifier) ?? true else {
                return fail(.badBody(frame.operation, "room_id is too long or holds control characters"), frame)
            }
            let old = room
            room = newRoom
            return .roomChanged(from: old, to: newRoom, reply: Frame(.changeRoomReply, sequence: frame.sequence, body: frame.body))
        case .sendMessage:
            // goim's comet hands SEND_MSG to its logic (which only logs it) and writes the proto back with its op and
            // seq and no body (internal/comet/operation.go, Operate's default case). pushgw has no logic to hand it
            // to: the body is dropped.
            return .reply(Frame(.sendMessage, sequence: frame.sequence))
        case .ack:
            guard let seq = Self.seqField(frame.body, "seq") else {
                return fail(.badBody(frame.operation, "expected {\"seq\":N}"), frame)
            }
            return .ack(seq)
        case .sync:
            guard let after = Self.seqField(frame.body, "after") else {
                return fail(.badBody(frame.operation, "expected {\"after\":N,\"limit\":L}"), frame)
            }
            let limit = Self.seqField(frame.body, "limit").map { Int(clamping: max(1, $0)) } ?? Self.defaultSyncLimit
            return .sync(after: after, limit: limit, sequence: frame.sequence)
        case .read:
            guard let seq = Self.seqField(frame.body, "seq") else {
                return fail(.badBody(frame.operation, "expected {\"seq\":N}"), frame)
            }
            return .read(seq, sequence: frame.sequence)
        case .sub, .unsub:
            guard let topics = Self.topicList(frame.body) else {
                return fail(.badBody(frame.operation, "expected {\"topics\":[\"name\",…]}"), frame)
            }
            if frame.operation == .sub { return .join(topics, sequence: frame.sequence) }
            return .leave(topics, sequence: frame.sequence)
        default:
            return fail(.unknownOperation(frame.operation), frame)
        }
    }

    private mutating func fail(_ error: ProtocolError, _ frame: Frame) -> Action {
        if error.isFatal { state = .closing }
        return .fail(error, operation: frame.operation, sequence: frame.sequence)
    }

    /// The room a CHANGE_ROOM body names: pushgw's `{"room_id":"…"}` (`null` for none), or goim's bare room id
    /// (`test://2`; empty for none: goim's `ChangeRoom(string(p.Body))`). nil when the body is neither: a body that
    /// starts with `{` must be that JSON object, and a bare id must be UTF-8.
    static func changeRoomTarget(_ body: [UInt8]) -> String?? {
        guard body.first == UInt8(ascii: "{") else {
            guard let room = String(validating: body, as: UTF8.self) else { return nil }
            return .some(room)
        }
        guard let json = try? JSONParser.parse(body), case .object = json,
            let value = json["room_id"], value.isNull || value.stringValue != nil
        else { return nil }
        return .some(value.stringValue)
    }

    /// Parses `"1000,1001"` (spaces allowed); nil when anything else is there.
    static func parseOperationList(_ body: [UInt8]) -> [UInt32]? {
        let text = String(decoding: body, as: UTF8.self)
        var ops: [UInt32] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingSpaces
            guard let op = UInt32(trimmed) else { return nil }
            ops.append(op)
        }
        return ops
    }

    private static func normalized(_ ops: [UInt32]) -> [UInt32] {
        Array(Set(ops)).sorted()
    }

    private static func contains(_ sorted: [UInt32], _ op: UInt32) -> Bool {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < op { low = mid + 1 } else { high = mid }
        }
        return low < sorted.count && sorted[low] == op
    }
}
