/// One HTTP request to a notification provider, as a plain value: what to send, not how. The notifier's HTTP/1.1 or
/// HTTP/2 client sends it to the provider's URL (``ProviderURL``), adding `:authority`/`Host` and the content length.
public struct ProviderRequest: Sendable, Equatable {
    /// `POST`.
    public var method: String
    /// The request target: path and any query.
    public var path: String
    /// Header names in lower case (HTTP/2 requires it), in the order they are sent.
    public var headers: [(name: String, value: String)]
    /// The body bytes.
    public var body: [UInt8]

    /// A request from its parts.
    public init(method: String = "POST", path: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// The value of the first header named `name` (lower case), or nil.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    public static func == (lhs: ProviderRequest, rhs: ProviderRequest) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.body == rhs.body
            && lhs.headers.count == rhs.headers.count
            && zip(lhs.headers, rhs.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
