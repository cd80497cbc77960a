import CHTTPParser
import PushCore

/// One backend's keep-alive HTTP/1.1 connection. Requests may be pipelined: each gets a response slot in
/// arrival order, and responses go out in that order even when a later one is ready first.
final class HTTPConnection: SocketConnection {
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

    /// A backend waits for each answer: it is not held behind a fan-out's slices.
    override var flushesFirst: Bool { true }

    init(fd: Int32, server: HTTPServer) {
        self.server = server
        super.init(fd: fd, loop: server.loop)
        http_parser_init(parser, HTTP_REQUEST)
        chttp_set_data(parser, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { parser.deallocate() }

    override var openDeadline: UInt32 { lastActive &+ server.idleTicks }

    override func openTimedOut() { close(.idleTimeout) }

    override func didClose(_ reason: CloseReason) { server.connectionClosed(self) }

    override func received(_ bytes: UnsafeRawBufferPointer) {
        guard !closing else { return }
        let parsed = bytes.withMemoryRebound(to: CChar.self) {
            http_parser_execute(parser, server.settings.pointer, $0.baseAddress, $0.count)
        }
        // Handle what completed before any error, in order, so pipelined requests keep their answers.
        let requests = completed
        completed = []
        for request in requests where !closing {
            let slot = firstSlot + waiting.count
            waiting.append((nil, !request.keepAlive))
            if !request.keepAlive { closing = true }
            server.handle(request) { [self] response in respond(slot, response) }
        }
        guard !closing else { return }
        if let stopError {
            refuse(stopError)
        } else if chttp_errno(parser) != 0 || parsed != bytes.count {
            let name = String(cString: http_errno_description(http_errno(chttp_errno(parser))))
            refuse(.badRequest("malformed HTTP request: \(name)"))
        } else if chttp_upgrade(parser) != 0 {
            refuse(.badRequest("protocol upgrades are not served on the API port"))
        }
    }

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

    func requestComplete(_ request: HTTPRequest) { completed.append(request) }

    /// Answers a request that could not be read, after the answers already owed, then closes.
    private func refuse(_ error: APIError) {
        closing = true
        waiting.append((HTTPServer.errorResponse(error, target: String(decoding: builder.url, as: UTF8.self)), true))
        writeReady()
    }

    private func respond(_ slot: Int, _ response: HTTPResponse) {
        guard phase == .open, slot >= firstSlot, slot - firstSlot < waiting.count else { return }
        waiting[slot - firstSlot].response = response
        writeReady()
    }

    /// Writes every response whose predecessors are all written.
    private func writeReady() {
        var written = 0
        for (response, close) in waiting {
            guard let response else { break }
            written += 1
            enqueue { response.encode(into: &$0, close: close) }
            if close {
                closeAfterOutput(.requestDone)
                return
            }
        }
        waiting.removeFirst(written)
        firstSlot += written
    }
}
