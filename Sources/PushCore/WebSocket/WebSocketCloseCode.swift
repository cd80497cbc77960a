/// The status code of a WebSocket close frame (RFC 6455 §7.4). Only the codes pushgw sends are named.
public struct WebSocketCloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// 1000: done; the server's answer after a DISCONNECT, and the echo of a client's normal close.
    public static let normal = Self(1000)
    /// 1002: the peer broke RFC 6455 (unmasked frame, reserved bits, bad fragmentation) or the pushgw framing.
    public static let protocolError = Self(1002)
    /// 1003: a text message: pushgw speaks binary messages only.
    public static let unsupportedData = Self(1003)
    /// 1007: a close frame's reason that is not UTF-8.
    public static let invalidPayload = Self(1007)
    /// 1008: the pushgw protocol refused the client (AUTH missing or refused, an operation it may not send,
    /// a timeout).
    public static let policyViolation = Self(1008)
    /// 1009: a message over the size limit (`limits.max_frame` and its slack).
    public static let messageTooBig = Self(1009)

    /// Whether a peer may put this code in a close frame: 1000–1003, 1007–1014 and 3000–4999. 1005 and 1006
    /// are only ever reported locally, 1004 and 1015 are reserved, the rest of 0–2999 is unassigned.
    public var isValidInFrame: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    public var description: String { String(rawValue) }
}

/// Why the WebSocket layer refuses a client's input: the connection is answered with a close frame carrying
/// `code` and then closed.
public struct WebSocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The close frame's status code.
    public let code: WebSocketCloseCode
    /// Human-readable detail, sent as the close frame's reason (cut to fit 123 bytes).
    public let message: String

    public init(_ code: WebSocketCloseCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    static func protocolError(_ message: String) -> Self { .init(.protocolError, message) }
}
