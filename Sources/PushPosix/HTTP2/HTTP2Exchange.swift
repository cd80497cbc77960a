/// One request through `HTTP2Client` and what came back of its response: in the client's queue until a stream is
/// free, then on one connection's stream, and again in the queue when the server refused the stream (GOAWAY,
/// REFUSED_STREAM) and it is retried on another connection.
final class HTTP2Exchange {
    /// The client's count of requests when this one was made: retried requests go back into the queue in this order.
    let sequence: Int
    /// The header block's fields, pseudo-headers first, names in lower case.
    let fields: [(name: String, value: String)]
    let body: [UInt8]
    /// Monotonic seconds by which it must be answered.
    let deadline: Double
    let done: HTTP2Client.Completion

    /// Streams it was sent on so far (a request refused by the server is retried a few times).
    var attempts = 0

    // The current attempt's state.

    /// The stream on its connection; 0 while queued.
    var streamID: Int32 = 0
    /// How much of the body the data source gave nghttp2.
    var bodyOffset = 0
    /// The HEADERS frame went out: from now on the server may act on it.
    var headersSent = false
    /// The response's `:status` (0 until it came; a 1xx is replaced by the final one).
    var status = 0
    var headers: [(name: String, value: String)] = []
    var responseBody: [UInt8] = []
    /// The server ended the stream (END_STREAM): the response is complete.
    var ended = false
    /// Answered (or failed, or taken back for a retry) already: whatever nghttp2 says of its stream later is ignored.
    var finished = false

    init(
        sequence: Int, fields: [(name: String, value: String)], body: [UInt8], deadline: Double,
        done: @escaping HTTP2Client.Completion
    ) {
        self.sequence = sequence
        self.fields = fields
        self.body = body
        self.deadline = deadline
        self.done = done
    }

    /// Forgets the attempt that was refused, for the next one on another stream.
    func resetForRetry() {
        streamID = 0
        bodyOffset = 0
        headersSent = false
        status = 0
        headers = []
        responseBody = []
        ended = false
        finished = false
    }

    /// Copies the next part of the body into nghttp2's buffer; returns how many bytes.
    func readBody(into buffer: UnsafeMutablePointer<UInt8>, capacity: Int) -> Int {
        let count = min(capacity, body.count - bodyOffset)
        guard count > 0 else { return 0 }
        body.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress! + bodyOffset, count: count) }
        bodyOffset += count
        return count
    }

    var response: HTTP2Response { HTTP2Response(status: status, headers: headers, body: responseBody) }
}
