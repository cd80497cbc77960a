/// Why a notification queue entry could not be read: the field at fault and what was wrong. An entry that cannot
/// be read is never delivered; the notifier moves it to the dead-letter stream with this text.
public struct NotificationEntryError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: String, Sendable {
        case missingField = "missing_field"
        case badField = "bad_field"
        case malformed = "malformed"
    }

    private let kind: Kind
    /// The stream field at fault (`b`, `n`, …); nil when the entry as a whole is malformed.
    public let field: String?
    /// What was expected, or what was found.
    public let message: String

    private init(_ kind: Kind, field: String?, _ message: String) {
        self.kind = kind
        self.field = field
        self.message = message
    }

    /// `missing_field`, `bad_field` or `malformed`: stable, for logs and counters.
    public var code: String { kind.rawValue }

    /// `notification entry field b: expected a decimal integer >= 0, got "x"`.
    public var description: String {
        field.map { "notification entry field \($0): \(message)" } ?? "notification entry: \(message)"
    }

    /// A field every entry must have is not there.
    public static func missingField(_ field: String) -> Self { .init(.missingField, field: field, "missing") }
    /// A field is there with a value that is not what it must be.
    public static func badField(_ field: String, _ detail: String) -> Self { .init(.badField, field: field, detail) }
    /// The entry is not a list of field/value pairs (an odd count, a value that is not a string, or an entry
    /// deleted from the stream while it was pending).
    public static func malformed(_ detail: String) -> Self { .init(.malformed, field: nil, detail) }
}
