/// A device's push token (SPEC §10): the body of `PUT /v1/users/{uid}/devices/{key}/push`, and its stored form in
/// ``RedisKeys/pushTokens(_:)``, which `store.lua` reads when a push notifies.
public struct PushToken: Equatable, Sendable {
    public enum Provider: String, CaseIterable, Sendable {
        case apns, fcm, webhook
    }

    public var provider: Provider
    /// The provider's device token (APNs hex, FCM registration token); any identifier for the webhook.
    public var token: String
    /// `topic`: the APNs topic (the app's bundle id); empty when not given.
    public var topic: String
    /// `sandbox`: APNs's development environment.
    public var sandbox: Bool

    public init(provider: Provider, token: String, topic: String = "", sandbox: Bool = false) {
        self.provider = provider
        self.token = token
        self.topic = topic
        self.sandbox = sandbox
    }

    /// Tokens longer than this are refused (an FCM token is about 160 bytes, an APNs one 64 hex digits).
    public static let maxLength = 4096

    /// Parses and checks a PUT body; each problem is a 400 naming the field.
    public init(body: [UInt8]) throws(APIError) {
        guard let json = try? JSONParser.parse(body), case .object = json else {
            throw .badRequest("body must be a JSON object {\"provider\",\"token\",\"topic\",\"sandbox\"}")
        }
        let providers = Provider.allCases.map(\.rawValue).joined(separator: ", ")
        guard let name = json["provider"]?.stringValue, let provider = Provider(rawValue: name) else {
            throw .badRequest("provider must be one of \(providers)")
        }
        guard let token = json["token"]?.stringValue, !token.isEmpty, token.utf8.count <= Self.maxLength,
            AuthRequest.isValidIdentifier(token)
        else {
            throw .badRequest("token must be a non-empty string of at most \(Self.maxLength) bytes, no control characters")
        }
        var topic = ""
        if let value = json["topic"], !value.isNull {
            guard let text = value.stringValue, text.isEmpty || AuthRequest.isValidIdentifier(text) else {
                throw .badRequest("topic must be a string (the app's bundle id)")
            }
            topic = text
        }
        var sandbox = false
        if let value = json["sandbox"], !value.isNull {
            guard let flag = value.boolValue else { throw .badRequest("sandbox must be true or false") }
            sandbox = flag
        }
        self.init(provider: provider, token: token, topic: topic, sandbox: sandbox)
    }

    /// Reads the stored form back; nil when it is not one.
    public init?(stored: [UInt8]) {
        guard let token = try? PushToken(body: stored) else { return nil }
        self = token
    }

    /// The stored form: `{"provider","token","topic","sandbox"}`.
    public var json: [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// Writes the object (the stored form, and `GET /v1/users/{uid}`'s `push` entries).
    public func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("provider", provider.rawValue)
            $0.field("token", token)
            $0.field("topic", topic)
            $0.field("sandbox", sandbox)
        }
    }
}
