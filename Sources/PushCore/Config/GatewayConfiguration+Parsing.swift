import Logging
import TOMLKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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

extension GatewayConfiguration {
    /// Reads the TOML file at `path` (nil: no file, only defaults), then the `PUSHGW_*` environment variables.
    ///
    /// - Parameter cores: the number of cores, the default for `server.workers`.
    /// - Returns: the configuration, and warnings to log (ignored variables, an open API).
    /// - Throws: `ConfigError` naming the path if the file cannot be read, or the key whose value is bad.
    public static func load(
        path: String?,
        environment: [String: String],
        cores: Int
    ) throws -> (GatewayConfiguration, warnings: [String]) {
        guard let path else {
            return try load(toml: nil, environment: environment, cores: cores)
        }
        let text = try readFile(path)
        return try load(toml: text, fileName: path, environment: environment, cores: cores)
    }

    /// Reads settings from TOML text (nil: only defaults), then the `PUSHGW_<SECTION>_<KEY>` environment variables,
    /// which win over the file.
    public static func load(
        toml: String?,
        environment: [String: String],
        cores: Int
    ) throws -> (GatewayConfiguration, warnings: [String]) {
        try load(toml: toml, fileName: nil, environment: environment, cores: cores)
    }

    static func load(
        toml: String?,
        fileName: String?,
        environment: [String: String],
        cores: Int
    ) throws -> (GatewayConfiguration, warnings: [String]) {
        var configuration = GatewayConfiguration(cores: cores)
        let fileSettings = try toml.map { try Self.fileSettings($0, fileName: fileName) } ?? []
        let (environmentSettings, warnings) = Self.environmentSettings(environment)
        for setting in fileSettings + environmentSettings {
            try Self.fieldsByKey[setting.key]!.apply(&configuration, setting)
        }
        try configuration.validate()
        var allWarnings = warnings
        if configuration.api.keys.isEmpty {
            allWarnings.append("api.keys is empty: the HTTP API is open (development only)")
        }
        return (configuration, allWarnings)
    }

    /// Checks that involve more than one key.
    func validate() throws {
        if auth.required && (auth.secret ?? "").isEmpty {
            throw ConfigError(
                key: "auth.secret",
                message: "must be set when auth.required is true (in [auth] or PUSHGW_AUTH_SECRET)"
            )
        }
        let listeners = [
            ("server.tcp", server.tcp), ("server.websocket", server.websocket), ("server.http", server.http),
        ]
        for (index, (key, address)) in listeners.enumerated() {
            guard let address, address.port != 0 else { continue }
            for (otherKey, other) in listeners[..<index] {
                if let other, address.overlaps(other) {
                    throw ConfigError(key: key, message: "\(address) is already used by \(otherKey) (\(other))")
                }
            }
        }
    }
}

// MARK: - Keys

extension GatewayConfiguration {
    /// One key: its dotted name and how a raw value is checked and stored.
    struct Field: Sendable {
        let key: String
        let apply: @Sendable (inout GatewayConfiguration, RawSetting) throws -> Void

        init(_ key: String, _ apply: @escaping @Sendable (inout GatewayConfiguration, RawSetting) throws -> Void) {
            self.key = key
            self.apply = apply
        }

        var section: String { String(key.prefix { $0 != "." }) }
        var name: String { String(key.drop { $0 != "." }.dropFirst()) }
        /// `limits.max_frame` → `PUSHGW_LIMITS_MAX_FRAME`.
        var variable: String { "PUSHGW_" + String(key.uppercased().map { $0 == "." ? "_" : $0 }) }
    }

