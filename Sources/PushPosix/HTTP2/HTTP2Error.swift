/// Why a request through `HTTP2Client` got no response. A response with an error status (400, 410, 503) is not
/// one of these: it is a response.
///
/// `code` says what happened (compare it with the static members of `Code`); `mayHaveBeenSent` says whether the
/// server may have received the request and acted on it, which decides whether retrying it is safe; `detail` is
/// the system's, OpenSSL's or nghttp2's own words, for the log.
public struct HTTP2Error: Error, CustomStringConvertible {
    /// What kind of failure. A struct over a private enum, so kinds can be added without breaking callers'
    /// switches; compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case connectFailed, tlsHandshakeFailed, certificateRejected, alpnRefused, connectionLost, timeout
            case streamReset, refused, responseTooLarge, overloaded, invalidRequest, closed
        }

        private let kind: Kind

        /// The host could not be resolved or reached, or the connection was not ready within the connect timeout.
        public static let connectFailed = Code(kind: .connectFailed)
        /// The TLS handshake failed (an alert, no protocol version or cipher in common, the server hung up).
        public static let tlsHandshakeFailed = Code(kind: .tlsHandshakeFailed)
        /// The server's certificate did not verify: not from a trusted CA, expired, or not for the host.
        public static let certificateRejected = Code(kind: .certificateRejected)
        /// The server did not choose `h2` in ALPN: it does not speak HTTP/2 over TLS.
        public static let alpnRefused = Code(kind: .alpnRefused)
        /// The connection was lost (closed, reset, an HTTP/2 protocol error) with the request in flight.
        public static let connectionLost = Code(kind: .connectionLost)
        /// No response within the request's timeout (the stream was reset with CANCEL).
        public static let timeout = Code(kind: .timeout)
        /// The server reset the stream (RST_STREAM, its error code in `detail`), or the response ended short.
        public static let streamReset = Code(kind: .streamReset)
        /// The server refused the stream (GOAWAY below it, REFUSED_STREAM) on every connection it was retried on:
        /// it was not processed.
        public static let refused = Code(kind: .refused)
        /// The response's body was longer than the client's `maxResponseBytes` (the stream was reset).
        public static let responseTooLarge = Code(kind: .responseTooLarge)
        /// The client's queue of requests waiting for a stream is full.
        public static let overloaded = Code(kind: .overloaded)
        /// nghttp2 refused the request as given (a header it cannot send).
        public static let invalidRequest = Code(kind: .invalidRequest)
        /// The client was closed.
        public static let closed = Code(kind: .closed)

        public var description: String {
            switch kind {
            case .connectFailed: "cannot connect"
            case .tlsHandshakeFailed: "TLS handshake failed"
            case .certificateRejected: "server certificate rejected"
            case .alpnRefused: "server does not speak HTTP/2 (ALPN h2 not chosen)"
            case .connectionLost: "connection lost"
            case .timeout: "request timed out"
            case .streamReset: "stream reset by the server"
            case .refused: "stream refused by the server"
            case .responseTooLarge: "response too large"
            case .overloaded: "too many requests queued"
            case .invalidRequest: "invalid request"
            case .closed: "client closed"
            }
        }
    }

    public let code: Code
    /// Whether the server may have received the request and acted on it: its HEADERS went out and no complete
    /// response came. False: it was never sent (or the server said it did not process it), so a retry is safe.
    public let mayHaveBeenSent: Bool
    /// The details, for the log: the system's, OpenSSL's or nghttp2's words, the stream's error code.
    public let detail: String

    init(_ code: Code, mayHaveBeenSent: Bool = false, _ detail: String = "") {
        self.code = code
        self.mayHaveBeenSent = mayHaveBeenSent
        self.detail = detail
    }

    /// The same failure, for a request that may or may not have been sent.
    func sent(_ mayHaveBeenSent: Bool) -> HTTP2Error { HTTP2Error(code, mayHaveBeenSent: mayHaveBeenSent, detail) }

    public var description: String {
        let sent = mayHaveBeenSent ? " (the request may have been sent)" : ""
        return detail.isEmpty ? "\(code)\(sent)" : "\(code): \(detail)\(sent)"
    }
}
