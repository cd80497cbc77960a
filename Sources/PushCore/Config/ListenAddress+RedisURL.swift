#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Reading the two address kinds a configuration holds: `server.*` listen addresses and `redis.url`.

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
                let user = PercentDecoding.decode(credentials[..<colon]),
                let secret = PercentDecoding.decode(credentials[colon...].dropFirst())
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

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