    /// Every key, in the order of the example file. Ranges here are the documented ones in the struct.
    static let fields: [Field] = [
        Field("server.tcp") { $0.server.tcp = try $1.listenAddress() },
        Field("server.websocket") { $0.server.websocket = try $1.listenAddress() },
        Field("server.http") { $0.server.http = try $1.listenAddress() },
        Field("server.workers") { $0.server.workers = try $1.int(1...1024) },
        Field("server.admin_socket") { $0.server.adminSocket = try $1.nonEmptyString() },
        Field("server.drain_timeout") { $0.server.drainTimeout = try $1.seconds() },
        Field("redis.url") { $0.redis.url = try $1.redisURL() },
        Field("auth.required") { $0.auth.required = try $1.bool() },
        Field("auth.secret") { $0.auth.secret = try $1.optionalString() },
        Field("auth.token_ttl") { $0.auth.tokenTTL = try $1.int(1...Int(Int32.max)) },
        Field("api.keys") { $0.api.keys = try $1.strings() },
        Field("limits.max_frame") { $0.limits.maxFrame = try $1.int(16...16 << 20) },
        Field("limits.handshake_timeout") { $0.limits.handshakeTimeout = try $1.seconds() },
        Field("limits.heartbeat") { $0.limits.heartbeat = try $1.seconds() },
        Field("limits.max_write_queue") { $0.limits.maxWriteQueue = try $1.int(1024...Int.max) },
        Field("limits.max_body") { $0.limits.maxBody = try $1.int(1...Int.max) },
        Field("limits.http_idle_timeout") { $0.limits.httpIdleTimeout = try $1.seconds() },
        Field("inbox.max") { $0.inbox.max = try $1.int(1...Int.max) },
        Field("inbox.ttl") { $0.inbox.ttl = try $1.int(1...Int.max) },
        Field("log.level") { $0.log.level = try $1.oneOf(Logger.Level.allCases) },
        Field("log.format") { $0.log.format = try $1.oneOf(LogFormat.allCases) },
    ]

    static let fieldsByKey = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0) })

    /// The sections in file order: `server`, `redis`, …
    static let sections: [String] = fields.reduce(into: []) { sections, field in
        if !sections.contains(field.section) { sections.append(field.section) }
    }
}

// MARK: - Sources

