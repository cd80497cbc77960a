/// How urgently a notification should reach the device: `notify.priority`.
public enum NotifyPriority: String, Sendable, Equatable, CaseIterable {
    /// Deliver at once, waking the device (APNs priority 10, FCM `HIGH`). The default.
    case high
    /// Deliver when it suits the device's power budget (APNs priority 5, FCM `NORMAL`).
    case normal
}

/// A push's `notify` object (SPEC §10): what the phone shows when the app is in the background.
///
/// `{"title","body","sound","collapse_id","priority":"high"|"normal","data":{…},"always":bool}`, every member
/// optional; a member that is `null` counts as absent, and members pushgw does not know are ignored here (the
/// webhook still receives the object as the backend wrote it).
public struct NotifyContent: Sendable, Equatable {
    /// `title`: the alert's title.
    public var title: String?
    /// `body`: the alert's text.
    public var body: String?
    /// `sound`: the name of a sound the app ships (`"default"` for the system's).
    public var sound: String?
    /// `collapse_id`: notifications with the same id replace each other on the device (APNs `apns-collapse-id`,
    /// FCM `collapse_key`).
    public var collapseID: String?
    /// `priority`. Default ``NotifyPriority/high``.
    public var priority: NotifyPriority
    /// `data`: custom keys for the app, in the order the backend wrote them; a name written twice keeps its last
    /// value at its first place. APNs gets them beside `aps`, FCM as string values.
    public var data: [(name: String, value: JSONValue)]
    /// `always`: notify the user's online devices too, not only the offline ones. Default false.
    public var always: Bool

    /// A notification from its parts.
    public init(
        title: String? = nil, body: String? = nil, sound: String? = nil, collapseID: String? = nil,
        priority: NotifyPriority = .high, data: [(name: String, value: JSONValue)] = [], always: Bool = false
    ) {
        self.title = title
        self.body = body
        self.sound = sound
        self.collapseID = collapseID
        self.priority = priority
        self.data = data
        self.always = always
    }

    /// Reads a parsed `notify` object.
    ///
    /// - Throws: ``NotifyFormatError`` when it is not an object or a known member has the wrong type.
    public init(_ json: JSONValue) throws(NotifyFormatError) {
        guard case .object = json else { throw NotifyFormatError("notify must be an object") }
        self.init()
        title = try Self.string(json, "title")
        body = try Self.string(json, "body")
        sound = try Self.string(json, "sound")
        collapseID = try Self.string(json, "collapse_id")
        if let text = try Self.string(json, "priority") {
            guard let priority = NotifyPriority(rawValue: text) else {
                throw NotifyFormatError("notify.priority must be \"high\" or \"normal\"")
            }
            self.priority = priority
        }
        switch json["data"] {
        case nil, .null?: break
        case .object(let members)?:
            for (name, value) in members {
                if let index = data.firstIndex(where: { $0.name == name }) {
                    data[index].value = value
                } else {
                    data.append((name, value))
                }
            }
        case _?: throw NotifyFormatError("notify.data must be an object")
        }
        switch json["always"] {
        case nil, .null?: break
        case .bool(let flag)?: always = flag
        case _?: throw NotifyFormatError("notify.always must be true or false")
        }
    }

    /// Parses `notify` JSON text (the queue entry's `n`).
    public init(json bytes: [UInt8]) throws(NotifyFormatError) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw NotifyFormatError("notify is not JSON: \(error)")
        }
        try self.init(json)
    }

    private static func string(_ json: JSONValue, _ name: String) throws(NotifyFormatError) -> String? {
        switch json[name] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case _?: throw NotifyFormatError("notify.\(name) must be a string")
        }
    }

    public static func == (lhs: NotifyContent, rhs: NotifyContent) -> Bool {
        lhs.title == rhs.title && lhs.body == rhs.body && lhs.sound == rhs.sound && lhs.collapseID == rhs.collapseID
            && lhs.priority == rhs.priority && lhs.always == rhs.always && lhs.data.count == rhs.data.count
            && zip(lhs.data, rhs.data).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Why a `notify` object was refused: which member, and what it must be.
public struct NotifyFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `notify.priority must be "high" or "normal"`, …
    public let message: String

    init(_ message: String) { self.message = message }

    public var description: String { message }
}
