/// A complete response to a request through `HTTP2Client`: its status, its header fields (and trailers) in the
/// order they came, names in lower case, without the `:status` pseudo-header, and its body.
public struct HTTP2Response: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of the first field named `name` (in lower case), if any.
    public func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
}
