/// A ban that cannot be read: which field, and what was wrong.
public struct BanFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was wrong, naming the field.
    public let message: String

    init(_ message: String) { self.message = message }

    public var description: String { message }

    /// Refuses a member that is not one of `known`, so a typo (`"ttl_s"`, `"users"`) is not silently ignored.
    static func refuseUnknown(_ members: [(String, JSONValue)], known: [String]) throws(BanFormatError) {
        if let (name, _) = members.first(where: { !known.contains($0.0) }) {
            throw BanFormatError("unknown field \"\(name)\"; the fields are \(known.joined(separator: ", "))")
        }
    }
}
