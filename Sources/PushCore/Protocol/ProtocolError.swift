/// A reason to answer a client with an ERROR frame (op 28). Fatal errors are followed by a close; the others
/// leave the connection up. The `code` strings are part of the wire contract: clients switch on them.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Kind: String, Sendable {
        case badLength = "bad_length"
        case badHeader = "bad_header"
        case frameTooLarge = "frame_too_large"
        case authRequired = "auth_required"
        case badAuth = "bad_auth"
        case authFailed = "auth_failed"
        case alreadyAuthenticated = "already_authenticated"
        case handshakeTimeout = "handshake_timeout"
        case idleTimeout = "idle_timeout"
        case unknownOperation = "unknown_op"
        case badBody = "bad_body"
        case unavailable = "unavailable"
        case writeQueueFull = "write_queue_full"
        case banned
        case rateLimited = "rate_limited"
        /// `rate_limited` again, fatal: sent under the same code (`code`), the raw value only tells them apart.
        case rateLimitedClose = "rate_limited!"
    }

    private let kind: Kind
    /// Human-readable detail, sent as `message`.
    public let message: String

    private init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The wire code, sent as `code`.
    public var code: String { kind == .rateLimitedClose ? Kind.rateLimited.rawValue : kind.rawValue }

    /// Whether the connection is closed after the ERROR frame.
    public var isFatal: Bool {
        switch kind {
        case .badBody, .unavailable, .rateLimited: false
        default: true
        }
    }

    /// The close frame status a WebSocket client gets after this (fatal) error's ERROR message: 1002 for broken
    /// pushgw framing, 1009 for a frame over `max_frame`, 1008 for a client the protocol refuses.
    public var webSocketCloseCode: WebSocketCloseCode {
        switch kind {
        case .badLength, .badHeader: .protocolError
        case .frameTooLarge: .messageTooBig
        case .authRequired, .badAuth, .authFailed, .alreadyAuthenticated, .handshakeTimeout, .idleTimeout,
            .unknownOperation, .badBody, .unavailable, .writeQueueFull, .banned, .rateLimited, .rateLimitedClose:
            .policyViolation
        }
    }

    public var description: String { "\(code): \(message)" }

    /// Packet length below the header length.
    public static func badLength(_ length: UInt32) -> Self { .init(.badLength, "packet length \(length) is below 16") }
    /// Header length other than 16.
    public static func badHeader(_ length: UInt16) -> Self { .init(.badHeader, "header length \(length) is not 16") }
    /// Packet length above `limits.max_frame`.
    public static func frameTooLarge(_ length: UInt32, limit: Int) -> Self {
        .init(.frameTooLarge, "packet length \(length) exceeds max_frame \(limit)")
    }
    /// The first frame was not AUTH.
    public static func authRequired(got op: Operation) -> Self {
        .init(.authRequired, "the first frame must be AUTH (op 7), got op \(op)")
    }
    /// The AUTH body could not be read.
    public static func badAuth(_ detail: String) -> Self { .init(.badAuth, detail) }
    /// The AUTH token did not verify.
    public static func authFailed(_ detail: String) -> Self { .init(.authFailed, detail) }
    /// A second AUTH on an authenticated connection.
    public static let alreadyAuthenticated = Self(.alreadyAuthenticated, "AUTH was already accepted on this connection")
    /// No AUTH within `limits.handshake_timeout`.
    public static let handshakeTimeout = Self(.handshakeTimeout, "no AUTH within the handshake timeout")
    /// Nothing received within `heartbeat × 1.25 + 10 s`.
    public static let idleTimeout = Self(.idleTimeout, "no frame within the heartbeat timeout")
    /// An operation a client may not send.
    public static func unknownOperation(_ op: Operation) -> Self {
        .init(.unknownOperation, "operation \(op) is not a client operation")
    }
    /// A control frame whose body could not be read (non-fatal).
    public static func badBody(_ op: Operation, _ detail: String) -> Self { .init(.badBody, "op \(op): \(detail)") }
    /// The operation needs storage that is not available right now (non-fatal).
    public static func unavailable(_ op: Operation, _ detail: String) -> Self { .init(.unavailable, "op \(op): \(detail)") }
    /// The client did not read fast enough: its write queue passed `limits.max_write_queue`.
    public static let writeQueueFull = Self(.writeQueueFull, "write queue over max_write_queue")

    /// The user, the device or the address is banned (SPEC §8): refused at AUTH. `until` is the ban's end in Unix
    /// seconds, 0 for never. The ban's reason is the operator's note and is not sent.
    public static func banned(until: Int) -> Self {
        .init(.banned, until == 0 ? "banned" : "banned until \(until) (Unix time)")
    }

    /// Over `limits.client_rate` frames a second (SPEC §8): this frame was dropped, the connection stays (non-fatal).
    public static func rateLimited(_ op: Operation) -> Self {
        .init(.rateLimited, "op \(op) dropped: over the frame rate limit (limits.client_rate)")
    }

    /// Still over `limits.client_rate` after another burst of dropped frames: the connection is closed (fatal, same
    /// code as `rateLimited`).
    public static func rateLimitedClose(_ op: Operation) -> Self {
        .init(.rateLimitedClose, "op \(op) dropped: still over the frame rate limit after a burst of drops, closing")
    }

    /// The ERROR frame's JSON body: `{"code":…,"message":…,"op":N}`.
    public func frame(op: Operation, sequence: UInt32 = 0) -> Frame {
        var writer = JSONWriter()
        writer.object {
            $0.field("code", code)
            $0.field("message", message)
            $0.field("op", Int(op.rawValue))
        }
        return Frame(.error, sequence: sequence, body: writer.bytes)
    }
}
