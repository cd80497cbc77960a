import CHTTPParser
import PushCore
import PushPosix

/// One backend's keep-alive HTTP/1.1 connection. Requests may be pipelined: each gets a response slot in
/// arrival order, and responses go out in that order even when a later one is ready first.
final class HTTPConnection: SocketConnection {
    /// Most requests read and not yet answered; past it the connection is not read until answers go out.
    static let maxPendingRequests = 64
    /// Most answer bytes queued before the connection is not read until they are written.
    static let maxQueuedOutput = 256 * 1024
    /// Answer bytes past which a peer that does not read is closed.
    static let maxOutputBytes = 16 * 1024 * 1024

    unowned(unsafe) let server: HTTPServer
    private let parser = UnsafeMutablePointer<http_parser>.allocate(capacity: 1)
    var builder = HTTPRequestBuilder()
    /// Set by a parser callback that refused the request.
    private var stopError: APIError?
    /// Requests completed by the current `http_parser_execute` call, handled after it returns.
    private var completed: [HTTPRequest] = []
    /// Responses not yet written, from slot `firstSlot` on; nil while a handler is still working.
    private var waiting: [(response: HTTPResponse?, close: Bool)] = []
    private var firstSlot = 0
    /// No further requests are read: the last one asked to close, or the input was bad.
    private var closing = false
    /// Bytes of a request begun and not complete have been parsed (a stop waits for the request boundary).
    private var inRequest = false
    /// The worker is stopping: the next answer is the last, with `Connection: close`.
    private(set) var endingKeepAlive = false
    /// Bytes read but not parsed, kept while reads are paused (at most one read's worth).
    private var held: [UInt8] = []
    /// Inside `parse`: answers written meanwhile must not start parsing the held bytes, which come after the
    /// requests still being handled.
    private var parsing = false

    /// The backend's address, for `api.allow` and the rate limit's buckets (looked up at the first request).
    lazy var peerAddress: IPAddress? = Posix.peerAddress(fd)

    /// A backend waits for each answer: it is not held behind a fan-out's slices.
    override var flushesFirst: Bool { true }

    override var maxOutput: Int { Self.maxOutputBytes }

    init(fd: Int32, server: HTTPServer) {
        self.server = server
        super.init(fd: fd, loop: server.loop)
        http_parser_init(parser, HTTP_REQUEST)
        chttp_set_data(parser, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { parser.deallocate() }

    /// Idle from the last bytes read or the last answer written; never while a request waits for its answer
    /// (a long-poll may wait longer than the idle timeout).
    override var openDeadline: UInt32 { waiting.isEmpty ? lastActive &+ server.idleTicks : loop.now &+ server.idleTicks }

    override func openTimedOut() { close(.idleTimeout) }

    override func didClose(_ reason: CloseReason) { server.connectionClosed(self, reason) }

    /// Nothing read and not answered, and no request begun: closing now loses nothing.
    var isIdle: Bool { waiting.isEmpty && !inRequest && held.isEmpty && completed.isEmpty }

    override func received(_ bytes: UnsafeRawBufferPointer) {
        guard !closing else { return }
        if held.isEmpty {
            parse(bytes)
        } else {
            held.append(contentsOf: bytes)
            parseHeld()
        }
    }

    /// Parses what was held back while reads were paused, then reads again when it all went through.
    private func parseHeld() {
        let bytes = held
        held = []
        bytes.withUnsafeBytes { parse($0) }
        if held.isEmpty { resumeIfRoom() }
    }

    /// Answers owed or bytes queued are at their limit: stop taking requests until they go out.
    private var isFull: Bool {
        waiting.count + completed.count >= Self.maxPendingRequests || pendingOutput >= Self.maxQueuedOutput
    }

    private func parse(_ bytes: UnsafeRawBufferPointer) {
        parsing = true
        defer { parsing = false }
        let parsed = bytes.withMemoryRebound(to: CChar.self) {
            http_parser_execute(parser, server.settings.pointer, $0.baseAddress, $0.count)
        }
        let paused = chttp_errno(parser) == HPE_PAUSED.rawValue
        if paused {
            http_parser_pause(parser, 0)
            held.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[parsed...]))
        }
        // A stopping worker's last answer is the one to the last request read whole, nothing begun after it.
        let atBoundary = !inRequest && held.isEmpty
        // Handle what completed before any error, in order, so pipelined requests keep their answers.
        let requests = completed
        completed = []
        for (index, request) in requests.enumerated() where !closing {
            let slot = firstSlot + waiting.count
            let last = !request.keepAlive || (endingKeepAlive && atBoundary && index == requests.count - 1)
            waiting.append((nil, last))
            if last { closing = true }
            server.handle(request, from: self) { [self] response in respond(slot, response) }
        }
        guard !closing else { return }
        if paused {
            pause()
        } else if let stopError {
            refuse(stopError)
        } else if chttp_errno(parser) != 0 || parsed != bytes.count {
            let name = String(cString: http_errno_description(http_errno(chttp_errno(parser))))
            refuse(.badRequest("malformed HTTP request: \(name)"))
        } else if chttp_upgrade(parser) != 0 {
            refuse(.badRequest("protocol upgrades are not served on the API port"))
        } else if isFull {
            pause()
        }
    }

