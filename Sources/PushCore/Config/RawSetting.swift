import TOMLKit

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

    /// Events per second, ≥ 0 (0 for unlimited): `50`, `0.5`.
    func rate() throws -> Double {
        let number: Double?
        switch value {
        case .text(let text): number = Double(text.trimmed)
        case .toml(let value): number = value.double ?? value.int.map(Double.init)
        }
        guard let number, number.isFinite, number >= 0, number <= 1e9 else {
            throw failure(expected: "a number per second >= 0 (0 for unlimited)")
        }
        return number
    }

    /// Addresses and ranges (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`), as `strings()` reads them.
    func ranges() throws -> [CIDR] {
        try strings().map { text in
            do {
                return try CIDR(text)
            } catch {
                throw ConfigError(key: key, message: "\(error)", environmentVariable: variable)
            }
        }
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

    /// Redis Cluster seeds: an array of `host:port` in the file, or one comma-separated string (the environment's
    /// form); empty (`""` or `[]`) for none.
    func clusterSeeds() throws -> [ClusterNode] {
        let expected = "host:port seeds, as an array or comma-separated, or \"\" for one Redis server at redis.url"
        let text: String
        if case .toml(let toml) = value, toml.array != nil {
            text = try strings().joined(separator: ",")
        } else {
            text = try string(expected: expected)
        }
        if text.trimmed.isEmpty { return [] }
        switch ClusterSeeds.parse(text) {
        case .success(let seeds): return seeds
        case .failure(let error):
            throw ConfigError(
                key: key, message: "expected \(expected), got the entry \"\(error.entry)\"", environmentVariable: variable)
        }
    }

    /// A provider's URL (`https://host[:port][/path]`, or `http://` for a test server).
    func providerURL() throws -> ProviderURL {
        let expected = "https://host[:port][/path] (or http:// for a test server)"
        guard let url = ProviderURL(try string(expected: expected).trimmed) else { throw failure(expected: expected) }
        return url
    }

    /// A provider's URL, or nil for `""` (that provider off).
    func optionalProviderURL() throws -> ProviderURL? {
        let expected = "https://host[:port][/path] (or http:// for a test server), or \"\" for off"
        let text = try string(expected: expected).trimmed
        if text.isEmpty { return nil }
        guard let url = ProviderURL(text) else { throw failure(expected: expected) }
        return url
    }

    func redisURL() throws -> RedisURL {
        let expected = "redis://[[user]:password@]host[:port][/db]"
        guard let url = RedisURL(try string(expected: expected).trimmed) else { throw failure(expected: expected) }
        return url
    }
}

extension String {
    /// Without leading and trailing white space.
    fileprivate var trimmed: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
