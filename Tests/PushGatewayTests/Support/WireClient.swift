// A blocking client for the gateway's binary frame protocol (SPEC §2), written from the SPEC: the 16-byte
// header is encoded and decoded here by hand, not with the gateway's codec.
import Foundation
import Testing

/// Operation numbers from SPEC §2.
enum Op {
    static let heartbeat: UInt32 = 2
    static let heartbeatReply: UInt32 = 3
    static let disconnect: UInt32 = 6
    static let auth: UInt32 = 7
    static let authReply: UInt32 = 8
    static let raw: UInt32 = 9
    static let changeRoom: UInt32 = 12
    static let changeRoomReply: UInt32 = 13
    static let subOps: UInt32 = 14
    static let subOpsReply: UInt32 = 15
    static let unsubOps: UInt32 = 16
    static let unsubOpsReply: UInt32 = 17
    static let ack: UInt32 = 18
    static let sync: UInt32 = 20
    static let syncReply: UInt32 = 21
    static let read: UInt32 = 22
    static let readReply: UInt32 = 23
    static let sub: UInt32 = 24
    static let unsub: UInt32 = 26
    static let error: UInt32 = 28
}

/// Hand-written frame encoding: packet length (4), header length (2), version (2), op (4), seq (4), body.
enum Wire {
    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    static func be16(_ value: UInt16) -> [UInt8] {
        [UInt8(value >> 8), UInt8(value & 0xff)]
    }

    static func readBE32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    static func readBE16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }

    /// A frame; `packetLength` and `headerLength` can be forced to wrong values to build malformed frames
    /// (the header itself is always 16 bytes on the wire).
    static func frame(
        op: UInt32, seq: UInt32 = 0, body: [UInt8] = [], version: UInt16 = 1,
        headerLength: UInt16 = 16, packetLength: UInt32? = nil
    ) -> [UInt8] {
        be32(packetLength ?? UInt32(16 + body.count)) + be16(headerLength) + be16(version) + be32(op) + be32(seq)
            + body
    }

    static func frame(op: UInt32, seq: UInt32 = 0, text: String, version: UInt16 = 1) -> [UInt8] {
        frame(op: op, seq: seq, body: Array(text.utf8), version: version)
    }
}

/// A decoded frame.
struct Frame: Sendable, CustomStringConvertible {
    let packetLength: UInt32
    let headerLength: UInt16
    let version: UInt16
    let op: UInt32
    let seq: UInt32
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { jsonObject(body) }
    /// The `code` of an ERROR frame.
    var errorCode: String? { op == Op.error ? json?["code"] as? String : nil }
    /// The room count of a HEARTBEAT_REPLY (4 bytes big-endian).
    var roomCount: UInt32? { body.count == 4 ? Wire.readBE32(body, 0) : nil }

    var description: String {
        "Frame(op: \(op), seq: \(seq), version: \(version), body: \(body.count) bytes \(text.prefix(300).debugDescription))"
    }
}

/// Splits a RAW-style batch (whole frames concatenated) into frames; nil if it is not exactly that.
func splitBatch(_ bytes: [UInt8]) -> [Frame]? {
    var frames: [Frame] = []
    var at = 0
    while at < bytes.count {
        guard bytes.count - at >= 16 else { return nil }
        let packetLength = Int(Wire.readBE32(bytes, at))
        let headerLength = Wire.readBE16(bytes, at + 4)
        guard headerLength == 16, packetLength >= 16, at + packetLength <= bytes.count else { return nil }
        frames.append(
            Frame(
                packetLength: UInt32(packetLength), headerLength: headerLength, version: Wire.readBE16(bytes, at + 6),
                op: Wire.readBE32(bytes, at + 8), seq: Wire.readBE32(bytes, at + 12),
                body: Array(bytes[(at + 16)..<(at + packetLength)])))
        at += packetLength
    }
    return frames
}

/// A user id in AUTH: JSON int or string.
enum MID: Sendable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    case int(Int)
    case string(String)

    init(integerLiteral value: Int) { self = .int(value) }
    init(stringLiteral value: String) { self = .string(value) }

    var json: String {
        switch self {
        case .int(let value): "\(value)"
        case .string(let value): jsonQuote(value)
        }
    }
}

