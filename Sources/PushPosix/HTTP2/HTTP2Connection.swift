import CNghttp2
import PushCore

/// One connection of an `HTTP2Client`: a `ClientSocket` (TCP, TLS with ALPN `h2`, or cleartext h2c) under an nghttp2
/// client session. nghttp2 does the framing, HPACK and flow control; this class feeds it the bytes that arrive
/// (`nghttp2_session_mem_recv`), queues what it has to send (`nghttp2_session_mem_send`) on the socket, and keeps the
/// exchanges of its streams by stream ID. Its frame callbacks are in `HTTP2Connection+Frames.swift`.
///
/// It never calls the client's users: what nghttp2 reports becomes state here and completions queued in the
/// client, delivered by the client before the loop sleeps. Nor does anything here call nghttp2 from inside one of
/// its callbacks, other than to submit RST_STREAM, which nghttp2 allows.
final class HTTP2Connection: ClientSocketDelegate {
    enum State {
        /// TCP connect and TLS handshake.
        case connecting
        /// The preface and SETTINGS are sent; the server's SETTINGS (its stream limit) are awaited.
        case settingUp
        /// Streams can be opened.
        case ready
        case closed
    }

    /// Output queued on the socket beyond which nghttp2 is not asked for more (a large body waits for the socket).
    static let outputHighWater = 256 * 1024
    /// The receive windows announced to the server: per stream and for the whole connection (nghttp2's defaults of
    /// 64 KB would make a large response wait for a round trip every 64 KB).
    static let streamWindow: UInt32 = 1 << 20
    static let connectionWindow: Int32 = 4 << 20

    unowned let client: HTTP2Client
    /// Which of the client's connections this is, for the log.
    let serial: Int
    let socket: ClientSocket
    private(set) var state = State.connecting
    /// Monotonic seconds when the connect started: the connect timeout counts from here until `ready`.
    let startedAt: Double
    /// The nghttp2 session, from the end of the TLS handshake until this object goes.
    private var session: OpaquePointer?
    /// GOAWAY received (or stream IDs used up): no new streams here.
    private(set) var goingAway = false
    /// The exchanges of the streams open on this connection, until nghttp2 closes the stream (a timed-out one stays
    /// until its RST_STREAM is sent: it still counts against the server's limit).
    var streams: [Int32: HTTP2Exchange] = [:]
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, at most the client's own ceiling.
    private(set) var maxStreams = 0

    init(client: HTTP2Client, serial: Int, address: SocketAddress) throws(ClientSocket.Failure) {
        self.client = client
        self.serial = serial
        startedAt = Posix.monotonicSeconds()
        socket = try ClientSocket(loop: client.loop, address: address, tls: client.tlsContext.map { ($0, client.host) })
        socket.delegate = self
    }

    deinit {
        socket.close()
        if let session { nghttp2_session_del(session) }
    }

    /// Whether a new stream can be opened now.
    var canOpenStream: Bool { state == .ready && !goingAway && streams.count < maxStreams }

    var isClosed: Bool { state == .closed }

    // MARK: - Socket

    func socketConnected(_ socket: ClientSocket) {
        if client.tlsContext != nil, !socket.alpnSelected.elementsEqual("h2".utf8) {
            let chosen = socket.alpnSelected.isEmpty ? "none" : String(decoding: socket.alpnSelected, as: UTF8.self)
            return fail(HTTP2Error(.alpnRefused, "the server chose \(chosen)"))
        }
        if let problem = startSession() { return fail(HTTP2Error(.connectFailed, problem)) }
        state = .settingUp
    }

    func socket(_ socket: ClientSocket, received bytes: UnsafeRawBufferPointer) {
        guard let session, state != .closed, let base = bytes.baseAddress else { return }
        let result = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if result < 0 { return fail(lost("HTTP/2: \(Self.text(Int32(result)))")) }
    }

    func socketDrained(_ socket: ClientSocket) { pump() }

    func socket(_ socket: ClientSocket, failed failure: ClientSocket.Failure) {
        guard state != .ready else { return fail(lost("\(failure)")) }
        switch failure {
        case .connect(let error): fail(HTTP2Error(.connectFailed, "\(error)"))
        case .certificate(let reason): fail(HTTP2Error(.certificateRejected, reason))
        case .tls(let reason):
            // A server with ALPN but without h2 may refuse the handshake (RFC 7301 §3.2) instead of choosing none.
            let code: HTTP2Error.Code = reason.contains("no application protocol") ? .alpnRefused : .tlsHandshakeFailed
            fail(HTTP2Error(code, reason))
        case .io, .closed: fail(HTTP2Error(.connectFailed, "\(failure) before its SETTINGS"))
        }
    }

    /// An error for the streams in flight when the connection went.
    private func lost(_ detail: String) -> HTTP2Error {
        HTTP2Error(.connectionLost, mayHaveBeenSent: true, "connection \(serial) to \(socket.address): \(detail)")
    }

    // MARK: - Session

