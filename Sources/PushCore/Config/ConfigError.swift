/// A setting that stops the start: which key, and what was wrong with its value.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting at fault as written in the file (`limits.max_frame`), or the configuration file's path.
    public var key: String
    /// What was expected, and what was found.
    public var message: String
    /// The environment variable the bad value came from; nil when it came from the file.
    public var environmentVariable: String?

    /// An error about `key`, whose value came from `environmentVariable` if not nil.
    public init(key: String, message: String, environmentVariable: String? = nil) {
        self.key = key
        self.message = message
        self.environmentVariable = environmentVariable
    }

    /// `limits.max_frame: expected …`, or `limits.max_frame (from PUSHGW_LIMITS_MAX_FRAME): expected …`.
    public var description: String {
        let source = environmentVariable.map { "\(key) (from \($0))" } ?? key
        return "\(source): \(message)"
    }
}
