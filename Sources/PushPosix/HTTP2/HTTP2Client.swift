import Logging
import PushCore

/// A non-blocking HTTP/2 client of one origin (`host`, `port`) on a worker's loop, for the notifiers that call APNs
/// and FCM: no thread, no lock, no Swift concurrency.
///
/// - One connection, made on the first request and again after it was lost (with exponential backoff and full
///   jitter, 100 ms doubling to 5 s, while attempts fail). TLS with SNI = `host`, the server's certificate verified
///   against `caFile` or the system's trust store and checked for `host`, and ALPN `h2` required; or cleartext h2c
///   with prior knowledge when `tls` is off (for tests).
/// - Many streams at once on it, as many as the server's SETTINGS_MAX_CONCURRENT_STREAMS allows (at most
///   `maxConcurrentStreams`); further requests wait in a queue, in order (at most `maxQueued` of them).
/// - GOAWAY: the streams the server did not process (above its last stream ID) are retried on a new connection, in
///   their order, ahead of the queue; the others finish on the old one, which is then closed. A stream refused with
///   REFUSED_STREAM is retried the same way. A request is sent on at most `maxAttempts` streams.
/// - A lost connection fails the requests in flight with `.connectionLost`, `mayHaveBeenSent` set: whether the server
///   acted on them is unknown. Queued requests go on the next connection. A connection that cannot be made (refused,
///   TLS, certificate, ALPN, connect timeout) fails the queued requests with its reason: they were never sent.
/// - Each request has a timeout, from `request` to the end of the response: a queued request then fails unsent, a
///   stream in flight is reset with CANCEL. Deadlines are checked on the loop's tick (accurate to 100 ms).
///
/// Completions always run on the loop, never inside `request` or `close`, and never inside nghttp2: they are
/// queued and delivered before the loop next sleeps, so a completion may call `request` or `close` freely. A client
/// that is released drops the completions it still owes.
///
/// The process must ignore SIGPIPE, as pushgw's processes do: OpenSSL writes to the socket with write(2).
public final class HTTP2Client {
    public typealias Completion = (Result<HTTP2Response, HTTP2Error>) -> Void

    /// How the client connects and what it bounds.
    public struct Options {
        /// TLS (https) or cleartext HTTP/2 with prior knowledge (h2c, `http` scheme).
        public var tls: Bool
        /// The CA certificates (PEM) the server's certificate must chain to; nil: the system's default trust store.
        public var caFile: String?
        /// An address to connect to instead of resolving `host` (which is still the name sent in SNI, checked in the
        /// certificate and sent as `:authority`). A host name is resolved with a blocking `getaddrinfo` at each
        /// connection attempt (see `Posix.resolve`).
        public var address: String?
        /// Seconds from the start of a connection attempt to the server's SETTINGS (TCP, TLS, preface).
        public var connectTimeout: Double
        /// Requests waiting for a stream beyond which `request` fails at once with `.overloaded`.
        public var maxQueued: Int
        /// The longest response body accepted (APNs and FCM answer in a few hundred bytes).
        public var maxResponseBytes: Int
        /// The most streams open at once, whatever the server allows (a server that sets no limit allows 2^31).
        public var maxConcurrentStreams: Int
        /// Streams a request is sent on at most, when the server refuses it (GOAWAY, REFUSED_STREAM).
        public var maxAttempts: Int

        public init(
            tls: Bool = true, caFile: String? = nil, address: String? = nil, connectTimeout: Double = 10,
            maxQueued: Int = 10_000, maxResponseBytes: Int = 1 << 20, maxConcurrentStreams: Int = 1000,
            maxAttempts: Int = 5
        ) {
            self.tls = tls
            self.caFile = caFile
            self.address = address
            self.connectTimeout = connectTimeout
            self.maxQueued = maxQueued
            self.maxResponseBytes = maxResponseBytes
            self.maxConcurrentStreams = maxConcurrentStreams
            self.maxAttempts = maxAttempts
        }
    }

    public let host: String
    public let port: Int
    public let options: Options

    /// Requests made (`request` calls).
    public private(set) var requests = 0
    /// Requests that completed with an error (not error statuses: those are responses).
    public internal(set) var failures = 0
    /// Connections made ready after the first: after a loss, after GOAWAY.
    public internal(set) var reconnects = 0

    /// Requests waiting for a stream.
    public var queued: Int { queue.count - queueHead + retries.count }
    /// Requests on streams, on every connection.
    public var inFlight: Int { connections.reduce(0) { $0 + $1.streams.values.filter { !$0.finished }.count } }
    /// Whether a connection is ready for new streams.
    public var isConnected: Bool { readyActive }

    let loop: EventLoop
    let logger: Logger
    /// nil for h2c.
    let tlsContext: TLSClientContext?
    /// `host` or `host:port` when the port is not the scheme's.
    let authority: String

    /// The connection new streams go to (connecting or ready), if any.
    var active: HTTP2Connection?
    /// Whether `active` got the server's SETTINGS.
    var readyActive = false
    /// Connections after GOAWAY, finishing their streams.
    var draining: [HTTP2Connection] = []
    /// Connections closed meanwhile, freed before the next service (never inside their own callbacks).
    var retired: [HTTP2Connection] = []
    var connectionSerial = 0

    /// Requests waiting for a stream, oldest first from `queueHead`.
    var queue: [HTTP2Exchange] = []
    var queueHead = 0
    /// Requests the server refused, going back to the head of the queue at the next service.
    var retries: [HTTP2Exchange] = []
    /// Completions waiting to be delivered before the loop sleeps.
    var completions: [(HTTP2Client.Completion, Result<HTTP2Response, HTTP2Error>)] = []
    var sequence = 0
    var isClosed = false

