import CHTTPParser
import PushCore

/// Glue between http-parser's C callbacks and `HTTPConnection`: one `http_parser_settings` per server, one
/// `http_parser` per connection whose `data` points back at the connection.
final class HTTPParserSettings {
    let pointer = UnsafeMutablePointer<http_parser_settings>.allocate(capacity: 1)

    init() {
        http_parser_settings_init(pointer)
        pointer.pointee.on_message_begin = httpOnMessageBegin
        pointer.pointee.on_url = httpOnURL
        pointer.pointee.on_header_field = httpOnHeaderField
        pointer.pointee.on_header_value = httpOnHeaderValue
        pointer.pointee.on_headers_complete = httpOnHeadersComplete
        pointer.pointee.on_body = httpOnBody
        pointer.pointee.on_message_complete = httpOnMessageComplete
    }

    deinit { pointer.deallocate() }
}

/// What a connection collects of the request being parsed.
struct HTTPRequestBuilder {
    /// Most bytes of request line and headers; past it the request is refused with 431.
    static let maxHeaderBytes = 16 * 1024
    /// Most header lines.
    static let maxHeaders = 64

    var url: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    var field: [UInt8] = []
    var value: [UInt8] = []
    var inValue = false
    var headerBytes = 0
    var body: [UInt8] = []

    mutating func finishHeader() {
        guard inValue else { return }
        // Header names are ASCII tokens: lower-cased byte by byte (String.lowercased is Unicode-aware and slow).
        for index in field.indices where field[index] >= UInt8(ascii: "A") && field[index] <= UInt8(ascii: "Z") {
            field[index] |= 0x20
        }
        headers.append((String(decoding: field, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        inValue = false
    }
}

private func connection(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPConnection {
    Unmanaged<HTTPConnection>.fromOpaque(chttp_data(parser!)!).takeUnretainedValue()
}

private func buffer(_ at: UnsafePointer<CChar>?, _ length: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: at, count: length)
}

private func httpOnMessageBegin(_ parser: UnsafeMutablePointer<http_parser>?) -> Int32 {
    let connection = connection(parser)
    connection.builder = HTTPRequestBuilder()
    connection.requestBegan()
    return 0
}

private func httpOnURL(_ parser: UnsafeMutablePointer<http_parser>?, _ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
    connection(parser).headerData(buffer(at, length)) { $0.url.append(contentsOf: $1) }
}

private func httpOnHeaderField(
    _ parser: UnsafeMutablePointer<http_parser>?, _ at: UnsafePointer<CChar>?, _ length: Int
) -> Int32 {
    connection(parser).headerData(buffer(at, length)) { builder, bytes in
        builder.finishHeader()
        builder.field.append(contentsOf: bytes)
    }
}

private func httpOnHeaderValue(
    _ parser: UnsafeMutablePointer<http_parser>?, _ at: UnsafePointer<CChar>?, _ length: Int
) -> Int32 {
    connection(parser).headerData(buffer(at, length)) { builder, bytes in
        builder.inValue = true
        builder.value.append(contentsOf: bytes)
    }
}

private func httpOnHeadersComplete(_ parser: UnsafeMutablePointer<http_parser>?) -> Int32 {
    let connection = connection(parser)
    connection.builder.finishHeader()
    // Debian's http-parser is built non-strict and reads "HTTZ/9.9" as a version: only 1.0 and 1.1 are HTTP here.
    guard parser!.pointee.http_major == 1, parser!.pointee.http_minor <= 1 else {
        connection.stop(.badRequest("unsupported HTTP version \(parser!.pointee.http_major).\(parser!.pointee.http_minor)"))
        return 3
    }
    let length = chttp_content_length(parser!)
    // ULLONG_MAX means no Content-Length (chunked or none).
    if length != UInt64.max, length > UInt64(connection.server.maxBody) {
        connection.stop(.payloadTooLarge(limit: connection.server.maxBody))
        return 3  // any value other than 0, 1 or 2 is an error for http-parser
    }
    return 0
}

private func httpOnBody(_ parser: UnsafeMutablePointer<http_parser>?, _ at: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
    let connection = connection(parser)
    guard connection.builder.body.count + length <= connection.server.maxBody else {
        connection.stop(.payloadTooLarge(limit: connection.server.maxBody))
        return 1
    }
    connection.builder.body.append(contentsOf: buffer(at, length))
    return 0
}

private func httpOnMessageComplete(_ parser: UnsafeMutablePointer<http_parser>?) -> Int32 {
    let connection = connection(parser)
    let method = String(cString: http_method_str(http_method(chttp_method(parser!))))
    let builder = connection.builder
    connection.builder = HTTPRequestBuilder()
    connection.requestComplete(
        HTTPRequest(
            method: method, target: String(decoding: builder.url, as: UTF8.self), headers: builder.headers,
            body: builder.body, keepAlive: http_should_keep_alive(parser!) != 0))
    return 0
}
