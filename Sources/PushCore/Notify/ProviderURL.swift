/// Where a notification provider is reached: `apns.url`, `fcm.url`, `fcm.token_url`, `notify.webhook_url`.
///
/// `https://host[:port][/path][?query]`, or `http://` for a local test server without TLS. The host is a name, an
/// IPv4 literal or a bracketed IPv6 literal; user info and fragments are refused. The path of a base URL
/// (`apns.url`, `fcm.url`) is put before each request's path, so a test server can serve several under prefixes.
public struct ProviderURL: Sendable, Equatable, CustomStringConvertible {
    /// `https`: TLS. `http` only for test servers.
    public var isTLS: Bool
    /// The host name or address literal, IPv6 without brackets.
    public var host: String
    /// The port: as written, else 443 for `https` and 80 for `http`.
    public var port: UInt16
    /// Everything after the authority: `""`, or `/…` with any query, as written.
    public var path: String

    /// A URL from its parts.
    public init(isTLS: Bool = true, host: String, port: UInt16? = nil, path: String = "") {
        self.isTLS = isTLS
        self.host = host
        self.port = port ?? (isTLS ? 443 : 80)
        self.path = path
    }

    /// Reads a URL; nil when it is not of the form above.
    public init?(_ text: String) {
        let isTLS: Bool
        var rest: Substring
        if text.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst("https://".count)
        } else if text.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst("http://".count)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        rest = rest.dropFirst(authority.count)
        let path = String(rest)
        guard path.isEmpty || path.hasPrefix("/") || path.hasPrefix("?"),
            path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "#" })
        else { return nil }

        var host = authority
        var port: UInt16? = nil
        var portText: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[close...].dropFirst()
            if !after.isEmpty {
                guard after.first == ":" else { return nil }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[colon...].dropFirst()
            }
            let allowed = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
            guard !host.isEmpty, allowed else { return nil }
        }
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let number = UInt16(portText), number != 0
            else { return nil }
            port = number
        }
        self.init(isTLS: isTLS, host: String(host), port: port, path: path)
    }

    /// `host`, or `host:port` when the port is not the scheme's default; IPv6 in brackets. What HTTP/1.1's `Host`
    /// and HTTP/2's `:authority` carry.
    public var authority: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return port == (isTLS ? 443 : 80) ? host : "\(host):\(port)"
    }

    /// The request target for this URL itself (`fcm.token_url`, `notify.webhook_url`): its path, or `/`.
    public var requestPath: String {
        path.isEmpty ? "/" : (path.hasPrefix("?") ? "/" + path : path)
    }

    /// The request target for `suffix` (which starts with `/`) under this base URL: `/3/device/…` under
    /// `https://api.push.apple.com` is `/3/device/…`; under `http://127.0.0.1:8080/apns/` it is `/apns/3/device/…`.
    public func path(appending suffix: String) -> String {
        let base = path.prefix { $0 != "?" }
        return (base.hasSuffix("/") ? String(base.dropLast()) : String(base)) + suffix
    }

    /// The URL, normalized: `https://api.push.apple.com`, `http://127.0.0.1:8080/apns`.
    public var description: String {
        (isTLS ? "https://" : "http://") + authority + path
    }
}
