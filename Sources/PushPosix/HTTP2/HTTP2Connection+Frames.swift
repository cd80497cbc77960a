import CNghttp2

// What nghttp2 reports while it reads and writes frames: top-level C functions that find their connection through
// the session's user data (unretained: the connection owns the session and deletes it in its deinit), and the
// connection's handling of each report. None of it calls the client's users or frees anything.

extension HTTP2Connection {
    func installCallbacks(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_header_callback(callbacks, http2OnHeader)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, http2OnDataChunk)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, http2OnFrameReceived)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, http2OnFrameSent)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, http2OnStreamClose)
    }

    /// A header field of a response (or of its trailers). A new `:status` starts the header list again: what came
    /// with a 1xx belongs to that interim response, not to the final one.
    func header(stream: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard let exchange = streams[stream], !exchange.finished else { return }
        if name.elementsEqual(":status".utf8) {
            exchange.status = Int(String(decoding: value, as: UTF8.self)) ?? 0
            exchange.headers.removeAll()
            return
        }
        guard name.first != UInt8(ascii: ":") else { return }
        exchange.headers.append(
            (String(decoding: name, as: UTF8.self).lowercased(), String(decoding: value, as: UTF8.self)))
    }

    /// A piece of a response's body; past `maxResponseBytes` the stream is reset and the request fails.
    func data(stream: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        guard let exchange = streams[stream], !exchange.finished else { return }
        guard exchange.responseBody.count + bytes.count <= client.options.maxResponseBytes else {
            exchange.finished = true
            cancel(exchange)
            let detail = "more than \(client.options.maxResponseBytes) bytes"
            return client.complete(exchange, .failure(HTTP2Error(.responseTooLarge, mayHaveBeenSent: true, detail)))
        }
        exchange.responseBody.append(contentsOf: bytes)
    }

    func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        switch UInt32(header.type) {
        case NGHTTP2_SETTINGS.rawValue where header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0: settingsReceived()
        case NGHTTP2_GOAWAY.rawValue:
            goAwayReceived(
                lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code)
        case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 { streams[header.stream_id]?.ended = true }
        default: break
        }
    }

    func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {
        guard UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue else { return }
        streams[frame.pointee.hd.stream_id]?.headersSent = true
    }

    /// nghttp2 closed a stream: the response is complete, or the server reset or refused the stream. A stream whose
    /// request HEADERS never went out (the connection went away first) is closed as REFUSED_STREAM too.
    func streamClosed(_ stream: Int32, errorCode: UInt32) {
        guard let exchange = streams.removeValue(forKey: stream), !exchange.finished else { return }
        exchange.finished = true
        if exchange.ended && exchange.status >= 200 {
            // A complete response; an error code after it (NO_ERROR: stop sending the body) changes nothing.
            return client.complete(exchange, .success(exchange.response))
        }
        if errorCode == NGHTTP2_REFUSED_STREAM.rawValue && exchange.status == 0 {
            return client.retry(exchange)  // not processed (RFC 9113 §8.7)
        }
        let detail = errorCode == NGHTTP2_NO_ERROR.rawValue ? "the response ended early" : Self.errorName(errorCode)
        client.complete(exchange, .failure(HTTP2Error(.streamReset, mayHaveBeenSent: true, detail)))
    }

    /// The next part of a request's body, for nghttp2's data source.
    func readBody(
        stream: Int32, into buffer: UnsafeMutablePointer<UInt8>, capacity: Int, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let exchange = streams[stream], !exchange.finished else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let count = exchange.readBody(into: buffer, capacity: capacity)
        if exchange.bodyOffset == exchange.body.count { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return count
    }
}

private func owner(_ userData: UnsafeMutableRawPointer?) -> HTTP2Connection {
    Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
}

private func http2OnHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ name: UnsafePointer<UInt8>?, _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?, _ valueLength: Int, _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let frame, UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue else { return 0 }
    owner(userData).header(
        stream: frame.pointee.hd.stream_id, name: UnsafeBufferPointer(start: name, count: nameLength),
        value: UnsafeBufferPointer(start: value, count: valueLength))
    return 0
}

private func http2OnDataChunk(
    _ session: OpaquePointer?, _ flags: UInt8, _ stream: Int32, _ data: UnsafePointer<UInt8>?, _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    owner(userData).data(stream: stream, UnsafeBufferPointer(start: data, count: length))
    return 0
}

private func http2OnFrameReceived(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    if let frame { owner(userData).frameReceived(frame) }
    return 0
}

private func http2OnFrameSent(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    if let frame { owner(userData).frameSent(frame) }
    return 0
}

private func http2OnStreamClose(
    _ session: OpaquePointer?, _ stream: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    owner(userData).streamClosed(stream, errorCode: errorCode)
    return 0
}

/// The data source of every request body: the exchange is found by its stream, not through `source`.
func http2ReadBody(
    _ session: OpaquePointer?, _ stream: Int32, _ buffer: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    return owner(userData).readBody(stream: stream, into: buffer, capacity: length, flags: flags)
}
