/// Why a provider credential could not be loaded or used: the APNs `.p8` key, the FCM service-account file, a
/// signature, or the OAuth2 token endpoint's answer. The text never contains key material or tokens.
public struct CredentialError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: String, Sendable {
        case badKey = "bad_key"
        case wrongKeyType = "wrong_key_type"
        case signingFailed = "signing_failed"
        case badServiceAccount = "bad_service_account"
        case tokenRefused = "token_refused"
        case badTokenResponse = "bad_token_response"
    }

    private let kind: Kind
    /// What went wrong, in words.
    public let message: String
    /// For ``tokenRefused(status:error:)``: whether asking again later may succeed (429 or a 5xx from the token
    /// endpoint); false for everything else.
    public let isTemporary: Bool

    private init(_ kind: Kind, _ message: String, isTemporary: Bool = false) {
        self.kind = kind
        self.message = message
        self.isTemporary = isTemporary
    }

    /// `bad_key`, `wrong_key_type`, `signing_failed`, `bad_service_account`, `token_refused` or
    /// `bad_token_response`: stable, for logs and counters.
    public var code: String { kind.rawValue }

    public var description: String { "\(code): \(message)" }

    /// The PEM text holds no private key OpenSSL can read (or an encrypted one: pushgw asks for no passphrase).
    public static func badKey(_ detail: String) -> Self { .init(.badKey, detail) }
    /// The key is readable but of the wrong kind: ES256 needs EC P-256, RS256 RSA of at least 2048 bits.
    public static func wrongKeyType(_ detail: String) -> Self { .init(.wrongKeyType, detail) }
    /// OpenSSL could not sign (out of memory, a broken installation).
    public static func signingFailed(_ detail: String) -> Self { .init(.signingFailed, detail) }
    /// The Google service-account JSON lacks a member, or has one of the wrong type.
    public static func badServiceAccount(_ detail: String) -> Self { .init(.badServiceAccount, detail) }
    /// The OAuth2 token endpoint answered with an error status (`error` is its `error` member, e.g.
    /// `invalid_grant`, with `error_description` when given).
    public static func tokenRefused(status: Int, error: String) -> Self {
        .init(.tokenRefused, "token endpoint answered \(status): \(error)", isTemporary: status == 429 || status >= 500)
    }
    /// The OAuth2 token endpoint answered 200 with a body that is not a token.
    public static func badTokenResponse(_ detail: String) -> Self { .init(.badTokenResponse, detail) }
}
