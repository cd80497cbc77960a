/// An HTTP API error (SPEC §3): a status and the JSON body `{"error":{"code":…,"message":…}}`.
public struct APIError: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String
    /// Extra response headers, such as `Allow` on 405.
    public var headers: [(String, String)] = []
    /// Members written beside `error` in the body (JSON members without the braces, e.g. a 503 push's
    /// `"id":"…","stored":"unknown"`); empty for most errors.
    public var details: [UInt8] = []

    public init(status: Int, code: String, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public var body: [UInt8] {
        var writer = JSONWriter()
        writer.object {
            $0.key("error")
            $0.object {
                $0.field("code", code)
                $0.field("message", message)
            }
            if !details.isEmpty { $0.rawMembers(details) }
        }
        return writer.bytes
    }

    /// The body with the status added, `{"status":n,"error":{…}}`: one item's answer in a batch.
    public var bodyWithStatus: [UInt8] {
        var writer = JSONWriter()
        writer.object {
            $0.field("status", status)
            $0.key("error")
            $0.object {
                $0.field("code", code)
                $0.field("message", message)
            }
            if !details.isEmpty { $0.rawMembers(details) }
        }
        return writer.bytes
    }

    /// 400: the request or its body is malformed.
    public static func badRequest(_ message: String) -> Self { .init(status: 400, code: "bad_request", message: message) }
    /// 401: `Authorization: Bearer <key>` missing or not one of `api.keys`.
    public static let unauthorized = Self(
        status: 401, code: "unauthorized", message: "missing or unknown API key (Authorization: Bearer <key>)",
        headers: [("WWW-Authenticate", "Bearer")])
    /// 403: the caller's address is not in `api.allow`.
    public static let forbidden = Self(
        status: 403, code: "forbidden", message: "this address may not call the API (api.allow)")
    /// 403: `POST /v1/register` for a banned user or device (SPEC §8).
    public static func banned(until: Int) -> Self {
        let end = until == 0 ? "" : " until \(until) (Unix time)"
        return .init(status: 403, code: "banned", message: "this user or device is banned" + end)
    }
    /// 429: over `limits.api_rate` for this API key; `Retry-After` says in how many seconds a request would pass.
    public static func rateLimited(retryAfter seconds: Int) -> Self {
        let seconds = max(1, seconds)
        return .init(
            status: 429, code: "rate_limited",
            message: "over limits.api_rate for this API key; retry after \(seconds) s",
            headers: [("Retry-After", String(seconds))])
    }
    /// 404: no such path.
    public static func notFound(_ path: String) -> Self { .init(status: 404, code: "not_found", message: "no route for \(path)") }
    /// 405: the path exists but not with this method.
    public static func methodNotAllowed(_ method: String, allowed: [String]) -> Self {
        .init(
            status: 405, code: "method_not_allowed",
            message: "\(method) is not allowed here; use \(allowed.joined(separator: ", "))",
            headers: [("Allow", allowed.joined(separator: ", "))])
    }
    /// 409: an idempotency key reused with a different body.
    public static func conflict(_ message: String) -> Self { .init(status: 409, code: "conflict", message: message) }
    /// 413: the body is over `limits.max_body`.
    public static func payloadTooLarge(limit: Int) -> Self {
        .init(status: 413, code: "payload_too_large", message: "request body exceeds max_body (\(limit) bytes)")
    }
    /// 415: a body that is not JSON by its content type.
    public static func unsupportedMediaType(_ type: String) -> Self {
        .init(status: 415, code: "unsupported_media_type", message: "expected application/json, got \(type)")
    }
    /// 501: a feature this gateway does not serve yet.
    public static func notImplemented(_ message: String) -> Self {
        .init(status: 501, code: "not_implemented", message: message)
    }
    /// 503: storage (Redis) is not available. A push's 503 also says in `details` whether it was stored.
    public static func unavailable(_ message: String) -> Self {
        .init(status: 503, code: "unavailable", message: message, headers: [("Retry-After", "1")])
    }
}

extension APIError {
    /// A request body that must be a JSON object: the value and its members, or a 400 saying what it is instead.
    public static func objectBody(
        _ body: [UInt8]
    ) throws(APIError) -> (value: JSONValue, members: [(String, JSONValue)]) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(body)
        } catch {
            throw .badRequest("body is not a JSON object: \(error)")
        }
        guard case .object(let members) = json else { throw .badRequest("body must be a JSON object") }
        return (json, members)
    }
}
