/// Why a script call gave no result: Redis answered with an error, or with a reply this code does not understand.
public struct ScriptError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Kind: Equatable, Sendable {
        case server
        case unexpectedReply
    }

    private let kind: Kind
    /// The script's name.
    public let script: String
    /// Redis's error text, or what was wrong with the reply.
    public let message: String

    private init(_ kind: Kind, script: String, message: String) {
        self.kind = kind
        self.script = script
        self.message = message
    }

    /// Redis answered with an error reply (a bad argument, OOM, a Lua error, NOSCRIPT…).
    public static func server(script: String, message: String) -> Self {
        .init(.server, script: script, message: message)
    }

    /// The reply does not have the shape the script returns: scripts and binary are out of step, or a bug.
    public static func unexpectedReply(script: String, _ detail: String, reply: RedisValue) -> Self {
        var shown = reply.description
        if shown.count > 200 { shown = shown.prefix(200) + "…" }
        return .init(.unexpectedReply, script: script, message: "\(detail); reply: \(shown)")
    }

    /// Whether Redis does not have the script cached: send ``ScriptCall/eval`` (or SCRIPT LOAD) and retry.
    public var isNoScript: Bool { kind == .server && message.hasPrefix("NOSCRIPT") }

    /// Whether this is an error reply from Redis (as opposed to a reply of the wrong shape).
    public var isServerError: Bool { kind == .server }

    public var description: String {
        switch kind {
        case .server: "Redis error from script \(script): \(message)"
        case .unexpectedReply: "unexpected reply from script \(script): \(message)"
        }
    }
}