extension GatewayConfiguration {
    /// The settings in a TOML document; any section or key that is not ours is an error, to catch typos.
    static func fileSettings(_ text: String, fileName: String?) throws -> [RawSetting] {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let position = error.source.begin
            throw ConfigError(
                key: fileName ?? "TOML",
                message: "syntax error at line \(position.line), column \(position.column): \(error.description)"
            )
        }
        let known = sections.map { "[\($0)]" }.joined(separator: ", ")
        var settings: [RawSetting] = []
        for (section, value) in root {
            guard sections.contains(section) else {
                throw ConfigError(key: section, message: "unknown section; the sections are \(known)")
            }
            guard let table = value.table else {
                throw ConfigError(key: section, message: "expected a [\(section)] table, got \(value.type)")
            }
            for (name, value) in table {
                let key = "\(section).\(name)"
                guard fieldsByKey[key] != nil else {
                    let names = fields.filter { $0.section == section }.map(\.name).joined(separator: ", ")
                    throw ConfigError(key: key, message: "unknown key; the keys in [\(section)] are \(names)")
                }
                settings.append(RawSetting(key: key, value: .toml(value)))
            }
        }
        return settings
    }

    /// Our settings among `PUSHGW_*` variables, and a warning for each `PUSHGW_<SECTION>_*` that is not one.
    ///
    /// Other tools use the `PUSHGW_` prefix too, so only names inside one of our sections are flagged.
    static func environmentSettings(_ environment: [String: String]) -> ([RawSetting], warnings: [String]) {
        let fieldsByVariable = Dictionary(uniqueKeysWithValues: fields.map { ($0.variable, $0) })
        let sectionPrefixes = sections.map { "PUSHGW_\($0.uppercased())_" }
        var settings: [RawSetting] = []
        var warnings: [String] = []
        for (variable, value) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix("PUSHGW_") {
            if let field = fieldsByVariable[variable] {
                settings.append(RawSetting(key: field.key, value: .text(value), variable: variable))
            } else if sectionPrefixes.contains(where: { variable.hasPrefix($0) }) {
                warnings.append("\(variable) is not a pushgw setting: ignored")
            }
        }
        return (settings, warnings)
    }

    /// The whole file as UTF-8; errors name the path and say why (`No such file or directory`).
    static func readFile(_ path: String) throws -> String {
        guard let file = fopen(path, "rb") else {
            throw ConfigError(key: path, message: "cannot read the configuration file: \(errorText(errno))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[..<count]
            if count < chunk.count { break }
        }
        if ferror(file) != 0 {
            throw ConfigError(key: path, message: "cannot read the configuration file: \(errorText(errno))")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func errorText(_ code: Int32) -> String {
        strerror(code).map { String(cString: $0) } ?? "error \(code)"
    }
}

// MARK: - Values

/// One value as read from the file or the environment, before it is checked against its key's type.
struct RawSetting {
    enum Value {
        /// From the file: TOML types must match (an integer is not a string).
        case toml(any TOMLValueConvertible)
        /// From the environment: text converted to the key's type.
        case text(String)
    }

    let key: String
    let value: Value
    /// The environment variable, for values not from the file.
    var variable: String? = nil

    /// A `ConfigError` for this key saying what was expected and what was found.
    func failure(expected: String) -> ConfigError {
        let found: String
        switch value {
        case .text(let text): found = "\"\(text)\""
        case .toml(let value): found = value.string.map { "\"\($0)\"" } ?? "\(value.type) \(value.debugDescription)"
        }
        return ConfigError(key: key, message: "expected \(expected), got \(found)", environmentVariable: variable)
    }

    func string(expected: String = "a string") throws -> String {
        switch value {
        case .text(let text): return text
        case .toml(let value):
            guard let string = value.string else { throw failure(expected: expected) }
            return string
        }
    }

    func nonEmptyString() throws -> String {
        let string = try self.string(expected: "a non-empty string")
        guard !string.isEmpty else { throw failure(expected: "a non-empty string") }
        return string
    }

    /// A string where `""` means not set.
    func optionalString() throws -> String? {
        let string = try self.string()
        return string.isEmpty ? nil : string
    }

    func int(_ range: ClosedRange<Int>) throws -> Int {
        let expected =
            range.upperBound == .max
            ? "an integer >= \(range.lowerBound)" : "an integer from \(range.lowerBound) to \(range.upperBound)"
        let number: Int?
        switch value {
        case .text(let text): number = Int(text.trimmed)
        case .toml(let value): number = value.int
        }
        guard let number, range.contains(number) else { throw failure(expected: expected) }
        return number
    }

    /// A duration in seconds, > 0: `10`, `2.5`.
    func seconds() throws -> Double {
        let number: Double?
        switch value {
        case .text(let text): number = Double(text.trimmed)
        case .toml(let value): number = value.double ?? value.int.map(Double.init)
        }
        guard let number, number.isFinite, number > 0 else { throw failure(expected: "a number of seconds > 0") }
        return number
    }

    func bool() throws -> Bool {
        switch value {
        case .text(let text):
            switch text.trimmed.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw failure(expected: "true/false, 1/0 or yes/no")
            }
        case .toml(let value):
            guard let bool = value.bool else { throw failure(expected: "true or false") }
            return bool
        }
    }

    /// An array of non-empty strings in the file; comma-separated in the environment, blanks dropped.
    func strings() throws -> [String] {
        switch value {
        case .text(let text):
            return text.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
        case .toml(let value):
            let strings = value.array?.map { $0.string }
            guard let strings, strings.allSatisfy({ $0 != nil && !$0!.isEmpty }) else {
                throw failure(expected: "an array of non-empty strings")
            }
            return strings.map { $0! }
        }
    }

    func oneOf<Choice: RawRepresentable<String>>(_ choices: [Choice]) throws -> Choice {
        let expected = "one of " + choices.map(\.rawValue).joined(separator: ", ")
        let text = try string(expected: expected).trimmed.lowercased()
        guard let choice = choices.first(where: { $0.rawValue == text }) else { throw failure(expected: expected) }
        return choice
    }

    /// A listen address, or nil for `""` (listener off).
    func listenAddress() throws -> ListenAddress? {
        let expected = "IPv4:port, [IPv6]:port or localhost:port (port 0 to 65535), or \"\" for off"
        let text = try string(expected: expected).trimmed
        if text.isEmpty { return nil }
        guard let address = ListenAddress(text) else { throw failure(expected: expected) }
        return address
    }

    func redisURL() throws -> RedisURL {
        let expected = "redis://[[user]:password@]host[:port][/db]"
        guard let url = RedisURL(try string(expected: expected).trimmed) else { throw failure(expected: expected) }
        return url
    }
}

// MARK: - Addresses

extension ListenAddress {
    /// Reads `0.0.0.0:3101`, `127.0.0.1:0`, `[::1]:3101` or `localhost:3101` (as `127.0.0.1`).
    ///
    /// The host must be an address literal: resolving names at start would tie the start to DNS.
    public init?(_ text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].dropFirst().first == ":" else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[close...].dropFirst(2)
            guard Self.isLiteral(host, family: AF_INET6) else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon] == "localhost" ? "127.0.0.1" : text[..<colon]
            port = text[colon...].dropFirst()
            guard Self.isLiteral(host, family: AF_INET) else { return nil }
        }
        guard let port = parsePort(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// Whether this and `other` cannot both be bound: same port, and same host or either one a wildcard.
    func overlaps(_ other: ListenAddress) -> Bool {
        let wildcards = ["0.0.0.0", "::"]
        return port == other.port && (host == other.host || wildcards.contains(host) || wildcards.contains(other.host))
    }

    private static func isLiteral(_ host: Substring, family: Int32) -> Bool {
        // Big enough for an in6_addr; inet_pton writes 4 or 16 bytes.
        var buffer = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &buffer) { inet_pton(family, String(host), $0.baseAddress) == 1 }
    }
}