    /// Makes the nghttp2 session and queues the preface (nghttp2 adds the client magic) with our SETTINGS: no server
    /// push, larger receive windows. Returns what went wrong, or nil.
    private func startSession() -> String? {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return "nghttp2: out of memory" }
        defer { nghttp2_session_callbacks_del(callbacks) }
        installCallbacks(callbacks)
        var session: OpaquePointer?
        let created = nghttp2_session_client_new(&session, callbacks, Unmanaged.passUnretained(self).toOpaque())
        guard created == 0, let session else { return "nghttp2_session_client_new: \(Self.text(created))" }
        self.session = session
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: Self.streamWindow),
        ]
        let submitted = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard submitted == 0 else { return "nghttp2_submit_settings: \(Self.text(submitted))" }
        _ = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Self.connectionWindow)
        return nil
    }

    /// The server's first SETTINGS came: streams can be opened, as many as it allows.
    func settingsReceived() {
        guard let session else { return }
        let limit = nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
        maxStreams = min(Int(limit), client.options.maxConcurrentStreams)
        guard state == .settingUp else { return }
        state = .ready
        client.connectionReady(self)
    }

    /// Opens a stream for `exchange` (`canOpenStream` must hold); a request nghttp2 refuses as given fails.
    func open(_ exchange: HTTP2Exchange) {
        guard let session else { return client.retry(exchange) }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: http2ReadBody)
        let hasBody = !exchange.body.isEmpty
        let streamID = Self.withHeaderBlock(exchange.fields) { fields, count in
            hasBody
                ? nghttp2_submit_request(session, nil, fields, count, &provider, nil)
                : nghttp2_submit_request(session, nil, fields, count, nil, nil)
        }
        guard streamID > 0 else {
            if streamID == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE.rawValue {
                // 2^30 streams on one connection: a new connection takes the next ones.
                goingAway = true
                client.connectionGoingAway(self, detail: "stream IDs used up")
                return client.retry(exchange)
            }
            return client.complete(exchange, .failure(HTTP2Error(.invalidRequest, Self.text(streamID))))
        }
        exchange.attempts += 1
        exchange.streamID = streamID
        streams[streamID] = exchange
    }

    /// Passes `fields` to `body` as nghttp2 name-value pairs (nghttp2 copies them during the call).
    private static func withHeaderBlock(
        _ fields: [(name: String, value: String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32
    ) -> Int32 {
        var bytes: [UInt8] = []
        var spans: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []
        for field in fields {
            let name = bytes.count
            bytes.append(contentsOf: field.name.utf8)
            let value = bytes.count
            bytes.append(contentsOf: field.value.utf8)
            spans.append((name, value - name, value, bytes.count - value))
        }
        bytes.append(0)  // never empty, so the base address exists
        return bytes.withUnsafeMutableBufferPointer { storage in
            let base = storage.baseAddress!
            let pairs = spans.map {
                nghttp2_nv(
                    name: base + $0.name, value: base + $0.value, namelen: $0.nameLength, valuelen: $0.valueLength,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    /// Moves what nghttp2 has to send into the socket's queue (until the queue is high) and writes it; a failure
    /// fails the connection.
    func pump() {
        guard state == .settingUp || state == .ready else { return }
        if let problem = writeOut() { fail(lost(problem)) }
    }

    /// `pump`'s work; returns what went wrong, or nil.
    private func writeOut() -> String? {
        guard let session else { return nil }
        while socket.pendingOutput < Self.outputHighWater, nghttp2_session_want_write(session) != 0 {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 { return "HTTP/2: \(Self.text(Int32(count)))" }
            guard count > 0, let data else { break }
            socket.append(UnsafeRawBufferPointer(start: data, count: count))
        }
        do {
            try socket.flush()
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// Resets the stream of an exchange that is finished from this side (timed out, response too large): CANCEL.
    func cancel(_ exchange: HTTP2Exchange) {
        guard let session, exchange.streamID > 0 else { return }
        _ = nghttp2_submit_rst_stream(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), exchange.streamID, NGHTTP2_CANCEL.rawValue)
    }

    /// The server said GOAWAY: no new streams. Those above `lastStreamID` were not processed: the client retries
    /// them elsewhere (nghttp2 closes them later; they are gone from `streams` already, so that is ignored).
    func goAwayReceived(lastStreamID: Int32, errorCode: UInt32) {
        goingAway = true
        let refused = streams.filter { $0.key > lastStreamID && !$0.value.finished }.values
        for exchange in refused.sorted(by: { $0.sequence < $1.sequence }) {
            streams[exchange.streamID] = nil
            exchange.finished = true
            client.retry(exchange)
        }
        client.connectionGoingAway(
            self, detail: "GOAWAY \(Self.errorName(errorCode)), last stream \(lastStreamID), \(refused.count) refused")
    }

    // MARK: - Ends

    /// Every tick: the connect timeout, and the deadlines of the streams.
    func tick(now: Double) {
        if state != .ready, state != .closed, now - startedAt > client.options.connectTimeout {
            return fail(HTTP2Error(.connectFailed, "not ready within \(client.options.connectTimeout) s"))
        }
        for exchange in streams.values where !exchange.finished && exchange.deadline <= now {
            exchange.finished = true
            cancel(exchange)
            client.complete(
                exchange,
                .failure(HTTP2Error(.timeout, mayHaveBeenSent: exchange.headersSent, "no response, stream reset")))
        }
    }

    /// The connection failed: closed at once, and the client told (it settles the streams).
    func fail(_ error: HTTP2Error) {
        guard state != .closed else { return }
        let wasReady = state == .ready
        state = .closed
        socket.close()
        client.connectionEnded(self, error: error, wasReady: wasReady)
    }

    /// Closes a connection this side is done with (idle after GOAWAY, or the client closing): a GOAWAY of ours when
    /// it can go out at once, then the close. The client settles what is left; nothing is reported.
    func shutdown() {
        guard state != .closed else { return }
        if let session, state == .ready || state == .settingUp {
            _ = nghttp2_session_terminate_session(session, NGHTTP2_NO_ERROR.rawValue)
            _ = writeOut()  // best effort: the connection closes either way
        }
        state = .closed
        socket.close()
    }

    static func text(_ code: Int32) -> String { String(cString: nghttp2_strerror(code)) }

    static func errorName(_ code: UInt32) -> String { String(cString: nghttp2_http2_strerror(code)) }
}