    private func pause() {
        guard !readsPaused else { return }
        server.readsPaused()
        pauseReads()
    }

    /// Takes the requests again once the answers owed and the bytes queued are back under their limits.
    private func resumeIfRoom() {
        guard readsPaused, !parsing, isOpen, !closing, !isFull else { return }
        if held.isEmpty { resumeReads() } else { parseHeld() }
    }

    override func outputDrained() { resumeIfRoom() }

    /// Called by the parser glue when a request's first byte arrives.
    func requestBegan() { inRequest = true }

    /// Called by the parser glue for URL and header bytes; enforces the header size limit.
    func headerData(_ bytes: UnsafeRawBufferPointer, _ append: (inout HTTPRequestBuilder, UnsafeRawBufferPointer) -> Void) -> Int32 {
        builder.headerBytes += bytes.count
        guard builder.headerBytes <= HTTPRequestBuilder.maxHeaderBytes,
            builder.headers.count < HTTPRequestBuilder.maxHeaders
        else {
            stop(APIError(status: 431, code: "headers_too_large", message: "request line and headers over 16 KiB or 64 lines"))
            return 1
        }
        append(&builder, bytes)
        return 0
    }

    func stop(_ error: APIError) { stopError = error }

    /// A request was read; parsing pauses here when it fills the connection's budget (the rest of the read is
    /// held until answers go out).
    func requestComplete(_ request: HTTPRequest) {
        inRequest = false
        completed.append(request)
        if isFull { http_parser_pause(parser, 1) }
    }

    /// The worker is stopping: requests already read are answered, the last of them (or the next one read,
    /// when none is owed) with `Connection: close`, and nothing after it is read. An idle connection is left to
    /// the server, which closes it at a request boundary.
    func endKeepAlive() {
        guard isOpen, !endingKeepAlive else { return }
        endingKeepAlive = true
        guard !closing, held.isEmpty, !inRequest, !waiting.isEmpty else { return }
        waiting[waiting.count - 1].close = true
        closing = true
        writeReady()
    }

    /// Closes a connection with nothing owed (see `isIdle`).
    func closeIdle() {
        guard isOpen, isIdle else { return }
        closing = true
        closeAfterOutput(.requestDone)
    }

    /// Answers a request that could not be read, after the answers already owed, then closes.
    private func refuse(_ error: APIError) {
        closing = true
        waiting.append((HTTPServer.errorResponse(error, target: String(decoding: builder.url, as: UTF8.self)), true))
        writeReady()
    }

    private func respond(_ slot: Int, _ response: HTTPResponse) {
        guard isOpen, slot >= firstSlot, slot - firstSlot < waiting.count else { return }
        waiting[slot - firstSlot].response = response
        writeReady()
    }

    /// Writes every response whose predecessors are all written.
    private func writeReady() {
        var written = 0
        for (response, close) in waiting {
            guard let response else { break }
            written += 1
            guard enqueue({ response.encode(into: &$0, close: close) }) else { return }
            if close {
                closeAfterOutput(.requestDone)
                return
            }
        }
        waiting.removeFirst(written)
        firstSlot += written
        if written > 0 { lastActive = loop.now }
        resumeIfRoom()
    }
}
