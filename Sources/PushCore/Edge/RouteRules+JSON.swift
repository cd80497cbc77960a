// The route rules as `GET` and `PUT /v1/route/rules` carry them, and as Redis keeps them:
// `{"long_connection":true,"percent":100,"gray":{"group":"gray","percent":5},"allow":[{"user":"u1"}],"deny":[]}`.

extension RouteRules {
    /// The members a rules object may have.
    static let fields = ["long_connection", "percent", "gray", "allow", "deny"]

    /// Reads a `PUT /v1/route/rules` body, or rules kept in Redis; a missing member keeps its default. Every
    /// problem is a 400 naming the member; unknown members are refused so that a typo is not silently ignored.
    public init(body: [UInt8]) throws(APIError) {
        let (json, members) = try APIError.objectBody(body)
        try Self.refuseUnknown(members, known: Self.fields, in: "the rules")
        var longConnection = true
        if let value = json["long_connection"], !value.isNull {
            guard let flag = value.boolValue else { throw .badRequest("long_connection must be true or false") }
            longConnection = flag
        }
        var percent = 100
        if let value = json["percent"], !value.isNull {
            percent = try Self.percent(value, "percent")
        }
        var gray: Gray?
        if let value = json["gray"], !value.isNull {
            guard case .object(let grayMembers) = value else {
                throw .badRequest("gray must be an object {\"group\":…,\"percent\":…} or null")
            }
            try Self.refuseUnknown(grayMembers, known: ["group", "percent"], in: "gray")
            guard let group = value["group"]?.stringValue, AuthRequest.isValidIdentifier(group) else {
                throw .badRequest("gray.group must be a non-empty group name without control characters")
            }
            guard let grayPercent = value["percent"] else { throw .badRequest("gray.percent is required") }
            gray = Gray(group: group, percent: try Self.percent(grayPercent, "gray.percent"))
        }
        // Through the memberwise initializer: assignments in an initializer do not run `allow`'s and `deny`'s
        // `didSet`, which index the lists that `decide` reads.
        self.init(
            longConnection: longConnection, percent: percent, gray: gray,
            allow: try Self.matches(json["allow"], "allow"), deny: try Self.matches(json["deny"], "deny"))
    }

    /// The rules with every member written, `gray` as null when there is none.
    public var json: [UInt8] {
        var writer = JSONWriter()
        writer.object {
            $0.field("long_connection", longConnection)
            $0.field("percent", percent)
            $0.key("gray")
            if let gray {
                $0.object {
                    $0.field("group", gray.group)
                    $0.field("percent", gray.percent)
                }
            } else {
                $0.null()
            }
            Self.write(allow, "allow", to: &$0)
            Self.write(deny, "deny", to: &$0)
        }
        return writer.bytes
    }

    private static func write(_ matches: [RouteMatch], _ name: String, to writer: inout JSONWriter) {
        writer.key(name)
        writer.array { writer in
            for match in matches {
                writer.object {
                    switch match {
                    case .user(let user): $0.field("user", user)
                    case .device(let device): $0.field("device", device)
                    case .version(let version): $0.field("version", version)
                    }
                }
            }
        }
    }

    private static func percent(_ value: JSONValue, _ name: String) throws(APIError) -> Int {
        guard let number = value.int64Value, (0...100).contains(number) else {
            throw .badRequest("\(name) must be a whole number from 0 to 100")
        }
        return Int(number)
    }

    /// `[{"user":…}, {"device":…}, {"version":…}]`, each object with exactly one member.
    private static func matches(_ value: JSONValue?, _ name: String) throws(APIError) -> [RouteMatch] {
        guard let value, !value.isNull else { return [] }
        let expected = "\(name) must be an array of objects with one of user, device, version"
        guard let list = value.arrayValue else { throw .badRequest(expected) }
        return try list.enumerated().map { (index, entry) throws(APIError) -> RouteMatch in
            guard case .object(let members) = entry, members.count == 1 else {
                throw .badRequest("\(expected): \(name)[\(index)] is not")
            }
            let (kind, value) = members[0]
            guard let text = value.identifier, AuthRequest.isValidIdentifier(text) else {
                throw .badRequest("\(name)[\(index)].\(kind) must be a non-empty string without control characters")
            }
            switch kind {
            case "user": return .user(text)
            case "device": return .device(text)
            case "version": return .version(text)
            default: throw .badRequest("\(expected): \(name)[\(index)] has \"\(kind)\"")
            }
        }
    }

    private static func refuseUnknown(
        _ members: [(String, JSONValue)], known: [String], in place: String
    ) throws(APIError) {
        if let (name, _) = members.first(where: { !known.contains($0.0) }) {
            throw .badRequest("unknown field \"\(name)\" in \(place); the fields are \(known.joined(separator: ", "))")
        }
    }
}