/// The JSON body of an AUTH frame.
func authBody(
    mid: MID?, key: String? = nil, roomID: String? = nil, accepts: [Int]? = nil, platform: String? = "ios",
    lastSeq: Int? = nil, token: String? = nil
) -> String {
    var fields: [String] = []
    if let mid { fields.append("\"mid\":\(mid.json)") }
    if let key { fields.append("\"key\":\(jsonQuote(key))") }
    if let roomID { fields.append("\"room_id\":\(jsonQuote(roomID))") }
    if let platform { fields.append("\"platform\":\(jsonQuote(platform))") }
    if let accepts { fields.append("\"accepts\":[\(accepts.map(String.init).joined(separator: ","))]") }
    if let lastSeq { fields.append("\"last_seq\":\(lastSeq)") }
    if let token { fields.append("\"token\":\(jsonQuote(token))") }
    return "{" + fields.joined(separator: ",") + "}"
}

/// A blocking client connection to the gateway's TCP listener.
final class WireClient: FrameConversation, @unchecked Sendable {
    let socket: TestSocket
    static let defaultTimeout: Double = 5

    enum ReadResult: Sendable {
        case frame(Frame)
        case closed
        case timedOut
    }

    init(port: UInt16, receiveBufferSize: Int32? = nil) throws {
        socket = try TestSocket(port: port, timeout: Self.defaultTimeout, receiveBufferSize: receiveBufferSize)
    }

    /// A client over a socket the test set up itself (a TLS one, or one from another source address).
    init(socket: TestSocket) { self.socket = socket }

    static func connect(_ gateway: GatewayProcess, receiveBufferSize: Int32? = nil) async throws -> WireClient {
        let port = gateway.tcpPort
        return try await offload { try WireClient(port: port, receiveBufferSize: receiveBufferSize) }
    }

    func close() { socket.close() }

    // MARK: sending

    func sendRaw(_ bytes: [UInt8]) throws { try socket.sendAll(bytes) }

    func send(op: UInt32, seq: UInt32 = 0, body: [UInt8] = [], version: UInt16 = 1) throws {
        try sendRaw(Wire.frame(op: op, seq: seq, body: body, version: version))
    }

    func send(op: UInt32, seq: UInt32 = 0, text: String, version: UInt16 = 1) throws {
        try send(op: op, seq: seq, body: Array(text.utf8), version: version)
    }

    // MARK: receiving