    /// Backoff between failed connection attempts: the next delay is uniformly random in
    /// 0...min(5 s, 100 ms × 2^attempt); a connection that becomes ready starts it again.
    var backoffAttempt = 0
    static let initialBackoff = 0.1
    static let maxBackoff = 5.0
    /// Monotonic seconds before which no new attempt is made.
    var nextAttemptAt = 0.0
    /// Wakes the loop when the backoff is over (the next service then connects).
    lazy var reconnectTimer = LoopTimer(loop: loop) { [weak self] in self?.nextAttemptAt = 0 }
    /// Whether a connection was ever ready (the next one ready counts as a reconnect).
    var wasEverReady = false
    /// Since when attempts have been failing (nil while fine), for logging the outage once.
    var downSince: Double?

    /// A client of `host:port`, idle until the first request. Throws when the TLS context cannot be made (an
    /// unreadable `caFile`).
    public init(loop: EventLoop, host: String, port: Int = 443, options: Options = Options(), logger: Logger)
        throws(TLSSetupError)
    {
        self.loop = loop
        self.host = host
        self.port = port
        self.options = options
        var logger = logger
        logger[metadataKey: "http2"] = "\(host):\(port)"
        self.logger = logger
        tlsContext = options.tls ? try TLSClientContext(caFile: options.caFile, alpn: ["h2"]) : nil
        authority = port == (options.tls ? 443 : 80) ? host : "\(host):\(port)"
        loop.addBeforeSleep { [weak self] in self?.service() }
        loop.addTick { [weak self] in self?.tick() }
    }

    /// Every connection that may have streams.
    var connections: [HTTP2Connection] { (active.map { [$0] } ?? []) + draining }

    /// Sends a request and calls `done` once with its response or why there is none, on the loop, after this
    /// returns. Header names are sent in lower case; `content-length` is added for a body that has none. `timeout`
    /// (seconds) runs from now to the end of the response.
    public func request(
        method: String, path: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        timeout: Double = 10, _ done: @escaping Completion
    ) {
        requests += 1
        sequence += 1
        var fields: [(name: String, value: String)] = [
            (":method", method), (":scheme", options.tls ? "https" : "http"), (":authority", authority),
            (":path", path),
        ]
        var hasLength = false
        for (name, value) in headers {
            let name = name.lowercased()
            hasLength = hasLength || name == "content-length"
            fields.append((name, value))
        }
        if !body.isEmpty && !hasLength { fields.append(("content-length", String(body.count))) }
        let exchange = HTTP2Exchange(
            sequence: sequence, fields: fields, body: body, deadline: Posix.monotonicSeconds() + timeout, done: done)
        guard !isClosed else { return complete(exchange, .failure(HTTP2Error(.closed))) }
        guard queued < options.maxQueued else {
            return complete(exchange, .failure(HTTP2Error(.overloaded, "\(queued) requests queued")))
        }
        queue.append(exchange)
    }

    /// Closes the connections and fails every request not answered yet with `.closed` (`mayHaveBeenSent` for those
    /// in flight), delivered before the loop sleeps; later requests fail the same way. The client does not reconnect.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        reconnectTimer.stop()
        failQueued(HTTP2Error(.closed))
        for connection in connections {
            let unfinished = connection.streams.values.filter { !$0.finished }.sorted { $0.sequence < $1.sequence }
            for exchange in unfinished {
                exchange.finished = true
                complete(exchange, .failure(HTTP2Error(.closed, mayHaveBeenSent: exchange.headersSent)))
            }
            connection.streams.removeAll()
            connection.shutdown()
            retired.append(connection)
        }
        active = nil
        readyActive = false
        draining.removeAll()
        logger.info("HTTP/2 client closed")
    }

    // MARK: - Completions

    /// Queues `exchange`'s completion for delivery before the loop sleeps.
    func complete(_ exchange: HTTP2Exchange, _ result: Result<HTTP2Response, HTTP2Error>) {
        if case .failure = result { failures += 1 }
        completions.append((exchange.done, result))
    }

    /// Puts a request the server did not process back in the queue, or fails it after `maxAttempts`.
    func retry(_ exchange: HTTP2Exchange) {
        guard !isClosed else { return complete(exchange, .failure(HTTP2Error(.closed))) }
        guard exchange.attempts < options.maxAttempts else {
            let detail = "refused on \(exchange.attempts) streams"
            return complete(exchange, .failure(HTTP2Error(.refused, detail)))
        }
        exchange.resetForRetry()
        retries.append(exchange)
    }

    /// Fails every queued request (never sent) with `error`.
    func failQueued(_ error: HTTP2Error) {
        mergeRetries()
        let waiting = queue[queueHead...]
        queue = []
        queueHead = 0
        for exchange in waiting { complete(exchange, .failure(error)) }
    }

    /// Retried requests go ahead of the others, in the order they were made.
    func mergeRetries() {
        guard !retries.isEmpty else { return }
        retries.sort { $0.sequence < $1.sequence }
        queue = retries + queue[queueHead...]
        queueHead = 0
        retries = []
    }

    /// Runs the completions queued so far (more may be queued meanwhile: those wait for the next round).
    func deliver() {
        var batch: [(Completion, Result<HTTP2Response, HTTP2Error>)] = []
        swap(&batch, &completions)
        for (done, result) in batch { done(result) }
    }
}
