/// Computes and compares message authentication codes for device tokens (SPEC §4).
///
/// A protocol so that the token format can be tested with fakes: the gateway passes ``OpenSSLHMAC`` (HMAC-SHA256
/// over the configured secret), tests may pass anything.
public protocol MessageAuthenticator: Sendable {
    /// The MAC of `message` under this authenticator's key.
    func mac(_ message: [UInt8]) -> [UInt8]
    /// Whether two MACs are equal, in time that does not depend on where they differ, so that an attacker
    /// cannot find a valid MAC byte by byte by timing rejections.
    func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool
}

/// What a verified token says.
public struct TokenClaims: Equatable, Sendable {
    /// `u`: the user the token was issued to.
    public var user: String
    /// `d`: the device key the token was issued to. When AUTH gives no key, this becomes the connection's key.
    public var device: String
    /// `exp`: when the token stops being valid, in Unix seconds.
    public var expiresAt: UInt64

    public init(user: String, device: String, expiresAt: UInt64) {
        self.user = user
        self.device = device
        self.expiresAt = expiresAt
    }
}

/// Why a device token was refused. The `code` strings are stable: they are logged and counted.
public struct TokenError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Kind: String, Sendable {
        case malformed = "malformed"
        case badSignature = "bad_signature"
        case expired = "expired"
        case wrongUser = "wrong_user"
        case wrongDevice = "wrong_device"
    }

    private let kind: Kind
    /// Human-readable detail. It never contains the secret or the expected MAC.
    public let message: String

    private init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `malformed`, `bad_signature`, `expired`, `wrong_user` or `wrong_device`.
    public var code: String { kind.rawValue }

    public var description: String { "\(code): \(message)" }

    /// The token is not `base64url(payload).base64url(mac)`, is too long, or its signed payload is not the
    /// expected JSON object.
    public static func malformed(_ detail: String) -> Self { .init(.malformed, detail) }
    /// The MAC does not match the payload: forged, altered, or signed with another secret.
    public static let badSignature = Self(.badSignature, "token signature does not match")
    /// `exp` is not after the current time.
    public static func expired(at expiry: UInt64, now: UInt64) -> Self {
        .init(.expired, "token expired at \(expiry) (now \(now))")
    }
    /// The token was issued to another user than AUTH's `mid`.
    public static let wrongUser = Self(.wrongUser, "token was issued to another user")
    /// The token was issued to another device than AUTH's `key`.
    public static let wrongDevice = Self(.wrongDevice, "token was issued to another device")
}

/// Issues and verifies device tokens (SPEC §4):
/// `base64url(payload) + "." + base64url(MAC(payload))`, payload = `{"u":user,"d":device,"exp":unix_seconds}`,
/// base64url without padding, the MAC being HMAC-SHA256 under `auth.secret` in the gateway.
public struct TokenSigner: Sendable {
    /// Longest token accepted, in bytes; AUTH's `token` field has the same limit. Issuing does not check it:
    /// the register handler bounds user and device lengths (`AuthRequest.maxFieldLength`), which keeps tokens
    /// far below it.
    public static let maxTokenLength = 4096

    private let authenticator: any MessageAuthenticator

    public init(authenticator: any MessageAuthenticator) {
        self.authenticator = authenticator
    }

    /// A token for `user` on `device`, valid until `expiresAt` (Unix seconds, exclusive).
    public func issue(user: String, device: String, expiresAt: UInt64) -> String {
        var writer = JSONWriter()
        writer.object {
            $0.field("u", user)
            $0.field("d", device)
            $0.field("exp", expiresAt)
        }
        let payload = writer.bytes
        return Base64.encode(payload, url: true) + "." + Base64.encode(authenticator.mac(payload), url: true)
    }

    /// Checks `token` for an AUTH from `user`, with device key `device` if AUTH gave one, at time `now`
    /// (Unix seconds), and returns its claims.
    ///
    /// The MAC is checked before the payload is parsed, so nothing an attacker writes reaches the JSON parser
    /// unless it was signed with the secret.
    public func verify(_ token: String, user: String, device: String?, now: UInt64) throws(TokenError) -> TokenClaims {
        let (payload, mac) = try Self.split(token)
        guard authenticator.equal(authenticator.mac(payload), mac) else { throw .badSignature }
        let claims = try Self.parse(payload)
        guard claims.expiresAt > now else { throw .expired(at: claims.expiresAt, now: now) }
        guard claims.user == user else { throw .wrongUser }
        if let device, claims.device != device { throw .wrongDevice }
        return claims
    }

    /// Splits at the single `.` and decodes both halves.
    private static func split(_ token: String) throws(TokenError) -> (payload: [UInt8], mac: [UInt8]) {
        let utf8 = token.utf8
        guard utf8.count <= maxTokenLength else {
            throw .malformed("token is longer than \(maxTokenLength) bytes")
        }
        let parts = utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformed("token must be two base64url parts joined by one '.'") }
        let payload = try decode(parts[0], "payload")
        let mac = try decode(parts[1], "signature")
        return (payload, mac)
    }

    /// Decodes one base64url part, accepting only its canonical form (URL-safe alphabet, no padding, zero
    /// trailing bits), so that one token has exactly one spelling.
    private static func decode(_ part: Substring.UTF8View, _ name: String) throws(TokenError) -> [UInt8] {
        let text = String(Substring(part))
        guard let bytes = Base64.decode(text), !bytes.isEmpty, Base64.encode(bytes, url: true) == text else {
            throw .malformed("token \(name) is not base64url")
        }
        return bytes
    }

    /// Reads the signed payload `{"u":…,"d":…,"exp":…}`.
    private static func parse(_ payload: [UInt8]) throws(TokenError) -> TokenClaims {
        let json: JSONValue
        do {
            json = try JSONParser.parse(payload)
        } catch {
            throw .malformed("token payload is not JSON")
        }
        guard let user = json["u"]?.stringValue else { throw .malformed("token payload has no string u") }
        guard let device = json["d"]?.stringValue else { throw .malformed("token payload has no string d") }
        guard case .number(let text) = json["exp"], let expiry = UInt64(text) else {
            throw .malformed("token payload has no integer exp")
        }
        return TokenClaims(user: user, device: device, expiresAt: expiry)
    }
}