extension RedisURL {
    /// Reads `redis://[[user]:password@]host[:port][/db]`; user and password may be percent-encoded.
    public init?(_ text: String) {
        guard text.hasPrefix("redis://") else { return nil }
        var rest = text.dropFirst("redis://".count)
        var username: String? = nil
        var password: String? = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[at...].dropFirst()
            guard let colon = credentials.firstIndex(of: ":"),
                let user = percentDecoded(credentials[..<colon]),
                let secret = percentDecoded(credentials[colon...].dropFirst())
            else { return nil }
            if !secret.isEmpty {
                username = user.isEmpty ? nil : user
                password = secret
            }
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        var host = authority
        var port: UInt16 = 6379
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[close...].dropFirst()
            if !after.isEmpty {
                guard after.first == ":", let number = parsePort(after.dropFirst()), number != 0 else { return nil }
                port = number
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            guard let number = parsePort(authority[colon...].dropFirst()), number != 0 else { return nil }
            port = number
        }
        let hostCharacters = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-_:".contains($0)) }
        guard !host.isEmpty, hostCharacters else { return nil }
        var db = 0
        if path.count > 1 {
            let digits = path.dropFirst()
            guard digits.allSatisfy(\.isASCIIDigit), let number = Int(digits), number <= Int32.max else { return nil }
            db = number
        }
        self.init(host: String(host), port: port, username: username, password: password, db: db)
    }
}

/// Decimal digits only (no sign, no spaces), 0 to 65535.
private func parsePort(_ text: Substring) -> UInt16? {
    guard !text.isEmpty, text.allSatisfy(\.isASCIIDigit) else { return nil }
    return UInt16(text)
}

/// `%40` → `@`; nil for a broken escape.
private func percentDecoded(_ text: Substring) -> String? {
    var bytes: [UInt8] = []
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard let high = iterator.next(), let low = iterator.next(),
            let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
        else { return nil }
        bytes.append(value)
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension String {
    /// Without leading and trailing white space.
    fileprivate var trimmed: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