    /// Reads one frame, waiting at most `timeout` seconds. Throws on a frame the SPEC does not allow from the
    /// server, and on a connection closed in the middle of a frame unless `allowTruncated` (a dropped connection
    /// may end mid-frame; that then reads as `.closed`).
    func readSync(timeout: Double = defaultTimeout, allowTruncated: Bool = false) throws -> ReadResult {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let buffered = socket.inbound
            if buffered.count >= 16 {
                let packetLength = Wire.readBE32(buffered, 0)
                let headerLength = Wire.readBE16(buffered, 4)
                guard headerLength == 16, packetLength >= 16, packetLength <= 64 << 20 else {
                    throw TestError("server sent a bad frame header: \(buffered.prefix(16))")
                }
                if buffered.count >= Int(packetLength) {
                    let bytes = socket.consume(Int(packetLength))
                    return .frame(
                        Frame(
                            packetLength: packetLength, headerLength: headerLength,
                            version: Wire.readBE16(bytes, 6), op: Wire.readBE32(bytes, 8),
                            seq: Wire.readBE32(bytes, 12), body: Array(bytes[16...])))
                }
            }
            switch try socket.fill(until: deadline) {
            case .data: continue
            case .timedOut: return .timedOut
            case .eof:
                if socket.inbound.isEmpty || allowTruncated { return .closed }
                throw TestError("connection closed in the middle of a frame (\(socket.inbound.count) bytes buffered)")
            }
        }
    }

    func read(timeout: Double = defaultTimeout, allowTruncated: Bool = false) async throws -> ReadResult {
        try await offload { try self.readSync(timeout: timeout, allowTruncated: allowTruncated) }
    }

    /// The next frame, or nil when the server closed the connection; throws if nothing came within `timeout`.
    func readFrame(timeout: Double = defaultTimeout) async throws -> Frame? {
        switch try await read(timeout: timeout) {
        case .frame(let frame): return frame
        case .closed: return nil
        case .timedOut: throw TestError("no frame within \(timeout) s")
        }
    }

    /// Reads frames until the server closes (EOF or reset); returns them. Throws if it is not closed within
    /// `timeout` seconds.
    func readUntilClosed(timeout: Double = defaultTimeout) async throws -> [Frame] {
        let deadline = Date().addingTimeInterval(timeout)
        var frames: [Frame] = []
        while true {
            switch try await read(timeout: max(0.001, deadline.timeIntervalSinceNow)) {
            case .frame(let frame): frames.append(frame)
            case .closed: return frames
            case .timedOut:
                throw TestError("connection not closed within \(timeout) s; frames meanwhile: \(frames)")
            }
        }
    }

    /// Whether the server closes the connection within `timeout` (frames before the close are discarded).
    func expectClosed(timeout: Double = defaultTimeout) async -> Bool {
        (try? await readUntilClosed(timeout: timeout)) != nil
    }

    // MARK: conversations

    /// Sends AUTH and returns the AUTH_REPLY's JSON; throws if the reply is not an AUTH_REPLY with that seq.
    @discardableResult
    func auth(
        mid: MID?, key: String? = nil, roomID: String? = nil, accepts: [Int]? = nil, lastSeq: Int? = nil,
        platform: String? = "ios", token: String? = nil, seq: UInt32 = 1
    ) async throws -> [String: Any] {
        try send(
            op: Op.auth, seq: seq,
            text: authBody(
                mid: mid, key: key, roomID: roomID, accepts: accepts, platform: platform, lastSeq: lastSeq,
                token: token))
        return try await authReply(seq: seq)
    }

    /// Checks that nothing is queued for this client: a HEARTBEAT's reply is the very next frame.
    func expectNothingPending(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let seq: UInt32 = 0x5eed
        try send(op: Op.heartbeat, seq: seq)
        let next = try await readFrame()
        #expect(
            next?.op == Op.heartbeatReply && next?.seq == seq,
            "expected only the HEARTBEAT_REPLY, got \(String(describing: next)) \(comment.map { "— \($0)" } ?? "")",
            sourceLocation: sourceLocation)
    }

    /// Reads the next frame and checks it is application message `op` with exactly `body`, seq 0.
    func expectMessage(
        op: UInt32, body: [UInt8], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let frame = try await readFrame()
        #expect(frame?.op == op, "\(comment.map { "\($0): " } ?? "")got \(String(describing: frame))", sourceLocation: sourceLocation)
        #expect(frame?.seq == 0, sourceLocation: sourceLocation)
        #expect(frame?.version == 1, sourceLocation: sourceLocation)
        #expect(frame?.body == body, "\(comment.map { "\($0): " } ?? "")body \(frame?.text.debugDescription ?? "nil")", sourceLocation: sourceLocation)
    }
}

/// What the TCP and the WebSocket test clients share: one pushgw frame out, the next frame in; the protocol's
/// conversations are written once, over these.
protocol FrameConversation {
    func sendFrame(op: UInt32, seq: UInt32, body: [UInt8]) throws
    func nextFrame() async throws -> Frame?
}

extension WireClient {
    func sendFrame(op: UInt32, seq: UInt32, body: [UInt8]) throws { try send(op: op, seq: seq, body: body) }
    func nextFrame() async throws -> Frame? { try await readFrame() }
}

extension FrameConversation {
    /// Reads the AUTH_REPLY to AUTH `seq` and returns its JSON; throws on anything else.
    func authReply(seq: UInt32) async throws -> [String: Any] {
        guard let reply = try await nextFrame() else { throw TestError("closed instead of AUTH_REPLY") }
        guard reply.op == Op.authReply, reply.seq == seq, let json = reply.json else {
            throw TestError("expected AUTH_REPLY seq \(seq), got \(reply)")
        }
        return json
    }

    /// Sends HEARTBEAT and returns the room count of its HEARTBEAT_REPLY; throws on anything else.
    func heartbeat(seq: UInt32 = 1) async throws -> UInt32 {
        try sendFrame(op: Op.heartbeat, seq: seq, body: [])
        guard let reply = try await nextFrame() else { throw TestError("closed instead of HEARTBEAT_REPLY") }
        guard reply.op == Op.heartbeatReply, reply.seq == seq, let count = reply.roomCount else {
            throw TestError("expected HEARTBEAT_REPLY seq \(seq), got \(reply)")
        }
        return count
    }
}
