/// Why a connection closes, and what its client is told before it does: a `kind`, logged once and counted once per
/// close (the admin socket's closes/s by reason, `pushgw_connections_closed_total{reason}`), and the `notice` the
/// last frame is made of. `farewell` is the one switch from a reason to what goes on the wire.
///
/// A plain value of a few words passed down the close path and never stored (a connection keeps only its 1-byte
/// `kind` while it lingers): the common reasons (peer closed, I/O error, write queue full, timeouts, kick) carry no
/// allocated data.
public struct CloseReason: Equatable, Sendable {
    /// How a close is counted and logged. The names are the metrics' labels.
    public enum Kind: String, Sendable, CaseIterable {
        /// The peer closed its side.
        case peerClosed = "peer_closed"
        /// A read or write failed (reset by peer, …).
        case ioError = "io_error"
        /// The peer broke the protocol (an ERROR or a WebSocket close frame says how), or AUTH found storage down.
        case protocolError = "protocol_error"
        /// No AUTH within `limits.handshake_timeout`.
        case handshakeTimeout = "handshake_timeout"
        /// Silent for `heartbeat × 1.25 + 10 s` (or an idle HTTP keep-alive connection).
        case idleTimeout = "idle_timeout"
        /// The peer did not read and its write queue passed `limits.max_write_queue`.
        case writeQueueFull = "write_queue_full"
        /// Kicked through the API or the admin socket.
        case kicked
        /// The gateway is shutting down.
        case shutdown
        /// A ban (SPEC §8) covers it: its address at accept, its user or device at AUTH, or a ban added while open.
        case banned
        /// An HTTP client asked for `Connection: close`, or its request could not be parsed.
        case requestDone = "request_done"
        /// The TLS handshake failed (no ClientHello but garbage, no protocol or cipher in common, a bad record).
        case tlsHandshakeFailed = "tls_handshake_failed"
        /// Refused at accept by a limit on its address (SPEC §8): `limits.connect_rate` or `limits.max_conns_per_ip`.
        case refused
        /// Still over `limits.client_rate` after a burst of dropped frames: ERROR `rate_limited`, then the close.
        case rateLimited = "rate_limited"
        /// `server.proxy_protocol` is on and the connection did not start with a valid PROXY header in time.
        case proxyRefused = "proxy_refused"
    }

    /// What a client is told last, before the close.
    public enum Notice: Equatable, Sendable {
        /// Nothing: the peer is gone, the socket failed, or it cannot take more.
        case none
        /// Nothing beyond the output already queued (the HTTP answer refusing a WebSocket upgrade).
        case queued
        /// ERROR `{"code","message","op"}` with the frame's operation and sequence.
        case error(ProtocolError, operation: Operation, sequence: UInt32)
        /// DISCONNECT `{"reason","reconnect","after_ms"}` (SPEC §2).
        case disconnect(Disconnect, reconnect: Bool, afterMillis: UInt32)
        /// A WebSocket close frame only (broken WebSocket framing, or the answer to the client's close frame).
        case webSocketClose(WebSocketCloseCode?, String)
    }

    /// The `reason` of a DISCONNECT: part of the wire contract, clients switch on it.
    public enum Disconnect: String, Sendable {
        case kicked
        case shutdown
        case storageUnavailable = "storage_unavailable"
        case banned
    }

    public let kind: Kind
    public let notice: Notice

    public init(_ kind: Kind, _ notice: Notice = .none) {
        self.kind = kind
        self.notice = notice
    }

    /// The kind's label, as logs and metrics spell it (`peer_closed`, …).
    public var rawValue: String { kind.rawValue }

    // MARK: - The reasons

    /// The peer closed its side.
    public static let peerClosed = Self(.peerClosed)
    /// A read or write failed.
    public static let ioError = Self(.ioError)
    /// The write queue passed its limit: nothing more can be said.
    public static let writeQueueFull = Self(.writeQueueFull)
    /// An HTTP connection is done.
    public static let requestDone = Self(.requestDone)
    /// The process stops (admin and control connections): nothing is said.
    public static let shutdown = Self(.shutdown)
    /// The TLS handshake failed: nothing can be said (there is no TLS to say it in).
    public static let tlsHandshakeFailed = Self(.tlsHandshakeFailed)
    /// A protocol error with nothing to say (an admin line too long); clients get `protocolError(_:operation:sequence:)`.
    public static let protocolError = Self(.protocolError)
    /// No AUTH in time: ERROR `handshake_timeout`.
    public static let handshakeTimeout = Self(.handshakeTimeout, .error(.handshakeTimeout, operation: Operation(0), sequence: 0))
    /// Silent too long: ERROR `idle_timeout`.
    public static let idleTimeout = Self(.idleTimeout, .error(.idleTimeout, operation: Operation(0), sequence: 0))
    /// Kicked: DISCONNECT `kicked`, not to reconnect.
    public static let kicked = Self(.kicked, .disconnect(.kicked, reconnect: false, afterMillis: 0))

