/// The provider authentication token APNs takes in `authorization: bearer <token>`: an ES256 JWT signed with the
/// team's `.p8` key, header `{"alg":"ES256","kid":<key id>}`, claims `{"iss":<team id>,"iat":<unix seconds>}`.
///
/// Apple refuses tokens older than an hour (403 `ExpiredProviderToken`) and refreshes more often than every 20
/// minutes (429 `TooManyProviderTokenUpdates`), so one token is reused for 50 minutes, then a new one is made.
/// The caller passes the time, so tests can move it.
public struct APNsProviderToken: Sendable {
    /// Seconds one token is reused: 50 minutes, inside Apple's 20 to 60.
    public static let reuseSeconds: UInt64 = 50 * 60

    /// `apns.key_id`: the 10-character id of the `.p8` key, the header's `kid`.
    public let keyID: String
    /// `apns.team_id`: the developer team's id, the claims' `iss`.
    public let teamID: String
    private let key: SigningKey
    private var cached: (token: String, issuedAt: UInt64)? = nil

    /// A token maker for `key`, which must be an ES256 key (EC P-256).
    ///
    /// - Throws: ``CredentialError/wrongKeyType(_:)`` for any other key.
    public init(key: SigningKey, keyID: String, teamID: String) throws(CredentialError) {
        guard key.algorithm == .es256 else {
            throw .wrongKeyType("APNs needs an EC P-256 key (.p8), got one for \(key.algorithm.rawValue)")
        }
        self.key = key
        self.keyID = keyID
        self.teamID = teamID
    }

    /// The token to send at `now` (unix seconds): the one made less than 50 minutes ago, else a new one made now.
    /// A clock that went back past the token's `iat` also makes a new one.
    public mutating func token(now: UInt64) throws(CredentialError) -> String {
        if let cached, now >= cached.issuedAt, now - cached.issuedAt < Self.reuseSeconds { return cached.token }
        let token = try Self.make(key: key, keyID: keyID, teamID: teamID, issuedAt: now)
        cached = (token, now)
        return token
    }

    /// When the token ``token(now:)`` would reuse was made; nil when there is none.
    public var issuedAt: UInt64? { cached?.issuedAt }

    /// Forgets the current token, so the next ``token(now:)`` makes a new one: after APNs answered 403
    /// `ExpiredProviderToken`.
    public mutating func invalidate() { cached = nil }

    /// A new token, uncached.
    public static func make(
        key: SigningKey, keyID: String, teamID: String, issuedAt: UInt64
    ) throws(CredentialError) -> String {
        var claims = JSONWriter()
        claims.object { claims in
            claims.field("iss", teamID)
            claims.field("iat", issuedAt)
        }
        return try JWT.sign(claims: claims.bytes, key: key, keyID: keyID)
    }
}
