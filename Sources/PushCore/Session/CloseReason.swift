/// Why a connection closed: logged once and counted once per close (the admin socket's closes/s by reason).
public enum CloseReason: String, Sendable, CaseIterable {
    /// The peer closed its side.
    case peerClosed = "peer_closed"
    /// A read or write failed (reset by peer, …).
    case ioError = "io_error"
    /// The peer broke the protocol; an ERROR was sent.
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
    /// An HTTP client asked for `Connection: close`, or its request could not be parsed.
    case requestDone = "request_done"
}