    /// A banned address at accept: closed at once, nothing said (as nginx's `deny` does).
    public static let bannedAddress = Self(.banned)
    /// A ban added while the connection was open covers it: DISCONNECT `banned`, not to reconnect.
    public static let banned = Self(.banned, .disconnect(.banned, reconnect: false, afterMillis: 0))

    /// A ban refuses the session at AUTH: ERROR `banned` answering the AUTH frame (`sequence`), then the close.
    public static func bannedAtAuth(until: Int, sequence: UInt32) -> Self {
        Self(.banned, .error(.banned(until: until), operation: .auth, sequence: sequence))
    }

    /// Still over the frame rate after a burst of drops: ERROR `rate_limited` answering the frame, then the close.
    public static func rateLimited(operation: Operation, sequence: UInt32) -> Self {
        Self(.rateLimited, .error(.rateLimitedClose(operation), operation: operation, sequence: sequence))
    }

    /// A fatal protocol error: ERROR with its code, answering the frame with `operation` and `sequence`.
    public static func protocolError(_ error: ProtocolError, operation: Operation, sequence: UInt32) -> Self {
        Self(.protocolError, .error(error, operation: operation, sequence: sequence))
    }

    /// The worker drains: DISCONNECT `shutdown`, to reconnect after `afterMillis`.
    public static func draining(afterMillis: UInt32) -> Self {
        Self(.shutdown, .disconnect(.shutdown, reconnect: true, afterMillis: afterMillis))
    }

    /// AUTH could not reach storage: DISCONNECT `storage_unavailable`, to reconnect after `afterMillis`.
    public static func storageUnavailable(afterMillis: UInt32) -> Self {
        Self(.protocolError, .disconnect(.storageUnavailable, reconnect: true, afterMillis: afterMillis))
    }

    /// The WebSocket upgrade was refused with an HTTP answer, already queued.
    public static let upgradeRefused = Self(.protocolError, .queued)

    /// The client broke WebSocket framing: a close frame with `code` and `message`.
    public static func webSocketError(_ code: WebSocketCloseCode, _ message: String) -> Self {
        Self(.protocolError, .webSocketClose(code, message))
    }

    /// The client sent a close frame: answered with one carrying the same status.
    public static func webSocketClosed(_ code: WebSocketCloseCode?) -> Self {
        Self(.peerClosed, .webSocketClose(code, ""))
    }

    /// Whether the client is to blame, as SPEC §8's automatic bans count failures: a failed AUTH or another fatal
    /// protocol error (an ERROR, broken WebSocket framing, a refused upgrade), or a frame rate kept over the limit.
    /// Not timeouts, the peer's own close, storage being down, bans, kicks or drains.
    public var blamesClient: Bool {
        switch (kind, notice) {
        case (.protocolError, .error), (.protocolError, .webSocketClose), (.protocolError, .queued): true
        case (.rateLimited, _): true
        default: false
        }
    }

    // MARK: - On the wire

    /// What the client gets last, framed by the connection: the pushgw frame (TCP, and a WebSocket binary message),
    /// then on WebSocket a close frame.
    public struct Farewell: Equatable, Sendable {
        /// ERROR or DISCONNECT; nil for none.
        public let frame: Frame?
        /// Whether a WebSocket connection sends a close frame after `frame`.
        public let closesWebSocket: Bool
        /// The close frame's status (nil: a close frame without one).
        public let webSocketStatus: WebSocketCloseCode?
        /// The close frame's reason, and the detail of the log line: the ERROR code, the DISCONNECT reason, the
        /// WebSocket error.
        public let detail: String
        /// Whether queued output is flushed, and the connection lingers for the peer to read it, before the
        /// descriptor closes; otherwise it closes at once and queued output is dropped.
        public let flushes: Bool

        static let silent = Farewell(frame: nil, closesWebSocket: false, webSocketStatus: nil, detail: "", flushes: false)
    }

    /// The one switch from a reason to the wire.
    public var farewell: Farewell {
        switch notice {
        case .none:
            return .silent
        case .queued:
            return Farewell(frame: nil, closesWebSocket: false, webSocketStatus: nil, detail: "", flushes: true)
        case .error(let error, let operation, let sequence):
            return Farewell(
                frame: error.frame(op: operation, sequence: sequence), closesWebSocket: true,
                webSocketStatus: error.webSocketCloseCode, detail: error.code, flushes: true)
        case .disconnect(let reason, let reconnect, let afterMillis):
            var body = JSONWriter()
            body.object {
                $0.field("reason", reason.rawValue)
                $0.field("reconnect", reconnect)
                $0.field("after_ms", Int(afterMillis))
            }
            return Farewell(
                frame: Frame(.disconnect, body: body.bytes), closesWebSocket: true, webSocketStatus: .normal,
                detail: reason.rawValue, flushes: true)
        case .webSocketClose(let status, let message):
            return Farewell(frame: nil, closesWebSocket: true, webSocketStatus: status, detail: message, flushes: true)
        }
    }
}
